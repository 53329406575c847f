# SPDX-License-Identifier: Apache-2.0
"""SAM identification from the ATR (calypso-protocol.md section 3, last paragraph)."""

from __future__ import annotations

import pytest
from sam_vectors import STUB_SAM_ATR, h

from sam.atr import SamAtrError, SamType, build_sam_atr, parse_sam_atr


def _atr(subtype: str, issuer: str = "20", head: str = "3B3F9600") -> bytes:
    return h(f"{head}805A0080{subtype}{issuer}0000AABBCCDD829000")


class TestParseSamAtr:
    """parse_sam_atr and the capabilities of each SAM type."""

    def test_keyple_stub_atr(self) -> None:
        """The Keyple stub ATR is a SAM C1 with serial 12345678 and CLA 80."""
        identity = parse_sam_atr(STUB_SAM_ATR)
        assert identity.sam_type is SamType.C1
        assert identity.serial == h("12345678")
        assert (identity.platform, identity.app_type, identity.subtype) == (0x00, 0x80, 0xC1)
        assert (identity.issuer, identity.version, identity.revision) == (0x20, 0x00, 0x00)
        assert identity.cla == 0x80
        assert identity.max_digest_data == 255
        assert identity.supports_digest_multiple and identity.supports_extended

    def test_hsm_c1(self) -> None:
        """Subtype C1 with software issuer 08 is an HSM C1: extended, no Digest Update Multiple."""
        identity = parse_sam_atr(_atr("C1", issuer="08"))
        assert identity.sam_type is SamType.HSM_C1
        assert identity.max_digest_data == 255
        assert identity.supports_extended and not identity.supports_digest_multiple

    @pytest.mark.parametrize("subtype", ["D0", "D3", "D7"])
    def test_s1dx(self, subtype: str) -> None:
        """Subtypes D0..D7 are S1Dx: CLA 94, 70 bytes, single Digest Updates, no extended."""
        identity = parse_sam_atr(_atr(subtype))
        assert identity.sam_type is SamType.S1DX
        assert identity.cla == 0x94
        assert identity.max_digest_data == 70
        assert not identity.supports_digest_multiple and not identity.supports_extended

    def test_s1e1(self) -> None:
        """Subtype E1 is S1E1: CLA 80, 240 bytes, Digest Update Multiple, no extended."""
        identity = parse_sam_atr(_atr("E1"))
        assert identity.sam_type is SamType.S1E1
        assert identity.cla == 0x80 and identity.max_digest_data == 240
        assert identity.supports_digest_multiple and not identity.supports_extended

    def test_unknown_subtype(self) -> None:
        """Another subtype is UNKNOWN with CLA 80 and conservative capabilities."""
        identity = parse_sam_atr(_atr("D8"))
        assert identity.sam_type is SamType.UNKNOWN
        assert identity.cla == 0x80
        assert not identity.supports_digest_multiple and not identity.supports_extended

    def test_five_interface_bytes(self) -> None:
        """The `3B` + 5 bytes form of the ATR also matches."""
        identity = parse_sam_atr(_atr("C1", head="3B3F96000102"))
        assert identity.sam_type is SamType.C1 and identity.serial == h("AABBCCDD")

    @pytest.mark.parametrize(
        "atr",
        [
            "3B888001000000009171710098",  # the Keyple stub card
            "3B3F9600805A0080C120000012345678829001",
            "3B3F96805A0080C120000012345678829000",
            "",
        ],
    )
    def test_not_a_sam(self, atr: str) -> None:
        """An ATR without the legacy SAM shape raises SamAtrError."""
        with pytest.raises(SamAtrError):
            parse_sam_atr(h(atr))

    def test_build_round_trip(self) -> None:
        """build_sam_atr reproduces the stub ATR and parses back."""
        assert build_sam_atr(h("12345678"), issuer=0x20) == STUB_SAM_ATR
        built = build_sam_atr(h("5AFE0001"), issuer=0xF5, version=1, revision=2)
        identity = parse_sam_atr(built)
        assert (identity.issuer, identity.version, identity.revision) == (0xF5, 1, 2)
        assert identity.sam_type is SamType.C1 and identity.serial == h("5AFE0001")
