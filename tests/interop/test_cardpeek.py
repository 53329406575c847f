# SPDX-License-Identifier: Apache-2.0
"""A real client reads the emulated Navigo-like card (issue 16): cardpeek, as Debian ships it,
runs its own Calypso/Navigo scripts through the private pcscd and vpcd, with no help, and
every field it decodes agrees with ``validator inspect --json`` on the same card."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from cardpeek_run import Record, available, run_cardpeek
from click.testing import CliRunner

from calypso.emulator.dispatch import CardEmulator
from lab.pcscd import CARD_READER, InsertCard
from validator.cli.main import main

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[2] / "config"
INTERCODE = CONFIG / "cards" / "intercode.yaml"
EN1545_EPOCH = dt.date(1997, 1, 1)
CARDPEEK_TIMEOUT_S = 20.0
# cardpeek's names (scripts/calypso/c250.lua) for the fields the intercode layout names otherwise.
NAMES = {
    "EnvVersionNumber": "EnvApplicationVersionNumber",
    "EventDate": "EventDateStamp",
    "EventTime": "EventTimeStamp",
    "BestContractsNetworkId": "BestContractNetworkId",
    "BestContractsTariff": "BestContractTariff",
    "BestContractsPointer": "BestContractPointer",
    "ContractStartDate": "ContractValidityStartDate",
    "ContractEndDate": "ContractValidityEndDate",
    "ContractZones": "ContractValidityZones",
    "ContractDate": "ContractSaleDate",
    "ContractTime": "ContractSaleTime",
    "ContractAgent": "ContractSaleAgent",
}


def cardpeek_fields(record: Record) -> list[tuple[str, int]]:
    """cardpeek's decoded leaves as (intercode name, value); bitmaps and counts are framing."""
    out = []
    for path, bits in record.leaves:
        label = path.rsplit(".", 1)[-1]
        if label.startswith("(") or label == "BestContractCount" or not bits:
            continue
        out.append((NAMES.get(label, label), int(bits, 2)))
    return out


def _as_int(value: Any) -> int:
    """An inspect JSON value as the number on the card (dates in days, times in minutes)."""
    if isinstance(value, int):
        return value
    if isinstance(value, list):  # zones 1..8 as a bitmap, zone 1 = bit 0
        return sum(1 << (zone - 1) for zone in value)
    text = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return (dt.date.fromisoformat(text) - EN1545_EPOCH).days
    if re.fullmatch(r"\d{2}:\d{2}", text):
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)
    if re.fullmatch(r"\d{6}", text):  # a network id: BCD country and network
        return int(text, 16)
    raise AssertionError(f"no numeric form for the inspect value {value!r}")


def inspect_fields(fields: dict[str, Any]) -> list[tuple[str, int]]:
    """The inspect JSON fields of a record as (name, value) in the record's order."""
    out: list[tuple[str, int]] = []
    for name, value in fields.items():
        if isinstance(value, dict):
            out += inspect_fields(value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for entry in value:
                out += inspect_fields(entry)
        else:
            out.append((name, _as_int(value)))
    return out


def inspect_over_pcsc() -> dict[str, Any]:
    """``validator inspect --json`` through the same reader."""
    spec = f"pcsc:^{re.escape(CARD_READER)}$"
    result = CliRunner().invoke(
        main,
        ["inspect", "--config", str(CONFIG), "--card-reader", spec, "--timeout", "5", "--json"],
    )
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def test_cardpeek_reads_the_navigo_like_card(insert_card: InsertCard, tmp_path: Path) -> None:
    """cardpeek's calypso.lua reads every file inspect shows, with the same bytes, and every
    field it decodes (environment, events, contract list, contracts) has inspect's value."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    card = CardEmulator.from_profile(INTERCODE)
    insert_card(card)
    result = run_cardpeek(CARD_READER, tmp_path, dict(os.environ), CARDPEEK_TIMEOUT_S)
    assert result.returncode == 0, result.log
    assert "This script may not work" not in result.log  # the card answered its selections

    doc = inspect_over_pcsc()
    shown = {(f["lid"], r["record"]): r for f in doc["files"] if f["lid"] for r in f["content"]}
    peeked = {(r.path[-1], r.number): r for r in result.records if r.path}

    # Every record inspect shows, cardpeek read too, byte for byte.
    for key, record in shown.items():
        assert key in peeked, f"cardpeek did not read file {key[0]} record {key[1]}"
        assert peeked[key].data.hex().upper() == record["hex"], key
    # The MF-level ICC file holds the serial inspect shows (bytes 12..19).
    icc = peeked[("0002", 1)].data
    assert icc[12:20].hex().upper() == doc["application"]["serial"]

    # Every field cardpeek decoded has inspect's value, and inspect decodes no record it skipped.
    # cardpeek 0.8.4 reads every contract with the FF layout (c250.lua: "FIXME: here we should
    # parse the contracts according to Tariff"): a contract its list types otherwise (the
    # card's common-format contract 4) is compared as bytes only, above.
    other = {key for key, r in shown.items() if r.get("contract_structure", "FFh") != "FFh"}
    assert other == {("2020", 4)}
    decoded = {key: r for key, r in peeked.items() if cardpeek_fields(r) and key not in other}
    by_inspect = {
        key: r
        for key, r in shown.items()
        if r.get("fields") and not r.get("empty") and "counters" not in r and key not in other
    }
    assert set(decoded) == set(by_inspect)
    compared = 0
    for key, record in decoded.items():
        assert cardpeek_fields(record) == inspect_fields(by_inspect[key]["fields"]), key
        compared += len(cardpeek_fields(record))
    assert compared >= 40  # environment, event, contract list, three contracts


def test_a_cardpeek_crash_is_run_once_more(insert_card: InsertCard, tmp_path: Path) -> None:
    """A run that ends on cardpeek's own crash is run again, the crash kept; two crashes fail."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    insert_card(CardEmulator.from_profile(INTERCODE))
    real = shutil.which("cardpeek")
    fake = tmp_path / "bin" / "cardpeek"
    fake.parent.mkdir()
    marker = tmp_path / "crashed-once"
    fake.write_text(  # crashes on its first run only, as cardpeek 0.8.4 did once
        f'#!/bin/sh\nif [ ! -e {marker} ]; then touch {marker}; echo "Received signal 11"; '
        f'exit 254; fi\nexec {real} "$@"\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = run_cardpeek(CARD_READER, tmp_path / "work", env, CARDPEEK_TIMEOUT_S)
    assert len(result.crashes) == 1 and "Received signal 11" in result.crashes[0]
    assert result.returncode == 0 and result.records
    fake.write_text('#!/bin/sh\necho "Received signal 11"\nexit 254\n')
    with pytest.raises(AssertionError, match="crashed twice"):
        run_cardpeek(CARD_READER, tmp_path / "again", env, CARDPEEK_TIMEOUT_S)
