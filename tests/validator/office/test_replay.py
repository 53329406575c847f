# SPDX-License-Identifier: Apache-2.0
"""``validator replay`` on a real demo journal with tears: everything checks out.

Seed 5, 150 passengers, a tear rate of 0.3: the run has unknown outcomes (some whose lost Close
committed, some not, a PKI tap's among them), recoveries, anti-passback refusals, card losses,
every product of the demo fleet (carnet, season pass, SV purse, Intercode card, the PKI cards).
Every unknown's card comes back (the passenger retries at once), so every unknown must be
resolved.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CONFIG

from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.cli.main import main
from validator.journal.writer import Journal, journal_files

START = dt.datetime(2026, 3, 2, 7, 0)
KEYS = CONFIG / "keys.sim.yaml"
PKI_ROOT = CONFIG / "pki" / "test_pki_root.yaml"
# What verifies every signed tap of the demo: the SAM keys, and the PKI root's public key.
AUTHENTICITY = ("--keys", str(KEYS), "--pki-root", str(PKI_ROOT))


def write_demo(
    directory: Path, *, taps: int = 150, seed: int = 5, tear: float = 0.3, name: str = ""
) -> None:
    """A demo run journaled into ``directory`` (by validator ``name``, default as configured)."""
    settings = load_settings(CONFIG)
    if name:
        settings = settings.model_copy(update={"validator_id": name})
    with Journal(directory) as journal:
        run_demo(
            CONFIG, settings, taps=taps, seed=seed, start=START, journal=journal, tear_rate=tear
        )


def records(directory: Path) -> list[dict[str, Any]]:
    """Every record of a journal directory: tap entries and closing intents."""
    return [
        json.loads(line)
        for path in journal_files(directory)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def entries(directory: Path) -> list[dict[str, Any]]:
    """Every tap entry of a journal directory (its closing intents left out)."""
    return [record for record in records(directory) if record.get("kind") != "intent"]


def run_replay(*args: str) -> tuple[int, dict[str, Any]]:
    """``validator replay ... --json``: the exit code and the document."""
    result = CliRunner().invoke(main, ["replay", *args, "--config", str(CONFIG), "--json"])
    return result.exit_code, json.loads(result.output)


@pytest.fixture(scope="module")
def demo_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo journal shared by the tests of this module."""
    directory = tmp_path_factory.mktemp("demo") / "journal"
    write_demo(directory)
    return directory


def test_demo_replay_checks_out(demo_journal: Path) -> None:
    """Integrity ok, every MAC verified, every decision the same, every unknown resolved."""
    code, doc = run_replay(str(demo_journal), *AUTHENTICITY)
    journal = entries(demo_journal)
    assert code == 0
    assert doc["entries"] == len(journal) == 150
    integrity = {k: doc["integrity"][k] for k in ("ok", "breaks", "counts", "quarantined")}
    assert integrity == {"ok": True, "breaks": [], "counts": {}, "quarantined": []}
    signed = sum(1 for e in journal if e["card_mac"] and e["outcome"] != "unknown")
    assert doc["mac"]["verified"] == signed > 50
    assert doc["mac"]["failed"] == 0
    assert doc["mac"]["verified"] + doc["mac"]["unverifiable"] == len(journal)
    pki_signed = sum(
        1 for e in journal if "pki" in e and e["card_mac"] and e["outcome"] != "unknown"
    )
    assert doc["mac"]["pki"]["verified"] == pki_signed > 5  # the PKI passengers, root key only
    decided = sum(1 for e in journal if e["decision"] is not None)
    assert doc["decisions"]["same"] == decided and doc["decisions"]["different"] == 0
    assert doc["decisions"]["revenue"]["difference"] == 0
    unknowns = [e for e in journal if e["outcome"] == "unknown"]
    assert doc["unknown"]["total"] == len(unknowns) >= 3
    assert doc["unknown"]["resolved"] == len(unknowns) and doc["unknown"]["unresolved"] == []
    assert 0 < doc["unknown"]["committed"] < len(unknowns)
    resolved_by_validator = {
        e["resolves"]["seq"]: e["resolves"] for e in journal if "resolves" in e
    }
    for item in doc["unknown"]["items"]:
        assert resolved_by_validator[item["seq"]]["committed"] == item["committed"]
    assert doc["unknown"]["disagreements"] == 0
    recovered = sum(1 for e in journal if e["outcome"] == "recovered")
    assert doc["recoveries"]["total"] == doc["recoveries"]["with_paid_entry"] == recovered > 0
    assert doc["double_debits"] == [] and doc["double_debit_count"] == 0


