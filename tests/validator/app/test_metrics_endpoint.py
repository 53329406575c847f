# SPDX-License-Identifier: Apache-2.0
"""The Prometheus endpoint, scraped while the gate serves taps."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import CONFIG, DEMO_AID, make_card
from prometheus_client.parser import text_string_to_metric_families

from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.gate import NullGate
from validator.app.loop import run_loop
from validator.app.metrics import ValidatorMetrics, serve_metrics
from validator.app.run import serve
from validator.app.settings import load_settings
from validator.engine.fares.decide import FareRules
from validator.engine.tap import TapProcessor, TapRecord
from validator.journal.writer import Journal
from yamlconfig import load_model


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_scraped_during_run_loop(tmp_path: Path) -> None:
    """Three taps served by run_loop show in the counters, the histogram and the journal gauges."""
    metrics = ValidatorMetrics("gate-7", simulation=True)
    server = serve_metrics(metrics, "127.0.0.1", 0)
    sam_reader = EmulatedReader("sam")
    sam_reader.insert(SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
    channel = ApduChannel(sam_reader.connect(), label="sam")
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    reader = EmulatedReader("card")
    gate = NullGate()
    stop = threading.Event()
    cards = [make_card("multi_trip"), make_card("season_pass"), make_card("expired")]
    try:
        with Journal(tmp_path / "journal") as journal:
            metrics.attach_journal(journal)
            processor = TapProcessor(LegacySam(channel), rules, [DEMO_AID], "gate-7", journal)
            loop = threading.Thread(
                target=run_loop,
                args=(reader, processor, gate),
                kwargs={"station": 101, "stop": stop, "poll_s": 0.02, "observer": metrics},
                daemon=True,
            )
            loop.start()
            for number, card in enumerate(cards, start=1):
                reader.insert(card)
                deadline = time.monotonic() + 5
                while len(gate.records) < number:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                reader.remove()
            samples = scrape(server.url)  # while the loop still runs
            stop.set()
            loop.join(5)
    finally:
        server.stop()
    products = {r.result.product or "none": r.result.outcome.value for r in gate.records}
    taps = "calypso_validator_taps_total"
    for product, outcome in products.items():
        assert value(samples, taps, outcome=outcome, product=product) >= 1
    assert sum(v for (name, _), v in samples.items() if name == taps) == 3
    assert value(samples, "calypso_validator_tap_duration_seconds_count") == 3
    assert value(samples, "calypso_validator_tap_duration_seconds_bucket", le="+Inf") == 3
    assert value(samples, "calypso_validator_tap_duration_seconds_sum") > 0
    card_apdus = sum(r.result.card_apdus for r in gate.records)
    assert value(samples, "calypso_validator_card_apdus_total") == card_apdus
    assert value(samples, "calypso_validator_sam_apdus_total") == sum(
        r.result.sam_apdus for r in gate.records
    )
    # The last tap's entry (granted taps' entries follow their closing intents: seq 5).
    assert value(samples, "calypso_validator_journal_last_seq") == gate.records[-1].seq == 5
    assert value(samples, "calypso_validator_journal_bytes") > 0
    assert value(samples, "calypso_validator_out_of_service") == 0
    assert value(samples, "calypso_validator_errors_total", source="sam") == 0
    assert value(samples, "calypso_validator_info", validator_id="gate-7", mode="simulation") == 1


def test_outage_counted() -> None:
    """A SAM outage: out_of_service 1 and a SAM error; back in service: 0."""
    metrics = ValidatorMetrics()
    sample = metrics.registry.get_sample_value
    metrics.on_state(False, "SAM: no SAM")
    metrics.on_state(False, "card reader: pcscd gone")
    assert sample("calypso_validator_out_of_service") == 1
    assert sample("calypso_validator_errors_total", {"source": "sam"}) == 1
    assert sample("calypso_validator_errors_total", {"source": "reader"}) == 1
    assert sample("calypso_validator_errors_total", {"source": "journal"}) == 0
    metrics.on_state(True, None)
    assert sample("calypso_validator_out_of_service") == 0


def test_serve_with_metrics_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """serve() starts the endpoint from metrics_address/metrics_port and stops it at the end."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    port = free_port()
    monkeypatch.setenv("CALYPSO_VALIDATOR_METRICS_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("CALYPSO_VALIDATOR_METRICS_PORT", str(port))
    monkeypatch.setenv("CALYPSO_VALIDATOR_JOURNAL_DIR", str(tmp_path / "journal"))
    settings = load_settings(config)
    seen: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] = []
    last_seq: list[int | None] = []

    class Scraper:
        """Scrapes the endpoint after the third tap, from inside the run."""

        def on_idle(self) -> None:
            """Nothing."""

        def on_state(self, in_service: bool, reason: str | None) -> None:
            """Nothing."""

        def on_tap(self, record: TapRecord) -> None:
            """Scrape once the third tap is counted (observers run in order)."""
            if record.index == 3:
                seen.append(scrape(f"http://127.0.0.1:{port}/metrics"))
                last_seq.append(record.seq)

    served = serve(
        config,
        settings,
        NullGate(),
        card_spec="emulated",
        sam_spec="software",
        max_taps=3,
        interval_s=0.0,
        seed=5,
        observer=Scraper(),
    )
    assert served == 3 and seen
    samples = seen[0]
    taps = sum(v for (name, _), v in samples.items() if name == "calypso_validator_taps_total")
    assert taps == 3
    assert value(samples, "calypso_validator_tap_duration_seconds_count") == 3
    assert value(samples, "calypso_validator_journal_last_seq") == last_seq[0]
    with pytest.raises(OSError):
        scrape(f"http://127.0.0.1:{port}/metrics")  # stopped with the loop
