# SPDX-License-Identifier: Apache-2.0
"""A Calypso card in software (CSIM1 keys), as an ApduHandler: Prime Rev1, Rev2.4, Rev3
(regular and extended mode, PKI mode), Light or Basic, as its profile says.

Section numbers refer to ``reference/calypso-protocol.md``. The commands live in
``session`` (Open, Close, Manage Secure Session), ``records`` (records,
binary, counters, multiple/search), ``pin`` (Get Challenge, PIN, Change Key) and
``sv`` (stored value), ``pki`` (PKI mode); this module dispatches, handles the application (Select
Application/File, Get Data, Invalidate/Rehabilitate), the session transcript and encryption.

Card semantics modelled:

* Writes inside a secure session are buffered; the card's own reads see them; a Close with a
  good terminal MAC commits them atomically (``nv``); an abort, a bad MAC or a power
  loss drops them (2.7).
* The transaction counter is decremented and persisted by each Open Secure Session (1.1).
* A Close with P1=00 leaves the card "not ratified" until it receives any further command; a
  power loss before that is reported by the next Open (1.3, 2.6).
* ``power_fail_at(n)`` cuts the power before the n-th internal write from now (tearing).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from calypso.commands import sv_card_class
from calypso.commands.files import GetDataTag
from calypso.constants import CardClass, ProductType
from calypso.crypto import ctr_transform, digest_item
from calypso.emulator.files import (
    CELL_DF,
    CELL_RATIFIED,
    CELL_SV,
    CELL_TC,
    EF_TYPE_CODES,
    CardImage,
    ElementaryFile,
    counter_value,
    record_cell,
)
from calypso.emulator.nv import PowerLostError
from calypso.emulator.pin import change_pin_or_key, get_challenge, verify_pin
from calypso.emulator.pki import CERTIFICATE_TAGS, get_certificate
from calypso.emulator.profile import AccessCondition, CardProfile, load_profile
from calypso.emulator.records import (
    append_record,
    increase_or_decrease,
    increase_or_decrease_multiple,
    read_binary,
    read_record_multiple,
    read_records,
    search_record_multiple,
    update_or_write_binary,
    update_or_write_record,
)
from calypso.emulator.select import FileSelector, tlv
from calypso.emulator.session import close_session, manage_session, open_session
from calypso.emulator.state import CardCore, Rng, StatusError
from calypso.emulator.sv import sv_get, sv_operation
from readers.apdu import SW, CommandApdu, ResponseApdu

__all__ = ["ATR", "CardEmulator", "PowerLostError", "Rng", "bprime_atr"]

# Keyple's stub card power-on data (reference/keyple-stub-trace.md): a PC/SC contactless ATR.
ATR = bytes.fromhex("3B888001000000009171710098")
PAYLOAD_CAPACITY = 250  # default payload of a Rev3 card (section 0)

INS_SELECT = 0xA4
INS_OPEN_SESSION = 0x8A
INS_CLOSE_SESSION = 0x8E
INS_MANAGE_SESSION = 0x82
INS_GET_RESPONSE = 0xC0
SV_INS = (0x7C, 0xB8, 0xBA, 0xBC)
NOT_DIGESTED = (INS_OPEN_SESSION, INS_CLOSE_SESSION, INS_MANAGE_SESSION)
ACCESS_INVALIDATE = AccessCondition.SESSION3  # test-kit DF: Invalidate in session 3
ACCESS_REHABILITATE = AccessCondition.SESSION1  # ... Rehabilitate in session 1 (data model 1.3)


def bprime_atr(profile: CardProfile) -> bytes:
    """A Rev1 card's 20-byte ATR: startup info 1..6 at bytes 6..11, serial 4..7 at 12..15."""
    return (
        bytes.fromhex("3B6F0000805A")
        + profile.startup_info[1:7]
        + profile.serial[4:8]
        + bytes.fromhex("82900000")
    )


def _is_ratification(apdu: bytes) -> bool:
    """`CLA B2 00 00 00`: a Read Record of record 0 (section 1.3)."""
    return len(apdu) == 5 and apdu[1:] == b"\xb2\x00\x00\x00"


