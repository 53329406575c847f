# SPDX-License-Identifier: Apache-2.0
"""The Calypso Prime Rev3 card emulator: the CSIM1 vector, sessions, tearing, access, files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from calypso.crypto import SessionMac, digest_item
from calypso.emulator.dispatch import ATR, CardEmulator
from calypso.emulator.profile import AccessCondition, CardProfile, load_profile
from readers.apdu import SW, CommandApdu, ResponseApdu
from readers.base import CardRemovedError
from readers.emulated import EmulatedReader, Fault, FaultKind

VECTOR_CARD = Path(__file__).with_name("vector_card.yaml")
FLEET = Path(__file__).parents[2] / "config" / "cards"

SFI_ENV, SFI_EVENTS, SFI_CONTRACTS, SFI_COUNTERS = 0x07, 0x08, 0x09, 0x19
ISSUER, LOAD, DEBIT = 1, 2, 3
TERMINAL_CHALLENGE = bytes.fromhex("C1C2C3C4")
ENV_RECORD = bytes.fromhex("71" + "11" * 28)
EVENT_RECORD = bytes.fromhex("81" + "11" * 28)
NEW_EVENT = bytes.fromhex("82" + "22" * 28)
RATIFICATION = bytes.fromhex("00B2000000")


def h(text: str) -> bytes:
    """Hex with spaces allowed, for readable named parts."""
    return bytes.fromhex(text.replace(" ", ""))


def fixed_rng(n: int) -> bytes:
    """A card random that is the same on every run."""
    return bytes([0x98] * n)


def with_access(profile: CardProfile, sfi: int, **conditions: AccessCondition) -> CardProfile:
    """A copy of the profile where file sfi has some access conditions changed."""
    files = [
        f.model_copy(update={"access": f.access.model_copy(update=conditions)})
        if f.sfi == sfi
        else f
        for f in profile.files
    ]
    return profile.model_copy(update={"files": files})


@pytest.fixture
def profile() -> CardProfile:
    """The CSIM1 vector card profile."""
    return load_profile(VECTOR_CARD)


@pytest.fixture
def card(profile: CardProfile) -> CardEmulator:
    """A powered vector card with a reproducible random."""
    emulator = CardEmulator(profile, fixed_rng)
    emulator.power_on()
    return emulator


class Terminal:
    """The terminal and SAM side in software: mirrors the transcript and computes MACs."""

    def __init__(
        self,
        card: CardEmulator,
        profile: CardProfile,
        transmit: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.profile = profile
        self.transmit = transmit if transmit is not None else card.process
        self.mac: SessionMac | None = None

    def send(self, apdu: bytes | CommandApdu) -> ResponseApdu:
        """Send one APDU, digesting it and its answer when a session is open."""
        raw = bytes(apdu)
        response = self.transmit(raw)
        if self.mac is not None and raw != RATIFICATION:
            self.mac.add(digest_item(raw))
            self.mac.add(response)
        return ResponseApdu.from_bytes(response)

    def open(self, key_index: int = DEBIT, sfi: int = 0, record: int = 0) -> ResponseApdu:
        """Open a regular-mode session; start the terminal's MAC when the card accepts."""
        command = CommandApdu(
            0x00, 0x8A, record * 8 + key_index, sfi * 8 + 1, TERMINAL_CHALLENGE, le=0
        )
        response = ResponseApdu.from_bytes(self.transmit(bytes(command)))
        if response.ok:
            slot = self.profile.keys.slot(key_index)
            self.mac = SessionMac.start(
                slot.card_key(self.profile.serial),
                extended=False,
                kif=response.data[5],
                kvc=response.data[6],
                open_data_out=response.data,
                terminal_challenge=TERMINAL_CHALLENGE,
            )
        return response

    def close(self, *, ratify: bool = True, terminal_mac: bytes | None = None) -> ResponseApdu:
        """Close with the right terminal MAC (or the one given); check the card MAC on success."""
        assert self.mac is not None
        signature = terminal_mac if terminal_mac is not None else self.mac.terminal_mac()
        expected_card_mac = self.mac.card_mac()
        self.mac = None
        command = CommandApdu(0x00, 0x8E, 0x80 if ratify else 0x00, 0x00, signature, le=0)
        response = ResponseApdu.from_bytes(self.transmit(bytes(command)))
        if response.ok:
            assert response.data == expected_card_mac
        return response

    def abort(self) -> ResponseApdu:
        """Abort the session (`00 8E 00 00 00`)."""
        self.mac = None
        return ResponseApdu.from_bytes(self.transmit(h("008E000000")))


