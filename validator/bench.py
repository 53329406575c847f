# SPDX-License-Identifier: Apache-2.0
"""``validator bench``: APDU counts and modelled tap time per scenario, baseline vs engine.

The real code runs on the emulated reader with a latency model per APDU (defaults: 12 ms per
contactless card APDU plus 75 us per byte at 106 kbit/s, 14 ms per SAM APDU: figures seen in
public Keyple logs over PC/SC). Two runs of every scenario in one process: (a) a sequential
baseline that waits for every SAM exchange in turn with no pre-fetched challenge, as Keyple
does, and (b) this engine: challenge pre-fetched, digest packed, SAM work overlapped with the
card's. Tap-to-decision time ends when the gate may open (the card MAC verified).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from calypso.emulator import CardEmulator
from calypso.yamlfile import load_model
from readers.apdu import ResponseApdu
from readers.base import CardConnection
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.legacy import LegacySam
from sam.software import SoftwareSam
from validator.fares import FareRules, TapContext
from validator.layout import build_layouts
from validator.outcome import TapResult
from validator.procedure import validate

CARD_APDU_S = 0.012
CARD_BYTE_S = 8 / 106_000
SAM_APDU_S = 0.014
START = dt.datetime(2026, 3, 2, 8, 0)
INTERCODE_AID = bytes.fromhex("A0000004040125090101")
DEMO_AID = bytes.fromhex("315449432E49434131")

# Card APDUs of the same tap in Keyple's public validation example (calypso-data-model 3.5,
# calypso-protocol 2.4): select, open + environment, event, one read per contract tried,
# counters for counter products, the writes, close, ratification; abort on a refusal.
KEYPLE_CARD_APDUS = {
    "season_pass": 7,
    "multi_trip": 9,
    "stored_value": 9,
    "calypso_sv": 9,  # SV Get and SV Debit instead of the counters read and the Decrease
    "recovery": 5,
    "deny": 5,
    "intercode": 10,
}


class LatencyConnection:
    """A connection that takes the time a real link would for each APDU."""

    def __init__(self, inner: CardConnection, per_apdu: float, per_byte: float) -> None:
        self.inner = inner
        self.per_apdu = per_apdu
        self.per_byte = per_byte

    @property
    def atr(self) -> bytes:
        """The inner connection's ATR."""
        return self.inner.atr

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """Answer as the inner connection does, after the modelled delay."""
        response = self.inner.transmit(apdu)
        time.sleep(self.per_apdu + self.per_byte * (len(apdu) + len(bytes(response))))
        return response

    def close(self) -> None:
        """Close the inner connection."""
        self.inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Scenario:
    """A named tap: which card; ``torn_before`` sets up an unratified paid tap first."""

    name: str
    profile: str
    torn_before: int | None = None  # the card leaves before this APDU of a first, paid tap


SCENARIOS = [
    Scenario("season_pass", "season_pass"),
    Scenario("multi_trip", "multi_trip"),
    Scenario("stored_value", "other/stored_value_counter"),
    Scenario("calypso_sv", "sv_purse"),
    Scenario("recovery", "multi_trip", torn_before=9),  # lost before the ratification command
    Scenario("deny", "expired"),
    Scenario("intercode", "intercode"),
]


