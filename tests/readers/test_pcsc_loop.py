# SPDX-License-Identifier: Apache-2.0
"""The gate loop through the real PC/SC stack: three successive cards served."""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

from calypso.emulator.dispatch import CardEmulator
from calypso.layouts.demo import SFI_COUNTERS
from lab.pcscd import CARD_READER, SAM_READER, InsertCard, PrivatePcscd, wait_reader_state
from readers.channel import ApduChannel
from readers.pcsc import PcscReader
from readers.vpcd import VpcdCard
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.gate import NullGate
from validator.app.loop import run_loop
from validator.engine.fares.decide import FareRules
from validator.engine.outcome import Outcome
from validator.engine.tap import TapProcessor
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal
from yamlconfig import load_model

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO_AID = bytes.fromhex("315449432E49434131")


class TestLoopThroughPcscd:
    """run_loop waits on SCardGetStatusChange and serves each card once."""

    def test_three_cards_max_taps(
        self, pcscd: PrivatePcscd, insert_card: InsertCard, tmp_path: Path
    ) -> None:
        """Three cards presented in turn: three taps, each journaled, the carnet paid once."""
        sam = SoftwareSam.from_keys(
            CONFIG / "keys.sim.yaml", random.Random(5).randbytes, allow_simulation=True
        )
        insert_card(sam, SAM_READER)
        sam_reader = PcscReader(re.escape(SAM_READER), timeout=3.0)
        sam_connection = sam_reader.wait_for_card(5.0)
        assert sam_connection is not None
        channel = ApduChannel(sam_connection, label="sam")
        card_reader = PcscReader(re.escape(CARD_READER), timeout=3.0)
        slot = VpcdCard(pcscd.ports[CARD_READER])
        cards = [
            CardEmulator.from_profile(
                CONFIG / "cards" / f"{name}.yaml", rng=random.Random(n).randbytes
            )
            for n, name in enumerate(["multi_trip", "season_pass", "expired"])
        ]
        carnet_before = cards[0].counter(SFI_COUNTERS, 1)
        gate = NullGate()
        stop = threading.Event()

        def passengers() -> None:
            for number, card in enumerate(cards, start=1):
                slot.insert(card)
                while len(gate.records) < number and not stop.is_set():
                    stop.wait(0.01)
                slot.remove()

        rules = load_model(CONFIG / "fares.yaml", FareRules)
        feeder = threading.Thread(target=passengers, daemon=True)
        try:
            with Journal(tmp_path) as journal:
                processor = TapProcessor(
                    LegacySam(channel), rules, [DEMO_AID], "pcsc-test", journal
                )
                feeder.start()
                served = run_loop(
                    card_reader, processor, gate, station=101, max_taps=3, stop=stop, poll_s=0.2
                )
        finally:
            stop.set()
            feeder.join(5)
            slot.remove()
            # Leave the reader as the next test expects it: seen empty by pcscd (~400 ms poll).
            wait_reader_state(CARD_READER, present=False)
            sam_connection.close()
            sam_reader.close()
            card_reader.close()
        assert served == 3
        outcomes = [r.result.outcome for r in gate.records]
        assert outcomes == [Outcome.GRANTED, Outcome.GRANTED, Outcome.DENIED]
        assert cards[0].counter(SFI_COUNTERS, 1) == carnet_before - 1
        report = verify_journal(tmp_path)
        assert report.ok and report.entries == 3