def update_record(sfi: int, record: int, data: bytes) -> CommandApdu:
    """Update Record, P2 = sfi*8 + 4 (calypso-protocol 1.5)."""
    return CommandApdu(0x00, 0xDC, record, sfi * 8 + 4, data)


def append_record(sfi: int, data: bytes) -> CommandApdu:
    """Append Record, P2 = sfi*8 (calypso-protocol 1.6)."""
    return CommandApdu(0x00, 0xE2, 0x00, sfi * 8, data)


def decrease(sfi: int, counter: int, value: int) -> CommandApdu:
    """Decrease, case 4 (calypso-protocol 1.7)."""
    return CommandApdu(0x00, 0x30, counter, sfi * 8, value.to_bytes(3, "big"), le=0)


def increase(sfi: int, counter: int, value: int) -> CommandApdu:
    """Increase, case 4 (calypso-protocol 1.7)."""
    return CommandApdu(0x00, 0x32, counter, sfi * 8, value.to_bytes(3, "big"), le=0)


def read_record(sfi: int, record: int, le: int = 0) -> CommandApdu:
    """Read one record, P2 = sfi*8 + 4 (calypso-protocol 1.4)."""
    return CommandApdu(0x00, 0xB2, record, sfi * 8 + 4, le=le)


class TestCsim1Vector:
    """The regular-mode session of csim1-vectors.txt, byte for byte."""

    def test_regular_session_vector(self, card: CardEmulator) -> None:
        """The card answers each APDU of the vector with its bytes and commits the writes."""
        open_out = h("030490 98 00 30 F0 1D") + ENV_RECORD
        assert card.process(h("008A0B3904C1C2C3C400")) == open_out + h("9000")
        assert card.process(h("00B2014400")) == EVENT_RECORD + h("9000")
        assert card.process(h("00E200401D") + NEW_EVENT) == h("9000")
        assert card.process(h("003001C80300000100")) == h("0000639000")
        assert card.process(h("008E8000049F1DEC7B00")) == h("CF42745B9000")
        assert not card.session_open
        assert card.read_record(SFI_EVENTS, 1) == NEW_EVENT
        assert card.read_record(SFI_EVENTS, 2) == EVENT_RECORD
        assert card.counter(SFI_COUNTERS, 1) == 0x63
        assert card.transaction_counter == 0x030490
        assert card.ratified

    def test_vector_card_key_is_diversified_from_master(self, profile: CardProfile) -> None:
        """The debit master 30/F0 and serial 0000000011223344 give the vector's K_card."""
        assert profile.keys.debit.card_key(profile.serial) == h("3C584B366C8FE7BAFFA29862D42411C5")


class TestSelectApplication:
    """Select Application and the FCI."""

    def test_fci_equals_reference_example(self, card: CardEmulator) -> None:
        """The FCI for the test-kit AID, serial and startup info is the reference example."""
        response = card.process(h("00A4040009315449432E4943413100"))
        assert response == h(
            "6F23 8409 315449432E49434131 A516 BF0C13 C708 0000000011223344"
            " 5307 0A3C2005141001 9000"
        )

    def test_partial_aid_matches(self, card: CardEmulator) -> None:
        """A leading part of the DF name (1TIC.) selects the application."""
        assert card.process(h("00A4040005315449432E00"))[-2:] == h("9000")

    def test_unknown_aid(self, card: CardEmulator) -> None:
        """Another AID answers 6A82 with no data."""
        assert card.process(h("00A4040008A000000291FF910100")) == h("6A82")

    def test_invalidated_df(self, profile: CardProfile) -> None:
        """An invalidated DF answers its FCI with 6283 and refuses writes with 6985."""
        card = CardEmulator(profile.model_copy(update={"invalidated": True}), fixed_rng)
        response = ResponseApdu.from_bytes(card.process(h("00A4040009315449432E4943413100")))
        assert response.sw == SW.DF_INVALIDATED
        assert response.data.startswith(h("6F23"))
        terminal = Terminal(card, profile)
        terminal.open(DEBIT)
        assert terminal.send(append_record(SFI_EVENTS, NEW_EVENT)).sw == SW.CONDITIONS_NOT_SATISFIED

    def test_power_on_returns_atr(self, profile: CardProfile) -> None:
        """Power-on gives the contactless ATR of Keyple's stub card."""
        assert CardEmulator(profile).power_on() == ATR == h("3B888001000000009171710098")


