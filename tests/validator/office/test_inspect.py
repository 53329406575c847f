# SPDX-License-Identifier: Apache-2.0
"""``validator inspect`` and ``validator decode`` on the shipped profiles (emulated reader)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CARDS, CONFIG, Station

from calypso.card_image import CalypsoCard
from calypso.emulator.dispatch import CardEmulator
from calypso.en1545 import Structure, encode
from calypso.en1545.contracts import CONTRACT_20, CONTRACT_46, CONTRACT_COMMON, CONTRACT_FF
from readers.apdu import ResponseApdu
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from validator.cli.main import main
from validator.engine.session import SecureSession
from validator.office.inspect.read import inspect_card

PROFILES = sorted(CARDS.glob("*.yaml")) + sorted((CARDS / "other").glob("*.yaml"))
# Cards whose keys the simulation SAM does not hold: the secure read must say so.
FOREIGN_KEYS = {"wrong_keys"}
# Select, Get Data, Read Record(s), Open and Close Secure Session: nothing that writes.
READ_ONLY_INS = {0xA4, 0xCA, 0xB2, 0xB3, 0x8A, 0x8E}


def inspect_json(*args: str) -> tuple[int, dict[str, Any]]:
    """Run ``validator inspect --json`` and parse its output."""
    result = CliRunner().invoke(main, ["inspect", "--config", str(CONFIG), "--json", *args])
    assert result.output.startswith("{"), result.output
    return result.exit_code, json.loads(result.output)


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
class TestInspectEveryProfile:
    """Every shipped card profile is read and decoded, and nothing is written."""

    def test_free_read(self, path: Path) -> None:
        """The application, the files and every record, decoded with the card's layout."""
        code, doc = inspect_json("--card-profile", str(path))
        assert code == 0
        app = doc["application"]
        assert len(app["serial"]) == 16 and app["product_type"]
        assert doc["read"] == "free read" and doc["secure_session"] is None
        intercode = "intercode" in path.stem or path.stem == "oura"
        assert doc["layout"] == ("intercode" if intercode else "demo")
        readable = [f for f in doc["files"] if f["type"] != "binary" and "error" not in f]
        assert readable
        for view in readable:
            assert [r["record"] for r in view["content"]] == list(range(1, view["records"] + 1))
            for record in view["content"]:
                if view["structure"] is not None:
                    assert "empty" in record

    def test_secure_read_exit_code(self, path: Path) -> None:
        """Inside a DEBIT session; exit code 0 only when the card MAC was verified."""
        code, doc = inspect_json("--card-profile", str(path), "--secure")
        assert doc["read"] == "secure session"
        verified = doc["secure_session"]["mac_verified"]
        assert verified is (path.stem not in FOREIGN_KEYS)
        assert code == (0 if verified else 1)

    def test_secure_read_never_writes(self, path: Path, station: Station) -> None:
        """Only Select, Get Data, Open, Read Records and Close are sent; the files are unchanged."""
        card = CardEmulator.from_profile(path)
        before = card.snapshot().files
        reader = EmulatedReader("card")
        reader.insert(card)
        sent: list[bytes] = []
        connection = reader.connect()
        transmit = connection.transmit

        def recording(apdu: bytes) -> ResponseApdu:
            sent.append(apdu)
            return transmit(apdu)

        connection.transmit = recording  # type: ignore[method-assign]

        def opener(channel: ApduChannel, image: CalypsoCard) -> SecureSession:
            extended = image.application.startup.extended_mode
            crypto = station.sam.session_crypto(image.serial, extended=extended)
            return SecureSession(channel, crypto, image, extended=extended, default_kvc=0xF0)

        result = inspect_card(connection, aids=[], layouts={}, secure=opener)
        assert result.secure is not None
        assert {apdu[1] for apdu in sent} <= READ_ONLY_INS
        assert card.snapshot().files == before


