# SPDX-License-Identifier: Apache-2.0
"""Stored value per product type through the whole procedure (issue 16, points 1, 5 and 7)."""

from __future__ import annotations

import datetime as dt

from conftest import CARDS, CONFIG, DEMO_AID, Station, make_card

from calypso.commands.sv import SvOperation, sv_get
from calypso.constants import CardClass
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import load_profile
from readers.emulated import EmulatedReader
from validator.engine.attempt import validate
from validator.engine.fares.decide import TapContext
from validator.engine.outcome import Outcome
from validator.journal.entry import JournalEntry, Trace
from validator.office.replay.mac import VERIFIED, MacChecker

INS_SV_GET, INS_SV_DEBIT = 0x7C, 0xBA
CLA_SV_LEGACY = 0xFA
SIMULATION_KVC = 0xF0  # Rev1 names no KVC: the configured default (simulation keys)


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


class TestSvClassOnLegacyCards:
    """SV Get/Debit to a Prime Rev2 card use class FAh (issue 16.1, calypso-protocol section 0)."""

    def test_sv_get_vectors(self) -> None:
        """`FA 7C 00 07 21` (reload, Rev2), `FA 7C 00 09 1E` (debit), `00 7C 00 09 1E` (Rev3)."""
        legacy = CardClass.LEGACY_SV
        assert sv_get(SvOperation.RELOAD, cla=legacy).hex() == "FA7C000721"
        assert sv_get(SvOperation.DEBIT, cla=legacy).hex() == "FA7C00091E"
        assert sv_get(SvOperation.DEBIT).hex() == "007C00091E"
        assert sv_get(SvOperation.RELOAD, extended=True).hex() == "007C01073D"

    def test_rev2_purse_is_granted_with_class_fa(self, station: Station, morning: dt.datetime):
        """A Rev2 purse pays: SV Get and SV Debit sent with CLA FAh, the rest with CLA 94h."""
        card = make_card("other/sv_purse_rev2")
        before = card.sv_balance
        result = station.tap(card, morning)
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.reason == "sv_debited" and result.mac_verified
        assert card.sv_balance == before - 150
        sv = [ex.command for ex in result.card_trace if ex.command[1] in (INS_SV_GET, INS_SV_DEBIT)]
        assert sv[0] == bytes.fromhex("FA7C00091E")
        assert [c[0] for c in sv] == [CLA_SV_LEGACY, CLA_SV_LEGACY]
        others = [
            ex.command[0]
            for ex in result.card_trace
            if ex.command[1] not in (INS_SV_GET, INS_SV_DEBIT, 0xA4)
        ]
        assert set(others) == {CardClass.LEGACY}  # Select Application aside (always 00h)

    def test_rev2_purse_pays_each_tap_once(self, station: Station, morning: dt.datetime):
        """Three taps half an hour apart each debit the Rev2 purse exactly once."""
        card = make_card("other/sv_purse_rev2")
        before, taps = card.sv_balance, 3
        for n in range(taps):
            result = station.tap(card, morning + dt.timedelta(minutes=30 * n))
            assert result.outcome is Outcome.GRANTED, (n, result.explanation)
        assert card.sv_balance == before - 150 * taps

    def test_rev2_purse_session_verifies_offline(self, station: Station, morning: dt.datetime):
        """The journaled Rev2 session (KVC first, no KIF in the Open answer) replays verified."""
        card = make_card("other/sv_purse_rev2")
        result = station.tap(card, morning)
        assert result.outcome is Outcome.GRANTED, result.explanation
        exchanges = tuple(
            {"c": ex.command.hex(), "r": ex.response.hex()} for ex in result.card_trace
        )
        entry = JournalEntry(
            1,
            morning.isoformat(),
            "0" * 64,
            card=card.serial.hex().upper(),
            card_mac=None,
            trace=Trace(exchanges, ()),
        )
        check = MacChecker.from_keys(CONFIG / "keys.sim.yaml").check(entry)
        assert check.status == VERIFIED, check.note


class TestExtendedStoredValue:
    """A Rev3.2 card in an extended session gets the extended SV forms (issue 16.7)."""

    def test_extended_purse_is_granted_with_extended_sv(
        self, station: Station, morning: dt.datetime
    ):
        """SV Get `00 7C 01 09 3D`, SV Debit Lc 19h (10-byte MAC, no Le), 6-byte signature."""
        card = make_card("other/sv_purse_extended")
        before = card.sv_balance
        result = station.tap(card, morning)
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.reason == "sv_debited" and result.mac_verified
        assert card.sv_balance == before - 150
        open_session = next(ex.command for ex in result.card_trace if ex.command[1] == 0x8A)
        assert open_session[3] & 0x03 == 0x02  # an extended session (P2 low bits 10b)
        sv_get_command = next(ex for ex in result.card_trace if ex.command[1] == INS_SV_GET)
        assert sv_get_command.command == bytes.fromhex("007C01093D")
        assert len(sv_get_command.response) == 0x3D + 2
        debit = next(ex.command for ex in result.card_trace if ex.command[1] == INS_SV_DEBIT)
        assert debit[4] == 0x19 and len(debit) == 5 + 0x19  # extended form, no Le in session


class TestRev1StoredValue:
    """A Prime Rev1 purse, known from its ATR, pays with SV commands in class FAh (16.1, 16.5)."""

    def test_rev1_purse_is_granted_with_class_fa(self, station: Station, morning: dt.datetime):
        """No FCI (Select Application 6E00), the ATR gives the card; SV Get `FA 7C 00 09 1E`."""
        card = make_card("other/sv_purse_rev1")
        before = card.sv_balance
        reader = EmulatedReader("card")
        reader.insert(card)
        result = validate(
            reader.connect(),
            station.sam,
            station.rules,
            TapContext(morning, 101),
            aids=[DEMO_AID],
            default_kvc=SIMULATION_KVC,
        )
        assert result.outcome is Outcome.GRANTED, result.explanation
        assert result.reason == "sv_debited" and result.mac_verified
        assert card.sv_balance == before - 150
        sv = [ex.command for ex in result.card_trace if ex.command[1] in (INS_SV_GET, INS_SV_DEBIT)]
        assert sv[0] == bytes.fromhex("FA7C00091E") and sv[1][0] == CLA_SV_LEGACY
