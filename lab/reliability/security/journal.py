# SPDX-License-Identifier: Apache-2.0
"""(d) Journal tampering is detected by ``validator replay``.

A real journal is written by ``validator.app.demo.run_demo`` (tears included), once without and
once with an HMAC journal key. Each tampering is made on a copy: an entry edited (its debit
hidden), an entry deleted, two entries swapped, a bit of a card MAC flipped in a Close answer
of the trace, and the forger's variants that rebuild the hash chain afterwards (caught by the
HMAC, or by the MAC recomputation with ``--keys``). ``validator replay --json`` must report
each at the right sequence number and exit 1; the untouched journal must replay clean (exit 0).
One run goes through the installed console script as a subprocess, the others through the
click command in process.

The tail cases (issue 15.3) tamper with the end, where no later ``prev`` can show an edit: the
last lines deleted, the last line rewritten as a granted 999 debit, a garbage line appended, and
a middle edit with the whole chain recomputed. The head published before (``journal-head``) is
given as ``--anchor``: each must be reported (``truncated``, ``anchor_mismatch``, ``unreadable``,
and ``hmac_failure`` with a key), by replay and by export, which must write nothing.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from click.testing import CliRunner

from lab.paths import CONFIG
from lab.reliability.report import Level
from lab.reliability.security.station import START
from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.cli.main import main
from validator.journal.head import journal_head
from validator.journal.writer import GENESIS, Journal, canonical, journal_files, line_hash

KEYS = CONFIG / "keys.sim.yaml"
TAPS = 60
Entries = list[dict[str, Any]]


class Checker(Protocol):
    """What the part's check collector offers (lab.reliability.security.campaign.Checks)."""

    def expect(self, ok: bool, what: str) -> bool:
        """One check."""
        ...


def journal_key() -> bytes:
    """The campaign's journal HMAC key (a test key, generated, never shipped)."""
    return random.Random(4242).randbytes(32)  # noqa: S311 - a throw-away test key


def write_journal(directory: Path, key: bytes | None) -> Path:
    """A demo journal of TAPS taps; returns its one file."""
    settings = load_settings(CONFIG)
    with Journal(directory, key=key) as journal:
        run_demo(CONFIG, settings, taps=TAPS, seed=5, start=START, journal=journal, tear_rate=0.1)
    (path,) = journal_files(directory)
    return path


def replay(
    directory: Path,
    key_file: Path | None,
    *,
    subprocess_run: bool = False,
    anchor: str | None = None,
) -> Any:
    """``validator replay DIR --keys ... --pki-root ... --json``: (exit code, document).

    The demo journal holds PKI taps too: their signatures are checked with the test root."""
    args = [str(directory), "--config", str(CONFIG), "--keys", str(KEYS), "--json"]
    args += ["--pki-root", str(CONFIG / "pki" / "test_pki_root.yaml")]
    if key_file is not None:
        args += ["--journal-key-file", str(key_file)]
    if anchor is not None:
        args += ["--anchor", anchor]
    if subprocess_run:
        exe = Path(sys.executable).with_name("validator")
        done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [str(exe), "replay", *args], capture_output=True, text=True, timeout=120, check=False
        )
        return done.returncode, json.loads(done.stdout)
    result = CliRunner().invoke(main, ["replay", *args])
    return result.exit_code, json.loads(result.output)


def _signed(entries: Entries, after: int) -> dict[str, Any]:
    return next(e for e in entries if e["seq"] > after and e.get("card_mac") and e["mac_verified"])


def _flip_mac(entry: dict[str, Any]) -> None:
    close = next(x for x in entry["trace"]["card"] if x["c"][2:4] == "8E" and len(x["r"]) > 4)
    response = bytearray.fromhex(close["r"])
    response[-3] ^= 0x01  # the MAC's last byte, before the status word
    close["r"] = response.hex().upper()


def _rechain(entries: Entries, key: bytes | None) -> list[str]:
    """The forger rebuilds every ``prev`` (and cannot rebuild the HMACs without the key)."""
    prev, lines = GENESIS, []
    for entry in entries:
        entry["prev"] = prev
        line = canonical(entry)
        lines.append(line)
        prev = line_hash(line)
    return lines


Tamper = Callable[[Entries, list[str], int], tuple[list[str], set[str], int]]


def edit(entries: Entries, raw: list[str], seq: int) -> tuple[list[str], set[str], int]:
    """Hide an entry's debit."""
    entry = entries[seq - 1]
    entry["debit"] = 0 if entry["debit"] else 5
    raw[seq - 1] = canonical(entry)
    return raw, {"edited"}, seq


def delete(entries: Entries, raw: list[str], seq: int) -> tuple[list[str], set[str], int]:
    """Remove an entry."""
    del raw[seq - 1]
    return raw, {"missing"}, seq


def swap(entries: Entries, raw: list[str], seq: int) -> tuple[list[str], set[str], int]:
    """Swap an entry with the next one."""
    raw[seq - 1], raw[seq] = raw[seq], raw[seq - 1]
    return raw, {"out_of_order", "missing", "edited"}, seq


def flip(entries: Entries, raw: list[str], seq: int) -> tuple[list[str], set[str], int]:
    """Flip a bit of the card MAC in the trace of the first signed entry from ``seq``."""
    entry = _signed(entries, seq - 1)
    _flip_mac(entry)
    raw[entry["seq"] - 1] = canonical(entry)
    return raw, {"edited", "mac_failed"}, entry["seq"]