class TestReadRecords:
    """Read Records in one-record and multiple mode."""

    def test_one_record(self, card: CardEmulator) -> None:
        """P2 = sfi*8+4 returns the record's 29 bytes."""
        assert card.process(h("00B2013C00")) == ENV_RECORD + h("9000")

    def test_multiple_records_format(self, card: CardEmulator) -> None:
        """P2 = sfi*8+5 returns [rec#][len][data] from P1 to the last record."""
        response = ResponseApdu.from_bytes(card.process(h("00B2014500")))
        zero = bytes(29)
        assert response.data == h("011D") + EVENT_RECORD + h("021D") + zero + h("031D") + zero

    def test_multiple_records_limited_by_le(self, card: CardEmulator) -> None:
        """Le limits multiple mode to the records that fit whole."""
        command = CommandApdu(0x00, 0xB2, 0x01, 0x45, le=62)
        response = ResponseApdu.from_bytes(card.process(bytes(command)))
        assert response.data == h("011D") + EVENT_RECORD + h("021D") + bytes(29)

    def test_unknown_sfi(self, card: CardEmulator) -> None:
        """An SFI absent from the card answers 6A82."""
        assert card.process(bytes(read_record(0x1E, 1))) == h("6A82")

    @pytest.mark.parametrize("record", [0, 4])
    def test_record_out_of_range(self, card: CardEmulator, record: int) -> None:
        """Record 0 or beyond the file answers 6A83."""
        assert card.process(bytes(read_record(SFI_EVENTS, record))) == h("6A83")

    def test_read_needs_session(self, profile: CardProfile) -> None:
        """A file readable in session only refuses a read outside any session with 6982."""
        card = CardEmulator(with_access(profile, SFI_ENV, read=AccessCondition.SESSION3))
        assert card.process(bytes(read_record(SFI_ENV, 1))) == h("6982")

    def test_ratification_command(self, card: CardEmulator) -> None:
        """The ratification command is answered 6B00."""
        assert card.process(RATIFICATION) == h("6B00")


class TestOpenSecureSession:
    """Open Secure Session in Rev3 regular mode."""

    def test_answer_layout_without_read(self, card: CardEmulator) -> None:
        """No read: CTR (after decrement), random, ratified 00, KIF, KVC, Ld 00."""
        assert card.process(h("008A030104C1C2C3C400")) == h("030490 98 00 30 F0 00 9000")
        assert card.session_open

    def test_transaction_counter_decrements(self, card: CardEmulator, profile: CardProfile) -> None:
        """Each Open decrements and persists the counter, even when the session is aborted."""
        terminal = Terminal(card, profile)
        for expected in (0x030490, 0x03048F):
            assert terminal.open().data[:3] == expected.to_bytes(3, "big")
            terminal.abort()
            assert card.transaction_counter == expected

    def test_transaction_counter_exhausted(self, profile: CardProfile) -> None:
        """A card whose counter is 0 answers 6900 and opens nothing."""
        card = CardEmulator(profile.model_copy(update={"transaction_counter": 0}), fixed_rng)
        assert card.process(h("008A030104C1C2C3C400")) == h("6900")
        assert not card.session_open

    def test_last_transaction(self, profile: CardProfile) -> None:
        """The last session reports counter 0, and the next Open answers 6900."""
        card = CardEmulator(profile.model_copy(update={"transaction_counter": 1}), fixed_rng)
        assert card.process(h("008A030104C1C2C3C400"))[:3] == h("000000")
        card.process(h("008E000000"))
        assert card.process(h("008A030104C1C2C3C400")) == h("6900")

    @pytest.mark.parametrize("p1", [0x00, 0x04, 0x0F])
    def test_bad_key_index(self, card: CardEmulator, p1: int) -> None:
        """Key indexes other than 1..3 answer 6B00 without touching the counter."""
        command = CommandApdu(0, 0x8A, p1, 0x01, TERMINAL_CHALLENGE, le=0)
        assert card.process(bytes(command)) == h("6B00")
        assert card.transaction_counter == 0x030491

    def test_extended_mode_refused(self, card: CardEmulator) -> None:
        """The extended-mode Open (P2 = sfi*8+2) answers 6B00 on this regular-mode card."""
        assert card.process(h("008A030209 00 C1C2C3C4C5C6C7C8 00")) == h("6B00")

    def test_open_while_open(self, card: CardEmulator, profile: CardProfile) -> None:
        """A second Open in a session answers 6985 and the first session goes on."""
        terminal = Terminal(card, profile)
        terminal.open()
        assert card.process(h("008A030104C1C2C3C400")) == h("6985")
        assert terminal.close().ok

    def test_read_of_unknown_file(self, card: CardEmulator) -> None:
        """A merged read of an absent SFI answers 6A82 and the counter is kept."""
        assert card.process(h("008A0BF104C1C2C3C400")) == h("6A82")
        assert card.transaction_counter == 0x030491
        assert not card.session_open


