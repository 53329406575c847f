# SPDX-License-Identifier: Apache-2.0
"""``validator inspect`` decodes each counter by the contract that points at it (issue 16.13)
and shows a counters record shorter than one counter as such (issue 15.20)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import CARDS, CONFIG

from validator.cli.main import main

INTERCODE = CARDS / "intercode.yaml"


def inspect(*args: str) -> str:
    """Run ``validator inspect`` on the config folder and return its output."""
    result = CliRunner().invoke(main, ["inspect", "--config", str(CONFIG), *args])
    assert result.exit_code == 0, result.output
    return result.output


def counters_record(profile: Path) -> dict[str, Any]:
    """The JSON of record 1 of the counters file (SFI 19h)."""
    doc = json.loads(inspect("--json", "--card-profile", str(profile)))
    files = {f["sfi"]: f for f in doc["files"]}
    record: dict[str, Any] = files["19"]["content"][0]
    return record


class TestCountersByContract:
    """Counter n is read as contract n's product: carnet, stored value, or raw."""

    def test_json_kinds(self) -> None:
        """Counter 1 (carnet contract 1): 10 journeys; counter 2 (stored value): amount 40;
        counter 3 (a season pass): its raw value only; counter 4 (no contract): raw."""
        counters = counters_record(INTERCODE)["counters"]
        carnet, purse, season, unused = counters[0], counters[1], counters[2], counters[3]
        assert carnet["kind"] == "multi_trip" and carnet["contract"] == 1
        assert (carnet["journeys"], carnet["first_stamp_15mn"]) == (10, 0)
        assert purse["kind"] == "stored_value" and purse["tariff"] == 3
        assert purse["amount"] == 40 and "journeys" not in purse
        assert season["kind"] == "season_pass" and season["contract"] == 3
        assert "amount" not in season and "journeys" not in season
        assert unused["kind"] is None and unused["contract"] is None and unused["raw"] == 0

    def test_tree(self) -> None:
        """The tree says "stored value: amount 40", not a carnet with a first stamp of 40."""
        out = inspect("--card-profile", str(INTERCODE))
        assert "stored value: amount 40" in out
        assert "carnet: 10 journeys, first stamp 0" in out
        assert "CounterRelativeFirstStamp15mn: 40" not in out
        assert "no contract points at it" in out


class TestShortCountersRecord:
    """Issue 15.20: a 1-byte counters record is not "(empty)"."""

    def test_one_byte_record(self, tmp_path: Path) -> None:
        """A counters file of 1-byte records shows a short record with its byte, in both forms."""
        text = INTERCODE.read_text().replace(
            "    record_size: 27  # 9 x 3-byte counters\n", "    record_size: 1\n"
        )
        text = text.replace("counters: [2621440, 40, 0, 0, 0, 0, 0, 0, 0]", 'content: ["00"]')
        profile = tmp_path / "short.yaml"
        profile.write_text(text)
        record = counters_record(profile)
        assert record["short_record"] == {"length": 1, "hex": "00"}
        out = inspect("--card-profile", str(profile))
        assert "short record: 1 byte 00" in out
        assert "(empty)" not in out.split("LID 2069h")[1].split("LID 2040h")[0]

    def test_one_byte_record_demo_layout(self, tmp_path: Path) -> None:
        """The same holds for a demo-layout card: the short record and its byte, not (empty)."""
        text = (CARDS / "multi_trip.yaml").read_text()
        short = '    record_size: 1\n    content: ["07"]'
        text = text.replace("    counters: [10, 0, 0, 0]", short)
        profile = tmp_path / "short_demo.yaml"
        profile.write_text(text)
        assert counters_record(profile)["short_record"] == {"length": 1, "hex": "07"}
        out = inspect("--card-profile", str(profile))
        assert "short record: 1 byte 07" in out
