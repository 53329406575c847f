# SPDX-License-Identifier: Apache-2.0
"""A tampered journal: each change is reported with its file and sequence number, exit code 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG
from test_replay import AUTHENTICITY, START, entries, run_replay

from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.journal.writer import GENESIS, Journal, canonical, journal_files, line_hash

JOURNAL_KEY = bytes(range(32))
EDITED, REMOVED = 10, 20  # and a MAC flipped in the first signed entry after seq 30


def write_journal(
    directory: Path, *, key: bytes | None = JOURNAL_KEY, tear_rate: float = 0.05, taps: int = 60
) -> Path:
    """A demo journal (with HMACs unless ``key`` is None); returns its one file."""
    settings = load_settings(CONFIG)
    with Journal(directory, key=key) as journal:
        run_demo(
            CONFIG, settings, taps=taps, seed=2, start=START, journal=journal, tear_rate=tear_rate
        )
    (path,) = journal_files(directory)
    return path


def write_journal_key(directory: Path) -> Path:
    """JOURNAL_KEY as hex in ``directory``/journal.key, mode 0600 as the checked reader requires."""
    path = directory / "journal.key"
    path.write_text(JOURNAL_KEY.hex(), encoding="utf-8")
    path.chmod(0o600)
    return path


def signed_after(lines: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    """The first entry after ``seq`` whose session the card signed."""
    return next(e for e in lines if e["seq"] > seq and e.get("card_mac") and e["mac_verified"])


def flip_mac(entry: dict[str, Any]) -> None:
    """Flip one bit of the card MAC in the Close answer of the trace (and in ``card_mac``); a
    PKI tap's signature likewise."""
    close = next(x for x in entry["trace"]["card"] if x["c"][2:4] == "8E")
    response = bytearray.fromhex(close["r"])
    response[-3] ^= 0x01  # last MAC byte, before the status word
    close["r"] = response.hex().upper()
    entry["card_mac"] = response[-2 - len(bytes.fromhex(entry["card_mac"])) : -2].hex().upper()


Tampered = tuple[Path, Path, int, int, set[tuple[str, int]]]


@pytest.fixture
def tampered(tmp_path: Path) -> Tampered:
    """Edited seq 10, removed seq 20, a MAC bit flipped, a torn tail; returns paths and seqs,
    and the closing intent the removal leaves unsettled when seq 20 is the tap of seq 19's."""
    directory = tmp_path / "journal"
    path = write_journal(directory)
    raw = path.read_text(encoding="utf-8").splitlines()
    lines = [json.loads(line) for line in raw]
    edited = lines[EDITED - 1]
    # A debit hidden after the fact (or one invented, if the fleet's tap 10 paid nothing).
    edited["debit"] = 0 if edited["debit"] else 1
    raw[EDITED - 1] = canonical(edited)
    flipped = signed_after(lines, 30)
    flip_mac(flipped)
    raw[flipped["seq"] - 1] = canonical(flipped)
    del raw[REMOVED - 1]
    last_seq = lines[-1]["seq"]
    path.write_text("\n".join(raw) + "\n" + '{"seq": 61, "tap_ti', encoding="utf-8")
    before = lines[REMOVED - 2]
    unsettled = {("unsettled_intent", REMOVED - 1)} if before.get("kind") == "intent" else set()
    return directory, path, flipped["seq"], last_seq, unsettled


def test_each_change_reported(tampered: Tampered, tmp_path: Path) -> None:
    """Edited, missing, MAC failure and torn tail, each at its file and seq; exit code 1."""
    directory, path, flipped, last_seq, unsettled = tampered
    key_file = write_journal_key(tmp_path)
    code, doc = run_replay(str(directory), *AUTHENTICITY, "--journal-key-file", str(key_file))
    assert code == 1
    integrity = doc["integrity"]
    assert not integrity["ok"]
    found = {(p["kind"], p["seq"]) for p in integrity["breaks"]}
    assert ("edited", EDITED) in found and ("hmac_failure", EDITED) in found
    assert ("missing", REMOVED) in found
    assert ("edited", flipped) in found and ("hmac_failure", flipped) in found
    assert len(found) == 5 + len(unsettled) and unsettled <= found
    assert all(p["file"] == str(path) for p in integrity["breaks"])
    edited = next(p for p in integrity["breaks"] if p["kind"] == "edited" and p["seq"] == EDITED)
    assert edited["line"] == EDITED  # the line of the changed entry itself
    missing = next(p for p in integrity["breaks"] if p["kind"] == "missing")
    assert "seq 20 missing" in missing["detail"]
    assert doc["mac"]["failed"] == 1
    (failure,) = doc["mac"]["failures"]
    assert (failure["file"], failure["seq"]) == (str(path), flipped)
    assert failure["gate_verified"] is True
    (torn,) = integrity["quarantined"]
    assert torn["kind"] == "torn_tail" and torn["file"] == str(path)
    assert torn["after_seq"] == last_seq


def test_without_journal_key(tampered: Tampered) -> None:
    """Without the key the chain still shows the edit and the removal."""
    directory, _, flipped, _, unsettled = tampered
    code, doc = run_replay(str(directory))
    kinds = {(p["kind"], p["seq"]) for p in doc["integrity"]["breaks"]}
    assert kinds == {("edited", EDITED), ("missing", REMOVED), ("edited", flipped)} | unsettled
    assert code == 1


def test_forged_chain_caught_by_mac(tmp_path: Path) -> None:
    """A forger who rebuilds the whole chain passes integrity, not the MAC recomputation."""
    directory = tmp_path / "journal"
    path = write_journal(directory, key=None)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    flipped = signed_after(lines, 0)
    flip_mac(flipped)
    prev, out = GENESIS, []
    for entry in lines:
        entry["prev"] = prev
        line = canonical(entry)
        out.append(line)
        prev = line_hash(line)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    code, doc = run_replay(str(directory), *AUTHENTICITY)
    assert doc["integrity"]["ok"] and doc["mac"]["failed"] == 1 and code == 1
    assert doc["mac"]["failures"][0]["seq"] == flipped["seq"]


def test_quarantined_tail_listed(tmp_path: Path) -> None:
    """A torn tail the writer moved aside is listed, and does not break integrity."""
    directory = tmp_path / "journal"
    path = write_journal(directory, key=None)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"seq": 61, "torn')
    with Journal(directory) as journal:
        assert journal.report.quarantined
    code, doc = run_replay(str(directory))
    (moved,) = doc["integrity"]["quarantined"]
    assert moved["kind"] == "quarantine_file" and moved["size"] == len('{"seq": 61, "torn')
    assert doc["integrity"]["ok"] and code == 0


def test_unresolved_unknown_listed(tmp_path: Path) -> None:
    """An unknown whose card never came back (the journal ends there) is listed unresolved."""
    directory = tmp_path / "journal"
    path = write_journal(directory, key=None, tear_rate=0.3, taps=150)
    lines = path.read_text(encoding="utf-8").splitlines()
    first = next(json.loads(x) for x in lines if json.loads(x).get("outcome") == "unknown")
    path.write_text("\n".join(lines[: first["seq"]]) + "\n", encoding="utf-8")
    code, doc = run_replay(str(directory))
    assert code == 0
    assert doc["unknown"]["total"] == 1 and doc["unknown"]["resolved"] == 0
    (unresolved,) = doc["unknown"]["unresolved"]
    assert (unresolved["seq"], unresolved["card"]) == (first["seq"], first["card"])
    assert entries(directory)[-1]["seq"] == first["seq"]
