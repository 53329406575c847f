# SPDX-License-Identifier: Apache-2.0
"""Emulator: record, binary and counter commands (calypso-protocol 1.4-1.8, 1.12-1.14)."""

from __future__ import annotations

from calypso.commands.sv import SV_DEBIT_LOG_SFI, SV_LOAD_LOG_SFI
from calypso.constants import ProductType
from calypso.emulator.files import (
    ElementaryFile,
    counter_value,
    record_cell,
    with_append,
    with_counter,
    with_update,
    with_write,
)
from calypso.emulator.profile import FileType
from calypso.emulator.state import CardCore, StatusError
from readers.apdu import SW, CommandApdu, ResponseApdu

RECORD_TYPES = (FileType.LINEAR, FileType.CYCLIC, FileType.COUNTERS, FileType.SIMULATED_COUNTER)
MULTIPLE_PRODUCTS = (ProductType.PRIME_REVISION_3, ProductType.LIGHT)


def _record_file(card: CardCore, sfi: int) -> ElementaryFile:
    ef = card.file(sfi)
    if ef.type not in RECORD_TYPES:
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    return ef


def _view_records(card: CardCore, ef: ElementaryFile) -> list[bytes]:
    """Records as read: a simulated counter file shows its counter's 3 bytes (data model 1.4)."""
    view = ef.profile.counter_view
    if view is None:
        return card.records(ef)
    value = counter_value(card.cell(record_cell(view.sfi, 1)), view.counter)
    return [value.to_bytes(3, "big").ljust(ef.record_size, b"\x00")]


