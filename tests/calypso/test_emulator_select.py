# SPDX-License-Identifier: Apache-2.0
"""Issue 16.11: the ISO Select File forms real cards accept (P1 00h/02h/08h/09h, P2 options)."""

from __future__ import annotations

from pathlib import Path

import pytest

from calypso.emulator.dispatch import CardEmulator

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


class TestSelectFileForms:
    """Issue 16.11: the ISO Select File forms real cards accept, and nothing else."""

    @pytest.mark.parametrize("p1", ["00", "02", "09"])
    def test_ef_by_lid_each_p1(self, navigo: CardEmulator, p1: str) -> None:
        """Select the event log 2010h with P1 00h, 02h or 09h: its header (SFI 08h), 9000."""
        answer = navigo.process(h(f"00A4{p1}00022010 00"))
        assert answer[:3] == h("8517 08")
        assert answer[-2:] == h("9000")

    def test_ef_by_path_from_mf(self, navigo: CardEmulator) -> None:
        """P1=08h with the path 2000h/2010h (from the MF) selects the event log."""
        answer = navigo.process(h("00A40800042000201000"))
        assert answer[:3] == h("8517 08")
        assert answer[-2:] == h("9000")

    def test_read_current_after_iso_select(self, navigo: CardEmulator) -> None:
        """After `00 A4 00 00 02 2001`, Read Record with SFI 0 reads the environment."""
        navigo.process(h("00A40000022001 00"))
        record = navigo.process(h("00B2010400"))
        assert record[:-2] == navigo.read_record(0x07, 1)
        assert record[-2:] == h("9000")

    @pytest.mark.parametrize("p1", ["00", "09", "08"])
    def test_df_by_lid(self, navigo: CardEmulator, p1: str) -> None:
        """The DF 2000h is selected by LID with P1 00h, 08h or 09h: a DF header (type 02h)."""
        answer = navigo.process(h(f"00A4{p1}00022000 00"))
        assert answer[:2] == h("8517")
        assert answer[3] == 0x02
        assert answer[-2:] == h("9000")

    @pytest.mark.parametrize("p1p2", ["FFFF", "0300", "09FF", "0910", "0401"])
    def test_df_lid_with_bad_p1_p2(self, navigo: CardEmulator, p1p2: str) -> None:
        """The DF's LID with a P1/P2 outside the ISO forms is refused (the precedence bug)."""
        answer = navigo.process(h(f"00A4{p1p2}022000 00"))
        assert answer[-2:] != h("9000")

    def test_no_response_data_option(self, navigo: CardEmulator) -> None:
        """P2=0Ch (no response data) selects the file and answers a bare 9000."""
        assert navigo.process(h("00A4020C022010")) == h("9000")
        assert navigo.process(h("00B2010400"))[-2:] == h("9000")

    def test_unknown_lid(self, navigo: CardEmulator) -> None:
        """A LID the card does not have answers 6A82 in every form."""
        for p1 in ("00", "02", "09"):
            assert navigo.process(h(f"00A4{p1}00022099 00")) == h("6A82")

    def test_current_df_is_the_mf_after_an_mf_file(self, navigo: CardEmulator) -> None:
        """`09 00 0000` (current DF) after selecting the ICC file answers the MF (type 01h)."""
        navigo.process(h("00A40000020002 00"))
        answer = navigo.process(h("00A40900020000 00"))
        assert answer[:2] == h("8517") and answer[3] == 0x01
        assert answer[-4:] == h("3F00 9000")
