# SPDX-License-Identifier: Apache-2.0
"""Replay's speed-ups change no result: the JSON parser, the kept decoded records, the decoders."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG

from calypso.layouts.demo import (
    Contract,
    Environment,
    Event,
    date_from_compact,
    time_from_compact,
)
from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.engine.fares.decide import FareRules
from validator.journal.jsonline import loads
from validator.journal.writer import Journal, journal_files
from validator.office.replay.audit import ReplayRequest, replay
from validator.office.replay.line import Options
from yamlconfig import load_model

START = dt.datetime(2026, 3, 2, 7, 0)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo run with tears, every product of the fleet (Intercode card too)."""
    directory = tmp_path_factory.mktemp("speed") / "journal"
    settings = load_settings(CONFIG)
    with Journal(directory) as writer:
        run_demo(CONFIG, settings, taps=120, seed=5, start=START, journal=writer, tear_rate=0.3)
    return directory


def _report(directory: Path, record_cache: int) -> dict[str, Any]:
    settings = load_settings(CONFIG)
    rules = load_model(CONFIG / settings.fares, FareRules)
    layouts = tuple(settings.layouts.items())
    options = Options(
        rules, None, CONFIG / settings.keys, layouts=layouts, record_cache=record_cache
    )
    doc = replay(ReplayRequest([directory], options, "in force", rules)).as_json()
    for key in ("seconds", "taps_per_second"):
        doc.pop(key, None)
    return doc


def test_kept_records_change_nothing(journal: Path) -> None:
    """With or without decoded records kept between taps (twice: the second pass hits)."""
    uncached = _report(journal, 0)
    assert uncached["decisions"]["same"] > 0
    assert _report(journal, 4096) == uncached
    assert _report(journal, 1) == uncached


def test_loads_is_json_loads(journal: Path) -> None:
    """orjson (when installed) reads journal lines as the standard library does."""
    for path in journal_files(journal):
        for line in path.read_bytes().splitlines():
            assert loads(line) == json.loads(line)


@pytest.mark.parametrize(
    "data", [b'{"a":1e400}', b'["\\ud800"]', b'{"seq":1,"seq":2}', b' {"a" : [1, -0.0]} ']
)
def test_loads_falls_back(data: bytes) -> None:
    """What orjson refuses the standard library still reads."""
    assert repr(loads(data)) == repr(json.loads(data))


@pytest.mark.parametrize("data", [b"", b"{", b"\xff", b'{"a":1} x'])
def test_loads_refuses_what_json_refuses(data: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(data)
    with pytest.raises(ValueError):
        loads(data)


def test_demo_decoders() -> None:
    """The faster decoders give what the DateCompact and TimeCompact functions give."""
    rng = random.Random(7)
    for size in (0, 5, 14, 29, 40):
        for _ in range(200):
            data = bytes(rng.randrange(256) for _ in range(size))
            padded = data.ljust(29, b"\x00")

            def u(start: int, size: int, d: bytes = padded) -> int:
                return int.from_bytes(d[start : start + size], "big")

            env = Environment.decode(data)
            assert (env.issuing_date, env.end_date) == (
                date_from_compact(u(5, 2)),
                date_from_compact(u(7, 2)),
            )
            assert (env.application_number, env.holder_id) == (u(1, 4), u(10, 4))
            event = Event.decode(data)
            assert (event.date, event.time, event.location) == (
                date_from_compact(u(1, 2)),
                time_from_compact(u(3, 2)),
                u(5, 4),
            )
            contract = Contract.decode(data)
            assert (contract.sale_date, contract.validity_end_date) == (
                date_from_compact(u(2, 2)),
                date_from_compact(u(4, 2)),
            )
            assert (contract.sale_sam, contract.sale_counter, contract.authenticator) == (
                u(6, 4),
                u(10, 3),
                u(14, 3),
            )
