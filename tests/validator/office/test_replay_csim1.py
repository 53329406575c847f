# SPDX-License-Identifier: Apache-2.0
"""Replay's direct CSIM1 path gives every tap the MAC check the software SAM's APDUs give."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
from conftest import CONFIG

from validator.app.demo import run_demo
from validator.app.settings import load_settings
from validator.journal.entry import JournalEntry
from validator.journal.writer import Journal, journal_files
from validator.office.replay.mac import VERIFIED, MacChecker

START = dt.datetime(2026, 3, 2, 7, 0)
KEYS = CONFIG / "keys.sim.yaml"


@pytest.fixture(scope="module")
def taps(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The tap entries of a demo run with tears (every product, PKI cards, unknowns)."""
    directory = tmp_path_factory.mktemp("csim1") / "journal"
    with Journal(directory) as writer:
        run_demo(
            CONFIG,
            load_settings(CONFIG),
            taps=80,
            seed=9,
            start=START,
            journal=writer,
            tear_rate=0.3,
        )
    return [
        record
        for path in journal_files(directory)
        for line in path.read_bytes().splitlines()
        if "kind" not in (record := json.loads(line))
    ]


def _both(entry: dict[str, Any]) -> tuple[Any, Any]:
    """The check with the direct path, and the one with the SAM's APDUs only."""
    fast = MacChecker.from_keys(KEYS)
    slow = MacChecker(fast.sam)
    typed = JournalEntry.from_json(entry)
    return fast.check(typed), slow.check(typed)


def test_every_tap_checks_alike(taps: list[dict[str, Any]]) -> None:
    """Every tap of the run: same status and note, and the direct path verifies sessions."""
    checker = MacChecker.from_keys(KEYS)
    assert checker.direct is not None
    results = [_both(entry) for entry in taps]
    assert all(fast == slow for fast, slow in results)
    assert sum(fast.status == VERIFIED for fast, _ in results) > 10


def _tampered(entry: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The entry with one hex digit of its card trace changed (a command or an answer)."""
    entry = json.loads(json.dumps(entry))
    exchange = rng.choice(entry["trace"]["card"])
    side = rng.choice([k for k in ("c", "r") if len(exchange[k]) > 4] or ["c"])
    text = exchange[side]
    at = rng.randrange(len(text))
    exchange[side] = text[:at] + format((int(text[at], 16) + 1) % 16, "X") + text[at + 1 :]
    return entry


def test_tampered_sessions_check_alike(taps: list[dict[str, Any]]) -> None:
    """A changed APDU anywhere in a signed tap's trace: the same failure and note either way."""
    rng = random.Random(3)
    signed = [e for e in taps if e.get("card_mac") and e.get("mac_verified")]
    assert signed
    statuses = set()
    for entry in signed:
        for _ in range(6):
            fast, slow = _both(_tampered(entry, rng))
            assert fast == slow
            statuses.add(fast.status)
    assert "failed" in statuses


def test_short_serials_check_alike(taps: list[dict[str, Any]]) -> None:
    """Serials of 4 and 6 bytes (the direct path leaves them to the SAM, which pads them with
    zeros: the demo serials start with zeros, so they still verify)."""
    entry = next(e for e in taps if e.get("card_mac") and e.get("mac_verified"))
    results = [_both(dict(entry, card=entry["card"][cut:])) for cut in (4, 8)]
    assert all(fast == slow for fast, slow in results)
    assert {fast.status for fast, _ in results} == {"verified"}
