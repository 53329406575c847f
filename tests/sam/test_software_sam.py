# SPDX-License-Identifier: Apache-2.0
"""The software SAM against the CSIM1 vectors, and its state machine and status words."""

from __future__ import annotations

import pytest
from sam_vectors import (
    EXT_CARD_MAC,
    EXT_DIGEST_INIT,
    EXT_TERMINAL_MAC,
    SAM_DIGEST_AUTHENTICATE,
    SAM_DIGEST_CLOSE,
    SAM_DIGEST_INIT,
    SAM_DIGEST_UPDATE_MULTIPLE,
    SAM_GET_CHALLENGE,
    SAM_SELECT_DIVERSIFIER,
    SIM_KEYS,
    TC,
    TC8,
    fixed_rng,
    h,
)

from sam.atr import SamType, parse_sam_atr
from sam.keys import KeyFileError, load_keys
from sam.software.dispatch import SoftwareSam

OK = h("9000")


@pytest.fixture
def sam() -> SoftwareSam:
    """A powered software SAM whose challenges are C1C2C3C4C5C6C7C8."""
    software = SoftwareSam.from_keys(SIM_KEYS, fixed_rng(TC8), allow_simulation=True)
    software.power_on()
    return software


def _open(sam: SoftwareSam) -> None:
    """Run the vector's Select Diversifier, Get Challenge and Digest Init."""
    assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
    assert sam.process(SAM_GET_CHALLENGE) == TC + OK
    assert sam.process(SAM_DIGEST_INIT) == OK


class TestRegularVector:
    """The regular-mode session of csim1-vectors.txt, byte for byte."""

    def test_full_session(self, sam: SoftwareSam) -> None:
        """Select Diversifier, Get Challenge, Digest Init, Update Multiple, Close, Authenticate."""
        _open(sam)
        assert sam.process(SAM_DIGEST_UPDATE_MULTIPLE) == OK
        assert sam.process(SAM_DIGEST_CLOSE) == h("9F1DEC7B") + OK
        assert sam.process(SAM_DIGEST_AUTHENTICATE) == OK

    def test_wrong_card_mac(self, sam: SoftwareSam) -> None:
        """A wrong card MAC gives 6988, and the session is over afterwards."""
        _open(sam)
        sam.process(SAM_DIGEST_UPDATE_MULTIPLE)
        assert sam.process(SAM_DIGEST_CLOSE) == h("9F1DEC7B") + OK
        assert sam.process(h("8082000004CF42745C")) == h("6988")
        assert sam.process(SAM_DIGEST_AUTHENTICATE) == h("6985")

    def test_single_updates_equal_multiple(self, sam: SoftwareSam) -> None:
        """Items sent by single Digest Updates give the same terminal MAC."""
        _open(sam)
        items = [
            h("00B2014400"),
            h("81") + h("11") * 28 + OK,
            h("00E200401D82") + h("22") * 28,
            OK,
            h("003001C803000001"),
            h("0000639000"),
        ]
        for item in items:
            assert sam.process(h("808C0000") + bytes((len(item),)) + item) == OK
        assert sam.process(SAM_DIGEST_CLOSE) == h("9F1DEC7B") + OK

    def test_eight_byte_challenge_truncated(self, sam: SoftwareSam) -> None:
        """A regular Digest Init after an 8-byte Get Challenge uses its first 4 bytes."""
        assert sam.process(h("8084000008")) == TC8 + OK
        assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
        assert sam.process(SAM_DIGEST_INIT) == OK
        assert sam.process(SAM_DIGEST_UPDATE_MULTIPLE) == OK
        assert sam.process(SAM_DIGEST_CLOSE) == h("9F1DEC7B") + OK

    def test_rng_is_used(self) -> None:
        """Challenges come from the injected rng."""
        sam = SoftwareSam.from_keys(SIM_KEYS, lambda n: bytes(range(n)), allow_simulation=True)
        sam.power_on()
        assert sam.process(h("8084000008")) == h("0001020304050607") + OK


