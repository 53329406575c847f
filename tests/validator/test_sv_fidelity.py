# SPDX-License-Identifier: Apache-2.0
"""Stored value per product type through the whole procedure (issue 16, points 1, 5 and 7)."""

from __future__ import annotations

import datetime as dt

from conftest import CARDS, Station

from calypso.emulator import CardEmulator
from calypso.profile import load_profile
from validator.outcome import Outcome

INS_SV_GET = 0x7C


def light_with_sv_bit() -> CardEmulator:
    """A Light card with no title whose application type 92h has the bit that means SV on Rev3."""
    profile = load_profile(CARDS / "empty.yaml")
    light = profile.model_copy(
        update={"startup_info": bytes.fromhex("06439231 2B0100".replace(" ", ""))}
    )
    return CardEmulator(light)


class TestSvGetDecidedByProduct:
    """The procedure sends SV Get only to a product that has stored value (issue 16.5)."""

    def test_light_card_with_bit_02_gets_no_sv_get(self, station: Station, morning: dt.datetime):
        """A Light card with no title is refused for its title, never sent SV Get."""
        card = light_with_sv_bit()
        result = station.tap(card, morning)
        assert [ex.command[1] for ex in result.card_trace].count(INS_SV_GET) == 0
        assert result.outcome is Outcome.DENIED, result.explanation
