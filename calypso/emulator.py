# SPDX-License-Identifier: Apache-2.0
"""A Calypso Prime Rev3 card in software (regular mode, CSIM1 keys), as an ApduHandler.

Commands: Select Application, Read Records, Update Record, Append Record, Increase, Decrease,
Open / Close Secure Session (regular mode), abort, ratification, Get Challenge, Get Response.
Section numbers refer to ``reference/calypso-protocol.md``.

Card semantics modelled:

* Writes inside a secure session are buffered; the card's own reads see them; a Close with a good
  terminal MAC commits them at once; an abort, a bad MAC or a power loss drops them (2.7).
* The transaction counter is decremented and persisted by each Open Secure Session (1.1).
* A Close with P1=00 leaves the card "not ratified" until it receives any further command; a power
  loss before that is reported by the next Open (ratification byte 01) (1.3, 2.6).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from calypso.constants import CardClass, session_buffer_size
from calypso.crypto import SessionMac, digest_item, macs_equal
from calypso.emulator_files import (
    CardImage,
    ElementaryFile,
    FileStore,
    counter_value,
    read_image,
    with_append,
    with_counter,
    with_update,
    write_image,
)
from calypso.profile import AccessCondition, CardProfile, FileType, load_profile
from readers.apdu import SW, CommandApdu, ResponseApdu

# Keyple's stub card power-on data (reference/keyple-stub-trace.md): a PC/SC contactless ATR.
ATR = bytes.fromhex("3B888001000000009171710098")
PAYLOAD_CAPACITY = 250  # default payload of a Rev3 card (section 0)

INS_SELECT = 0xA4
INS_READ_RECORDS = 0xB2
INS_UPDATE_RECORD = 0xDC
INS_APPEND_RECORD = 0xE2
INS_INCREASE = 0x32
INS_DECREASE = 0x30
INS_OPEN_SESSION = 0x8A
INS_CLOSE_SESSION = 0x8E
INS_GET_CHALLENGE = 0x84
INS_GET_RESPONSE = 0xC0

RATIFIED = 0x00  # Open Secure Session ratification byte: previous session ratified (1.1)
NOT_RATIFIED = 0x01

Rng = Callable[[int], bytes]


class _StatusError(Exception):
    """Internal: stop the command with this status word and no data."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass(slots=True)
class _Session:
    """A secure session in progress: key level, running MAC, modification buffer used."""

    key_index: int
    mac: SessionMac
    buffer_used: int = 0


def _tlv(tag: bytes, value: bytes) -> bytes:
    return tag + bytes((len(value),)) + value


def _is_ratification(apdu: bytes) -> bool:
    """`CLA B2 00 00 00`: a Read Record of record 0 (section 1.3)."""
    return len(apdu) == 5 and apdu[1:] == b"\xb2\x00\x00\x00"