class TestExtendedVector:
    """The extended-mode session of csim1-vectors.txt, with encrypted Digest Updates."""

    def test_full_session(self, sam: SoftwareSam) -> None:
        """8-byte challenge, extended Digest Init, CSIM1 3.5 ciphering, 8-byte MACs."""
        assert sam.process(h("8084000008")) == TC8 + OK
        assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
        assert sam.process(EXT_DIGEST_INIT) == OK
        assert sam.process(h("808C00000500B2010C01")) == OK
        assert sam.process(h("808C000003119000")) == OK
        assert sam.process(h("808C00800600DC010C01AA")) == h("00DC010C0110") + OK
        assert sam.process(h("808C0080029000")) == OK + OK
        assert sam.process(h("808C00800500B2030C01")) == h("00B2030C01") + OK
        assert sam.process(h("808C0080033D9000")) == h("339000") + OK
        assert sam.process(h("808E000008")) == EXT_TERMINAL_MAC + OK
        assert sam.process(h("8082000008") + EXT_CARD_MAC) == OK

    def test_encryption_refused_in_regular_mode(self, sam: SoftwareSam) -> None:
        """Digest Update P2=80 needs an extended session."""
        _open(sam)
        assert sam.process(h("808C00800600DC010C01AA")) == h("6985")

    def test_close_le_must_match_mode(self, sam: SoftwareSam) -> None:
        """Digest Close with Le 04 in an extended session is refused with 6700."""
        sam.process(h("8084000008"))
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(EXT_DIGEST_INIT)
        assert sam.process(SAM_DIGEST_CLOSE) == h("6700")
        answer = sam.process(h("808E000008"))
        assert len(answer) == 8 + 2 and answer.endswith(OK)


class TestStateMachine:
    """Get Challenge -> (Select Diversifier)* -> Digest Init, and the other sequencing rules."""

    def test_digest_init_without_challenge(self, sam: SoftwareSam) -> None:
        """Digest Init with no fresh challenge gives 6985."""
        sam.process(SAM_SELECT_DIVERSIFIER)
        assert sam.process(SAM_DIGEST_INIT) == h("6985")

    def test_challenge_used_once(self, sam: SoftwareSam) -> None:
        """A challenge serves one Digest Init only."""
        _open(sam)
        assert sam.process(SAM_DIGEST_INIT) == h("6985")

    def test_other_command_between_challenge_and_init(self, sam: SoftwareSam) -> None:
        """Any command other than Select Diversifier after Get Challenge burns the challenge."""
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(SAM_GET_CHALLENGE)
        assert sam.process(SAM_DIGEST_CLOSE) == h("6985")
        assert sam.process(SAM_DIGEST_INIT) == h("6985")

    def test_unknown_ins_between_challenge_and_init(self, sam: SoftwareSam) -> None:
        """Even an unknown instruction in the window burns the challenge."""
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(SAM_GET_CHALLENGE)
        assert sam.process(h("80CA000000")) == h("6D00")
        assert sam.process(SAM_DIGEST_INIT) == h("6985")

    def test_select_diversifier_after_challenge(self, sam: SoftwareSam) -> None:
        """Select Diversifier may sit between Get Challenge and Digest Init (prefetch order)."""
        assert sam.process(SAM_GET_CHALLENGE) == TC + OK
        assert sam.process(SAM_SELECT_DIVERSIFIER) == OK
        assert sam.process(SAM_DIGEST_INIT) == OK
        assert sam.process(SAM_DIGEST_UPDATE_MULTIPLE) == OK
        assert sam.process(SAM_DIGEST_CLOSE) == h("9F1DEC7B") + OK

    def test_digest_init_without_diversifier(self, sam: SoftwareSam) -> None:
        """Digest Init before any Select Diversifier gives 6985."""
        sam.process(SAM_GET_CHALLENGE)
        assert sam.process(SAM_DIGEST_INIT) == h("6985")

    def test_update_and_close_outside_session(self, sam: SoftwareSam) -> None:
        """Digest Update, Update Multiple, Close and Authenticate outside a digest give 6985."""
        for apdu in (
            h("808C00000500B2014400"),
            SAM_DIGEST_UPDATE_MULTIPLE,
            SAM_DIGEST_CLOSE,
            SAM_DIGEST_AUTHENTICATE,
        ):
            assert sam.process(apdu) == h("6985")

    def test_update_after_close(self, sam: SoftwareSam) -> None:
        """Once Digest Close answered, only Digest Authenticate is accepted."""
        _open(sam)
        sam.process(SAM_DIGEST_CLOSE)
        assert sam.process(h("808C00000500B2014400")) == h("6985")

    def test_power_off_resets(self, sam: SoftwareSam) -> None:
        """Power off forgets the diversifier, the challenge and the digest."""
        _open(sam)
        sam.power_off()
        sam.power_on()
        assert sam.process(SAM_DIGEST_CLOSE) == h("6985")
        sam.process(SAM_GET_CHALLENGE)
        assert sam.process(SAM_DIGEST_INIT) == h("6985")  # no diversifier any more


