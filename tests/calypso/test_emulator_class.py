# SPDX-License-Identifier: Apache-2.0
"""Issue 16.10: Rev3 cards answer the legacy class 94h as real Prime Rev3 cards do."""

from __future__ import annotations

from pathlib import Path

import pytest

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import ProfileError, load_profile

FLEET = Path(__file__).parents[2] / "config" / "cards"
VECTOR_CARD = Path(__file__).with_name("vector_card.yaml")


def h(text: str) -> bytes:
    """Hex with spaces allowed, for readable named parts."""
    return bytes.fromhex(text.replace(" ", ""))


def fixed_rng(n: int) -> bytes:
    """A card random that is the same on every run."""
    return bytes([0x98] * n)


@pytest.fixture
def navigo() -> CardEmulator:
    """The Navigo-like Intercode card of the fleet, powered."""
    card = CardEmulator.from_profile(FLEET / "intercode.yaml", fixed_rng)
    card.power_on()
    return card


@pytest.fixture
def vector() -> CardEmulator:
    """The CSIM1 vector card (Rev3, default MF files), powered."""
    card = CardEmulator.from_profile(VECTOR_CARD, fixed_rng)
    card.power_on()
    return card


class TestLegacyClass:
    """Issue 16.10: Rev3 cards answer the legacy class 94h as they answer 00h."""

    @pytest.mark.parametrize(
        "command",
        [
            "B2 01 3C 1D",  # Read Record, environment
            "A4 04 00 0A A0000004040125090101 00",  # Select Application
            "A4 09 00 02 2010 00",  # Select File by LID
            "CA 00 C0 00",  # Get Data EF list
            "B2 01 CC 1B",  # Read Record, counters
        ],
    )
    def test_94_answers_as_00(self, command: str) -> None:
        """The same command in class 94h and 00h gets the same answer, never 6E00."""
        answers = []
        for cla in ("00", "94"):
            card = CardEmulator.from_profile(FLEET / "intercode.yaml", fixed_rng)
            card.power_on()
            answers.append(card.process(h(cla + command)))
        assert answers[1][-2:] != h("6E00")
        assert answers[0] == answers[1]

    def test_option_restricts_to_00(self, tmp_path: Path) -> None:
        """A profile with card_classes [00] refuses 94h with 6E00 and still answers 00h."""
        text = VECTOR_CARD.read_text() + 'card_classes: ["00"]\n'
        path = tmp_path / "iso_only.yaml"
        path.write_text(text)
        card = CardEmulator.from_profile(path, fixed_rng)
        card.power_on()
        assert card.process(h("94B2013C00")) == h("6E00")
        assert card.process(h("00B2013C00"))[-2:] == h("9000")

    def test_option_values_checked(self, tmp_path: Path) -> None:
        """A class other than 00h or 94h in card_classes is refused when the profile loads."""
        path = tmp_path / "bad.yaml"
        path.write_text(VECTOR_CARD.read_text() + 'card_classes: ["80"]\n')
        with pytest.raises(ProfileError, match="card_classes"):
            load_profile(path)
