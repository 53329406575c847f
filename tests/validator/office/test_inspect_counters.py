# SPDX-License-Identifier: Apache-2.0
"""``validator inspect`` decodes each counter by the contract that points at it (issue 16.13)
and shows a counters record shorter than one counter as such (issue 15.20)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import CARDS, CONFIG

from validator.cli.main import main

INTERCODE = CARDS / "intercode.yaml"


def inspect(*args: str, config: Path = CONFIG) -> str:
    """Run ``validator inspect`` on the config folder and return its output."""
    result = CliRunner().invoke(main, ["inspect", "--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def counters_record(profile: Path, config: Path = CONFIG) -> dict[str, Any]:
    """The JSON of record 1 of the counters file (SFI 19h)."""
    doc = json.loads(inspect("--json", "--card-profile", str(profile), config=config))
    files = {f["sfi"]: f for f in doc["files"]}
    record: dict[str, Any] = files["19"]["content"][0]
    return record


class TestCountersByContract:
    """Counter n is read as contract n's product: carnet, stored value, or raw."""

    def test_json_kinds(self) -> None:
        """Counter 1 (carnet contract 1): 10 journeys; counter 2 (stored value): amount 40;
        counter 3 (a season pass): its raw value only; counter 4: the common-format stored
        value (a 16-bit tariff); counter 5 (no contract): raw."""
        counters = counters_record(INTERCODE)["counters"]
        carnet, purse, season, unused = counters[0], counters[1], counters[2], counters[4]
        value = counters[3]
        assert (value["contract"], value["tariff"], value["amount"]) == (4, 0x5001, 2000)
        assert value["structure"] == "common format (type 60h)"
        assert carnet["kind"] == "trips" and carnet["contract"] == 1
        assert (carnet["journeys"], carnet["first_stamp_15mn"]) == (10, 0)
        assert (carnet["reads_as"], carnet["network"], carnet["structure"]) == (
            "carnet",
            "250901",
            "FFh",
        )
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
        assert "a season_pass title uses no counter" in out


class TestShortCountersRecord:
    """Issue 15.20: a 1-byte counters record is not "(empty)"."""

    def test_one_byte_record(self, tmp_path: Path) -> None:
        """A counters file of 1-byte records shows a short record with its byte, in both forms."""
        text = INTERCODE.read_text().replace(
            "    record_size: 27  # 9 x 3-byte counters\n", "    record_size: 1\n"
        )
        text = text.replace("counters: [2621440, 40, 0, 2000, 0, 0, 0, 0, 0]", 'content: ["00"]')
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


def write_card(tmp_path: Path, records: dict[str, str], counters: list[int]) -> Path:
    """The Navigo-like profile with other contract list, contracts and counters."""
    text = INTERCODE.read_text()
    listed = text.split("name: contract_list")[1].split('      - "')[1].split('"')[0]
    text = text.replace(listed, records["list"])
    text = text.replace(
        '  - {name: contracts_2, sfi: 0x06, lid: "2030", type: linear, records: 4, '
        "access: {read: always, update: session2}}",
        '  - {name: contracts_2, sfi: 0x06, lid: "2030", type: linear, records: 4, '
        f'access: {{read: always, update: session2}}, content: ["{records["tickets"]}", '
        f'"{records["value"]}"]}}',
    )
    text = text.replace("counters: [2621440, 40, 0, 2000, 0, 0, 0, 0, 0]", f"counters: {counters}")
    path = tmp_path / "structured.yaml"
    path.write_text(text)
    return path


class TestSharedAndSoldCounters:
    """Counters read by 20h / 46h contracts: units sold, and one counter shared by two."""

    def test_units_sold_and_a_shared_counter(self, tmp_path: Path) -> None:
        """Counter 5: 18 units, 2 a journey (9 journeys) for contract 5, an amount of 18 for
        contract 6 linked to it; both named in used_by and in the tree."""
        from calypso.en1545 import encode
        from calypso.en1545.contracts import CONTRACT_20, CONTRACT_46
        from calypso.layouts.intercode import BestContract, encode_contract_list

        validity = {"ContractValidityEndDate": "2030-12-31"}
        tickets = encode(
            CONTRACT_20,
            {
                "ContractTariff": 0x4001,
                "ContractValidityInfo": validity,
                "ContractData": {
                    "ContractDataSoldUnits": {"ContractSold": 20, "ContractDebitSold": 2}
                },
            },
        )
        value = encode(
            CONTRACT_46,
            {
                "ContractTariff": 0x4002,
                "ContractValidityInfo": validity,
                "ContractData": {"ContractLinkedContract": 5},
            },
        )
        listed = encode_contract_list(
            [BestContract(5, 0x0200, 0x250901), BestContract(6, 0x0460, 0x250901)]
        )
        profile = write_card(
            tmp_path,
            {
                "list": listed.rstrip(b"\0").hex().upper(),
                "tickets": tickets.rstrip(b"\0").hex().upper(),
                "value": value.rstrip(b"\0").hex().upper(),
            },
            [0, 0, 0, 0, 18, 0, 0, 0, 0],
        )
        config = tmp_path / "config"
        shutil.copytree(CONFIG, config)
        fares = config / "fares.yaml"
        fares.write_text(
            fares.read_text().replace(
                "products:\n",
                "products:\n  - {network: '250901', tariff: 0x4002, kind: stored_value, "
                "name: Value}\n",
            )
        )
        counter5 = counters_record(profile, config)["counters"][4]
        assert counter5["contract"] == 5 and counter5["structure"] == "20h"
        assert (counter5["reads_as"], counter5["journeys"]) == ("units sold, 2 a journey", 9)
        assert [(u["contract"], u["structure"]) for u in counter5["used_by"]] == [
            (5, "20h"),
            (6, "46h"),
        ]
        assert counter5["used_by"][1]["amount"] == 18
        out = inspect("--card-profile", str(profile), config=config)
        assert "one counter shared by contracts 5, 6" in out
        doc = json.loads(inspect("--json", "--card-profile", str(profile)))
        contracts_2 = next(f for f in doc["files"] if f["sfi"] == "06")["content"]
        assert [c["contract_structure"] for c in contracts_2[:2]] == ["20h", "46h"]
        assert contracts_2[0]["fields"]["ContractTariff"] == 0x4001
