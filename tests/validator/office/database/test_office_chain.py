# SPDX-License-Identifier: Apache-2.0
"""The chain check of one received file, on its own (no database): lines in, verdicts out."""

from __future__ import annotations

import hashlib
from typing import Any

from validator.journal.reading import MAX_LINE
from validator.journal.writer import GENESIS, canonical, entry_mac
from validator.office.database.chain import check_file, file_validator, read_lines

KEY = b"k" * 32


def chain(count: int, *, first: int = 1, prev: str = GENESIS, who: str = "v1") -> list[str]:
    """``count`` chained, HMACed lines from seq ``first``."""
    lines = []
    for seq in range(first, first + count):
        entry: dict[str, Any] = {"seq": seq, "prev": prev, "time": "t", "validator": who}
        entry["hmac"] = entry_mac(KEY, entry)
        line = canonical(entry)
        lines.append(line)
        prev = hashlib.sha256(line.encode()).hexdigest()
    return lines


def check(lines: list[str], anchor: tuple[int, str] = (0, GENESIS), **stored: Any):  # type: ignore[no-untyped-def]
    """check_file over ``lines`` as one file's bytes."""
    parsed, _ = read_lines("".join(f"{line}\n" for line in lines).encode(), KEY)
    return check_file(parsed, "v1", anchor, {int(k[1:]): v for k, v in stored.items()})


def kinds(found) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    """(kind, seq) of each break."""
    return [(b.kind, b.seq) for b in found.breaks]


def test_a_whole_chain_is_new_and_moves_the_anchor() -> None:
    """Five linked entries from genesis: all new, the anchor on the last one's hash."""
    lines = chain(5)
    found = check(lines)
    assert [line.seq for line in found.new] == [1, 2, 3, 4, 5] and found.breaks == []
    assert (found.anchor_seq, found.anchor_hash) == (
        5,
        hashlib.sha256(lines[4].encode()).hexdigest(),
    )


def test_continues_from_the_anchor() -> None:
    """A file starting after the anchor links to the anchor's hash."""
    lines = chain(6)
    anchor = (3, hashlib.sha256(lines[2].encode()).hexdigest())
    assert [line.seq for line in check(lines[3:], anchor).new] == [4, 5, 6]


def test_seq_one_not_from_genesis() -> None:
    """A first entry whose prev is not the genesis hash: chain_break, nothing new."""
    found = check(chain(3, prev="1" * 64))
    assert kinds(found) == [("chain_break", 1)] and found.new == [] and len(found.held) == 3


def test_a_copy_inside_the_file_is_a_duplicate() -> None:
    """A line repeated verbatim in the same file counts once."""
    lines = chain(3)
    found = check([lines[0], lines[1], lines[1], lines[2]])
    assert (len(found.new), found.duplicates, found.breaks) == (3, 1, [])


def test_hmac_checked_with_the_key() -> None:
    """A line whose HMAC is wrong breaks the chain even though it links."""
    lines = chain(3)
    lines[1] = lines[1].replace('"hmac":"', '"hmac":"00')
    found = check(lines)
    assert kinds(found) == [("hmac_failure", 2)] and [line.seq for line in found.new] == [1]


def test_seqs_that_are_not_integers_are_unreadable() -> None:
    """A seq as a string, a boolean, zero, or beyond bigint is no entry."""
    for bad in ('"2"', "true", "0", str(2**63)):
        found = check([chain(1)[0], f'{{"seq":{bad},"prev":"{GENESIS}","validator":"v1"}}'])
        assert kinds(found) == [("unreadable", 2)], bad


def test_a_line_too_long_is_hashed_not_held_whole() -> None:
    """A line longer than MAX_LINE is unreadable; its held copy has no bytes, only its size."""
    found = check([*chain(1), "x" * (MAX_LINE + 10)])
    assert kinds(found) == [("unreadable", 2)]
    ((line, kind, _),) = found.held
    assert (line.data, line.size, kind) == (b"", MAX_LINE + 10, "unreadable")


def test_an_unfinished_last_line_is_no_break() -> None:
    """A last line without its newline is counted as torn and left for the next shipment."""
    lines = chain(2)
    parsed, torn = read_lines((lines[0] + "\n" + lines[1][:40]).encode(), KEY)
    found = check_file(parsed, "v1", (0, GENESIS), {})
    assert (len(found.new), found.breaks, torn) == (1, [], 40)


def test_the_file_validator_is_the_first_entry_s() -> None:
    """The validator of a file is the one its first entry names (None for a control character)."""
    named = chain(1, who="v9")[0]
    assert file_validator(read_lines(f"junk\n{named}\n".encode(), None)[0]) == "v9"
    control = chain(1, who="v\x01")[0]
    assert file_validator(read_lines(f"{control}\n".encode(), None)[0]) is None
