# SPDX-License-Identifier: Apache-2.0
"""Emulator: stored value, SV Get (1.19) and SV Reload / Debit / Undebit (1.20), CSIM1 3.8.

The purse is the cell ``SV`` (balance, SV transaction number, last signature lo); the logs are
the records of SFI 14h (last load) and 15h (last 3 debits). An SV operation must follow its SV
Get directly; inside a session its signature is postponed to the Close answer.
"""

from __future__ import annotations

from calypso.commands.sv import (
    DEBIT_LOG_SIZE,
    LOAD_LOG_SIZE,
    SV_DEBIT_LOG_SFI,
    SV_LOAD_LOG_SFI,
    SvOperation,
    sv_get_le,
)
from calypso.crypto import macs_equal, sv_key, sv_mac
from calypso.emulator.files import CELL_SV, record_cell, with_append
from calypso.emulator.state import CardCore, StatusError, SvContext
from readers.apdu import SW, CommandApdu, ResponseApdu

INS_RELOAD, INS_DEBIT, INS_UNDEBIT = 0xB8, 0xBA, 0xBC


def _purse(card: CardCore) -> tuple[int, int, bytes]:
    raw = card.cell(CELL_SV)
    return int.from_bytes(raw[0:3], "big", signed=True), int.from_bytes(raw[3:5], "big"), raw[5:]


def _check_sv(card: CardCore) -> None:
    if card.profile.sv is None:
        raise StatusError(SW.INS_NOT_SUPPORTED)
    if card.invalidated:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)


def sv_get(card: CardCore, command: CommandApdu) -> ResponseApdu:
    """SV Get: purse state, a fresh challenge and the log for the operation to come."""
    _check_sv(card)
    if command.p1 not in (0x00, 0x01) or command.p2 not in (SvOperation.RELOAD, SvOperation.DEBIT):
        raise StatusError(SW.FUNCTION_NOT_SUPPORTED)
    extended = command.p1 == 0x01
    if extended and not card.extended_capable:
        raise StatusError(SW.FUNCTION_NOT_SUPPORTED)
    if card.session is not None and card.session.extended and not extended:
        # A Rev3.2 card in an extended session takes the extended SV Get only (P1 = 01h, Le
        # 3Dh: calypso-protocol 1.19, csim1 1.5); Keyple pairs them the same way. The SV
        # operation then needs the 10-byte SV MAC, so the compatibility form cannot follow.
        raise StatusError(SW.FUNCTION_NOT_SUPPORTED)
    operation = SvOperation(command.p2)
    le = sv_get_le(operation, extended=extended)
    if command.le not in (0, le) or command.data:
        raise StatusError(SW.INCORRECT_P1_P2_6A86)
    if card.session is not None and card.session.sv_done:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    balance, tnum, signature = _purse(card)
    reload = operation is SvOperation.RELOAD
    kvc = card.key_slot(2 if reload else 3)[1]
    load_log = card.cell(record_cell(SV_LOAD_LOG_SFI, 1))[:LOAD_LOG_SIZE]
    debit_log = card.cell(record_cell(SV_DEBIT_LOG_SFI, 1))[:DEBIT_LOG_SIZE]
    money = balance.to_bytes(3, "big", signed=True)
    if extended:
        challenge = card.rng(8)
        data = (
            challenge
            + bytes((kvc,))
            + tnum.to_bytes(2, "big")
            + signature
            + money
            + load_log
            + debit_log
        )
    else:
        challenge = card.rng(2)
        data = bytes((kvc,)) + tnum.to_bytes(2, "big") + signature[:3] + challenge + money
        data += load_log if reload else debit_log
    header = bytes((command.ins, command.p1, command.p2, le))
    response = ResponseApdu(data, SW.OK)
    card.sv_context = SvContext(reload, extended, header, bytes(response), kvc)
    return response


def sv_operation(card: CardCore, command: CommandApdu, context: SvContext | None) -> ResponseApdu:
    """SV Reload (B8) / Debit (BA) / Undebit (BC): check the SAM's MAC hi, apply, sign (3.8)."""
    _check_sv(card)
    reload = command.ins == INS_RELOAD
    if context is None or context.reload != reload:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)  # must follow its SV Get (2.9)
    session = card.session
    if session is not None and session.sv_done:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    mac_size = 10 if context.extended else 5
    fixed = 18 if reload else 15  # chal2 .. SAM TNum
    data = command.data
    if len(data) != fixed + mac_size:
        raise StatusError(SW.WRONG_LENGTH)
    kvc = data[4] if reload else data[7]
    if kvc != context.kvc:
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    balance, tnum, _ = _purse(card)
    if tnum >= 0xFFFE:
        raise StatusError(SW.TRANSACTION_COUNTER_EXHAUSTED)
    kif, slot_kvc, key = card.key_slot(2 if reload else 3)
    k_sv = sv_key(key, extended=context.extended, kif=kif, kvc=slot_kvc)
    signed_part = bytes((command.ins, command.p1, command.p2)) + data[:fixed]
    hi, lo = sv_mac(k_sv, context.header + context.response, signed_part, extended=context.extended)
    if not macs_equal(data[fixed:], hi):
        raise StatusError(SW.INCORRECT_SIGNATURE)
    if reload:
        amount = int.from_bytes(data[6:9], "big", signed=True)
    else:
        amount = int.from_bytes(data[1:3], "big", signed=True)  # debit carries -amount
    new_balance = balance + amount
    profile = card.profile.sv
    if not -8388608 <= new_balance <= 8388607 or (
        new_balance < 0 and (profile is None or not profile.negative_balance)
    ):
        raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
    card.consume_buffer(command)
    money = new_balance.to_bytes(3, "big", signed=True)
    sam_id, sam_tnum = data[fixed - 7 : fixed - 3], data[fixed - 3 : fixed]
    sv_tnum = tnum.to_bytes(2, "big")
    if reload:
        # date(2) free1 KVC free2 balance(3) amount(3) time(2) SAM ID(4) SAM TNum(3) SV TNum(2)
        log = data[1:6] + money + data[6:9] + data[9:11] + sam_id + sam_tnum + sv_tnum
        log_changes = {record_cell(SV_LOAD_LOG_SFI, 1): log.ljust(29, b"\x00")}
    else:
        # amount(2) date(2) time(2) KVC SAM ID(4) SAM TNum(3) balance(3) SV TNum(2)
        log = data[1:8] + sam_id + sam_tnum + money + sv_tnum
        logs = [card.cell(record_cell(SV_DEBIT_LOG_SFI, n)) for n in (1, 2, 3)]
        shifted = with_append(logs, log, 29)
        log_changes = {record_cell(SV_DEBIT_LOG_SFI, n): r for n, r in enumerate(shifted, 1)}
    purse = money + (tnum + 1).to_bytes(2, "big") + lo.ljust(6, b"\x00")
    card.write({CELL_SV: purse, **log_changes})
    if session is not None:
        session.sv_done = True
        session.postponed.append(lo)  # the signature comes with the Close answer (1.20)
        return ResponseApdu(b"", SW.OK)
    return ResponseApdu(lo, SW.OK)