class TestInspectIntercodeCard:
    """The Navigo-like card shows EN 1545 fields."""

    def test_decoded_fields(self) -> None:
        """Environment, contract list, contracts and counters with their EN 1545 names."""
        _, doc = inspect_json("--card-profile", str(CARDS / "intercode.yaml"))
        files = {f["name"]: f for f in doc["files"]}
        assert doc["files_source"] == "Get Data EF list"
        env = files["environment"]["content"][0]["fields"]
        assert env["EnvNetworkId"] == "250901"
        assert env["EnvApplicationValidityEndDate"] == "2035-12-31"
        best = files["contract_list"]["content"][0]["fields"]["BestContracts"]
        assert [b["BestContractPointer"] for b in best] == [3, 1, 4, 2]
        carnet = files["contracts_1"]["content"][0]["fields"]
        assert carnet["ContractTariff"] == 2
        assert carnet["ContractValidityInfo"]["ContractValidityStartDate"] == "2026-01-01"
        event = files["event_log"]["content"][0]
        assert event["meanings"]["EventCode"] == "metro, entry"
        assert event["meanings"]["EventServiceProvider"] == "RATP"  # Navigo's table
        assert doc["network"]["network"] == "250901"
        assert doc["network"]["providers"] == "2 SNCF, 3 RATP"
        assert files["contracts_1"]["content"][0]["contract_structure"] == "FFh"
        counters = files["counters"]["content"][0]
        assert counters["fields"]["Counter1"]["CounterContractCount"] == 10
        assert counters["counter_values"]["Counter2"] == 40

    def test_readable_tree(self) -> None:
        """Without --json: a tree that names the fields and how the card was read."""
        result = CliRunner().invoke(
            main,
            ["inspect", "--config", str(CONFIG), "--card-profile", str(CARDS / "intercode.yaml")],
            env={"COLUMNS": "160"},
        )
        assert result.exit_code == 0, result.output
        assert "free read" in result.output
        assert "EventCode: 49  (metro, entry)" in result.output
        assert "EnvApplicationValidityEndDate: 2035-12-31" in result.output

    def test_secure_tree_says_so(self) -> None:
        """With --secure the tree says the card MAC was verified."""
        result = CliRunner().invoke(
            main,
            ["inspect", "--config", str(CONFIG), "--secure", "--card-profile"]
            + [str(CARDS / "intercode.yaml")],
            env={"COLUMNS": "200"},
        )
        assert result.exit_code == 0, result.output
        assert "card MAC verified by the SAM" in result.output

    def test_emulated_reader_needs_a_profile(self) -> None:
        """``--card-reader emulated`` without a profile is a usage error."""
        result = CliRunner().invoke(
            main, ["inspect", "--config", str(CONFIG), "--card-reader", "emulated"]
        )
        assert result.exit_code == 2
        assert "--card-profile" in result.output


def decode_json(*args: str) -> dict[str, Any]:
    """Run ``validator decode --json``."""
    result = CliRunner().invoke(main, ["decode", "--json", *args])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


