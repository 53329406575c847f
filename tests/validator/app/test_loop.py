# SPDX-License-Identifier: Apache-2.0
"""The gate loop and ``validator run``: taps served, outages, journal."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CONFIG, DEMO_AID, make_card

from readers.base import ReaderError
from readers.channel import ApduChannel
from readers.emulated import EmulatedConnection, EmulatedReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.gate import NullGate
from validator.app.loop import run_loop
from validator.cli.main import main
from validator.engine.fares.decide import FareRules
from validator.engine.outcome import Outcome
from validator.engine.tap import TapProcessor
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal
from yamlconfig import load_model


def processor_with(sam_reader: EmulatedReader, journal: Journal | None = None) -> TapProcessor:
    """A processor on the shipped rules with a software SAM in ``sam_reader``."""
    sam_reader.insert(SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
    channel = ApduChannel(sam_reader.connect(), label="sam")
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    return TapProcessor(LegacySam(channel), rules, [DEMO_AID], "test", journal)


class FlakyReader:
    """An emulated reader that fails ``failures`` times before working (pcscd restarting)."""

    def __init__(self, failures: int) -> None:
        self.name = "flaky"
        self.inner = EmulatedReader("flaky")
        self.failures = failures

    def wait_for_card(self, timeout: float | None = None) -> EmulatedConnection | None:
        """Fail while the outage lasts, then behave."""
        if self.failures:
            self.failures -= 1
            raise ReaderError("Service not available")
        return self.inner.wait_for_card(timeout)

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        """Take the card away at once (the passenger walks through)."""
        self.inner.remove()
        return True


class TestRunLoop:
    """run_loop serves cards one after another."""

    def test_three_cards(self, tmp_path: Path) -> None:
        """Three cards in turn: three taps journaled, in order, chain intact."""
        reader = EmulatedReader("card")
        cards = [make_card("multi_trip"), make_card("season_pass"), make_card("expired")]
        gate = NullGate()
        stop = threading.Event()

        def passengers() -> None:
            for number, card in enumerate(cards, start=1):
                reader.insert(card)
                while len(gate.records) < number and not stop.is_set():
                    stop.wait(0.005)
                reader.remove()

        with Journal(tmp_path) as journal:
            feeder = threading.Thread(target=passengers, daemon=True)
            feeder.start()
            served = run_loop(
                reader,
                processor_with(EmulatedReader("sam"), journal),
                gate,
                station=101,
                max_taps=3,
                stop=stop,
                poll_s=0.05,
            )
            stop.set()
        assert served == 3
        outcomes = [r.result.outcome for r in gate.records]
        assert outcomes == [Outcome.GRANTED, Outcome.GRANTED, Outcome.DENIED]
        report = verify_journal(tmp_path)
        assert report.ok and report.entries == 3 and report.intents == 2  # one per Close

    def test_reader_outage_then_service(self) -> None:
        """A reader that fails twice: out of service twice, then the card is served."""
        reader = FlakyReader(failures=2)
        reader.inner.insert(make_card("season_pass"))
        gate = NullGate()
        served = run_loop(
            reader,
            processor_with(EmulatedReader("sam")),
            gate,
            station=101,
            max_taps=1,
            backoff_s=0.01,
        )
        assert served == 1
        assert len(gate.outages) == 2 and "Service not available" in gate.outages[0]
        assert gate.records[0].result.outcome is Outcome.GRANTED

    def test_missing_sam_keeps_the_gate_shut(self) -> None:
        """No SAM: out of service, no card processed; the SAM comes back: service resumes."""
        sam_reader = EmulatedReader("sam")
        processor = processor_with(sam_reader)
        software = SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)
        sam_reader.remove()
        reader = EmulatedReader("card")
        reader.insert(make_card("season_pass"))
        gate = NullGate()
        stop = threading.Event()

        def sam_back() -> None:
            stop.wait(0.1)
            sam_reader.insert(software)
            processor.sam = LegacySam(ApduChannel(sam_reader.connect(), label="sam"))

        threading.Thread(target=sam_back, daemon=True).start()
        served = run_loop(reader, processor, gate, station=101, max_taps=1, backoff_s=0.02)
        assert gate.outages and gate.outages[0].startswith("SAM")
        assert served == 1 and gate.records[0].result.outcome is Outcome.GRANTED


class TestRunCommand:
    """validator run on the embedded default."""

    @pytest.fixture
    def config_copy(self, tmp_path: Path) -> Path:
        """The shipped configuration with the journal in the test's folder."""
        target = tmp_path / "config"
        shutil.copytree(CONFIG, target)
        settings = target / "validator.yaml"
        settings.write_text(settings.read_text().replace("../var/journal", str(tmp_path / "j")))
        return target

    def test_max_taps_json(self, config_copy: Path, tmp_path: Path) -> None:
        """--max-taps 3 --json serves three simulated passengers and journals them."""
        result = CliRunner().invoke(
            main,
            ["run", "--config", str(config_copy), "--max-taps", "3", "--json", "--interval", "0"],
        )
        assert result.exit_code == 0, result.stderr
        taps = [json.loads(line) for line in result.stdout.splitlines()]
        assert [t["tap"] for t in taps] == [1, 2, 3]
        report = verify_journal(tmp_path / "j")
        # Each tap's entry follows its closing intent, if its Close committed writes.
        seqs = [t["journal_seq"] for t in taps]
        assert seqs == sorted(seqs) and seqs[-1] == report.last_seq
        assert all(t["station"] == 101 for t in taps)
        assert report.entries == 3 and len(set(seqs)) == 3

    def test_broken_config_stops_with_exit_2(self, config_copy: Path) -> None:
        """A broken validator.yaml stops run with the file, the line and exit code 2."""
        settings = config_copy / "validator.yaml"
        settings.write_text(settings.read_text() + "\nunknown_option: 1\n")
        result = CliRunner().invoke(main, ["run", "--config", str(config_copy), "--max-taps", "1"])
        assert result.exit_code == 2
        assert "validator.yaml:" in result.stderr and "unknown_option" in result.stderr
