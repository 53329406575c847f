# SPDX-License-Identifier: Apache-2.0
"""A small network of validators for the cluster tests, journaled by the real writer.

Four demo runs (tears: unknowns, recoveries, card losses): validator-a at station 101 and
validator-b at 102 (one station group) serve the same passengers at the same times, so every
debit of one is a double debit with the other's; validator-c at 201 and validator-d at 101
(twenty minutes later) add other cards' taps at other places. Every entry is HMACed with a
journal key of its own, in a 0600 key file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import CARDS, CONFIG

from lab.pki.cards import PkiCard
from readers.emulated import EmulatedReader
from sam.software.link import software_sam
from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.cli.main import main
from validator.engine.fares.decide import TapContext
from validator.journal.writer import Journal, journal_files

START = dt.datetime(2026, 3, 2, 7, 0)
KEYS = CONFIG / "keys.sim.yaml"
PKI_ROOT = CONFIG / "pki" / "test_pki_root.yaml"
# (name, station, seed, taps, minutes after START)
VALIDATORS = (
    ("a", 101, 4, 50, 0),
    ("b", 102, 4, 50, 0),
    ("c", 201, 6, 30, 3),
    ("d", 101, 5, 30, 20),
)


@dataclass(frozen=True)
class Network:
    """The journals' folder, the journal key and its file."""

    journals: Path
    key: bytes
    key_file: Path

    def args(self) -> list[str]:
        """The replay options every comparison uses: MACs, PKI signatures, HMACs."""
        keys = ["--keys", str(KEYS), "--pki-root", str(PKI_ROOT)]
        return [*keys, "--journal-key-file", str(self.key_file)]


def _config_at(station: int, folder: Path) -> Path:
    """A copy of the shipped configuration whose validator stands at ``station``."""
    if station == 101:
        return CONFIG
    shutil.copytree(CONFIG, folder)
    fares = folder / "fares.yaml"
    fares.write_text(fares.read_text().replace("location_id: 101", f"location_id: {station}"))
    return folder


def write_network(root: Path) -> Network:
    """The four validators' journals under ``root / "journals"``."""
    key = os.urandom(32)
    key_file = root / "journal.key"
    key_file.write_text(key.hex() + "\n")
    key_file.chmod(0o600)
    for name, station, seed, taps, minutes in VALIDATORS:
        config = _config_at(station, root / f"config-{name}")
        settings = load_settings(config).model_copy(update={"validator_id": f"validator-{name}"})
        start = START + dt.timedelta(minutes=minutes)
        with Journal(root / "journals" / name, key=key, max_bytes=60_000) as journal:
            run_demo(
                config, settings, taps=taps, seed=seed, start=start, journal=journal, tear_rate=0.3
            )
    return Network(root / "journals", key, key_file)


def run_replay(*args: str) -> tuple[int, dict[str, Any], str]:
    """``validator replay ... --json``: the exit code, the document and stderr."""
    result = CliRunner().invoke(main, ["replay", *args, "--config", str(CONFIG), "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads(result.stdout), result.stderr


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what differs from run to run: the time taken, the cluster part."""
    return {k: v for k, v in doc.items() if k not in ("seconds", "taps_per_second", "cluster")}


PKI_SERIAL = bytes.fromhex("00000000C0FFEE53")


def write_pki_pair(root: Path) -> Path:
    """Two validators' journals where one PKI card's certificate is read only by the other.

    validator-b taps the card at START-60 (reading its certificates), START-30 and START+30
    (naming them: cached); validator-a taps it at START, reading them again. b's first file,
    which holds the read, is then removed, as a folder of one month lacks the month before.
    """
    card = PkiCard(CARDS / "multi_trip.yaml", PKI_SERIAL).card()
    journals = root / "journals"
    stations = {}
    opened = contextlib.ExitStack()
    for name in ("a", "b"):
        settings = load_settings(CONFIG, environ={}).model_copy(
            update={"validator_id": f"validator-{name}"}
        )
        sam = software_sam(CONFIG / settings.keys, allow_simulation=True)
        reader = EmulatedReader("card")
        # One entry a file (max_bytes=1): b's first tap can be taken away alone.
        journal = opened.enter_context(Journal(journals / name, max_bytes=1))
        station = build_station(CONFIG, settings, reader=reader, sam=sam, journal=journal)
        stations[name] = (station, reader)
    for name, minutes in (("b", -60), ("b", -30), ("a", 0), ("b", 30)):
        station, reader = stations[name]
        reader.insert(card)
        when = START + dt.timedelta(minutes=minutes)
        station.processor.process(reader.connect(), TapContext(when, 101))
        reader.remove()
    opened.close()
    files = journal_files(journals / "b")
    reading = [n for n, path in enumerate(files) if "00CADF" in path.read_text()]
    assert len(reading) == 1, "b read the certificates once"
    for path in files[: reading[0] + 1]:  # that tap and its closing intent before it
        path.unlink()
    return journals
