# SPDX-License-Identifier: Apache-2.0
"""Tap-to-decision through the real stack: pyscard -> a private pcscd -> vpcd -> the emulated
card, with the software SAM behind a second vpcd reader; median and p99 per scenario.

The card stays in its reader across the taps of a scenario: between taps a fresh card of the
scenario's profile takes its place behind the same vpcd slot (pcscd's 400 ms presence poll per
insertion would only measure waiting). Every tap still selects, opens, reads, writes, closes.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from lab.pcscd import CARD_READER, SAM_READER, PrivatePcscd, missing_binaries
from readers.base import PassThroughHandler
from readers.channel import ApduChannel
from readers.vpcd import VpcdCard
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.bench.scenarios import START, STATION, Bench, Scenario, new_card, percentile
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.layouts.base import build_layouts
from yamlconfig import load_model


class SwappableCard(PassThroughHandler[CardEmulator]):
    """The card behind a vpcd slot; ``swap`` puts a fresh one in its place between taps."""

    def swap(self, card: CardEmulator) -> None:
        """A new passenger's card, powered as the reader field would."""
        self.inner = card
        card.power_on()


@dataclass
class PcscFigures:
    """Tap-to-decision through the real stack, in ms."""

    times: list[float]

    def as_dict(self) -> dict[str, float | int]:
        """The scenario's ``pcsc_ms`` entry."""
        return {
            "median": round(statistics.median(self.times), 2),
            "p99": round(percentile(self.times, 0.99), 2),
            "taps": len(self.times),
        }


def unavailable() -> str | None:
    """Why the real stack cannot run here (None when it can)."""
    reason = missing_binaries()
    if reason is not None:
        return reason
    try:
        import smartcard  # noqa: F401
    except ImportError:
        return "pyscard is not installed (pip install -e '.[pcsc]')"
    return None


def _prepared_card(
    config_dir: Path, scenario: Scenario, setup: Bench
) -> tuple[CardEmulator, dt.datetime]:
    """A fresh card of the scenario, after its torn first tap if it has one (in process)."""
    card = new_card(config_dir, scenario)
    if scenario.torn_before is None:
        return card, START
    setup.tap(card, START, engine=True, aids=scenario.aids, torn_before=scenario.torn_before)
    return card, START + dt.timedelta(seconds=20)


def measure_pcsc(
    config_dir: Path, scenarios: list[Scenario], taps: int = 500
) -> dict[str, PcscFigures]:
    """Tap every scenario ``taps`` times through pcscd and vpcd."""
    from readers.pcsc import PcscReader

    rules = load_model(config_dir / "fares.yaml", FareRules)
    layouts = build_layouts({"A0000004040125090101": "intercode"})
    setup = Bench(config_dir, latency=False)
    results: dict[str, PcscFigures] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pcscd-") as tmp:
        daemon = PrivatePcscd(Path(tmp))
        daemon.start()
        sam_slot, card_slot = (
            VpcdCard(daemon.ports[SAM_READER]),
            VpcdCard(daemon.ports[CARD_READER]),
        )
        try:
            sam_slot.insert(
                SoftwareSam.from_keys(config_dir / "keys.sim.yaml", allow_simulation=True)
            )
            sam_connection = PcscReader(f"^{SAM_READER}$").wait_for_card(timeout=10)
            if sam_connection is None:
                raise RuntimeError("the SAM did not show in its vpcd reader")
            sam = LegacySam(ApduChannel(sam_connection, label="sam"))
            card_reader = PcscReader(f"^{CARD_READER}$")
            for scenario in scenarios:
                card, now = _prepared_card(config_dir, scenario, setup)
                slot_card = SwappableCard(card)
                card_slot.insert(slot_card)
                connection = card_reader.wait_for_card(timeout=10)
                if connection is None:
                    raise RuntimeError("the card did not show in its vpcd reader")
                times: list[float] = []
                for _ in range(taps):
                    card, now = _prepared_card(config_dir, scenario, setup)
                    slot_card.swap(card)
                    sam.prefetch()
                    start = time.perf_counter()
                    result = validate(
                        connection,
                        sam,
                        rules,
                        TapContext(now, STATION),
                        aids=scenario.aids,
                        layouts=layouts,
                        history=lambda serial: False,
                    )
                    times.append((time.perf_counter() - start) * 1000)
                    if result.outcome.value not in ("granted", "recovered", "denied"):
                        raise RuntimeError(
                            f"{scenario.name}: {result.outcome.value} {result.reason}"
                        )
                connection.close()
                card_slot.remove()
                card_reader.wait_for_removal(timeout=10)
                results[scenario.name] = PcscFigures(times)
            sam_connection.close()
        finally:
            card_slot.remove()
            sam_slot.remove()
            daemon.stop()
    return results