class TestStatusWords:
    """Refusals: class, instruction, parameters, lengths, keys, structure."""

    def test_wrong_class(self, sam: SoftwareSam) -> None:
        """A class other than 80 gives 6E00."""
        assert sam.process(h("0084000004")) == h("6E00")
        assert sam.process(h("9484000004")) == h("6E00")

    def test_unknown_instruction(self, sam: SoftwareSam) -> None:
        """An instruction the SAM does not implement gives 6D00."""
        assert sam.process(h("80CA000000")) == h("6D00")

    def test_unknown_key(self, sam: SoftwareSam) -> None:
        """Digest Init with a KIF/KVC the SAM does not hold gives 6A83."""
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(SAM_GET_CHALLENGE)
        bad_kvc = SAM_DIGEST_INIT[:6] + h("79") + SAM_DIGEST_INIT[7:]
        assert sam.process(bad_kvc) == h("6A83")

    def test_digest_init_bad_p2(self, sam: SoftwareSam) -> None:
        """Digest Init with P2 other than FF gives 6A00."""
        sam.process(SAM_SELECT_DIVERSIFIER)
        sam.process(SAM_GET_CHALLENGE)
        assert sam.process(SAM_DIGEST_INIT[:3] + h("00") + SAM_DIGEST_INIT[4:]) == h("6A00")

    def test_bad_lengths(self, sam: SoftwareSam) -> None:
        """Wrong diversifier, challenge and card MAC lengths give 6700."""
        assert sam.process(h("801400000611223344556677")) == h("6700")
        assert sam.process(h("8084000005")) == h("6700")
        _open(sam)
        sam.process(SAM_DIGEST_CLOSE)
        assert sam.process(h("8082000008CF42745BCF42745B")) == h("6700")

    def test_bad_multiple_structure(self, sam: SoftwareSam) -> None:
        """A Digest Update Multiple payload with a bad structure gives 6A80."""
        _open(sam)
        assert sam.process(h("808C8000040500B201")) == h("6A80")

    def test_malformed_apdu(self, sam: SoftwareSam) -> None:
        """An APDU whose length disagrees with Lc gives 6700."""
        assert sam.process(h("8014000008001122")) == h("6700")


class TestIdentity:
    """The software SAM's ATR and key loading."""

    def test_atr_is_sam_c1_shaped(self) -> None:
        """The ATR parses as a SAM C1 with the distinctive software issuer and serial."""
        sam = SoftwareSam.from_keys(SIM_KEYS, allow_simulation=True)
        identity = parse_sam_atr(sam.power_on())
        assert identity.sam_type is SamType.C1
        assert identity.issuer == 0xF5
        assert identity.serial == h("5AFE0001") == sam.serial
        assert sam.power_on().hex().upper().startswith("3B3F9600805A0080C1F5")

    def test_serial_configurable(self) -> None:
        """The serial number is a constructor parameter."""
        keys = load_keys(SIM_KEYS, allow_simulation=True)
        sam = SoftwareSam(keys, serial=h("5AFE0042"))
        assert parse_sam_atr(sam.power_on()).serial == h("5AFE0042")

    def test_simulation_keys_need_permission(self) -> None:
        """from_keys refuses the simulation key file unless simulation is allowed."""
        with pytest.raises(KeyFileError, match="simulation"):
            SoftwareSam.from_keys(SIM_KEYS)

    def test_repr_has_no_key(self) -> None:
        """The SAM's repr names its serial, never key bytes."""
        text = repr(SoftwareSam.from_keys(SIM_KEYS, allow_simulation=True))
        assert "5AFE0001" in text and "2021222324" not in text
