# SPDX-License-Identifier: Apache-2.0
"""``validator bench``: exchanges and modelled tap time per scenario, baseline vs engine.

The real code runs on the emulated reader with a latency model per APDU (defaults: 12 ms per
contactless card APDU plus 75 us per byte at 106 kbit/s, 14 ms per SAM APDU: figures seen in
public Keyple logs over PC/SC; the emulator's and the software SAM's own time is counted inside
them, as a real chip's is). Two runs of every scenario in one process: (a) a sequential baseline
that waits for every SAM exchange in turn with no pre-fetched challenge and no prepared writes,
as Keyple does, and (b) this engine: challenge pre-fetched, digest packed, writes prepared, SAM
work overlapped with the card's. Tap-to-decision ends when the gate may open: the card MAC
verified (the ratification command runs alongside Digest Authenticate).

The other figures come from validator.bench.host (host cost), validator.bench.pcsc (through
pyscard, pcscd and vpcd) and validator.bench.scaling (journal size, cards seen).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from calypso.emulator.dispatch import CardEmulator
from readers.apdu import ResponseApdu
from readers.base import ApduHandler, CardConnection, PassThroughHandler
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.layouts.base import CardLayout, build_layouts
from validator.engine.outcome import TapResult
from yamlconfig import load_model

CARD_APDU_S = 0.012
CARD_BYTE_S = 8 / 106_000
SAM_APDU_S = 0.014
START = dt.datetime(2026, 3, 2, 8, 0)
INTERCODE_AID = bytes.fromhex("A0000004040125090101")
DEMO_AID = bytes.fromhex("315449432E49434131")
STATION = 101

# Card APDUs of the same tap in Keyple's public validation example (calypso-data-model 3.5,
# calypso-protocol 2.4): select, open + environment, event, one Read Record per contract
# tried, the counters for counter products, the writes, close, ratification; abort on a
# refusal; a recovery closes at once. The Intercode card tries its expired pass first (one
# read each in Keyple's loop), then its carnet, and the contract list is rewritten.
KEYPLE_CARD_APDUS = {
    "season_pass": 7,
    "multi_trip": 9,
    "stored_value": 9,
    "calypso_sv": 9,  # SV Get and SV Debit instead of the counters read and the Decrease
    "recovery": 5,
    "deny": 5,
    "intercode": 12,
}


@dataclass
class Timeline:
    """When each modelled exchange started and ended, per link, within one tap."""

    spans: list[tuple[str, float, float, int]] = field(
        default_factory=list
    )  # link, start, end, ins

    def critical_sam(self, end: float, slack: float = 0.002) -> int:
        """SAM exchanges the passenger waited for: the card was idle, or the tap was over,
        when they ended (the next card APDU or the decision followed them within ``slack``)."""
        card = sorted((s, e) for link, s, e, _ in self.spans if link == "card")
        idle = [(a_end, b_start) for (_, a_end), (b_start, _) in zip(card, card[1:], strict=False)]
        if card:
            idle.append((card[-1][1], end))
        count = 0
        for link, _, sam_end, _ in self.spans:
            if link != "sam":
                continue
            if any(
                gap_start < sam_end and gap_end - slack <= sam_end <= gap_end
                for gap_start, gap_end in idle
            ):
                count += 1
        return count


class LatencyConnection:
    """A connection that takes the time a real link would for each APDU (chip time included)."""

    def __init__(
        self,
        inner: CardConnection,
        per_apdu: float,
        per_byte: float,
        *,
        link: str = "card",
        timeline: Timeline | None = None,
    ) -> None:
        self.inner = inner
        self.per_apdu = per_apdu
        self.per_byte = per_byte
        self.link = link
        self.timeline = timeline

    @property
    def atr(self) -> bytes:
        """The inner connection's ATR."""
        return self.inner.atr

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """Answer as the inner connection does, once the modelled time has passed."""
        start = time.perf_counter()
        response = self.inner.transmit(apdu)
        done = start + self.per_apdu + self.per_byte * (len(apdu) + len(bytes(response)))
        remaining = done - time.perf_counter()
        if remaining > 0:
            time.sleep(remaining)
        if self.timeline is not None:
            ins = apdu[1] if len(apdu) > 1 else 0
            self.timeline.spans.append((self.link, start, time.perf_counter(), ins))
        return response

    def close(self) -> None:
        """Close the inner connection."""
        self.inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TimedHandler(PassThroughHandler[ApduHandler]):
    """An APDU handler that adds the CPU time spent inside it to an account (host cost)."""

    def __init__(self, inner: ApduHandler, account: list[float]) -> None:
        super().__init__(inner)
        self.account = account

    def process(self, apdu: bytes) -> bytes:
        """Answer as the inner handler does, counting its thread's CPU time."""
        start = time.thread_time()
        try:
            return super().process(apdu)
        finally:
            self.account[0] += time.thread_time() - start


