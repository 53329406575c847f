# SPDX-License-Identifier: Apache-2.0
"""CSIM1 primitives and the regular session MAC against csim1-vectors.txt."""

from __future__ import annotations

import pytest
from conftest import REFERENCE

from calypso.crypto import (
    SessionMac,
    cmac,
    digest_item,
    diversify,
    frame,
    kdf,
    session_keys,
    session_mac_key,
)

SN8 = bytes.fromhex("0000000011223344")
# Diversification table of csim1-vectors.txt: (KIF, KVC, master key, card key).
DIVERSIFICATION = [
    (0x21, 0xF0, "000102030405060708090A0B0C0D0E0F", "B794E7EDA2F27AF4AD3339C1DDBA1FE3"),
    (0x27, 0xF0, "101112131415161718191A1B1C1D1E1F", "02C6E1C374157187E9AA13430DB46D24"),
    (0x30, 0xF0, "202122232425262728292A2B2C2D2E2F", "3C584B366C8FE7BAFFA29862D42411C5"),
    (0x27, 0xF1, "303132333435363738393A3B3C3D3E3F", "0BB7CECEF762C122B5D1BA50FDC6846C"),
]
# Regular-mode session, debit key 30/F0, built from named parts.
RECORD_71 = "71" + "11" * 28
OSS_DATA_OUT = "030490" + "98" + "00" + "30" + "F0" + "1D" + RECORD_71
ITEMS = [
    "00B2014400",
    "81" + "11" * 28 + "9000",
    "00E200401D" + "82" + "22" * 28,
    "9000",
    "003001C80300000100",  # case 4: its Le is dropped
    "0000639000",
]
TRANSCRIPT = (
    "25030490980030F01D71111111111111111111111111111111111111111111111111111111110500B2014400"
    "1F811111111111111111111111111111111111111111111111111111111190002200E200401D8222222222"
    "22222222222222222222222222222222222222222222222202900008003001C803000001050000639000"
)


class TestPrimitives:
    """Sanity checks of CMAC and the KDF."""

    def test_rfc4493_cmac(self) -> None:
        """RFC 4493 examples 1 and 2."""
        key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
        assert cmac(key, b"").hex().upper() == "BB1D6929E95937287FA37D129B756746"
        block = bytes.fromhex("6BC1BEE22E409F96E93D7E117393172A")
        assert cmac(key, block).hex().upper() == "070A16B46B4D4144F79BDD9DD04A287C"

    def test_kdf_is_the_single_cmac_formula(self) -> None:
        """For 16 bytes, KDF = CMAC(K, 00000001 || label || 00 || ctx || 00000080)."""
        mk = bytes.fromhex(DIVERSIFICATION[2][2])
        single = bytes.fromhex("000000014353494D31204449560030F0000000001122334400000080")
        assert kdf(mk, b"CSIM1 DIV", bytes.fromhex("30F0") + SN8, 16) == cmac(mk, single)

    def test_frame_limits(self) -> None:
        """A digest item is 1 to 255 bytes."""
        assert frame(b"\x90\x00") == b"\x02\x90\x00"
        with pytest.raises(ValueError):
            frame(b"")

    def test_digest_item_drops_le_of_case4_only(self) -> None:
        """Case 4 loses its Le; case 3 and responses are unchanged."""
        assert digest_item(bytes.fromhex("003001C80300000100")).hex() == "003001c803000001"
        assert digest_item(bytes.fromhex("00DC010C01AA")).hex() == "00dc010c01aa"


class TestDiversification:
    """K_card = KDF(MK, "CSIM1 DIV", KIF || KVC || SN8, 16)."""

    @pytest.mark.parametrize(("kif", "kvc", "master", "card_key"), DIVERSIFICATION)
    def test_vector(self, kif: int, kvc: int, master: str, card_key: str) -> None:
        """Each master key of the vectors diversifies to the vector's card key."""
        key = diversify(bytes.fromhex(master), kif, kvc, SN8)
        assert key.hex().upper() == card_key


class TestRegularSession:
    """The regular-mode session vector, MAC and session keys."""

    def test_session_keys_transcript_and_mac(self) -> None:
        """SK_MAC, SK_ENC, the transcript X and M = CMAC(SK_MAC, X || 000100) match."""
        card_key = bytes.fromhex(DIVERSIFICATION[2][3])
        session = SessionMac.start(
            card_key,
            extended=False,
            kif=0x30,
            kvc=0xF0,
            open_data_out=bytes.fromhex(OSS_DATA_OUT),
            terminal_challenge=bytes.fromhex("C1C2C3C4"),
        )
        assert session.sk_mac.hex().upper() == "D0FB75F18B0FF20B6DD6C39820E31A83"
        assert session.sk_enc.hex().upper() == "2DF6F8088965A2F79A691799534106B5"
        for item in ITEMS:
            session.add(digest_item(bytes.fromhex(item)))
        assert bytes(session.transcript).hex().upper() == TRANSCRIPT
        assert session.full_mac().hex().upper() == "9F1DEC7BCF42745BC13EEAF95B57ED4A"
        assert session.terminal_mac().hex().upper() == "9F1DEC7B"
        assert session.card_mac().hex().upper() == "CF42745B"

    @pytest.mark.parametrize(
        ("key", "extended", "kif", "kvc", "cc", "tc", "sk_mac"),
        [
            (2, False, 0x30, 0xF0, "03049098", "C1C2C3C4", "D0FB75F18B0FF20B6DD6C39820E31A83"),
            (
                1,
                True,
                0x27,
                0xF0,
                "0304907A1B2C3D4E",
                "C1C2C3C4C5C6C7C8",
                "95761F333C7E3EEE252E0B0C22045ECC",
            ),
        ],
    )
    def test_session_mac_key_alone_is_the_vectors_sk_mac(
        self, key: int, extended: bool, kif: int, kvc: int, cc: str, tc: str, sk_mac: str
    ) -> None:
        """SK_MAC derived alone (the KDF's first block) is the vector's, and session_keys' own."""
        card_key = bytes.fromhex(DIVERSIFICATION[key][3])
        parts = {
            "extended": extended,
            "kif": kif,
            "kvc": kvc,
            "card_challenge": bytes.fromhex(cc),
            "terminal_challenge": bytes.fromhex(tc),
        }
        alone = session_mac_key(card_key, **parts)  # type: ignore[arg-type]
        assert alone.hex().upper() == sk_mac
        assert alone == session_keys(card_key, **parts)[0]  # type: ignore[arg-type]

    def test_session_mac_key_refuses_what_session_keys_refuses(self) -> None:
        """A challenge of the other mode's size is refused by both, with the same error."""
        card_key = bytes.fromhex(DIVERSIFICATION[2][3])
        for derive in (session_keys, session_mac_key):
            with pytest.raises(ValueError, match="challenges must be 4 bytes"):
                derive(
                    card_key,
                    extended=False,
                    kif=0x30,
                    kvc=0xF0,
                    card_challenge=bytes(8),
                    terminal_challenge=bytes(4),
                )

    def test_constants_match_the_reference_file(self) -> None:
        """The vectors written here are those of shared/reference/csim1-vectors.txt."""
        path = REFERENCE / "csim1-vectors.txt"
        if not path.exists():
            pytest.skip("shared/reference is not beside this checkout")
        text = path.read_text()
        for _, _, master, card_key in DIVERSIFICATION:
            assert master in text and card_key in text
        assert TRANSCRIPT in text
        assert "9F1DEC7BCF42745BC13EEAF95B57ED4A" in text