def read_records(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Read one record (P2 = sfi*8+4) or P1 to the last (sfi*8+5) (section 1.4)."""
    mode = command.p2 & 0x07
    if mode not in (4, 5) or (mode == 5 and card.product not in MULTIPLE_PRODUCTS):
        raise StatusError(SW.WRONG_P1_P2)  # also the ratification command CLA B2 00 00 00
    ef = _record_file(card, command.p2 >> 3)
    if not 1 <= command.p1 <= ef.record_count:
        raise StatusError(SW.RECORD_NOT_FOUND)
    card.check(ef.access.read)
    session = card.session
    if session is not None and session.sv_done and ef.sfi in (SV_LOAD_LOG_SFI, SV_DEBIT_LOG_SFI):
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    records = _view_records(card, ef)
    le = command.le or 0
    if mode == 4:
        if ef.type is FileType.COUNTERS and 0 < le < ef.record_size and le % 3 == 0:
            # The first Le / 3 counters only (Keyple's prepareReadCounter, calypso-protocol 3).
            return ResponseApdu(records[command.p1 - 1][:le], SW.OK)
        if le not in (0, ef.record_size):
            return ResponseApdu(b"", 0x6C00 | ef.record_size)
        return ResponseApdu(records[command.p1 - 1], SW.OK)
    limit = le or card.payload_capacity
    out = b""
    for number in range(command.p1, ef.record_count + 1):
        item = bytes((number, ef.record_size)) + records[number - 1]
        if len(out) + len(item) > limit:
            break
        out += item
    if not out:
        return ResponseApdu(b"", 0x6C00 | (ef.record_size + 2))
    return ResponseApdu(out, SW.OK)


def update_or_write_record(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Update Record (DC, replace) / Write Record (D2, OR) of record P1 (section 1.5)."""
    if command.p2 & 0x07 != 4:
        raise StatusError(SW.WRONG_P1_P2)
    ef = _record_file(card, command.p2 >> 3)
    writing = command.ins == 0xD2
    if ef.type in (FileType.COUNTERS, FileType.SIMULATED_COUNTER) and writing:
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    if ef.type is FileType.SIMULATED_COUNTER:
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    if not 1 <= command.p1 <= ef.record_count:
        raise StatusError(SW.RECORD_NOT_FOUND)
    if ef.type is FileType.CYCLIC and (command.p1 != 1 or writing):
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    if not 1 <= len(command.data) <= ef.record_size:
        raise StatusError(SW.WRONG_LENGTH)
    card.check_write(ef.access.write if writing else ef.access.update, command)
    records = card.records(ef)
    if writing:
        records[command.p1 - 1] = with_write(records[command.p1 - 1], 0, command.data)
    else:
        records = with_update(records, command.p1 - 1, command.data)
    card.write(card.record_changes(ef, records))
    return ResponseApdu(b"", SW.OK)


def append_record(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Append Record to a cyclic file: new record #1, the oldest dropped (section 1.6)."""
    if command.p1 != 0 or command.p2 & 0x07 != 0:
        raise StatusError(SW.WRONG_P1_P2)
    ef = card.file(command.p2 >> 3)
    if ef.type is not FileType.CYCLIC:
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    if not 1 <= len(command.data) <= ef.record_size:
        raise StatusError(SW.WRONG_LENGTH)
    card.check_write(ef.access.append, command)
    records = with_append(card.records(ef), command.data, ef.record_size)
    card.write(card.record_changes(ef, records))
    return ResponseApdu(b"", SW.OK)


def _counter_target(card: CardCore, ef: ElementaryFile, number: int) -> tuple[int, int]:
    """(counters-file SFI, counter number) addressed on a counters or simulated counter EF."""
    view = ef.profile.counter_view
    if view is not None:
        if number not in (0, 1):
            raise StatusError(SW.WRONG_P1_P2)
        return view.sfi, view.counter
    if ef.type is not FileType.COUNTERS:
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    if not 1 <= number <= ef.record_size // 3:
        raise StatusError(SW.WRONG_P1_P2)
    return ef.sfi, number


def increase_or_decrease(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Increase (32) / Decrease (30) counter P1; Rev1/Rev2 may postpone the result (1.7)."""
    if command.p2 & 0x07 != 0:
        raise StatusError(SW.WRONG_P1_P2)
    ef = card.file(command.p2 >> 3)
    if ef.type not in (FileType.COUNTERS, FileType.SIMULATED_COUNTER):
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    sfi, number = _counter_target(card, ef, command.p1)
    if len(command.data) != 3:
        raise StatusError(SW.WRONG_LENGTH)
    increase = command.ins == 0x32
    condition = ef.access.increase if increase else ef.access.decrease
    card.check(condition)
    cell = record_cell(sfi, 1)
    record = card.cell(cell)
    delta = int.from_bytes(command.data, "big")
    value = counter_value(record, number) + (delta if increase else -delta)
    if not 0 <= value <= 0xFFFFFF:
        raise StatusError(SW.INCORRECT_PARAMETERS_IN_DATA)
    card.check_write(condition, command, counter=True)
    card.write({cell: with_counter(record, number, value)})
    result = value.to_bytes(3, "big")
    if card.session is not None and card.legacy and card.profile.postpones_counters:
        card.session.postponed.append(result)  # given back in the Close answer (1.2)
        return ResponseApdu(b"", SW.WARNING_NO_INFO)
    return ResponseApdu(result, SW.OK)


def increase_or_decrease_multiple(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Increase (3A) / Decrease (38) Multiple: n x [counter#][value] (section 1.8)."""
    if card.product not in (ProductType.PRIME_REVISION_3, ProductType.PRIME_REVISION_2):
        raise StatusError(SW.INS_NOT_SUPPORTED)
    if command.p1 != 0 or command.p2 & 0x07 != 0:
        raise StatusError(SW.WRONG_P1_P2)
    ef = card.file(command.p2 >> 3)
    if ef.type is not FileType.COUNTERS:
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    data = command.data
    if not data or len(data) % 4:
        raise StatusError(SW.WRONG_LENGTH)
    increase = command.ins == 0x3A
    condition = ef.access.increase if increase else ef.access.decrease
    card.check(condition)
    cell = record_cell(ef.sfi, 1)
    record = card.cell(cell)
    out = b""
    seen: set[int] = set()
    for i in range(0, len(data), 4):
        number, delta = data[i], int.from_bytes(data[i + 1 : i + 4], "big")
        if number in seen or not 1 <= number <= ef.record_size // 3:
            raise StatusError(SW.INCORRECT_PARAMETERS_IN_DATA)
        seen.add(number)
        value = counter_value(record, number) + (delta if increase else -delta)
        if not 0 <= value <= 0xFFFFFF:
            raise StatusError(SW.INCORRECT_PARAMETERS_IN_DATA)
        record = with_counter(record, number, value)
        out += bytes((number,)) + value.to_bytes(3, "big")
    card.check_write(condition, command, counter=True)
    card.write({cell: record})
    return ResponseApdu(out, SW.OK)


def read_record_multiple(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Read Record Multiple (B3): ``length`` bytes at ``offset`` of each record (1.13)."""
    if card.product not in MULTIPLE_PRODUCTS:
        raise StatusError(SW.INS_NOT_SUPPORTED)
    if command.p2 & 0x07 != 5:
        raise StatusError(SW.WRONG_P1_P2)
    if len(command.data) != 4:
        raise StatusError(SW.WRONG_LENGTH)
    tag, size, offset, length = command.data
    ef = _record_file(card, command.p2 >> 3)
    if tag != 0x54 or size != 2 or length == 0 or offset + length > ef.record_size:
        raise StatusError(SW.INCORRECT_PARAMETERS_IN_DATA)
    if not 1 <= command.p1 <= ef.record_count:
        raise StatusError(SW.RECORD_NOT_FOUND)
    card.check(ef.access.read)
    records = _view_records(card, ef)
    out = b""
    for number in range(command.p1, ef.record_count + 1):
        if len(out) + length > card.payload_capacity:
            return ResponseApdu(out, SW.WARNING_NO_INFO)  # partial read: continue (1.13)
        out += records[number - 1][offset : offset + length]
    return ResponseApdu(out, SW.OK)


def search_record_multiple(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Search Record Multiple (A2): records matching data under mask (section 1.14)."""
    if card.product is not ProductType.PRIME_REVISION_3:
        raise StatusError(SW.INS_NOT_SUPPORTED)
    if command.p2 & 0x07 != 7:
        raise StatusError(SW.WRONG_P1_P2)
    data = command.data
    if len(data) < 4 or len(data) != 3 + 2 * data[2]:
        raise StatusError(SW.WRONG_LENGTH)
    flags, offset, size = data[0], data[1], data[2]
    search, mask = data[3 : 3 + size], data[3 + size :]
    ef = _record_file(card, command.p2 >> 3)
    if size == 0 or offset + size > ef.record_size:
        raise StatusError(SW.INCORRECT_PARAMETERS_IN_DATA)
    if not 1 <= command.p1 <= ef.record_count:
        raise StatusError(SW.RECORD_NOT_FOUND)
    card.check(ef.access.read)
    records = _view_records(card, ef)
    wanted = bytes(s & m for s, m in zip(search, mask, strict=True))
    offsets = range(offset, ef.record_size - size + 1) if flags & 0x80 else (offset,)
    found = [
        n
        for n in range(command.p1, ef.record_count + 1)
        if any(
            bytes(b & m for b, m in zip(records[n - 1][o : o + size], mask, strict=True)) == wanted
            for o in offsets
        )
    ]
    out = bytes((len(found),)) + bytes(found)
    if flags & 0x01 and found:
        out += records[found[0] - 1]
    return ResponseApdu(out, SW.OK)


def _binary_target(card: CardCore, command: CommandApdu) -> tuple[ElementaryFile, int]:
    if card.product not in (ProductType.PRIME_REVISION_3, ProductType.PRIME_REVISION_2):
        raise StatusError(SW.INS_NOT_SUPPORTED)
    if command.p1 & 0x80:
        ef, offset = card.file(command.p1 & 0x1F), command.p2
    else:
        ef, offset = card.file(0), (command.p1 << 8) | command.p2
    if ef.type is not FileType.BINARY:
        raise StatusError(SW.COMMAND_INCOMPATIBLE_WITH_FILE)
    return ef, offset


def read_binary(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Read Binary (B0): Le bytes from the offset (section 1.12)."""
    ef, offset = _binary_target(card, command)
    if offset >= ef.record_size:
        raise StatusError(SW.RECORD_NOT_FOUND)
    card.check(ef.access.read)
    content = card.cell(record_cell(ef.sfi, 1))
    length = command.le or min(256, ef.record_size - offset)
    return ResponseApdu(content[offset : offset + length], SW.OK)


def update_or_write_binary(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """Update Binary (D6, replace) / Write Binary (D0, OR) at the offset (section 1.12)."""
    ef, offset = _binary_target(card, command)
    if offset >= ef.record_size:
        raise StatusError(SW.RECORD_NOT_FOUND)
    if not command.data or offset + len(command.data) > ef.record_size:
        raise StatusError(SW.WRONG_LENGTH)
    writing = command.ins == 0xD0
    card.check_write(ef.access.write if writing else ef.access.update, command)
    content = card.cell(record_cell(ef.sfi, 1))
    if writing:
        content = with_write(content, offset, command.data)
    else:
        content = content[:offset] + command.data + content[offset + len(command.data) :]
    card.write({record_cell(ef.sfi, 1): content})
    return ResponseApdu(b"", SW.OK)