def test_every_layout_and_network_is_replayed(demo_journal: Path) -> None:
    """The journal holds decided taps of the demo layout and of both Intercode networks
    (250901, 250502), and each is decided again the same from the ticketing model."""
    _, doc = run_replay(str(demo_journal))
    decided = [e for e in entries(demo_journal) if e["decision"] is not None]
    cards = {(e["layout"], e["card"][:12]) for e in decided}
    assert {layout for layout, _ in cards} == {"demo", "intercode"}
    assert {card for layout, card in cards if layout == "intercode"} == {
        "00000000AB1D",  # Navigo-like, network 250901
        "000000002505",  # OùRA-like, network 250502
    }
    assert doc["decisions"]["same"] == len(decided) and doc["decisions"]["different"] == 0


def test_json_has_the_fields(demo_journal: Path) -> None:
    """The document carries at least the fields the issue asks for."""
    _, doc = run_replay(str(demo_journal))
    assert {"entries", "integrity", "mac", "decisions", "unknown", "double_debits"} <= set(doc)
    assert {"ok", "breaks", "quarantined"} <= set(doc["integrity"])
    assert {"verified", "failed", "unverifiable"} <= set(doc["mac"])
    assert {"same", "different"} <= set(doc["decisions"])
    assert {"total", "resolved"} <= set(doc["unknown"])
    assert doc["mac"]["checked"] is False  # no --keys: MACs not recomputed
    assert doc["mac"]["not_checked"] == doc["entries"]


def test_jobs_give_the_same_report(demo_journal: Path) -> None:
    """Two worker processes find exactly what one process finds."""
    _, one = run_replay(str(demo_journal), "--keys", str(KEYS))
    _, two = run_replay(str(demo_journal), "--keys", str(KEYS), "--jobs", "2")
    for doc in (one, two):
        for key in ("seconds", "taps_per_second"):
            doc.pop(key)
    assert one == two


def test_time_range(demo_journal: Path) -> None:
    """--since/--until keep the taps of the range; integrity still covers every line."""
    journal = entries(demo_journal)
    middle = journal[len(journal) // 2]["tap_time"]
    _, doc = run_replay(str(demo_journal), "--until", middle)
    before = sum(1 for e in journal if e["tap_time"] < middle)
    assert doc["entries"] == before and doc["lines"] == len(records(demo_journal))
    _, doc = run_replay(str(demo_journal), "--since", middle)
    assert doc["entries"] == len(journal) - before


def test_readable_summary_and_out_file(demo_journal: Path, tmp_path: Path) -> None:
    """Without --json: rich tables; --out writes the JSON document too."""
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        main, ["replay", str(demo_journal), "--config", str(CONFIG), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "integrity" in result.output and "ok" in result.output
    assert json.loads(out.read_text())["entries"] == 150


def test_bad_input_exit_code(tmp_path: Path) -> None:
    """No journal, or a range that ends before it starts: exit code 2."""
    runner = CliRunner()
    result = runner.invoke(main, ["replay", str(tmp_path), "--config", str(CONFIG)])
    assert result.exit_code == 2 and "no journal file" in result.output
    result = runner.invoke(main, ["replay", str(tmp_path / "missing")])
    assert result.exit_code == 2
    args = ["replay", str(tmp_path), "--since", "2026-03-02", "--until", "2026-03-01"]
    assert runner.invoke(main, args).exit_code == 2


def test_many_validators(tmp_path: Path) -> None:
    """A folder of several validators' journals: each chain apart, taps merged."""
    write_demo(tmp_path / "network" / "a", taps=40, seed=4, name="validator-a")
    write_demo(tmp_path / "network" / "b", taps=30, seed=5, name="validator-b")
    code, doc = run_replay(str(tmp_path / "network"), "--keys", str(KEYS))
    assert code == 0
    assert [j["entries"] for j in doc["journals"]] == [40, 30]
    assert doc["entries"] == 70 and doc["integrity"]["ok"]
