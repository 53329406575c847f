# SPDX-License-Identifier: Apache-2.0
"""The benchmark runs every scenario and counts exchanges (figures are printed, not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONFIG, ROOT

from lab.pcscd import missing_binaries
from validator.bench.host import measure_host
from validator.bench.intent import measure_intent
from validator.bench.pki import PKI_CASES, measure_pki_host, measure_pki_modelled
from validator.bench.scaling import cards_seen_scaling, journal_scaling
from validator.bench.scenarios import (
    KEYPLE_CARD_APDUS,
    SCENARIOS,
    Scenario,
    Timeline,
    measure_modelled,
)


def _scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


class TestExchanges:
    """Counts of exchanges per scenario: what the passenger waits for."""

    @pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
    def test_never_more_card_apdus_than_keyple(self, name: str) -> None:
        """Every scenario sends at most the card APDUs of Keyple's flow for the same data."""
        figures = measure_modelled(CONFIG, _scenario(name), taps=1)
        assert 0 < figures.card_apdus <= KEYPLE_CARD_APDUS[name]
        assert figures.engine_ms < figures.sequential_ms

    def test_multi_trip_waits_for_one_or_two_sam_exchanges(self) -> None:
        """A multi-trip tap waits for Digest Authenticate, at most one more SAM exchange."""
        figures = measure_modelled(CONFIG, _scenario("multi_trip"), taps=1)
        assert figures.card_apdus == 9
        assert 1 <= figures.sam_critical <= 2

    def test_recovery_is_five_card_apdus(self) -> None:
        """A recovery tap reads no title: select, open, event, close, ratification."""
        assert measure_modelled(CONFIG, _scenario("recovery"), taps=1).card_apdus == 5


def test_critical_sam_exchanges_are_those_the_card_waited_for() -> None:
    """A SAM exchange ending in a card idle gap (just before the next card APDU) is critical."""
    timeline = Timeline(
        [
            ("card", 0.000, 0.012, 0xA4),
            ("sam", 0.012, 0.026, 0x8E),  # the card waits for it: critical
            ("card", 0.026, 0.040, 0x8E),
            ("sam", 0.027, 0.035, 0x8C),  # runs while the card works: not critical
            ("sam", 0.040, 0.054, 0x82),  # the decision waits for it: critical
        ]
    )
    assert timeline.critical_sam(end=0.054) == 2


def test_host_cost_is_split() -> None:
    """The host cost splits into the validator, the card, the SAM and the journal."""
    cost = measure_host(CONFIG, _scenario("multi_trip"), taps=5).as_dict()
    assert set(cost) == {
        "validator_median",
        "validator_p99",
        "card_median",
        "sam_median",
        "journal_median",
        "journal_fsync_median",
    }
    assert cost["validator_median"] > 0 and cost["card_median"] > 0 and cost["sam_median"] > 0
    assert cost["journal_median"] > 0 and cost["journal_fsync_median"] >= 0


def test_intent_cost_is_measured_with_and_without() -> None:
    """The closing intent's bench times taps with and without it, in both settings."""
    figures = measure_intent(CONFIG, taps=3, latency_taps=1)
    assert set(figures) == {"in_process", "latency_model"}
    for row in figures.values():
        assert row["without_ms"] > 0 and row["with_ms"] > 0 and row["intent_bytes"] > 100
        assert row["cost_ms"] == round(row["with_ms"] - row["without_ms"], 3)
    assert figures["latency_model"]["without_ms"] > figures["in_process"]["without_ms"]


def test_scaling_runs_every_size() -> None:
    """The scaling runs report every size (small sizes here; make bench runs 10^6)."""
    journal = journal_scaling(CONFIG, sizes=(1, 50), taps=3)
    assert set(journal) == {"1", "50"} and all(r["tap_median_ms"] > 0 for r in journal.values())
    cards = cards_seen_scaling(CONFIG, sizes=(1, 500), taps=3)
    assert set(cards) == {"1", "500"}


@pytest.mark.skipif(missing_binaries() is not None, reason=str(missing_binaries()))
def test_bench_json_through_pcscd() -> None:
    """``validator bench --json`` gives every scenario's figures, through pcscd and vpcd too."""
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_CSOCK_NAME"}
    command = [str(Path(sys.executable).parent / "validator"), "bench", "--json", "--taps", "1"]
    command += ["--host-taps", "2", "--pcsc-taps", "3", "--intent-taps", "2", "--no-scaling"]
    done = subprocess.run(  # noqa: S603 - our own command line
        command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert set(document["scenarios"]) == set(KEYPLE_CARD_APDUS)
    assert document["intent"]["in_process"]["taps"] == 2
    for row in document["scenarios"].values():
        assert row["modeled_ms"]["ratio"] < 1
        assert row["pcsc_ms"]["taps"] == 3 and row["pcsc_ms"]["median"] > 0
    pki = document["pki"]
    assert set(pki["cases"]) == {case.name for case in PKI_CASES}
    assert (
        pki["symmetric_multi_trip_ms"]
        == document["scenarios"]["multi_trip"]["modeled_ms"]["engine"]
    )


class TestPki:
    """The pki scenario: a PKI tap with no SAM, the CA and the card cached or not."""

    def test_certificate_apdus_by_case(self) -> None:
        """A returning card reads no certificate, a known CA's new card its own, a cold one both;
        the signature is verified (the decision) before the ratification command."""
        counts = {"returning_card": (9, 0), "ca_cached": (11, 2), "cold": (13, 4)}
        for case in PKI_CASES:
            figures = measure_pki_modelled(CONFIG, case, taps=1)
            assert (figures.card_apdus, figures.certificate_apdus) == counts[case.name]
            assert 0 < figures.decision_ms < figures.last_apdu_ms

    def test_host_time_is_split(self) -> None:
        """The host figures: the validator's and the card's time, each verification's."""
        host = measure_pki_host(CONFIG, taps=3)
        assert set(host) == {
            "validator_median_ms",
            "card_median_ms",
            "ca_certificate_us",
            "card_certificate_us",
            "cached_card_recheck_us",
            "ecdsa_verify_us",
        }
        assert all(value > 0 for value in host.values())
