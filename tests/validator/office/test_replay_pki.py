# SPDX-License-Identifier: Apache-2.0
"""``validator replay --pki-root``: PKI taps verified with the root's public key only (issue 19).

A station built from the shipped settings journals PKI taps (the first reading the
certificates, later ones naming them by reference) and a symmetric tap; replay is given the
root key file and nothing else: no --keys, no SAM.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CARDS, CONFIG, make_card

from calypso.emulator.dispatch import CardEmulator
from lab.pki.cards import PkiCard
from readers.emulated import EmulatedReader
from sam.software.link import software_sam
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.cli.main import main
from validator.engine.fares.decide import TapContext
from validator.engine.outcome import Outcome
from validator.engine.pki.files import RootKeyFile
from validator.journal.entry import JournalEntry
from validator.journal.writer import Journal, journal_files
from validator.office.replay.mac import FAILED, UNVERIFIABLE, VERIFIED
from validator.office.replay.pki import PkiAuditor
from yamlconfig import load_model

START = dt.datetime(2026, 3, 2, 8, 0)
ROOT = CONFIG / "pki" / "test_pki_root.yaml"
SERIAL = bytes.fromhex("00000000C0FFEE52")


def journal_taps(directory: Path, cards: list[tuple[CardEmulator, dt.datetime]]) -> list[Outcome]:
    """Tap each card at its time through a station of the shipped settings, journaled."""
    settings = load_settings(CONFIG, environ={})
    sam = software_sam(CONFIG / settings.keys, allow_simulation=True)
    reader = EmulatedReader("card")
    outcomes = []
    with Journal(directory) as journal:
        station = build_station(CONFIG, settings, reader=reader, sam=sam, journal=journal)
        for card, when in cards:
            reader.insert(card)
            record = station.processor.process(reader.connect(), TapContext(when, 101))
            reader.remove()
            outcomes.append(record.result.outcome)
    return outcomes


def run_replay(*args: str) -> tuple[int, dict[str, Any]]:
    """``validator replay ... --json``: the exit code and the document."""
    result = CliRunner().invoke(main, ["replay", *args, "--config", str(CONFIG), "--json"])
    return result.exit_code, json.loads(result.output)


def entries(directory: Path) -> list[dict[str, Any]]:
    """Every tap entry of a journal directory, in order (the closing intents left out)."""
    lines = [
        json.loads(line)
        for path in journal_files(directory)
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    return [line for line in lines if "kind" not in line]


@pytest.fixture(scope="module")
def journal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three taps of one PKI card (the first reads its certificates), one symmetric tap."""
    directory = tmp_path_factory.mktemp("pki") / "journal"
    card = PkiCard(CARDS / "multi_trip.yaml", SERIAL).card()
    taps = [(card, START + dt.timedelta(minutes=30 * n)) for n in range(3)]
    taps.append((make_card("multi_trip"), START))
    assert journal_taps(directory, taps) == [Outcome.GRANTED] * 4
    return directory


def test_pki_taps_verified_with_the_root_only(journal_dir: Path) -> None:
    """With only the root key file, every PKI tap verifies; the symmetric one is not checked."""
    code, doc = run_replay(str(journal_dir), "--pki-root", str(ROOT))
    assert code == 0
    mac = doc["mac"]
    assert mac["checked"] is True
    assert (mac["verified"], mac["failed"], mac["not_checked"]) == (3, 0, 1)
    assert mac["pki"] == {"verified": 3, "failed": 0, "unverifiable": 0, "not_checked": 0}
    journal = entries(journal_dir)
    assert [e["pki"]["cached"] for e in journal[:3]] == [False, True, True]
    assert sum(e["trace"]["card"][1]["c"].startswith("00CADF4C") for e in journal) == 1


def test_keys_alone_leave_pki_taps_unverifiable(journal_dir: Path) -> None:
    """The symmetric keys verify the symmetric tap; PKI taps need their root, said so."""
    code, doc = run_replay(str(journal_dir), "--keys", str(CONFIG / "keys.sim.yaml"))
    assert code == 0
    assert (doc["mac"]["verified"], doc["mac"]["unverifiable"]) == (1, 3)


def test_both_verify_everything(journal_dir: Path) -> None:
    """Keys and root together verify every tap, in parallel jobs too (PKI runs in order)."""
    code, doc = run_replay(
        str(journal_dir),
        "--keys",
        str(CONFIG / "keys.sim.yaml"),
        "--pki-root",
        str(ROOT),
        "--jobs",
        "2",
    )
    assert code == 0
    assert doc["mac"]["verified"] == 4


def test_later_range_still_finds_the_certificate(journal_dir: Path) -> None:
    """--since after the tap that read the certificates: the later taps still verify."""
    since = (START + dt.timedelta(minutes=10)).isoformat()
    code, doc = run_replay(str(journal_dir), "--pki-root", str(ROOT), "--since", since)
    assert code == 0
    assert doc["mac"]["pki"]["verified"] == 2


def test_tampered_answer_fails(journal_dir: Path, tmp_path: Path) -> None:
    """A card answer changed in the last PKI tap's trace breaks its signature: failed, exit 1."""
    copy = tmp_path / "journal"
    copy.mkdir()
    files = journal_files(journal_dir)
    lines = [json.loads(line) for line in files[-1].read_text().splitlines()]
    last_pki = max(i for i, e in enumerate(lines) if "pki" in e)
    for exchange in lines[last_pki]["trace"]["card"]:
        if exchange["c"][2:4] == "B2" and len(exchange["r"]) > 8:  # a record read in session
            exchange["r"] = ("00" if exchange["r"][:2] != "00" else "01") + exchange["r"][2:]
            break
    for path in files[:-1]:
        (copy / path.name).write_text(path.read_text())
    (copy / files[-1].name).write_text("".join(json.dumps(e) + "\n" for e in lines))
    code, doc = run_replay(str(copy), "--pki-root", str(ROOT))
    assert code == 1
    assert doc["mac"]["pki"]["failed"] == 1
    assert any("PKI signature wrong" in f["note"] for f in doc["mac"]["failures"])


def test_certificate_not_in_the_journals(journal_dir: Path) -> None:
    """A tap whose certificate is only named, with the tap that read it gone: unverifiable."""
    auditor = PkiAuditor([load_model(ROOT, RootKeyFile).root()])
    later = JournalEntry.from_json(entries(journal_dir)[1])
    check = auditor.check(later, START.date())
    assert check.status == UNVERIFIABLE and "not in these journals" in check.note
    first = JournalEntry.from_json(entries(journal_dir)[0])
    auditor.harvest(first)
    assert auditor.check(later, START.date()).status == VERIFIED


def test_wrong_root_fails(journal_dir: Path) -> None:
    """Another root's key does not verify the CA certificate: failed."""
    good = load_model(ROOT, RootKeyFile)
    modulus = bytearray(bytes.fromhex(good.modulus))
    modulus[-1] ^= 0x02
    other = good.model_copy(update={"modulus": modulus.hex()}).root()
    auditor = PkiAuditor([other])
    first = JournalEntry.from_json(entries(journal_dir)[0])
    auditor.harvest(first)
    check = auditor.check(first, START.date())
    assert check.status == FAILED and "certificate_signature" in check.note
