# SPDX-License-Identifier: Apache-2.0
"""Replay reports of a fixed journal stay byte for byte what they were (speed-ups change nothing).

The journals in ``golden/`` are two real demo runs (validators gate-a and gate-b, seeds 5 and
11, tear rate 0.3, the same fleet of cards): unknown taps, recoveries, card losses, PKI taps,
anti-passback refusals, closing intents; gate-b's entries carry HMACs (key ``bytes(range(32))``).
``golden/expected/*.json`` are the reports of commit 8b86190 (main before the replay speed-ups)
for each case below, the run time left out and the temporary folder named ``TMP``. Write them
again only for a change of result that is meant: ``REPLAY_GOLDEN_WRITE=1 pytest this-file``.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from validator.app.settings import load_settings
from validator.cli.main import main
from validator.engine.fares.decide import FareRules
from validator.office.replay import audit
from validator.office.replay.audit import ReplayRequest, replay
from validator.office.replay.line import Options
from yamlconfig import load_model

GOLDEN = Path(__file__).parent / "golden"
EXPECTED = GOLDEN / "expected"
FILE_NAME = "journal-s000000000001-20261205.jsonl"
KEYS = CONFIG / "keys.sim.yaml"
PKI_ROOT = CONFIG / "pki" / "test_pki_root.yaml"
JOURNAL_KEY = bytes(range(32))  # a test key: gate-b's journal was written with it
WRITE = os.environ.get("REPLAY_GOLDEN_WRITE") == "1"


@pytest.fixture
def journals(tmp_path: Path) -> Path:
    """The golden journals unpacked into ``tmp_path``/gate-a and gate-b."""
    for name in ("gate-a", "gate-b"):
        folder = tmp_path / name
        folder.mkdir()
        data = gzip.decompress((GOLDEN / f"{name}.jsonl.gz").read_bytes())
        (folder / FILE_NAME).write_bytes(data)
    return tmp_path


def _tamper(folder: Path) -> None:
    """Edit a debit, remove a line, insert garbage, copy a line and tear the tail of a journal."""
    path = folder / FILE_NAME
    lines = path.read_bytes().split(b"\n")[:-1]
    edited = json.loads(lines[40])
    edited["debit"] = int(edited.get("debit") or 0) + 5
    lines[40] = json.dumps(edited, separators=(",", ":")).encode()
    del lines[70]
    lines.insert(90, b'{"seq": "not a number", "prev": 3}')
    lines.insert(100, b"not json at all")
    lines.insert(120, lines[119])
    path.write_bytes(b"\n".join(lines) + b"\n" + lines[-1][:50])


def _canonical(doc: dict[str, Any], tmp: Path) -> str:
    """The report as compared: no run time, the temporary and golden folders named."""
    for key in ("seconds", "taps_per_second"):
        doc.pop(key, None)
    text = json.dumps(doc, indent=1, sort_keys=False)
    return text.replace(str(tmp), "TMP").replace(str(GOLDEN), "GOLDEN") + "\n"


def _check(name: str, doc: dict[str, Any], tmp: Path) -> None:
    text = _canonical(doc, tmp)
    path = EXPECTED / f"{name}.json"
    if WRITE:
        EXPECTED.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def _cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["replay", *args, "--config", str(CONFIG), "--json"])
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def _key_file(tmp: Path) -> str:
    path = tmp / "journal.key"
    path.write_text(JOURNAL_KEY.hex(), encoding="utf-8")
    path.chmod(0o600)
    return str(path)


CLI_CASES: dict[str, Callable[[Path], list[str]]] = {
    "in_force": lambda t: [str(t / "gate-a"), str(t / "gate-b")],
    "authenticity": lambda t: [
        str(t / "gate-a"),
        str(t / "gate-b"),
        *("--keys", str(KEYS), "--pki-root", str(PKI_ROOT)),
    ],
    "keys_only": lambda t: [str(t / "gate-a"), "--keys", str(KEYS)],
    "journal_key": lambda t: [
        str(t / "gate-a"),
        str(t / "gate-b"),
        "--journal-key-file",
        _key_file(t),
    ],
    "whatif": lambda t: [
        str(t / "gate-a"),
        str(t / "gate-b"),
        "--fares",
        str(GOLDEN / "whatif-fares.yaml"),
    ],
    "range": lambda t: [
        str(t / "gate-a"),
        str(t / "gate-b"),
        *("--since", "2026-03-02T08:00:00", "--until", "2026-03-02T09:30:00"),
    ],
    "jobs2": lambda t: [str(t / "gate-a"), str(t / "gate-b"), "--jobs", "2", "--keys", str(KEYS)],
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_report_unchanged(case: str, journals: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``validator replay ... --json`` prints the same report as before, in every mode."""
    monkeypatch.setattr(audit, "BATCH_LINES", 16)  # many batches, in flight across workers
    _check(case, _cli(*CLI_CASES[case](journals)), journals)


def test_tampered_report_unchanged(journals: Path) -> None:
    """A journal edited, cut, with garbage, a copied line and a torn tail reports as before."""
    _tamper(journals / "gate-a")
    doc = _cli(str(journals / "gate-a"), str(journals / "gate-b"), "--keys", str(KEYS))
    _check("tampered", doc, journals)


def _api(journals: Path, options: Options, rules: FareRules) -> dict[str, Any]:
    paths = [journals / "gate-a", journals / "gate-b"]
    request = ReplayRequest(paths, options, "in force", rules, reconcile=options.taps)
    return replay(request).as_json()


@pytest.mark.parametrize("mode", ["uncached", "integrity", "cached_twice"])
def test_bench_modes_unchanged(mode: str, journals: Path) -> None:
    """The benchmark's modes (no decoded record kept; integrity only) report as before."""
    settings = load_settings(CONFIG)
    rules = load_model(CONFIG / settings.fares, FareRules)
    layouts = tuple(settings.layouts.items())
    if mode == "integrity":
        options = Options(None, taps=False)
    else:
        cache = 0 if mode == "uncached" else 4096
        options = Options(rules, None, KEYS, layouts=layouts, record_cache=cache)
    doc = _api(journals, options, rules)
    if mode == "cached_twice":  # the second pass finds every record kept by the first
        doc = _api(journals, options, rules)
    _check(mode, doc, journals)