class TestCloseSecureSession:
    """Close, abort, MAC verification and atomic commit."""

    def test_writes_visible_in_session_committed_at_close(
        self, card: CardEmulator, profile: CardProfile
    ) -> None:
        """The card reads its own buffered write; EEPROM changes only at a valid Close."""
        terminal = Terminal(card, profile)
        terminal.open(LOAD)
        assert terminal.send(update_record(SFI_CONTRACTS, 2, h("0102"))).ok
        assert terminal.send(read_record(SFI_CONTRACTS, 2)).data[:3] == h("010200")
        assert card.read_record(SFI_CONTRACTS, 2) == bytes(29)
        assert terminal.close().ok
        assert card.read_record(SFI_CONTRACTS, 2) == h("0102") + bytes(27)

    def test_wrong_terminal_mac(self, card: CardEmulator, profile: CardProfile) -> None:
        """A wrong terminal MAC answers 6988, closes the session and commits nothing."""
        before = card.snapshot()
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.send(append_record(SFI_EVENTS, NEW_EVENT))
        terminal.send(decrease(SFI_COUNTERS, 1, 1))
        assert terminal.close(terminal_mac=h("00000000")).sw == SW.INCORRECT_SIGNATURE
        assert not card.session_open
        assert card.snapshot().files == before.files

    def test_wrong_keys_card(self) -> None:
        """A card personalised with unknown keys fails the simulation SAM's MAC with 6988."""
        card = CardEmulator.from_profile(FLEET / "wrong_keys.yaml", fixed_rng)
        sam_view = load_profile(FLEET / "multi_trip.yaml")  # keys the SAM knows
        terminal = Terminal(card, sam_view)
        assert terminal.open().ok
        assert terminal.close().sw == SW.INCORRECT_SIGNATURE

    def test_abort_drops_writes(self, card: CardEmulator, profile: CardProfile) -> None:
        """Abort answers 9000, ends the session and discards its writes."""
        before = card.snapshot()
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.send(append_record(SFI_EVENTS, NEW_EVENT))
        assert terminal.abort().ok
        assert not card.session_open
        assert card.snapshot().files == before.files

    def test_close_without_session(self, card: CardEmulator) -> None:
        """Close or abort with no session answers 6985."""
        assert card.process(h("008E8000041234567800")) == h("6985")
        assert card.process(h("008E000000")) == h("6985")

    def test_select_ends_session(self, card: CardEmulator, profile: CardProfile) -> None:
        """Selecting the application again drops an open session and its writes."""
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.send(append_record(SFI_EVENTS, NEW_EVENT))
        card.process(h("00A4040009315449432E4943413100"))
        assert not card.session_open
        assert card.read_record(SFI_EVENTS, 1) == EVENT_RECORD