class CardEmulator(CardCore):
    """A Calypso card answering APDUs as the product type of its profile does."""

    def __init__(
        self, profile: CardProfile, rng: Rng | None = None, *, image_path: Path | str | None = None
    ) -> None:
        super().__init__(profile, rng, image_path=image_path)
        self.selector = FileSelector(self)  # the MF and its EFs (emulator_select)
        self._handlers: dict[int, Callable[[CommandApdu], ResponseApdu]] = {
            INS_SELECT: self._select,
            0xB2: lambda c: read_records(self, c),
            0xDC: lambda c: update_or_write_record(self, c),
            0xD2: lambda c: update_or_write_record(self, c),
            0xE2: lambda c: append_record(self, c),
            0x32: lambda c: increase_or_decrease(self, c),
            0x30: lambda c: increase_or_decrease(self, c),
            0x3A: lambda c: increase_or_decrease_multiple(self, c),
            0x38: lambda c: increase_or_decrease_multiple(self, c),
            0xB3: lambda c: read_record_multiple(self, c),
            0xA2: lambda c: search_record_multiple(self, c),
            0xB0: lambda c: read_binary(self, c),
            0xD6: lambda c: update_or_write_binary(self, c),
            0xD0: lambda c: update_or_write_binary(self, c),
            INS_OPEN_SESSION: lambda c: open_session(self, c),
            INS_CLOSE_SESSION: lambda c: close_session(self, c),
            INS_MANAGE_SESSION: lambda c: manage_session(self, c),
            0x84: lambda c: get_challenge(self, c),
            0x20: lambda c: verify_pin(self, c),
            0xD8: lambda c: change_pin_or_key(self, c),
            0x7C: lambda c: sv_get(self, c),
            0xCA: self._get_data,
            0x04: self._invalidate_or_rehabilitate,
            0x44: self._invalidate_or_rehabilitate,
            INS_GET_RESPONSE: self._get_response,
        }

    def __repr__(self) -> str:
        return f"CardEmulator(serial={self.serial.hex().upper()}, product={self.product.name})"

    @classmethod
    def from_profile(
        cls, path: Path | str, rng: Rng | None = None, *, image_path: Path | str | None = None
    ) -> CardEmulator:
        """Build a card from a YAML profile (ProfileError when invalid).

        With image_path, the EEPROM image is loaded from that file when it exists (recovering
        an interrupted commit), and every internal write is saved to it atomically.
        """
        return cls(load_profile(path), rng, image_path=image_path)

    @classmethod
    def load_image(
        cls, profile_path: Path | str, image_path: Path | str, rng: Rng | None = None
    ) -> CardEmulator:
        """Build a card from its profile and a saved image, and keep saving to that image."""
        if not Path(image_path).exists():
            raise FileNotFoundError(f"no card image at {image_path}")
        return cls.from_profile(profile_path, rng, image_path=image_path)

    # --- ApduHandler ---------------------------------------------------------------------------

    def power_on(self) -> bytes:
        """Power up (a reset: volatile state lost, interrupted commit recovered); the ATR."""
        self.lose_volatile_state()
        self._recover()
        if self.product is ProductType.PRIME_REVISION_1:
            return bprime_atr(self.profile)
        return ATR

    def power_off(self) -> None:
        """Cut the power: an open session and its buffered writes are lost (tearing)."""
        self.lose_volatile_state()

    def power_fail_at(self, n: int | None) -> None:
        """Lose power just before the n-th internal EEPROM write from now; None disarms."""
        self.nv.power_fail_at(n)

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with data and SW; feeds the session MAC when one is open.

        Raises:
            PowerLostError: an injected power loss struck (the command gets no answer).
        """
        try:
            return self._process(apdu)
        except PowerLostError:
            self.lose_volatile_state()
            self.needs_recovery = True
            raise

    def _process(self, apdu: bytes) -> bytes:
        self._recover()
        if self.ratification_pending:
            # Any command after a Close with P1=00 ratifies the session (sections 1.3, 2.6).
            self.ratification_pending = False
            self.nv.commit({CELL_RATIFIED: b"\x01"})
        session = self.session
        digested = (
            session is not None
            and len(apdu) >= 4
            and apdu[1] not in NOT_DIGESTED
            and not _is_ratification(apdu)
        )
        mac = session.mac if session is not None else None
        plain = apdu
        if mac is not None and session is not None and digested and session.encrypting:
            if len(apdu) > 5:
                # CSIM1 3.5: the Lc data field is ciphered with the item index of the command.
                end = 5 + apdu[4]
                body = ctr_transform(mac.sk_enc, mac.items, apdu[5:end])
                plain = apdu[:5] + body + apdu[end:]
        raw = bytes(self._respond(plain))
        if session is None or not digested or self.session is not session:
            return raw
        item = digest_item(plain)
        if not 1 <= len(item) <= 255:
            return raw
        if session.stream is not None:
            if len(raw) <= 255:
                session.stream.add_exchange(plain, raw)  # PKI: what the Close will sign
        elif mac is not None:
            mac.add(item)
            index = mac.items
            mac.add(raw)
            if session.encrypting and len(raw) > 2:
                raw = ctr_transform(mac.sk_enc, index, raw[:-2]) + raw[-2:]
        return raw

    def _recover(self) -> None:
        if self.needs_recovery:
            self.needs_recovery = False
            self.nv.recover()

    # --- inspection (committed state) -----------------------------------------------------------

    @property
    def serial(self) -> bytes:
        """The 8-byte application serial number."""
        return self.profile.serial

    @property
    def transaction_counter(self) -> int:
        """The transaction counter (decremented by each Open Secure Session)."""
        return int.from_bytes(self.nv.cells[CELL_TC], "big")

    @property
    def ratified(self) -> bool:
        """Whether the last closed session is ratified (what the next Open will report)."""
        return self.nv.cells[CELL_RATIFIED] == b"\x01"

    @property
    def session_open(self) -> bool:
        """Whether a secure session is in progress."""
        return self.session is not None

    @property
    def nv_writes(self) -> int:
        """Internal EEPROM writes so far (what ``power_fail_at`` counts)."""
        return self.nv.writes

    @property
    def sv_balance(self) -> int | None:
        """Committed stored-value balance, or None without the SV feature."""
        raw = self.nv.cells.get(CELL_SV)
        return int.from_bytes(raw[0:3], "big", signed=True) if raw else None

    def read_record(self, sfi: int, record: int) -> bytes:
        """Committed content of one record (record numbers from 1)."""
        return self.nv.cells[record_cell(sfi, record)]

    def counter(self, sfi: int, number: int) -> int:
        """Committed value of counter n of a counters file."""
        return counter_value(self.nv.cells[record_cell(sfi, 1)], number)

    def snapshot(self) -> CardImage:
        """The whole committed (EEPROM) image."""
        files = {
            ef.sfi: tuple(
                self.nv.cells[record_cell(ef.sfi, n)] for n in range(1, ef.record_count + 1)
            )
            for ef in self.files.all()
        }
        return CardImage(files, self.transaction_counter, self.ratified, dict(self.nv.cells))

    def restore(self, image: CardImage) -> None:
        """Replace the committed image (the session, if any, is dropped)."""
        self.lose_volatile_state()
        cells = dict(image.cells) or dict(self.nv.cells)
        for sfi, records in image.files.items():
            for number, record in enumerate(records, start=1):
                cells[record_cell(sfi, number)] = record
        cells[CELL_TC] = image.transaction_counter.to_bytes(3, "big")
        cells[CELL_RATIFIED] = b"\x01" if image.ratified else b"\x00"
        self.nv.cells = cells
        self.nv.journal.clear()
        self.nv.commit_flag = False
        if self.image_path is not None:
            self.nv.save(self.image_path)

    def save(self, path: Path | str) -> None:
        """Write the committed image to a file atomically (tmp file, fsync, rename)."""
        self.nv.save(Path(path))

    # --- the file tree: the DF's EFs (CardCore) and the MF's (emulator_select) -------------------

    def file(self, sfi: int) -> ElementaryFile:
        """Resolve an SFI (0 = current EF): an MF-level EF when the MF is current, else the DF's."""
        ef = self.selector.resolve(sfi)
        return ef if ef is not None else super().file(sfi)

    def records(self, ef: ElementaryFile) -> list[bytes]:
        """The records of an EF as the card sees them now (MF-level EFs never change)."""
        if self.selector.is_mf_file(ef):
            return ef.profile.initial_records()
        return super().records(ef)

    def lose_volatile_state(self) -> None:
        """Reset, deselection or power loss: also back to the application DF."""
        super().lose_volatile_state()
        selector = getattr(self, "selector", None)  # None while CardCore initialises
        if selector is not None:
            selector.reset()

    # --- dispatch -------------------------------------------------------------------------------

    def _respond(self, apdu: bytes) -> ResponseApdu:
        try:
            command = CommandApdu.from_bytes(apdu)
        except ValueError:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        sv_context, self.sv_context = self.sv_context, None  # SV ops follow their SV Get
        if not self._class_ok(command):
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        if len(command.data) > self.payload_capacity:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        try:
            pki_session = self.session is not None and self.session.stream is not None
            if command.ins in SV_INS and pki_session:
                raise StatusError(SW.CONDITIONS_NOT_SATISFIED)  # no stored value in PKI mode
            if command.ins in SV_INS[1:]:
                return sv_operation(self, command, sv_context)
            handler = self._handlers.get(command.ins)
            if handler is None:
                return ResponseApdu(b"", SW.INS_NOT_SUPPORTED)
            return handler(command)
        except StatusError as exc:
            return ResponseApdu(b"", exc.sw)

    def _class_ok(self, command: CommandApdu) -> bool:
        """The profile's classes (Rev3: 00h and 94h, as real cards); FAh for SV on Rev1/Rev2;
        Rev2 also takes Select Application in 00h. The answer never depends on the class."""
        if command.ins in SV_INS and self.legacy:
            return command.cla == sv_card_class(self.product)
        if command.cla in self.profile.allowed_classes:
            return True
        return (
            self.product is ProductType.PRIME_REVISION_2
            and command.cla == CardClass.ISO
            and command.ins == INS_SELECT
            and command.p1 == 0x04
        )

    # --- application-level commands -------------------------------------------------------------

    def _select(self, command: CommandApdu) -> ResponseApdu:
        """Select Application (P1 04) by (partial) DF name, or Select File (section 1.10)."""
        if command.p1 == 0x04:
            return self.selector.select_application(command)
        return self.selector.select_file(command)

    def _get_data(self, command: CommandApdu) -> ResponseApdu:
        """Get Data (section 1.11): FCI, FCP of the current file, EF list; else 6A88."""
        if self.legacy:
            raise StatusError(SW.INS_NOT_SUPPORTED)
        tag = (command.p1 << 8) | command.p2
        if tag == GetDataTag.FCI_FOR_CURRENT_DF:
            fci = self.selector.fci()
            return ResponseApdu(fci, SW.DF_INVALIDATED if self.invalidated else SW.OK)
        if tag == GetDataTag.FCP_FOR_CURRENT_FILE:
            return ResponseApdu(b"\x62\x19\x85\x17" + self.selector.current_header(), SW.OK)
        if tag in CERTIFICATE_TAGS:
            return get_certificate(self, command)
        if tag == GetDataTag.EF_LIST:
            entries = b"".join(
                b"\xc1\x06"
                + ef.lid.to_bytes(2, "big")
                + bytes((ef.sfi, EF_TYPE_CODES[ef.type], ef.record_size & 0xFF, ef.record_count))
                for ef in self.files.all()
            )
            return ResponseApdu(tlv(b"\xc0", entries), SW.OK)
        raise StatusError(0x6A88)

    def _invalidate_or_rehabilitate(self, command: CommandApdu) -> ResponseApdu:
        """Invalidate (04) / Rehabilitate (44) the DF, case 1 (section 1.9)."""
        if command.p1 or command.p2 or command.data or command.le not in (None, 0):
            raise StatusError(SW.WRONG_LENGTH)
        invalidating = command.ins == 0x04
        self.check(ACCESS_INVALIDATE if invalidating else ACCESS_REHABILITATE)
        if self.invalidated == invalidating:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        self.consume_buffer(command)
        self.write({CELL_DF: b"\x01" if invalidating else b"\x00"})
        return ResponseApdu(b"", SW.OK)

    def _get_response(self, command: CommandApdu) -> ResponseApdu:
        """Get Response: nothing is ever pending (ISO 14443-4); Keyple uses it as a ping."""
        return ResponseApdu(b"", SW.OK)
