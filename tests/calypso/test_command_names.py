# SPDX-License-Identifier: Apache-2.0
"""CardIns and command_name: the card commands named from a raw APDU's header."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from calypso.commands import CardIns, CommandRef, command_name
from calypso.commands.records import append_record, appended_record, read_records
from calypso.commands.select import select_application
from calypso.commands.session import abort_secure_session, close_secure_session, ratification

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_ref_has_its_ins_in_card_ins() -> None:
    """Each CommandRef's INS is a CardIns member."""
    for ref in CommandRef:
        assert CardIns(ref.ins) == ref.ins


@pytest.mark.parametrize(
    ("apdu", "name"),
    [
        (bytes(select_application(bytes.fromhex("315449432E49434131"))), "Select Application"),
        (bytes.fromhex("00A4090002200000"), "Select File"),
        (bytes(read_records(0x07, 1)), "Read Records"),
        (bytes(ratification()), "Ratification"),
        (bytes(append_record(0x08, bytes(29))), "Append Record"),
        (bytes(close_secure_session(bytes(4), ratify_now=True)), "Close Secure Session"),
        (bytes(abort_secure_session()), "Abort Secure Session"),
        (bytes.fromhex("00D800FF04"), "Change PIN"),
        (bytes.fromhex("00D8000218"), "Change Key"),
        (bytes.fromhex("FABA000000"), "SV Debit"),
    ],
)
def test_command_name_from_the_header(apdu: bytes, name: str) -> None:
    """command_name reads CLA/INS/P1/P2 (and the length) to name the command."""
    assert command_name(apdu) == name


def test_command_name_of_an_unknown_or_short_apdu() -> None:
    """An INS no card command uses, or an APDU too short to hold one, is named by its bytes."""
    assert command_name(bytes.fromhex("0011000000")) == "INS 11"
    assert command_name(b"\x00") == "APDU 00"


_LITERAL = re.compile(r"\b(apdu|command|write|w)\[1\]\s*[!=]=\s*0x|\bINS\w*\s*=\s*0x|_INS\s*=\s*0x")


def test_no_card_ins_literal_above_calypso() -> None:
    """Above calypso, card INS codes come from calypso.commands, never from literals."""
    found = []
    for package in ("sam", "validator", "lab"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if _LITERAL.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_appended_record_of_a_raw_apdu() -> None:
    """appended_record returns an Append Record's data, and None for any other command."""
    record = bytes(range(29))
    assert appended_record(bytes(append_record(0x08, record))) == record
    assert appended_record(bytes(read_records(0x08, 1))) is None
    assert appended_record(b"\x00\xe2") is None
