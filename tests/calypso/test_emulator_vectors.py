# SPDX-License-Identifier: Apache-2.0
"""The card side of csim1-vectors.txt: extended session, PIN, Change Key and SV debit."""

from __future__ import annotations

from calypso_terminal import h, scripted_rng, vector_profile

from calypso.crypto import diversify
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import PinProfile, SvProfile

EXTENDED_FILES = [
    {
        "name": "small",
        "sfi": 0x01,
        "lid": "2F01",
        "type": "linear",
        "record_size": 1,
        "records": 3,
        "access": {"read": "always", "update": "session2"},
        "content": ["11", "22", "33"],
    }
]


class TestExtendedSessionVector:
    """Extended session with early mutual authentication and encryption, load key 27/F0."""

    def test_card_answers(self) -> None:
        """Each card answer equals the vector's, ending with the card MAC C7374159FB185591."""
        profile = vector_profile(startup_info="0A3C2805141001", files=EXTENDED_FILES)
        card = CardEmulator(profile, scripted_rng("7A1B2C3D4E"))
        assert card.process(h("008A02020900C1C2C3C4C5C6C7C800")) == h(
            "0304907A1B2C3D4E0227F000 9000"
        )
        assert card.process(h("00B2010C01")) == h("119000")
        assert card.process(h("008200030871D97DC817FD9B4900")) == h("8D6235A8D2E8035E9000")
        assert card.process(h("00DC010C0110")) == h("9000")  # AA, ciphered with item 3
        assert card.process(h("00B2030C01")) == h("3D9000")  # 33, ciphered with item 6
        assert card.process(h("008E80000892F74CD31551C0DE00")) == h("C7374159FB185591 9000")
        assert card.read_record(0x01, 1) == h("AA")
        assert card.ratified

    def test_wrong_authentication_aborts(self) -> None:
        """A wrong terminal MAC in Manage Secure Session answers 6988 and ends the session."""
        profile = vector_profile(startup_info="0A3C2805141001", files=EXTENDED_FILES)
        card = CardEmulator(profile, scripted_rng("7A1B2C3D4E"))
        card.process(h("008A02020900C1C2C3C4C5C6C7C800"))
        assert card.process(h("00820003080000000000000000 00")) == h("6988")
        assert not card.session_open


class TestPinVector:
    """Ciphered Verify PIN and Change PIN, ciphering key 30/F0, CC8 C1..C8."""

    def test_verify_and_change(self) -> None:
        """The vector's blocks are accepted; the new PIN 4567 then verifies in plain."""
        pin = PinProfile.model_validate({"value": "31323334"})
        card = CardEmulator(
            vector_profile(startup_info="0A3C2105141001", pin=pin),
            scripted_rng("C1C2C3C4C5C6C7C8"),
        )
        assert card.process(h("0084000008")) == h("C1C2C3C4C5C6C7C8 9000")
        assert card.process(h("0020000008955A7D951FDD675C")) == h("9000")
        assert card.process(h("00D800FF107619A9406D3D915AADB6C21890ECFF4D")) == h("9000")
        assert card.process(h("002000000434353637")) == h("9000")
        assert card.process(h("002000000431323334")) == h("63C2")


class TestChangeKeyVector:
    """Change Key: load key (index 2) replaced by 27/F1 under issuer key 21/F0."""

    def test_change_key(self) -> None:
        """The 32-byte blob unwraps and slot 2 becomes 27/F1 with the vector's card key."""
        card = CardEmulator(vector_profile(), scripted_rng("1122334455667788"))
        assert card.process(h("0084000008")) == h("1122334455667788 9000")
        blob = h("2AAD426C5FA5EA0534DAAA6BF7E8F1CD0156D7783C7F87376EF5127F8C6EF1CA")
        assert card.process(h("00D8000220") + blob) == h("9000")
        kif, kvc, key = card.key_slot(2)
        assert (kif, kvc) == (0x27, 0xF1)
        assert key == h("0BB7CECEF762C122B5D1BA50FDC6846C")
        master = h("303132333435363738393A3B3C3D3E3F")
        assert key == diversify(master, 0x27, 0xF1, card.serial)

    def test_replayed_blob_refused(self) -> None:
        """The same blob under a new card challenge does not unwrap: 6988."""
        card = CardEmulator(vector_profile(), scripted_rng("0000000000000000"))
        card.process(h("0084000008"))
        blob = h("2AAD426C5FA5EA0534DAAA6BF7E8F1CD0156D7783C7F87376EF5127F8C6EF1CA")
        assert card.process(h("00D8000220") + blob) == h("6988")


class TestSvDebitVector:
    """SV Debit of 10 units, regular mode, outside a session, debit key 30/F0."""

    def test_sv_get_and_debit(self) -> None:
        """SV Get answers the vector's 30 bytes; the debit answers signature lo 6C6852."""
        sv = SvProfile.model_validate(
            {
                "balance": 1000,
                "transaction_number": 5,
                "signature_lo": "A54BC9",
                "debit_log": "FFF612340800F01234567800000F0003F20004",
            }
        )
        card = CardEmulator(
            vector_profile(startup_info="0A3C2205141001", sv=sv), scripted_rng("7DFA")
        )
        assert card.process(h("007C00091E")) == h(
            "F00005A54BC97DFA0003E8FFF612340800F01234567800000F0003F20004 9000"
        )
        debit = h("00BAA1B214C3FFF612340900F0123456780000106F851A6BA103")
        assert card.process(debit) == h("6C6852 9000")
        assert card.sv_balance == 990
        assert card.read_record(0x15, 1)[:19] == h("FFF612340900F0123456780000100003DE0005")
        assert card.read_record(0x15, 2)[:19] == h("FFF612340800F01234567800000F0003F20004")

    def test_debit_without_sv_get(self) -> None:
        """An SV Debit that does not directly follow an SV Get answers 6985."""
        card = CardEmulator(vector_profile(startup_info="0A3C2205141001", sv=SvProfile()))
        debit = h("00BAA1B214C3FFF612340900F0123456780000106F851A6BA103")
        assert card.process(debit) == h("6985")