def run_checks(workdir: Path, level: Level, checks: Checker) -> dict[str, object]:
    """Every tampering on journals with and without an HMAC key; figures for the report."""
    positions = level.pick(8, 3, 1)
    key = journal_key()
    key_file = workdir / "journal.key"
    workdir.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(key.hex(), encoding="utf-8")
    tampered = missed = 0
    for keyed in (False, True):
        original = workdir / ("hmac" if keyed else "plain") / "journal"
        path = write_journal(original, key if keyed else None)
        used_key = key_file if keyed else None
        code, doc = replay(original, used_key, subprocess_run=keyed)
        checks.expect(
            code == 0 and doc["integrity"]["ok"] and doc["mac"]["failed"] == 0,
            f"untouched journal (hmac {keyed}) does not replay clean: exit {code}",
        )
        raw = path.read_text(encoding="utf-8").splitlines()
        rnd = random.Random(7)  # noqa: S311 - reproducible positions
        cases: list[tuple[str, Tamper, int]] = [
            (tamper.__name__, tamper, rnd.randint(2, len(raw) - 3))
            for tamper in (edit, delete, swap, flip)
            for _ in range(positions)
        ]
        for name, tamper, seq in cases:
            entries = [json.loads(line) for line in raw]
            lines, kinds, at = tamper(entries, list(raw), seq)
            copy = original.parent / f"{name}-{seq}"
            shutil.rmtree(copy, ignore_errors=True)
            copy.mkdir()
            (copy / path.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
            tampered += 1
            if keyed and name == "edit":
                kinds = kinds | {"hmac_failure"}
            if not _reported(
                replay(copy, used_key), kinds, at, f"{name}@{seq} hmac {keyed}", checks
            ):
                missed += 1
        # The forger who rebuilds the whole chain: the HMAC or the MAC recomputation catches it.
        entries = [json.loads(line) for line in raw]
        victim = _signed(entries, len(entries) // 2)
        _flip_mac(victim)
        if keyed:
            entries[2]["debit"] = 0 if entries[2]["debit"] else 5  # and a debit rewritten
        copy = original.parent / "rechained"
        copy.mkdir(exist_ok=True)
        (copy / path.name).write_text("\n".join(_rechain(entries, None)) + "\n", "utf-8")
        tampered += 1
        expected = {"mac_failed", "hmac_failure"} if keyed else {"mac_failed"}
        if not _reported(replay(copy, used_key), expected, victim["seq"], "rechained", checks):
            missed += 1
        tail_tampered, tail_missed = tail_checks(original, path, used_key, checks)
        tampered += tail_tampered
        missed += tail_missed
    return {"tampered": tampered, "tamper_missed": missed}


def _tail_cases(raw: list[str], key: bool) -> list[tuple[str, list[str], set[str]]]:
    """(name, tampered lines, kinds of which one must be reported) for each tail tampering."""
    last = json.loads(raw[-1])
    last.update(outcome="granted", debit=999)
    entries = [json.loads(line) for line in raw]
    middle = entries[len(entries) // 2]
    middle["debit"] = 0 if middle["debit"] else 5
    rewritten = {"anchor_mismatch"} | ({"hmac_failure"} if key else set())
    return [
        ("tail_deleted", raw[:-3], {"truncated"}),
        ("last_rewritten", [*raw[:-1], canonical(last)], rewritten),
        ("garbage_appended", [*raw, '{"seq": "garbage"}'], {"unreadable"}),
        ("middle_rechained", _rechain(entries, None), rewritten),
    ]


def tail_checks(
    original: Path, path: Path, key_file: Path | None, checks: Checker
) -> tuple[int, int]:
    """Each tail tampering, anchored by the head published before: (tampered, missed)."""
    head = journal_head(original)
    anchor = f"{head['validator']}:{head['seq']}:{head['hash']}"
    raw = path.read_text(encoding="utf-8").splitlines()
    missed = 0
    cases = _tail_cases(raw, key_file is not None)
    for name, lines, kinds in cases:
        copy = original.parent / name
        shutil.rmtree(copy, ignore_errors=True)
        copy.mkdir()
        (copy / path.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        code, doc = replay(copy, key_file, anchor=anchor)
        found = {p["kind"] for p in doc["integrity"]["breaks"]}
        caught = code == 1 and bool(found & kinds) and doc["integrity"]["warning"] is None
        args = ["export", str(copy), "--out", str(copy / "export"), "--anchor", anchor]
        args += ["--config", str(CONFIG)]
        if key_file is not None:
            args += ["--journal-key-file", str(key_file)]
        exported = CliRunner().invoke(main, args)
        refused = exported.exit_code == 1 and not list(copy.glob("export/*.*"))
        what = f"tail tampering {name} (hmac {key_file is not None})"
        if not checks.expect(caught, f"{what} not reported by replay (exit {code}, {found})"):
            missed += 1
        elif not checks.expect(refused, f"{what} exported (exit {exported.exit_code})"):
            missed += 1
    return len(cases), missed


def _reported(
    outcome: tuple[int, dict[str, Any]], kinds: set[str], seq: int, what: str, checks: Checker
) -> bool:
    """The replay exits 1 and names one of ``kinds`` near ``seq`` (mac_failed: exactly)."""
    code, doc = outcome
    found = {(p["kind"], p["seq"]) for p in doc["integrity"]["breaks"]}
    found |= {("mac_failed", f["seq"]) for f in doc["mac"]["failures"]}
    near = {k for k, s in found if isinstance(s, int) and abs(s - seq) <= 1}
    ok = code == 1 and bool(near & kinds)
    if "mac_failed" in kinds:
        ok = ok and ("mac_failed", seq) in found
    if "hmac_failure" in kinds:
        ok = ok and any(k == "hmac_failure" for k, _ in found)
    return checks.expect(ok, f"journal tampering {what} not reported (exit {code}, {found})")