class TestTearing:
    """Power lost inside a session leaves the card as before the session."""

    def test_power_off_mid_session(self, card: CardEmulator, profile: CardProfile) -> None:
        """Power off after writes: records and ratification unchanged, only the counter moved."""
        before = card.snapshot()
        terminal = Terminal(card, profile)
        terminal.open(DEBIT, SFI_ENV, 1)
        terminal.send(append_record(SFI_EVENTS, NEW_EVENT))
        terminal.send(decrease(SFI_COUNTERS, 1, 5))
        card.power_off()
        after = card.snapshot()
        assert not card.session_open
        assert after.files == before.files
        assert after.ratified == before.ratified
        assert after.transaction_counter == before.transaction_counter - 1

    def test_card_removed_during_close(self, profile: CardProfile) -> None:
        """A card pulled while answering Close has committed, unratified, as the next Open shows."""
        reader = EmulatedReader()
        card = CardEmulator(profile, fixed_rng)
        reader.inject(Fault(FaultKind.REMOVED_DURING, 3))  # Open, Decrease, then Close
        reader.insert(card)
        connection = reader.connect()
        terminal = Terminal(card, profile, lambda raw: bytes(connection.transmit(raw)))
        terminal.open()
        terminal.send(decrease(SFI_COUNTERS, 1, 1))
        with pytest.raises(CardRemovedError):
            terminal.close(ratify=False)
        assert not reader.present
        assert card.counter(SFI_COUNTERS, 1) == 0x63
        reader.insert(card)
        assert Terminal(card, profile).open().data[4] == 0x01


class TestRatification:
    """Close P1=00 leaves the session unratified until the next command."""

    def test_power_lost_before_ratification(self, card: CardEmulator, profile: CardProfile) -> None:
        """Close P1=00 then power off: data committed, next Open reports not ratified (01)."""
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.send(decrease(SFI_COUNTERS, 1, 1))
        assert terminal.close(ratify=False).ok
        card.power_off()
        card.power_on()
        assert card.counter(SFI_COUNTERS, 1) == 0x63
        assert not card.ratified
        assert terminal.open().data[4] == 0x01

    def test_ratification_command_ratifies(self, card: CardEmulator, profile: CardProfile) -> None:
        """Close P1=00 then the ratification command: the next Open reports ratified (00)."""
        terminal = Terminal(card, profile)
        terminal.open()
        assert terminal.close(ratify=False).ok
        assert card.process(RATIFICATION) == h("6B00")
        card.power_off()
        card.power_on()
        assert card.ratified
        assert terminal.open().data[4] == 0x00

    def test_unratified_then_ratified_session(
        self, card: CardEmulator, profile: CardProfile
    ) -> None:
        """After a report of 01, a session closed with P1=80 makes the card ratified again."""
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.close(ratify=False)
        card.power_off()
        assert terminal.open().data[4] == 0x01
        assert terminal.close(ratify=True).ok
        assert card.ratified

    def test_ratification_command_not_digested(
        self, card: CardEmulator, profile: CardProfile
    ) -> None:
        """The ratification command inside a session stays out of the session MAC."""
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.send(RATIFICATION)
        assert terminal.close().ok