class TestDecode:
    """``validator decode`` for both layouts."""

    def test_navigo_environment(self) -> None:
        """The section 2.7 sample, spaces allowed in the hex."""
        doc = decode_json("--structure", "environment", "24 B9 28 48 08 05 E6 64 60 B0 00 12 C1")
        assert doc["fields"]["EnvApplicationValidityEndDate"] == "2030-01-31"
        assert doc["fields"]["EnvNetworkId"] == "250901"
        assert doc["meanings"]["EnvNetworkId"].startswith("Navigo")

    def test_intercode_event(self) -> None:
        """Dates ISO, times HH:MM, EN 1545 names."""
        doc = decode_json(
            "--layout", "intercode", "--structure", "event", "856dfbd14048a230e8281915c0080008e70a"
        )
        fields = doc["fields"]
        assert (fields["EventDateStamp"], fields["EventTimeStamp"]) == ("2020-05-19", "16:55")
        assert fields["EventServiceProvider"] == 29 and fields["EventLocationId"] == 1283
        assert doc["truncated_at"].startswith("EventData")

    def test_demo_records(self) -> None:
        """The Keyple demo's own vectors (section 3.3) with the same field names."""
        env = decode_json("--layout", "demo", "--structure", "environment", "01000000010FFB1C92")
        assert env["fields"]["EnvEndDate"] == "2030-01-10"
        event = decode_json("--layout", "demo", "--structure", "event", "010FBF034800000001")
        assert event["fields"]["EventDateStamp"] == "2021-01-14"
        assert event["fields"]["EventTimeStamp"] == "14:00"
        contract = decode_json("--layout", "demo", "--structure", "contract", "01010FBF0FDD")
        assert contract["fields"]["ContractValidityEndDate"] == "2021-02-13"
        assert contract["meanings"]["ContractTariff"] == "season pass"

    def test_contract_list_and_counters(self) -> None:
        """Best contracts as a list; counters split as carnets."""
        best = decode_json("--structure", "contract-list", "3E4A120200203E4A120200401E4A1202006020")
        assert [b["BestContractPointer"] for b in best["fields"]["BestContracts"]] == [3, 1, 2]
        counters = decode_json("--structure", "counters", "2400B4")
        assert counters["fields"]["Counter1"]["CounterContractCount"] == 9

    @pytest.mark.parametrize(
        ("kind", "structure", "data"),
        [
            ("FF", CONTRACT_FF, {"ContractNetworkId": "250901", "ContractTariff": 2}),
            ("60", CONTRACT_COMMON, {"ContractProvider": 2, "ContractTariff": 0x6601}),
            (
                "20",
                CONTRACT_20,
                {
                    "ContractTariff": 0x4001,
                    "ContractData": {"ContractValidityZones": [1, 2, 3]},
                },
            ),
            (
                "46",
                CONTRACT_46,
                {
                    "ContractTariff": 0x4002,
                    "ContractValidityInfo": {"ContractValidityStartDate": "2026-01-01"},
                    "ContractData": {
                        "ContractValidityStartTime": "06:30",
                        "ContractValidityZones": [2, 16],
                    },
                },
            ),
        ],
    )
    def test_each_contract_structure(
        self, kind: str, structure: Structure, data: dict[str, Any]
    ) -> None:
        """--contract-type picks the structure: EN 1545 names, ISO dates, HH:MM, zone lists."""
        record = encode(structure, data).hex()
        doc = decode_json("--structure", "contract", "--contract-type", kind, record)
        assert doc["contract_type"] == kind
        assert doc["fields"] == data
        assert doc["bits_used"] > 0 and "rest_bits" not in doc

    @pytest.mark.parametrize(
        ("network", "name", "provider"),
        [
            ("250901", "Navigo (Île-de-France)", "RATP"),
            ("250502", "OùRA (Grenoble/Lyon)", "TAG (Grenoble)"),
            ("250916", "Tisséo (Toulouse)", None),
            ("250064", "TaM Montpellier", None),
        ],
    )
    def test_an_event_is_read_with_its_networks_tables(
        self, network: str, name: str, provider: str | None
    ) -> None:
        """EventNetworkId chooses the tables: provider 3's name, or none on the generic ones."""
        from calypso.en1545.tables import EVENT

        record = encode(
            EVENT,
            {
                "EventDateStamp": "2026-03-02",
                "EventTimeStamp": "08:00",
                "EventNetworkId": network,
                "EventCode": 0x31,
                "EventServiceProvider": 3,
                "EventLocationId": 18 << 9 | 7 << 4 | 2,
            },
        )
        doc = decode_json("--structure", "event", record.hex())
        assert doc["network"]["network"] == network and doc["network"]["name"] == name
        assert doc["meanings"].get("EventServiceProvider") == provider
        navigo = network == "250901"
        assert ("EventLocationId" in doc["meanings"]) is navigo

    def test_bad_contract_type(self) -> None:
        """A contract type that is not one hex byte is a usage error."""
        result = CliRunner().invoke(
            main, ["decode", "--structure", "contract", "--contract-type", "1FF", "00"]
        )
        assert result.exit_code == 2 and "one byte" in result.output

    def test_demo_has_no_contract_list(self) -> None:
        """The demo layout keeps priorities in the event: a clear usage error."""
        result = CliRunner().invoke(
            main, ["decode", "--layout", "demo", "--structure", "contract-list", "00"]
        )
        assert result.exit_code == 2 and "event record" in result.output

    def test_bad_hex(self) -> None:
        """Not hex: a usage error naming the argument."""
        result = CliRunner().invoke(main, ["decode", "--structure", "event", "zz"])
        assert result.exit_code == 2 and "not hex" in result.output

    def test_readable_output(self) -> None:
        """Without --json: a tree with the meanings of coded values."""
        result = CliRunner().invoke(
            main,
            ["decode", "--structure", "event", "856dfbd14048a230e8281915c0080008e70adbe5"],
            env={"COLUMNS": "160"},
        )
        assert result.exit_code == 0
        assert "EventCode: 70  (tram, interchange entry)" in result.output