@dataclass
class Figures:
    """What one scenario measured."""

    card_apdus: int
    sam_apdus: int
    sam_critical: int
    sequential_ms: float
    engine_ms: float
    host_ms: list[float]

    def as_dict(self, name: str) -> dict[str, object]:
        """The scenario's entry of the JSON document."""
        return {
            "card_apdus": self.card_apdus,
            "sam_apdus": self.sam_apdus,
            "sam_critical": self.sam_critical,
            "keyple_card_apdus": KEYPLE_CARD_APDUS[name],
            "modeled_ms": {
                "sequential": round(self.sequential_ms, 1),
                "engine": round(self.engine_ms, 1),
                "ratio": round(self.engine_ms / self.sequential_ms, 3),
            },
            "host_ms": {
                "validator_median": round(statistics.median(self.host_ms), 3),
                "validator_p99": round(_p99(self.host_ms), 3),
            },
        }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Bench:
    """One validator with a software SAM on a latency-modelled SAM link."""

    def __init__(self, config_dir: Path, *, latency: bool) -> None:
        self.rules = load_model(config_dir / "fares.yaml", FareRules)
        self.cards = config_dir / "cards"
        reader = EmulatedReader("sam")
        reader.insert(SoftwareSam.from_keys(config_dir / "keys.sim.yaml", allow_simulation=True))
        link: CardConnection = reader.connect()
        if latency:
            link = LatencyConnection(link, SAM_APDU_S, 0.0)
        self.channel = ApduChannel(link, label="sam")
        self.sam = LegacySam(self.channel)
        self.latency = latency
        self.layouts = build_layouts({INTERCODE_AID.hex().upper(): "intercode"})

    def tap(
        self, card: CardEmulator, now: dt.datetime, *, engine: bool, torn_before: int | None = None
    ) -> tuple[TapResult, float]:
        """One tap; returns its result and its wall time to the decision, in ms."""
        reader = EmulatedReader("card")
        reader.insert(card)
        if torn_before is not None:
            reader.inject(Fault(FaultKind.REMOVED_BEFORE, torn_before))
        link: CardConnection = reader.connect()
        if self.latency:
            link = LatencyConnection(link, CARD_APDU_S, CARD_BYTE_S)
        if engine:
            self.sam.prefetch()  # between taps, off the passenger's time
        start = time.perf_counter()
        result = validate(
            link,
            self.sam,
            self.rules,
            TapContext(now, 101),
            aids=[DEMO_AID, INTERCODE_AID],
            sam_channel=self.channel,
            layouts=self.layouts,
            overlap=engine,
        )
        elapsed = (time.perf_counter() - start) * 1000
        reader.remove()
        return result, elapsed


def _one(bench: Bench, scenario: Scenario, *, engine: bool) -> tuple[TapResult, float]:
    card = CardEmulator.from_profile(bench.cards / f"{scenario.profile}.yaml")
    now = START
    if scenario.torn_before is not None:
        bench.tap(card, now, engine=engine, torn_before=scenario.torn_before)
        now += dt.timedelta(seconds=20)
    return bench.tap(card, now, engine=engine)


def measure(config_dir: Path, scenario: Scenario, taps: int = 3, host_taps: int = 200) -> Figures:
    """Run a scenario sequentially and with the engine, with latencies, and in-process cost."""
    modelled: dict[bool, list[float]] = {False: [], True: []}
    counts = (0, 0, 0)
    for engine in (False, True):
        bench = Bench(config_dir, latency=True)
        for _ in range(taps):
            result, ms = _one(bench, scenario, engine=engine)
            modelled[engine].append(ms)
            if engine:
                counts = (result.card_apdus, result.sam_apdus, _sam_critical(result))
    fast = Bench(config_dir, latency=False)
    host = [_one(fast, scenario, engine=True)[1] for _ in range(host_taps)]
    return Figures(
        *counts, statistics.median(modelled[False]), statistics.median(modelled[True]), host
    )


def _sam_critical(result: TapResult) -> int:
    """SAM APDUs the passenger waits for: those that gate a card command or the decision."""
    gating = {0x8E, 0x54, 0x56, 0x5C, 0x58}  # Digest Close, SV Prepare x3, SV Check
    return sum(1 for ex in result.sam_trace if ex.command[1] in gating)


def run_bench(config_dir: Path, *, taps: int = 3, host_taps: int = 200) -> dict[str, object]:
    """Every scenario, as one JSON-ready document."""
    return {
        "latency_model": {
            "card_apdu_ms": CARD_APDU_S * 1000,
            "card_byte_us": round(CARD_BYTE_S * 1e6, 1),
            "sam_apdu_ms": SAM_APDU_S * 1000,
        },
        "scenarios": {
            s.name: measure(config_dir, s, taps, host_taps).as_dict(s.name) for s in SCENARIOS
        },
    }
