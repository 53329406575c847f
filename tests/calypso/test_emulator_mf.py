# SPDX-License-Identifier: Apache-2.0
"""Issue 16.12: the MF-level files (ICC, ID) and selection by a partial DF name."""

from __future__ import annotations

from pathlib import Path

import pytest

from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.files import master_files
from calypso.emulator.profile import CardProfile, ProfileError, load_profile

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


class TestMasterFileFiles:
    """Issue 16.12: the ICC (0002h) and ID (0003h) files at MF level."""

    def test_icc_holds_the_serial(self, vector: CardEmulator) -> None:
        """Selecting 0002h then reading the current record gives 29 bytes, serial at 12..19."""
        header = vector.process(h("00A40000020002 00"))
        assert header[-2:] == h("9000")
        record = vector.process(h("00B201041D"))
        assert record[-2:] == h("9000")
        assert len(record) == 29 + 2
        assert record[12:20] == vector.serial

    def test_id_file_exists(self, vector: CardEmulator) -> None:
        """The ID file 0003h is selectable and has one 29-byte record."""
        assert vector.process(h("00A40000020003 00"))[-2:] == h("9000")
        assert len(vector.process(h("00B201041D"))) == 31

    def test_icc_is_read_only(self, vector: CardEmulator) -> None:
        """An Update Record of the ICC file is refused (6985: never)."""
        vector.process(h("00A40000020002 00"))
        assert vector.process(h("00DC010401FF")) == h("6985")

    def test_back_to_the_df(self, navigo: CardEmulator) -> None:
        """After an MF file, selecting the DF 2000h makes its EFs reachable again."""
        navigo.process(h("94A40000020002 00"))
        navigo.process(h("94A40000022000 00"))
        assert navigo.process(h("94A40000022010 00"))[:3] == h("8517 08")

    def test_profile_icc_must_match_serial(self, tmp_path: Path) -> None:
        """A profile whose ICC record names another serial is refused."""
        path = tmp_path / "bad.yaml"
        icc = "00" * 12 + "0102030405060708" + "00" * 9
        path.write_text(
            VECTOR_CARD.read_text()
            + f'mf_files:\n  - {{name: icc, sfi: 0x02, lid: "0002", type: linear, '
            f'content: ["{icc}"]}}\n'
        )
        with pytest.raises(ProfileError, match="serial"):
            load_profile(path)

    def test_default_mf_files(self) -> None:
        """A profile without mf_files gets ICC 0002h and ID 0003h."""
        profile: CardProfile = load_profile(VECTOR_CARD)
        assert [f.lid for f in master_files(profile)] == [0x0002, 0x0003]


class TestPartialDfName:
    """Issue 16.12: Select Application with the first bytes of a DF name."""

    def test_1tic_ica_on_navigo(self, navigo: CardEmulator) -> None:
        """`1TIC.ICA` selects the Navigo-like application, as on a real Navigo card."""
        answer = navigo.process(h("00A4040008 315449432E494341 00"))
        assert answer[-2:] == h("9000")
        assert answer[0] == 0x6F  # an FCI

    def test_partial_idf_aid(self, navigo: CardEmulator) -> None:
        """The first 7 bytes of the IDF AID select it; a wrong prefix answers 6A82."""
        assert navigo.process(h("00A4040007 A0000004040125 00"))[-2:] == h("9000")
        assert navigo.process(h("00A4040007 A0000004040126 00")) == h("6A82")

    def test_next_occurrence(self, navigo: CardEmulator) -> None:
        """P2=02h (next occurrence) after the only application answers 6A82."""
        navigo.process(h("00A4040008 315449432E494341 00"))
        assert navigo.process(h("00A4040208 315449432E494341 00")) == h("6A82")
