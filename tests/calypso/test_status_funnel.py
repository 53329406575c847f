# SPDX-License-Identifier: Apache-2.0
"""Status words become typed errors in the command parsers only (issue 17, the funnel)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from calypso.commands.records import parse_read_records, read_records
from calypso.commands.select import parse_select_application, select_application
from calypso.errors import (
    ApplicationNotFoundError,
    ClassNotSupportedError,
    DataAccessError,
    RecordNotFoundError,
)
from readers.apdu import ResponseApdu

ROOT = Path(__file__).resolve().parents[2]
AID = bytes.fromhex("315449432E49434131")


def test_select_application_names_the_two_ways_an_aid_is_absent() -> None:
    """6A82 is ApplicationNotFoundError (a DataAccessError); 6E00 is ClassNotSupportedError."""
    command = select_application(AID)
    with pytest.raises(ApplicationNotFoundError) as absent:
        parse_select_application(ResponseApdu.from_bytes(bytes.fromhex("6A82")), command)
    assert isinstance(absent.value, DataAccessError)
    with pytest.raises(ClassNotSupportedError):
        parse_select_application(ResponseApdu.from_bytes(bytes.fromhex("6E00")), command)


def test_read_records_names_a_missing_record() -> None:
    """6A83 from Read Records is RecordNotFoundError, still a DataAccessError for its callers."""
    command = read_records(0x08, 2, le=29)
    with pytest.raises(RecordNotFoundError) as missing:
        parse_read_records(
            ResponseApdu.from_bytes(bytes.fromhex("6A83")), record=2, command=command
        )
    assert isinstance(missing.value, DataAccessError)


def test_no_status_word_compared_above_the_parsers() -> None:
    """The engine and the office never compare a response's ``sw`` to a status word themselves."""
    offenders = []
    for path in sorted((ROOT / "validator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(side, ast.Attribute) and side.attr == "sw"
                for side in (node.left, *node.comparators)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