class TestAccessConditions:
    """Access conditions by session key level, and outside sessions."""

    def test_load_file_in_debit_session(self, card: CardEmulator, profile: CardProfile) -> None:
        """Updating a session2 file in a debit session answers 6982."""
        terminal = Terminal(card, profile)
        terminal.open(DEBIT)
        update = update_record(SFI_CONTRACTS, 1, h("01"))
        assert terminal.send(update).sw == SW.SECURITY_NOT_SATISFIED
        assert terminal.send(increase(SFI_COUNTERS, 1, 1)).sw == SW.SECURITY_NOT_SATISFIED

    def test_higher_key_satisfies_lower_condition(
        self, card: CardEmulator, profile: CardProfile
    ) -> None:
        """A load session may decrease (session3) and update contracts (session2)."""
        terminal = Terminal(card, profile)
        terminal.open(LOAD)
        assert terminal.send(decrease(SFI_COUNTERS, 1, 4)).data == h("000060")
        assert terminal.send(update_record(SFI_CONTRACTS, 1, h("01"))).ok
        assert terminal.send(update_record(SFI_ENV, 1, h("01"))).sw == SW.SECURITY_NOT_SATISFIED
        assert terminal.close().ok
        assert card.counter(SFI_COUNTERS, 1) == 0x60

    def test_writes_outside_session_refused(self, card: CardEmulator) -> None:
        """Writes to sessionN files outside a session answer 6982 and change nothing."""
        before = card.snapshot()
        assert card.process(bytes(update_record(SFI_ENV, 1, h("01")))) == h("6982")
        assert card.process(bytes(append_record(SFI_EVENTS, NEW_EVENT))) == h("6982")
        assert card.process(bytes(decrease(SFI_COUNTERS, 1, 1))) == h("6982")
        assert card.snapshot() == before

    def test_never_condition(self, profile: CardProfile) -> None:
        """A 'never' condition answers 6985, even in a session with the issuer key."""
        locked = with_access(profile, SFI_ENV, update=AccessCondition.NEVER)
        card = CardEmulator(locked, fixed_rng)
        terminal = Terminal(card, locked)
        terminal.open(ISSUER)
        assert terminal.send(update_record(SFI_ENV, 1, h("01"))).sw == SW.CONDITIONS_NOT_SATISFIED

    def test_always_write_outside_session(self, profile: CardProfile) -> None:
        """An 'always' write outside a session applies at once."""
        card = CardEmulator(with_access(profile, SFI_CONTRACTS, update=AccessCondition.ALWAYS))
        assert card.process(bytes(update_record(SFI_CONTRACTS, 4, h("AB")))) == h("9000")
        assert card.read_record(SFI_CONTRACTS, 4)[:2] == h("AB00")


class TestModificationBuffer:
    """The session modification buffer counted in bytes (calypso-protocol 2.2)."""

    def test_overflow(self, card: CardEmulator, profile: CardProfile) -> None:
        """430 bytes hold twelve 29-byte updates (35 each) and a decrease (10); more gives 6400."""
        terminal = Terminal(card, profile)
        terminal.open(LOAD)
        for index in range(12):
            record = bytes([index + 1]) * 29
            assert terminal.send(update_record(SFI_CONTRACTS, index % 4 + 1, record)).ok
        assert terminal.send(decrease(SFI_COUNTERS, 1, 1)).ok  # 420 + 10 = 430
        overflow = update_record(SFI_CONTRACTS, 1, h("FF"))
        assert terminal.send(overflow).sw == SW.SESSION_BUFFER_OVERFLOW
        assert terminal.send(decrease(SFI_COUNTERS, 1, 1)).sw == SW.SESSION_BUFFER_OVERFLOW
        assert terminal.close().ok
        assert card.read_record(SFI_CONTRACTS, 1) == bytes([9]) * 29
        assert card.counter(SFI_COUNTERS, 1) == 0x63

    def test_no_buffer_outside_session(self, profile: CardProfile) -> None:
        """Writes outside a session are not counted against the buffer."""
        card = CardEmulator(with_access(profile, SFI_CONTRACTS, update=AccessCondition.ALWAYS))
        for _ in range(20):
            assert card.process(bytes(update_record(SFI_CONTRACTS, 1, bytes(29)))) == h("9000")


class TestCounters:
    """Increase and Decrease."""

    def test_decrease_below_zero(self, card: CardEmulator, profile: CardProfile) -> None:
        """A decrease past 0 answers 6A80 and leaves the counter."""
        terminal = Terminal(card, profile)
        terminal.open(LOAD)
        assert terminal.send(decrease(SFI_COUNTERS, 1, 0x65)).sw == SW.INCORRECT_PARAMETERS_IN_DATA
        assert terminal.send(increase(SFI_COUNTERS, 2, 0xFFFFFF)).data == h("FFFFFF")
        assert terminal.send(increase(SFI_COUNTERS, 2, 1)).sw == SW.INCORRECT_PARAMETERS_IN_DATA
        assert terminal.close().ok
        assert card.counter(SFI_COUNTERS, 1) == 0x64
        assert card.counter(SFI_COUNTERS, 2) == 0xFFFFFF

    def test_wrong_file_and_length(self, card: CardEmulator, profile: CardProfile) -> None:
        """A non-counters file answers 6981; a value other than 3 bytes answers 6700."""
        terminal = Terminal(card, profile)
        terminal.open(LOAD)
        assert terminal.send(decrease(SFI_CONTRACTS, 1, 1)).sw == SW.COMMAND_INCOMPATIBLE_WITH_FILE
        assert terminal.send(h("0030 01C8 02 0001 00")).sw == SW.WRONG_LENGTH
        assert terminal.close().ok


