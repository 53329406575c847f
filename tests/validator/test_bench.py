# SPDX-License-Identifier: Apache-2.0
"""The benchmark runs every scenario and counts exchanges (figures are printed, not asserted)."""

from __future__ import annotations

from conftest import CONFIG

from validator.bench import KEYPLE_CARD_APDUS, SCENARIOS, measure


class TestBench:
    """Counts of exchanges per scenario: what the passenger waits for."""

    def test_multi_trip_counts(self) -> None:
        """A multi-trip tap: Keyple's 9 card APDUs, one SAM APDU gating the card (Digest Close)."""
        scenario = next(s for s in SCENARIOS if s.name == "multi_trip")
        figures = measure(CONFIG, scenario, taps=1, host_taps=2)
        row = figures.as_dict("multi_trip")
        assert row["card_apdus"] == KEYPLE_CARD_APDUS["multi_trip"] == 9
        assert row["sam_critical"] == 1
        assert set(row["modeled_ms"]) == {"sequential", "engine", "ratio"}  # type: ignore[arg-type]