class CardEmulator:
    """A Calypso Prime Rev3 card answering APDUs in regular (non-extended) mode."""

    def __init__(
        self, profile: CardProfile, rng: Rng | None = None, *, image_path: Path | str | None = None
    ) -> None:
        self.profile = profile
        self._rng: Rng = rng if rng is not None else os.urandom
        self._files = FileStore(profile.files)
        self._transaction_counter = profile.transaction_counter
        self._ratified = profile.ratified
        self._buffer_size = session_buffer_size(profile.startup_info[0])
        self._session: _Session | None = None
        self._ratification_pending = False
        self._current_sfi: int | None = None
        self._image_path = Path(image_path) if image_path is not None else None
        self._handlers: dict[int, Callable[[CommandApdu], ResponseApdu]] = {
            INS_SELECT: self._select,
            INS_READ_RECORDS: self._read_records,
            INS_UPDATE_RECORD: self._update_record,
            INS_APPEND_RECORD: self._append_record,
            INS_INCREASE: self._increase_or_decrease,
            INS_DECREASE: self._increase_or_decrease,
            INS_OPEN_SESSION: self._open_session,
            INS_CLOSE_SESSION: self._close_session,
            INS_GET_CHALLENGE: self._get_challenge,
            INS_GET_RESPONSE: self._get_response,
        }
        if self._image_path is not None and self._image_path.exists():
            serial, image = read_image(self._image_path)
            if serial != profile.serial:
                raise ValueError(f"image {self._image_path} belongs to another card")
            self.restore(image)

    def __repr__(self) -> str:
        return f"CardEmulator(serial={self.serial.hex().upper()})"

    @classmethod
    def from_profile(
        cls, path: Path | str, rng: Rng | None = None, *, image_path: Path | str | None = None
    ) -> CardEmulator:
        """Build a card from a YAML profile (ProfileError when invalid).

        With image_path, the EEPROM image is loaded from that file when it exists, and every
        persistent change is saved to it atomically.
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
        """Power up (a reset: volatile state is lost) and return the ATR."""
        self._lose_volatile_state()
        return ATR

    def power_off(self) -> None:
        """Cut the power: an open session and its buffered writes are lost (tearing)."""
        self._lose_volatile_state()

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with data and SW; feeds the session MAC when one is open."""
        if self._ratification_pending:
            # Any command after a Close with P1=00 ratifies the session (sections 1.3, 2.6).
            self._ratification_pending = False
            self._ratified = True
            self._persist()
        session = self._session
        raw = bytes(self._respond(apdu))
        if (
            session is not None
            and self._session is session
            and apdu[1:2] not in (bytes((INS_OPEN_SESSION,)), bytes((INS_CLOSE_SESSION,)))
            and not _is_ratification(apdu)
        ):
            # CSIM1 3.4: command (Le dropped when case 4) then response with SW.
            item = digest_item(apdu)
            if 1 <= len(item) <= 255:
                session.mac.add(item)
                session.mac.add(raw)
        return raw

    # --- inspection (committed state) -----------------------------------------------------------

    @property
    def serial(self) -> bytes:
        """The 8-byte application serial number."""
        return self.profile.serial

    @property
    def transaction_counter(self) -> int:
        """The transaction counter (decremented by each Open Secure Session)."""
        return self._transaction_counter

    @property
    def ratified(self) -> bool:
        """Whether the last closed session is ratified (what the next Open will report)."""
        return self._ratified

    @property
    def session_open(self) -> bool:
        """Whether a secure session is in progress."""
        return self._session is not None

    def read_record(self, sfi: int, record: int) -> bytes:
        """Committed content of one record (record numbers from 1)."""
        return self._files.committed(sfi)[record - 1]

    def counter(self, sfi: int, number: int) -> int:
        """Committed value of counter n of a counters file."""
        return counter_value(self._files.committed(sfi)[0], number)

    def snapshot(self) -> CardImage:
        """The whole committed (EEPROM) image."""
        return CardImage(self._files.snapshot(), self._transaction_counter, self._ratified)

    def restore(self, image: CardImage) -> None:
        """Replace the committed image (the session, if any, is dropped)."""
        self._lose_volatile_state()
        self._files.restore(image.files)
        self._transaction_counter = image.transaction_counter
        self._ratified = image.ratified

    def save(self, path: Path | str) -> None:
        """Write the committed image to a file atomically (tmp file, fsync, rename)."""
        write_image(Path(path), self.serial, self.snapshot())

    # --- plumbing -------------------------------------------------------------------------------

    def _lose_volatile_state(self) -> None:
        self._session = None
        self._files.rollback()
        self._ratification_pending = False
        self._current_sfi = None

    def _persist(self) -> None:
        if self._image_path is not None:
            self.save(self._image_path)

    def _respond(self, apdu: bytes) -> ResponseApdu:
        try:
            command = CommandApdu.from_bytes(apdu)
        except ValueError:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        if command.cla != CardClass.ISO:
            return ResponseApdu(b"", SW.CLA_NOT_SUPPORTED)
        handler = self._handlers.get(command.ins)
        if handler is None:
            return ResponseApdu(b"", SW.INS_NOT_SUPPORTED)
        if len(command.data) > PAYLOAD_CAPACITY:
            return ResponseApdu(b"", SW.WRONG_LENGTH)
        try:
            return handler(command)
        except _StatusError as exc:
            return ResponseApdu(b"", exc.sw)

    def _key_level(self) -> int | None:
        return self._session.key_index if self._session is not None else None

    def _file(self, sfi: int) -> ElementaryFile:
        """Resolve an SFI (0 = current EF) and make it the current EF."""
        if sfi == 0:
            if self._current_sfi is None:
                raise _StatusError(SW.NO_CURRENT_EF)
            sfi = self._current_sfi
        ef = self._files.get(sfi)
        if ef is None:
            raise _StatusError(SW.FILE_NOT_FOUND)
        self._current_sfi = sfi
        return ef

    @staticmethod
    def _check(condition: AccessCondition, key_level: int | None) -> None:
        if condition.allows(key_level):
            return
        if condition is AccessCondition.NEVER:
            raise _StatusError(SW.CONDITIONS_NOT_SATISFIED)
        raise _StatusError(SW.SECURITY_NOT_SATISFIED)

    def _check_write(self, condition: AccessCondition, command: CommandApdu) -> None:
        """Access condition, DF status, then the session modification buffer (section 2.2)."""
        self._check(condition, self._key_level())
        if self.profile.invalidated:
            raise _StatusError(SW.CONDITIONS_NOT_SATISFIED)
        if self._session is not None:
            # Cost in bytes: Lc + 6 for case 3, Lc + 7 for case 4 (section 2.2).
            cost = len(command.data) + 6 + (1 if command.le is not None else 0)
            if self._session.buffer_used + cost > self._buffer_size:
                raise _StatusError(SW.SESSION_BUFFER_OVERFLOW)
            self._session.buffer_used += cost

    def _store(self, sfi: int, records: list[bytes]) -> None:
        self._files.put(sfi, records)
        if not self._files.buffering:
            self._persist()

    # --- commands -------------------------------------------------------------------------------

    def _select(self, command: CommandApdu) -> ResponseApdu:
        """Select Application by (partial) DF name; answers the FCI (section 0, section 4)."""
        if command.p1 != 0x04:
            raise _StatusError(SW.WRONG_P1_P2)
        if not 5 <= len(command.data) <= 16:
            raise _StatusError(SW.WRONG_LENGTH)
        self._lose_volatile_state()  # selecting the application ends any session
        if not self.profile.aid.startswith(command.data):
            raise _StatusError(SW.FILE_NOT_FOUND)
        sw = SW.DF_INVALIDATED if self.profile.invalidated else SW.OK
        if command.p2 == 0x0C:  # no response data requested
            return ResponseApdu(b"", sw)
        if command.p2 == 0x02:  # next occurrence: the card holds one application
            raise _StatusError(SW.FILE_NOT_FOUND)
        if command.p2 != 0x00:
            raise _StatusError(SW.WRONG_P1_P2)
        # 6F { 84 <DF name>, A5 { BF0C { C7 <serial 8>, 53 <startup info 7> } } } (section 4).
        proprietary = _tlv(b"\xc7", self.profile.serial) + _tlv(b"\x53", self.profile.startup_info)
        fci = _tlv(b"\x84", self.profile.aid) + _tlv(b"\xa5", _tlv(b"\xbf\x0c", proprietary))
        return ResponseApdu(_tlv(b"\x6f", fci), sw)

    def _read_records(self, command: CommandApdu) -> ResponseApdu:
        """Read one record (P2 = sfi*8+4) or P1 to the last (sfi*8+5) (section 1.4)."""
        mode = command.p2 & 0x07
        if mode not in (4, 5):  # also the ratification command 00 B2 00 00 00 (section 1.3)
            raise _StatusError(SW.WRONG_P1_P2)
        ef = self._file(command.p2 >> 3)
        if not 1 <= command.p1 <= ef.record_count:
            raise _StatusError(SW.RECORD_NOT_FOUND)
        self._check(ef.profile.access.read, self._key_level())
        records = self._files.records(ef.sfi)
        le = command.le or 0
        if mode == 4:
            if le not in (0, ef.record_size):
                return ResponseApdu(b"", 0x6C00 | ef.record_size)
            return ResponseApdu(records[command.p1 - 1], SW.OK)
        # Multiple mode: [record number][length][data] per record, within Le or the payload.
        limit = le or PAYLOAD_CAPACITY
        out = b""
        for number in range(command.p1, ef.record_count + 1):
            item = bytes((number, ef.record_size)) + records[number - 1]
            if len(out) + len(item) > limit:
                break
            out += item
        if not out:
            return ResponseApdu(b"", 0x6C00 | (ef.record_size + 2))
        return ResponseApdu(out, SW.OK)

    def _update_record(self, command: CommandApdu) -> ResponseApdu:
        """Update Record: replace the first Lc bytes of record P1 (section 1.5)."""
        if command.p2 & 0x07 != 4:
            raise _StatusError(SW.WRONG_P1_P2)
        ef = self._file(command.p2 >> 3)
        if not 1 <= command.p1 <= ef.record_count:
            raise _StatusError(SW.RECORD_NOT_FOUND)
        if ef.type is FileType.CYCLIC and command.p1 != 1:
            raise _StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        if not 1 <= len(command.data) <= ef.record_size:
            raise _StatusError(SW.WRONG_LENGTH)
        self._check_write(ef.profile.access.update, command)
        records = self._files.records(ef.sfi)
        self._store(ef.sfi, with_update(records, command.p1 - 1, command.data))
        return ResponseApdu(b"", SW.OK)

    def _append_record(self, command: CommandApdu) -> ResponseApdu:
        """Append Record to a cyclic file: new record #1, the oldest dropped (section 1.6)."""
        if command.p1 != 0 or command.p2 & 0x07 != 0:
            raise _StatusError(SW.WRONG_P1_P2)
        ef = self._file(command.p2 >> 3)
        if ef.type is not FileType.CYCLIC:
            raise _StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        if not 1 <= len(command.data) <= ef.record_size:
            raise _StatusError(SW.WRONG_LENGTH)
        self._check_write(ef.profile.access.append, command)
        records = self._files.records(ef.sfi)
        self._store(ef.sfi, with_append(records, command.data, ef.record_size))
        return ResponseApdu(b"", SW.OK)

    def _increase_or_decrease(self, command: CommandApdu) -> ResponseApdu:
        """Increase (32) / Decrease (30) counter P1 by a 3-byte value; answers it (section 1.7)."""
        if command.p2 & 0x07 != 0:
            raise _StatusError(SW.WRONG_P1_P2)
        ef = self._file(command.p2 >> 3)
        if ef.type is not FileType.COUNTERS:
            raise _StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
        if not 1 <= command.p1 <= ef.record_size // 3:
            raise _StatusError(SW.WRONG_P1_P2)
        if len(command.data) != 3:
            raise _StatusError(SW.WRONG_LENGTH)
        increase = command.ins == INS_INCREASE
        access = ef.profile.access
        condition = access.increase if increase else access.decrease
        self._check(condition, self._key_level())
        records = self._files.records(ef.sfi)
        delta = int.from_bytes(command.data, "big")
        value = counter_value(records[0], command.p1) + (delta if increase else -delta)
        if not 0 <= value <= 0xFFFFFF:
            raise _StatusError(SW.INCORRECT_PARAMETERS_IN_DATA)
        self._check_write(condition, command)
        records[0] = with_counter(records[0], command.p1, value)
        self._store(ef.sfi, records)
        return ResponseApdu(value.to_bytes(3, "big"), SW.OK)

    def _open_session(self, command: CommandApdu) -> ResponseApdu:
        """Open Secure Session, Rev3 regular: P1 = rec*8 + key, P2 = sfi*8 + 1 (section 1.1)."""
        if self._session is not None:
            raise _StatusError(SW.CONDITIONS_NOT_SATISFIED)
        key_index, record = command.p1 & 0x07, command.p1 >> 3
        if command.p2 & 0x07 != 0x01 or not 1 <= key_index <= 3:
            raise _StatusError(SW.WRONG_P1_P2)
        if len(command.data) != 4:
            raise _StatusError(SW.WRONG_LENGTH)
        if self._transaction_counter == 0:
            raise _StatusError(SW.TRANSACTION_COUNTER_EXHAUSTED)
        data = b""
        if record:
            ef = self._file(command.p2 >> 3)
            if record > ef.record_count:
                raise _StatusError(SW.RECORD_NOT_FOUND)
            self._check(ef.profile.access.read, key_index)
            data = self._files.committed(ef.sfi)[record - 1]
        self._transaction_counter -= 1
        self._persist()
        random = self._rng(1)
        if len(random) != 1:
            raise ValueError("the card rng must return the number of bytes asked for")
        slot = self.profile.keys.slot(key_index)
        # CTR(3) RND(1) ratification(1) KIF KVC Ld record (section 1.1, Rev3 compatibility).
        data_out = (
            self._transaction_counter.to_bytes(3, "big")
            + random
            + bytes((RATIFIED if self._ratified else NOT_RATIFIED, slot.kif, slot.kvc, len(data)))
            + data
        )
        mac = SessionMac.start(
            slot.card_key(self.serial),
            extended=False,
            kif=slot.kif,
            kvc=slot.kvc,
            open_data_out=data_out,
            terminal_challenge=command.data,
        )
        self._session = _Session(key_index, mac)
        self._files.begin()
        return ResponseApdu(data_out, SW.OK)

    def _close_session(self, command: CommandApdu) -> ResponseApdu:
        """Close Secure Session (P1 80 ratified, 00 not yet) or abort (no data) (section 1.2)."""
        if command.p2 != 0 or command.p1 not in (0x00, 0x80):
            raise _StatusError(SW.WRONG_P1_P2)
        session = self._session
        if session is None:
            raise _StatusError(SW.CONDITIONS_NOT_SATISFIED)
        if not command.data:
            if command.p1 != 0:
                raise _StatusError(SW.WRONG_LENGTH)
            self._lose_volatile_state()  # abort: buffered writes dropped
            return ResponseApdu(b"", SW.OK)
        if len(command.data) != 4:
            raise _StatusError(SW.WRONG_LENGTH)
        if not macs_equal(command.data, session.mac.terminal_mac()):
            # CSIM1 3.4: wrong terminal MAC -> 6988, writes rolled back, session closed.
            self._lose_volatile_state()
            raise _StatusError(SW.INCORRECT_SIGNATURE)
        card_mac = session.mac.card_mac()
        self._session = None
        self._files.commit()
        self._ratified = command.p1 == 0x80
        self._ratification_pending = not self._ratified
        self._persist()
        return ResponseApdu(card_mac, SW.OK)

    def _get_challenge(self, command: CommandApdu) -> ResponseApdu:
        """Get Challenge: Le random bytes, 1 to 8 (section 1.15)."""
        if command.p1 != 0 or command.p2 != 0:
            raise _StatusError(SW.WRONG_P1_P2)
        if command.data or not command.le or command.le > 8:
            raise _StatusError(SW.WRONG_LENGTH)
        return ResponseApdu(self._rng(command.le), SW.OK)

    def _get_response(self, command: CommandApdu) -> ResponseApdu:
        """Get Response: nothing is ever pending (ISO 14443-4); Keyple uses it as a ping."""
        return ResponseApdu(b"", SW.OK)
