# SPDX-License-Identifier: Apache-2.0
"""Defects the reliability campaign found, each pinned: typed errors, never a crash or a lost
debit (hostile cards, fuzzing of the parsers, YAML and journal lines)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import CONFIG, Station, make_card

from calypso.commands import CardIns
from calypso.commands.select import parse_select_application
from calypso.emulator.dispatch import CardEmulator
from calypso.errors import CardResponseError
from calypso.layouts.demo import SFI_COUNTERS
from readers.apdu import ResponseApdu
from readers.base import PassThroughHandler
from validator.app.settings import ValidatorSettings
from validator.engine.fares.decide import FareRules
from validator.engine.outcome import Outcome
from validator.office.replay.line import Analyser, Options
from yamlconfig import ConfigError, load_model

START = dt.datetime(2026, 3, 2, 8, 0)


class _DamagedClose(PassThroughHandler[CardEmulator]):
    """A real card whose answer to Close comes back damaged, after the card committed."""

    def __init__(self, damage: bytes) -> None:
        super().__init__(make_card("multi_trip"))
        self.damage = damage

    def process(self, apdu: bytes) -> bytes:
        """The card answers; the Close answer is replaced by the damage."""
        answer = super().process(apdu)
        return self.damage if apdu[1] == CardIns.CLOSE_SECURE_SESSION else answer


@pytest.mark.parametrize("damage", ["9000", "1234", "6F00", "0102039000"])
def test_a_damaged_close_answer_is_an_unknown_outcome(station: Station, damage: str) -> None:
    """The card committed but its Close answer is unusable: unknown, gate shut, debit sent."""
    hostile = _DamagedClose(bytes.fromhex(damage))
    trips = hostile.inner.counter(SFI_COUNTERS, 1)
    result = station.tap(hostile, START)
    assert result.outcome is Outcome.UNKNOWN and not result.mac_verified
    assert hostile.inner.counter(SFI_COUNTERS, 1) == trips - 1
    assert result.sent_debit == 1


@pytest.mark.parametrize("indicator", ["00", "FF", "96"])
def test_fci_with_an_impossible_buffer_size_is_a_typed_error(indicator: str) -> None:
    """A startup information byte out of 06h..37h is refused by the FCI parser, not later."""
    startup = "5307" + indicator + "3C28051410 01".replace(" ", "")
    fci = "6F23" + "8409315449432E49434131" + "A516BF0C13" + "C70800000000C0FFEE02" + startup
    with pytest.raises(CardResponseError, match="startup information"):
        parse_select_application(ResponseApdu.from_bytes(bytes.fromhex(fci + "9000")))


def test_a_control_character_in_yaml_is_a_config_error(tmp_path: Path) -> None:
    """A control character in a YAML file gives ConfigError, not PyYAML's reader error."""
    path = tmp_path / "validator.yaml"
    path.write_text("validator_id: gate\x01\n")
    with pytest.raises(ConfigError, match="special characters"):
        load_model(path, ValidatorSettings)


@pytest.mark.parametrize("layouts", [{"A0000004040125090101": "in"}, {"A0Z0000404": "demo"}])
def test_bad_layouts_are_refused_by_the_settings(tmp_path: Path, layouts: dict[str, str]) -> None:
    """An unknown layout name or a non-hex AID in ``layouts`` is a settings error."""
    path = tmp_path / "validator.yaml"
    path.write_text(json.dumps({"layouts": layouts}))
    with pytest.raises(ConfigError, match="layouts"):
        load_model(path, ValidatorSettings)


def test_a_missing_event_record_is_a_typed_card_error(station: Station) -> None:
    """A card answering the event-log read without record 1 ends the tap as a card error."""
    card = make_card("multi_trip")

    class NoEvents:
        def power_on(self) -> bytes:
            return card.power_on()

        def power_off(self) -> None:
            card.power_off()

        def process(self, apdu: bytes) -> bytes:
            if apdu[1] == 0xB2 and apdu[3] >> 3 == 0x08:
                # A multiple-mode answer that skips record 1: only record 2, then 9000.
                return bytes([2, 29]) + bytes(29) + bytes.fromhex("9000")
            return card.process(apdu)

    result = station.tap(NoEvents(), START)
    assert result.outcome is Outcome.ERROR and not result.outcome.opens_gate


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("state_read", "x", "state_read: expected an object or null, got a string"),
        ("trace", {"card": [1, 2]}, "trace.card[0]: expected an object, got an integer"),
        ("trace", {"card": ["x"]}, "trace.card[0]: expected an object, got a string"),
        ("station", "101", "station: expected an integer, got a string"),
        ("decision", {}, "decision.verdict: missing"),
        ("schema", 3, "schema: version 3 is newer than this release knows (2)"),
    ],
)
def test_a_journal_entry_with_a_wrong_type_is_malformed(
    rules: FareRules, field: str, value: object, error: str
) -> None:
    """Replay reports an entry whose fields have the wrong type as malformed, never crashes."""
    entry = {"seq": 1, "prev": "0" * 64, "time": "2026-03-02T08:00:01+00:00", "station": 101}
    entry |= {"tap_time": "2026-03-02T08:00:00", "card": "00000000C0FFEE01", "outcome": "granted"}
    entry[field] = value
    options = Options(rules=rules, keys=CONFIG / "keys.sim.yaml")
    facts = Analyser(options).batch([json.dumps(entry).encode()], [("j.jsonl", 1)]).chain[0]
    assert facts.error == f"malformed entry: {error}"
