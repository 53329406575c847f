# SPDX-License-Identifier: Apache-2.0
"""The card emulator in PKI mode: certificates, Open, the signed stream, Close, tearing."""

from __future__ import annotations

from pathlib import Path

import pytest
from calypso_terminal import h, scripted_rng, vector_profile
from pki_material import pki, sim_policy

from calypso.commands.pki import (
    Certificate,
    close_pki_secure_session,
    get_data_certificate,
    join_certificate,
    open_pki_secure_session,
    parse_close_pki_secure_session,
    parse_get_data_certificate,
    parse_open_pki_secure_session,
)
from calypso.commands.select import select_application
from calypso.emulator.dispatch import CardEmulator, PowerLostError
from calypso.emulator.profile import CardProfile
from calypso.pki.chain import verify_chain
from calypso.pki.session import (
    CardPublicKey,
    SignedStream,
    card_private_key,
    verify_session_signature,
)
from calypso.pki.testpki import issue_card, private_scalar
from readers.apdu import CommandApdu, ResponseApdu

VECTOR_SCALAR = h("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
VECTOR_AID = h("A000000291FF9101")
VECTOR_SERIAL = h("0000000011223344")
VECTOR_SIGNATURE = h(
    "C6AF08C732534655F72A78469FB31390A036DCD73AF3D47BD4C5553066CA461F"
    "DFB79711433595C98E675FDA074DFA4554B3C426B2BF01FAF835097ABCD427E9"
)
PKI_STARTUP = "0A3C3005141001"  # application type 30h: Rev3 with the PKI bit 10h
SMALL_FILE = {
    "name": "small",
    "sfi": 0x01,
    "lid": "2F01",
    "type": "linear",
    "record_size": 1,
    "records": 3,
    "access": {"read": "always", "update": "session3"},
    "content": ["11", "22", "33"],
}


def pki_section(scalar: bytes = VECTOR_SCALAR, serial: bytes = VECTOR_SERIAL) -> dict[str, str]:
    """Genuine certificates of the session's test PKI for this key and serial."""
    material = pki()
    public = CardPublicKey.of(card_private_key(scalar))
    card = issue_card(material.ca, aid=VECTOR_AID, serial=serial, public_key=public)
    return {
        "private_key": scalar.hex(),
        "card_certificate": card.hex(),
        "ca_certificate": material.ca_certificate.hex(),
    }


def pki_profile(**update: object) -> CardProfile:
    """The PKI vector card: Keyple's generic AID, the vector serial, a 1-byte-record file."""
    fields: dict[str, object] = {
        "aid": VECTOR_AID.hex(),
        "startup_info": PKI_STARTUP,
        "files": [SMALL_FILE],
        "pki": pki_section(),
    }
    fields.update(update)
    return vector_profile(**fields)


def pki_card(*randoms: str, image_path: Path | None = None) -> CardEmulator:
    """A PKI vector card whose randoms are scripted (the vector's RND first)."""
    return CardEmulator(pki_profile(), scripted_rng(*randoms), image_path=image_path)


class Terminal:
    """A PKI terminal: sends APDUs and keeps the signed stream as the validator will."""

    def __init__(self, card: CardEmulator) -> None:
        self.card = card
        self.stream: SignedStream | None = None
        self.exchanges: list[tuple[bytes, bytes]] = []

    def send(self, command: CommandApdu | bytes) -> ResponseApdu:
        """One exchange; inside the session it joins the stream."""
        raw = bytes(command)
        response = ResponseApdu.from_bytes(self.card.process(raw))
        if self.stream is not None:
            self.stream.add_exchange(raw, bytes(response))
            self.exchanges.append((raw, bytes(response)))
        return response

    def open(self, challenge: bytes = bytes(range(8)), **read: int) -> ResponseApdu:
        """Open a PKI session; the stream starts with it."""
        command = open_pki_secure_session(challenge, **read)
        self.stream = SignedStream()
        return self.send(command)

    def close(self) -> bytes:
        """Close: the signature (the Close is not in the stream)."""
        stream, self.stream = self.stream, None
        signature = parse_close_pki_secure_session(self.send(close_pki_secure_session()))
        assert stream is not None
        self.stream = stream
        return signature


class TestPkiVector:
    """reference/csim1-vectors.txt, "PKI mode session signature", on the card side."""

    def test_card_answers(self) -> None:
        """Open, Read Record and Close answer the vector's bytes, the signature included."""
        card = pki_card("7A1B2C3D4E")
        open_answer = card.process(h("008A000309000011223344556677 00"))
        assert open_answer == h(
            "08 A000000291FF9101 0000000011223344 00 0304907A1B2C3D4E 00 0000 00 9000"
        )
        assert card.process(h("00B2010C01")) == h("119000")
        assert card.process(h("008E000000")) == VECTOR_SIGNATURE + h("9000")
        assert not card.session_open and card.transaction_counter == 0x030490


class TestCertificates:
    """Get Data DF4C/DF4D, DF4A/DF4B."""

    def test_both_certificates_in_two_parts(self) -> None:
        """Each certificate comes back whole: header + payload-5 bytes, then the rest."""
        card = pki_card()
        profile = card.profile
        assert profile.pki is not None
        for certificate, expected in (
            (Certificate.CARD, profile.pki.card_certificate),
            (Certificate.CA, profile.pki.ca_certificate),
        ):
            first_cmd = get_data_certificate(certificate)
            first_raw = card.process(bytes(first_cmd))
            assert len(first_raw) == card.payload_capacity + 2  # as much as the card sends
            first = parse_get_data_certificate(ResponseApdu.from_bytes(first_raw), first_cmd)
            second_cmd = get_data_certificate(certificate, second_part=True)
            second_raw = ResponseApdu.from_bytes(card.process(bytes(second_cmd)))
            second = parse_get_data_certificate(second_raw, second_cmd)
            assert join_certificate(first, second) == expected

    def test_chain_from_the_card(self) -> None:
        """The certificates the card gives verify up to the test root, for the card's serial."""
        card = pki_card()
        certificates = {}
        for certificate in Certificate:
            parts = []
            for second in (False, True):
                command = get_data_certificate(certificate, second_part=second)
                answer = ResponseApdu.from_bytes(card.process(bytes(command)))
                parts.append(parse_get_data_certificate(answer, command))
            certificates[certificate] = join_certificate(*parts)
        verified = verify_chain(
            certificates[Certificate.CARD],
            [certificates[Certificate.CA]],
            [pki().root.as_root()],
            sim_policy(),
            serial=VECTOR_SERIAL,
            aid=VECTOR_AID,
        )
        assert verified.public_key == CardPublicKey.of(card_private_key(VECTOR_SCALAR))

    def test_refused_inside_a_session(self) -> None:
        """Get Data of a certificate inside a session: 6985 (calypso-protocol 1.11)."""
        terminal = Terminal(pki_card())
        terminal.open()
        assert terminal.send(get_data_certificate(Certificate.CARD)).sw == 0x6985

    def test_symmetric_card_has_none(self) -> None:
        """A card without a pki section answers 6A88 (data object not found)."""
        card = CardEmulator(vector_profile())
        assert card.process(bytes(get_data_certificate(Certificate.CARD))) == h("6A88")


class TestPkiSession:
    """Open in PKI mode, writes in the session, Close signed over the stream."""

    def test_signed_session_with_writes(self) -> None:
        """Read in Open, Update, Read: the signature verifies over the terminal's stream."""
        card = pki_card()
        terminal = Terminal(card)
        opened = parse_open_pki_secure_session(terminal.open(sfi=0x01, record=2))
        assert opened.record_data == h("22") and opened.serial == VECTOR_SERIAL
        assert terminal.send(h("00DC010C01 44")).sw == 0x9000
        assert terminal.send(h("00B2010C01")).data == h("44")
        signature = terminal.close()
        public = CardPublicKey.of(card_private_key(VECTOR_SCALAR))
        assert terminal.stream is not None
        assert verify_session_signature(public, terminal.stream, signature)
        assert card.read_record(0x01, 1) == h("44")

    def test_signature_covers_every_answer(self) -> None:
        """A terminal that saw one answer differently cannot verify the signature."""
        card = pki_card()
        terminal = Terminal(card)
        terminal.open()
        terminal.send(h("00B2010C01"))
        signature = terminal.close()
        (open_cmd, open_answer), (read_cmd, _) = terminal.exchanges
        lied = SignedStream.of([(open_cmd, open_answer), (read_cmd, h("12 9000"))])
        public = CardPublicKey.of(card_private_key(VECTOR_SCALAR))
        assert not verify_session_signature(public, lied, signature)

    def test_ratification(self) -> None:
        """Close P1=00: not ratified until the next command; the next Open says so if torn."""
        card = pki_card()
        terminal = Terminal(card)
        terminal.open()
        terminal.close()
        card.power_off()
        card.power_on()
        reopened = parse_open_pki_secure_session(Terminal(card).open())
        assert not reopened.ratified and reopened.flags == 0x01

    def test_ratified_by_the_next_command(self) -> None:
        """Any command after the Close ratifies: the next Open reports ratified."""
        card = pki_card()
        terminal = Terminal(card)
        terminal.open()
        terminal.close()
        card.process(h("00B2000000"))  # the ratification command
        assert card.ratified

    def test_reselect_cancels(self) -> None:
        """Selecting the application again drops the session and its writes (no PKI abort)."""
        card = pki_card()
        terminal = Terminal(card)
        terminal.open()
        terminal.send(h("00DC010C01 44"))
        card.process(bytes(select_application(VECTOR_AID)))
        assert not card.session_open and card.read_record(0x01, 1) == h("11")

    def test_stored_value_refused(self) -> None:
        """SV Get in a PKI session: 6985 (no stored value in PKI mode)."""
        terminal = Terminal(pki_card())
        terminal.open()
        assert terminal.send(h("007C00091E")).sw == 0x6985

    def test_manage_session_refused(self) -> None:
        """Manage Secure Session has no place in a PKI session: 6985 or 6D00, never 9000."""
        terminal = Terminal(pki_card())
        terminal.open()
        assert terminal.send(h("0082000200")).sw in (0x6985, 0x6D00)

    @pytest.mark.parametrize(
        ("apdu", "sw"),
        [
            ("008A010309 00 0011223344556677 00", 0x6B00),  # key index bits in P1
            ("008A000305 00 00112233 00", 0x6700),  # 4-byte challenge
            ("008A000309 01 0011223344556677 00", 0x6700),  # data not starting with 00
            ("008A480B09 00 0011223344556677 00", 0x6A83),  # record 9 of a 3-record file
        ],
    )
    def test_malformed_open(self, apdu: str, sw: int) -> None:
        """A malformed PKI Open is refused with the Open's status words; no session opens."""
        card = pki_card()
        answer = ResponseApdu.from_bytes(card.process(h(apdu)))
        assert answer.sw == sw and not card.session_open

    def test_symmetric_card_refuses_pki_mode(self) -> None:
        """Open with P2 low bits 3 on a card without PKI: 6B00."""
        card = CardEmulator(vector_profile())
        assert card.process(bytes(open_pki_secure_session(bytes(8)))) == h("6B00")

    def test_counter_exhausted(self) -> None:
        """Transaction counter 0: 6900, no session."""
        card = CardEmulator(pki_profile(transaction_counter=0))
        assert card.process(bytes(open_pki_secure_session(bytes(8)))) == h("6900")


class TestPkiTearing:
    """Power lost at any internal write of the Close: all or nothing, as in symmetric mode."""

    def test_every_cut_point(self, tmp_path: Path) -> None:
        """Cut before each write of the commit: the card is as before, or as after the Close."""
        reference = pki_card()
        terminal = Terminal(reference)
        terminal.open()
        terminal.send(h("00DC010C01 44"))
        terminal.send(h("00DC020C01 55"))
        before = reference.nv_writes
        terminal.close()
        writes = reference.nv_writes - before
        assert writes > 3
        outcomes = set()
        for cut in range(1, writes + 1):
            card = pki_card(image_path=tmp_path / f"cut{cut}.json")
            terminal = Terminal(card)
            terminal.open()
            terminal.send(h("00DC010C01 44"))
            terminal.send(h("00DC020C01 55"))
            card.power_fail_at(cut)
            with pytest.raises(PowerLostError):
                card.process(bytes(close_pki_secure_session()))
            reloaded = CardEmulator(card.profile, image_path=tmp_path / f"cut{cut}.json")
            reloaded.power_on()
            state = (reloaded.read_record(0x01, 1), reloaded.read_record(0x01, 2))
            assert state in ((h("11"), h("22")), (h("44"), h("55"))), cut
            outcomes.add(state)
        assert outcomes == {(h("11"), h("22")), (h("44"), h("55"))}


class TestPkiProfile:
    """The profile's pki section is checked when loaded."""

    def test_needs_the_pki_bit(self) -> None:
        """A pki section on a card whose application type lacks bit 10h: refused."""
        with pytest.raises(ValueError, match="PKI bit"):
            pki_profile(startup_info="0A3C2005141001")

    def test_certificate_sizes(self) -> None:
        """A truncated card certificate in the profile: refused with the field's name."""
        section = pki_section()
        section["card_certificate"] = section["card_certificate"][:-2]
        with pytest.raises(ValueError, match="card_certificate is 316 bytes"):
            pki_profile(pki=section)

    def test_key_not_printed(self) -> None:
        """The card's private key never shows in the profile's repr or a validation error."""
        profile = pki_profile()
        assert VECTOR_SCALAR.hex() not in repr(profile).lower()
        section = pki_section()
        section["private_key"] = "00" * 32
        try:
            pki_profile(pki=section)
        except ValueError as exc:
            assert "00" * 32 not in str(exc)
        else:
            raise AssertionError("a zero private key was accepted")

    def test_private_scalar_round_trip(self) -> None:
        """The stored scalar gives back the same key."""
        key = card_private_key(VECTOR_SCALAR)
        assert private_scalar(key) == VECTOR_SCALAR