@dataclass(frozen=True)
class Scenario:
    """A named tap: which card; ``torn_before`` sets up an unratified paid tap first."""

    name: str
    profile: str
    torn_before: int | None = None  # the card leaves before this APDU of a first, paid tap
    aids: tuple[bytes, ...] = (DEMO_AID, INTERCODE_AID)  # the network's validator config


SCENARIOS = [
    Scenario("season_pass", "season_pass"),
    Scenario("multi_trip", "multi_trip"),
    Scenario("stored_value", "other/stored_value_counter"),
    Scenario("calypso_sv", "sv_purse"),
    Scenario("recovery", "multi_trip", torn_before=9),  # lost before the ratification command
    Scenario("deny", "expired"),
    Scenario("intercode", "intercode", aids=(INTERCODE_AID, DEMO_AID)),
]


def new_card(config_dir: Path, scenario: Scenario) -> CardEmulator:
    """A fresh card of the scenario's profile."""
    return CardEmulator.from_profile(config_dir / "cards" / f"{scenario.profile}.yaml")


@dataclass
class Modelled:
    """What the latency-modelled runs of one scenario measured."""

    card_apdus: int
    sam_apdus: int
    sam_critical: int
    sequential_ms: float
    engine_ms: float


class Bench:
    """One validator with a software SAM, on latency-modelled links or in process."""

    def __init__(self, config_dir: Path, *, latency: bool) -> None:
        self.config_dir = config_dir
        # CPU seconds of the last tap's validation: the whole process, the card, the SAM.
        self.cpu_s = 0.0
        self.card_cpu = [0.0]
        self.sam_cpu = [0.0]
        self.now = START
        self.rules = load_model(config_dir / "fares.yaml", FareRules)
        self.latency = latency
        self.timeline = Timeline()
        self.sam_software = SoftwareSam.from_keys(
            config_dir / "keys.sim.yaml", allow_simulation=True
        )
        reader = EmulatedReader("sam")
        reader.insert(TimedHandler(self.sam_software, self.sam_cpu))
        link: CardConnection = reader.connect()
        if latency:
            link = LatencyConnection(link, SAM_APDU_S, 0.0, link="sam", timeline=self.timeline)
        self.channel = ApduChannel(link, label="sam")
        self.sam = LegacySam(self.channel)
        self.layouts: dict[bytes, CardLayout] = build_layouts({INTERCODE_AID.hex(): "intercode"})

    def tap(
        self,
        card: CardEmulator,
        now: dt.datetime,
        *,
        engine: bool,
        aids: Sequence[bytes] = (DEMO_AID, INTERCODE_AID),
        torn_before: int | None = None,
    ) -> tuple[TapResult, float]:
        """One tap; returns its result and its wall time to the decision, in ms."""
        reader = EmulatedReader("card")
        reader.insert(TimedHandler(card, self.card_cpu))
        if torn_before is not None:
            reader.inject(Fault(FaultKind.REMOVED_BEFORE, torn_before))
        link: CardConnection = reader.connect()
        if self.latency:
            link = LatencyConnection(link, CARD_APDU_S, CARD_BYTE_S, timeline=self.timeline)
        if engine:
            self.sam.prefetch()  # between taps, off the passenger's time
        self.timeline.spans.clear()
        self.card_cpu[0] = self.sam_cpu[0] = 0.0
        self.now = now
        cpu = time.process_time()
        start = time.perf_counter()
        result = validate(
            link,
            self.sam,
            self.rules,
            TapContext(now, STATION),
            aids=aids,
            layouts=self.layouts,
            overlap=engine,
            history=lambda serial: False,  # no unknown tap pending for this card
        )
        elapsed = (time.perf_counter() - start) * 1000
        self.cpu_s = time.process_time() - cpu
        self.timeline.spans[:] = [s for s in self.timeline.spans if s[1] >= start]
        self.last_end = start + elapsed / 1000
        reader.remove()
        return result, elapsed

    def run(self, scenario: Scenario, *, engine: bool) -> tuple[TapResult, float]:
        """The scenario's tap on a fresh card (after its torn first tap, if it has one)."""
        card = new_card(self.config_dir, scenario)
        now = START
        if scenario.torn_before is not None:
            self.tap(card, now, engine=engine, aids=scenario.aids, torn_before=scenario.torn_before)
            now += dt.timedelta(seconds=20)
        return self.tap(card, now, engine=engine, aids=scenario.aids)


def measure_modelled(config_dir: Path, scenario: Scenario, taps: int = 3) -> Modelled:
    """The scenario sequentially and with the engine, under the latency model (medians)."""
    times: dict[bool, list[float]] = {False: [], True: []}
    counts = (0, 0, 0)
    for engine in (False, True):
        bench = Bench(config_dir, latency=True)
        for _ in range(taps):
            result, ms = bench.run(scenario, engine=engine)
            times[engine].append(ms)
            if engine:
                critical = bench.timeline.critical_sam(bench.last_end)
                counts = (result.card_apdus, result.sam_apdus, critical)
    return Modelled(*counts, statistics.median(times[False]), statistics.median(times[True]))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