class TestCyclicFile:
    """Append Record on the cyclic event log."""

    def test_append_shifts_records(self, card: CardEmulator, profile: CardProfile) -> None:
        """Each append becomes record 1; the oldest record falls off the end."""
        terminal = Terminal(card, profile)
        terminal.open(DEBIT)
        for marker in (0xA1, 0xA2, 0xA3):
            assert terminal.send(append_record(SFI_EVENTS, bytes([marker]))).ok
        assert terminal.close().ok
        records = [card.read_record(SFI_EVENTS, n)[:2] for n in (1, 2, 3)]
        assert records == [h("A300"), h("A200"), h("A100")]

    def test_update_cyclic_not_first(self, card: CardEmulator, profile: CardProfile) -> None:
        """Update Record of a cyclic file other than record 1 answers 6981."""
        terminal = Terminal(card, profile)
        terminal.open(DEBIT)
        assert terminal.send(update_record(SFI_EVENTS, 2, h("01"))).sw == (
            SW.COMMAND_INCOMPATIBLE_WITH_FILE
        )
        assert terminal.send(update_record(SFI_EVENTS, 1, h("01"))).ok

    def test_append_to_linear(self, card: CardEmulator, profile: CardProfile) -> None:
        """Append Record to a linear file answers 6981."""
        terminal = Terminal(card, profile)
        terminal.open(ISSUER)
        assert terminal.send(append_record(SFI_CONTRACTS, h("01"))).sw == (
            SW.COMMAND_INCOMPATIBLE_WITH_FILE
        )


class TestOtherCommands:
    """Class and instruction checks, Get Challenge."""

    def test_class_not_supported(self, profile: CardProfile) -> None:
        """A class the card does not answer (80h; 94h when restricted to 00h) answers 6E00."""
        card = CardEmulator(profile.model_copy(update={"card_classes": [0x00]}), fixed_rng)
        card.power_on()
        assert card.process(h("80B2013C00")) == h("6E00")
        assert card.process(h("94B2013C00")) == h("6E00")

    def test_instruction_not_supported(self, card: CardEmulator) -> None:
        """An unknown instruction (Generate Asymmetric Key Pair on a CSIM1 card) answers 6D00."""
        assert card.process(h("0046000000")) == h("6D00")

    def test_get_challenge(self, card: CardEmulator) -> None:
        """Get Challenge returns Le bytes from the card's random source."""
        assert card.process(h("0084000008")) == fixed_rng(8) + h("9000")


class TestImage:
    """Saving and reloading the EEPROM image."""

    def test_save_and_reload(self, tmp_path: Path, profile: CardProfile) -> None:
        """A reloaded image equals the saved one."""
        card = CardEmulator(profile, fixed_rng)
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.send(decrease(SFI_COUNTERS, 1, 1))
        terminal.close(ratify=False)
        card.save(tmp_path / "card.json")
        again = CardEmulator.load_image(VECTOR_CARD, tmp_path / "card.json")
        assert again.snapshot() == card.snapshot()

    def test_image_path_persists_every_change(self, tmp_path: Path, profile: CardProfile) -> None:
        """With image_path, a committed session survives a new emulator instance."""
        image = tmp_path / "card.json"
        card = CardEmulator(profile, fixed_rng, image_path=image)
        terminal = Terminal(card, profile)
        terminal.open()
        terminal.send(decrease(SFI_COUNTERS, 1, 2))
        terminal.close()
        again = CardEmulator(profile, image_path=image)
        assert again.counter(SFI_COUNTERS, 1) == 0x62
        assert again.transaction_counter == 0x030490
        assert not list(tmp_path.glob(".*.tmp"))
