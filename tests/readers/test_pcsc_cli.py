# SPDX-License-Identifier: Apache-2.0
"""``validator readers`` and ``validator emulate`` against the private pcscd."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from calypso.emulator.dispatch import CardEmulator
from lab.pcscd import CARD_READER, SAM_READER, InsertCard, PrivatePcscd, wait_reader_state
from readers.channel import ApduChannel
from readers.pcsc import PcscReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.cli.main import main
from validator.cli.readers import describe_atr
from validator.engine.attempt import validate
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO_AID = bytes.fromhex("315449432E49434131")


class TestReadersCommand:
    """What ``validator readers`` shows."""

    def test_lists_readers_with_card_and_sam(self, insert_card: InsertCard):
        """The SAM is named with its serial, the card is recognised as contactless."""
        insert_card(
            SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True), SAM_READER
        )
        insert_card(CardEmulator.from_profile(CONFIG / "cards" / "multi_trip.yaml"))
        result = CliRunner().invoke(main, ["readers", "--nfc", "udp:127.0.0.1:1"])
        assert result.exit_code == 0, result.output
        lines = {
            line.split(":")[0].removeprefix("pcsc  "): line for line in result.output.splitlines()
        }
        assert "SAM C1 serial 5AFE0001" in lines[SAM_READER]
        assert "Calypso card" in lines[CARD_READER]
        assert "empty" in lines["Test Card 00 01"]

    def test_describe_atr(self):
        """Unknown ATRs are just a card."""
        assert describe_atr(bytes.fromhex("3B00")) == "card"


@pytest.fixture
def emulators(pcscd: PrivatePcscd) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``validator emulate`` processes, interrupted (Ctrl-C) at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    for reader in (CARD_READER, SAM_READER):
        wait_reader_state(reader, present=False)  # leave the readers empty for the next test


def emulate(*args: str) -> subprocess.Popen[bytes]:
    """Start ``validator emulate`` with these arguments."""
    command = [sys.executable, "-m", "validator", "emulate", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603


class TestEmulateCommand:
    """An emulated card and the software SAM served to pcscd by ``validator emulate``."""

    def test_serves_card_and_sam_to_any_pcsc_client(
        self,
        pcscd: PrivatePcscd,
        emulators: list[subprocess.Popen[bytes]],
        rules: FareRules,
        morning: dt.datetime,
    ):
        """A validation through pcscd against two emulate processes is granted."""
        card_port, sam_port = str(pcscd.ports[CARD_READER]), str(pcscd.ports[SAM_READER])
        keys = str(CONFIG / "keys.sim.yaml")
        profile = str(CONFIG / "cards" / "multi_trip.yaml")
        emulators.append(emulate("--sam-keys", keys, "--vpcd-port", sam_port, "--simulation"))
        emulators.append(emulate("--card-profile", profile, "--vpcd-port", card_port))
        with (
            PcscReader(re.escape(CARD_READER)) as card_reader,
            PcscReader(re.escape(SAM_READER)) as sam_reader,
        ):
            sam = sam_reader.wait_for_card(10.0)
            card = card_reader.wait_for_card(10.0)
            assert sam is not None and card is not None
            result = validate(
                card, LegacySam(ApduChannel(sam)), rules, TapContext(morning, 101), aids=[DEMO_AID]
            )
            assert result.outcome is Outcome.GRANTED, result.explanation
            card.close()
            sam.close()

    def test_needs_exactly_one_thing_to_serve(self):
        """Neither or both of --card-profile and --sam-keys is a usage error."""
        result = CliRunner().invoke(main, ["emulate", "--vpcd-port", "1"])
        assert result.exit_code == 2
        assert "exactly one" in result.output

    def test_vpcd_not_listening(self):
        """No pcscd on the port: a clear message and a non-zero exit."""
        profile = str(CONFIG / "cards" / "multi_trip.yaml")
        result = CliRunner().invoke(
            main,
            ["emulate", "--card-profile", profile, "--vpcd-port", "1", "--connect-timeout", "0.1"],
        )
        assert result.exit_code == 5
        assert "cannot reach vpcd" in result.output
