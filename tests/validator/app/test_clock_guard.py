# SPDX-License-Identifier: Apache-2.0
"""Issue 15.11: a clock the card layouts cannot encode keeps the gate out of service, no crash."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from conftest import make_card
from test_doctor import make_config, probes
from test_loop import processor_with

from calypso.layouts.demo import date_to_compact
from readers.emulated import EmulatedReader
from validator.app.clock import ClockError, check_clock, clock_range
from validator.app.doctor.diagnose import diagnose
from validator.app.doctor.report import Status
from validator.app.gate import NullGate
from validator.app.loop import run_loop
from validator.engine.outcome import Outcome
from validator.journal.writer import Journal

BOOT_1970 = dt.datetime(1970, 1, 1, 0, 5)


class TestRange:
    """What the layouts can encode."""

    def test_range_by_layout(self) -> None:
        """demo: 2010-01-01 to 2189; intercode: 2010 (SV DateCompact) to 2041 (14-bit date)."""
        assert clock_range(["demo"]) == (dt.date(2010, 1, 1), dt.date(2189, 6, 6))
        assert clock_range(["demo", "intercode"]) == (dt.date(2010, 1, 1), dt.date(2041, 11, 9))

    @pytest.mark.parametrize("when", [BOOT_1970, dt.datetime(2009, 12, 31, 23, 59)])
    def test_before_2010_is_a_clock_error(self, when: dt.datetime) -> None:
        """A date the cards cannot hold is a ClockError that says "clock not set"."""
        with pytest.raises(ClockError, match="clock not set"):
            check_clock(when, clock_range(["demo"]))

    def test_encoders_raise_the_typed_error(self) -> None:
        """date_to_compact outside its range raises a ValueError subclass naming the range."""
        with pytest.raises(ValueError, match="DateCompact"):
            date_to_compact(BOOT_1970.date())


def test_loop_waits_for_the_clock(tmp_path: Path) -> None:
    """1970 at boot: out of service "clock not set", no card touched; back once the time is set."""
    reader = EmulatedReader("card")
    gate = NullGate()
    stop = threading.Event()
    now = {"value": BOOT_1970}
    reads: list[int] = []

    def clock() -> dt.datetime:
        return now["value"]

    def passenger() -> None:
        card = make_card("multi_trip")
        reader.insert(card)
        while not gate.outages and not stop.is_set():
            stop.wait(0.005)
        stop.wait(0.1)  # the card stays on the reader while the clock is wrong
        reads.append(len(gate.records))
        now["value"] = dt.datetime(2026, 12, 3, 8, 0)  # NTP set the time

    with Journal(tmp_path) as journal:
        feeder = threading.Thread(target=passenger, daemon=True)
        feeder.start()
        served = run_loop(
            reader,
            processor_with(EmulatedReader("sam"), journal),
            gate,
            station=1,
            max_taps=1,
            stop=stop,
            clock=clock,
            backoff_s=0.01,
            poll_s=0.01,
            clock_range=clock_range(["demo"]),
        )
        stop.set()
        feeder.join(5)
    assert served == 1
    assert reads == [0]  # nothing served while the clock was wrong
    assert gate.outages and gate.outages[0].startswith("clock not set")
    assert gate.records[0].result.outcome is Outcome.GRANTED
    assert gate.records[0].result.reason != "error"


def test_doctor_reports_the_clock_first(tmp_path: Path) -> None:
    """A 1970 clock: doctor does not crash in its test session; the clock check is first."""
    early = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    report = diagnose(make_config(tmp_path), probes(now=lambda: early))
    assert report.checks[0].name == "clock"
    assert report.check("clock").status is Status.FAIL
    assert report.check("sam_keys").status is Status.FAIL
    assert "clock" in report.check("sam_keys").detail
