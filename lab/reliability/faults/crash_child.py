# SPDX-License-Identifier: Apache-2.0
"""The validator the crash campaign kills (``python -m lab.reliability.faults.crash_child``).

It starts as ``validator run`` does (journal opened, torn tail quarantined, unknown taps restored
from the journal), then serves taps of an on-disk fleet of emulated cards (each card's EEPROM
image persisted atomically at every internal write, so a card outlives the process as a real
card outlives a gate) with the software SAM, and tells the parent on stdout what it does:

- ``ready LAST_SEQ RESTORED`` once started;
- ``begin N CARD TIME`` before tap N of this run (the card's image is copied aside first);
- ``done N SEQ CARD OUTCOME`` after the journal append returned: the feedback was given.

Some taps are torn (the card pulled before or during an APDU) so that unknown outcomes exist
to be resolved after a restart. ``--power-cut N:W`` cuts the card's power before its W-th
internal write during tap N and kills the process at that same instant (a gate's power cut).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from calypso.commands import CardIns
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.nv import PowerLostError
from calypso.emulator.profile import load_profile
from readers.base import CardRemovedError, PassThroughHandler
from readers.emulated import EmulatedReader, Fault, FaultKind
from sam.software.link import software_sam
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import FareRules, TapContext
from validator.engine.outcome import Outcome
from validator.journal.pending import restore_pending
from validator.journal.writer import Journal
from yamlconfig import load_model

MANIFEST = "fleet.json"
RETRY_OUTCOMES = (Outcome.CARD_LOST, Outcome.UNKNOWN)


@dataclass(frozen=True, slots=True)
class FleetCard:
    """One card of the on-disk fleet: its profile, serial and EEPROM image file."""

    profile: Path
    serial: bytes
    image: Path

    @property
    def before(self) -> Path:
        """Where the image is copied before each tap (to judge a crash mid-tap)."""
        return self.image.with_suffix(".before.json")

    def load(self, seed: int, *, image: Path | None = None) -> CardEmulator:
        """The card from its image (an interrupted commit recovered), saving to ``image``."""
        profile = load_profile(self.profile).model_copy(update={"serial": self.serial})
        rng = random.Random(seed).randbytes  # noqa: S311 - simulation randomness
        return CardEmulator(profile, rng, image_path=image or self.image)


def write_fleet(workdir: Path, profiles: list[Path], copies: int) -> list[FleetCard]:
    """Personalise ``copies`` cards per profile on disk and write the manifest."""
    fleet = []
    for path in profiles:
        base = load_profile(path).serial
        for copy in range(copies):
            low = (int.from_bytes(base[6:], "big") + 0x100 * copy) & 0xFFFF
            serial = base[:6] + low.to_bytes(2, "big")
            card = FleetCard(path, serial, workdir / "cards" / f"{serial.hex().upper()}.json")
            card.load(0).save(card.image)
            fleet.append(card)
    document = [
        {"profile": str(c.profile), "serial": c.serial.hex().upper(), "image": str(c.image)}
        for c in fleet
    ]
    (workdir / MANIFEST).write_text(json.dumps(document, indent=1))
    return fleet


def read_fleet(workdir: Path) -> list[FleetCard]:
    """The fleet of a work directory."""
    document = json.loads((workdir / MANIFEST).read_text())
    return [
        FleetCard(Path(c["profile"]), bytes.fromhex(c["serial"]), Path(c["image"]))
        for c in document
    ]


class _GateCut(PassThroughHandler[CardEmulator]):
    """A card whose power loss takes the whole gate down: the process dies at that instant.

    With ``tear_close`` the card is pulled while it executes Close Secure Session: it commits,
    the answer is lost, and the validator journals the tap as ``unknown``.
    """

    def __init__(self, card: CardEmulator, *, tear_close: bool = False) -> None:
        super().__init__(card)
        self.tear_close = tear_close

    def process(self, apdu: bytes) -> bytes:
        """The card's answer; a power loss kills the process, a torn Close loses the answer."""
        try:
            answer = super().process(apdu)
        except PowerLostError:
            os.kill(os.getpid(), signal.SIGKILL)
            raise  # pragma: no cover - never reached
        if self.tear_close and len(apdu) > 1 and apdu[1] == CardIns.CLOSE_SECURE_SESSION:
            self.tear_close = False
            self.inner.power_off()
            raise CardRemovedError("card removed during Close Secure Session")
        return answer


def _say(*words: object) -> None:
    print(*words, flush=True)


def serve(args: argparse.Namespace) -> int:
    """Start like ``validator run``, then tap cards until killed or ``--taps`` are done."""
    settings = load_settings(args.config)
    rules = load_model(args.config / settings.fares, FareRules)
    rnd = random.Random(args.seed)  # noqa: S311 - simulation randomness
    sam = software_sam(
        args.config / settings.keys,
        rng=random.Random(rnd.getrandbits(64)).randbytes,  # noqa: S311
        allow_simulation=True,
    )
    fleet = read_fleet(args.workdir)
    by_serial = {c.serial.hex().upper(): i for i, c in enumerate(fleet)}
    queue = [by_serial[s] for s in args.first if s in by_serial]
    cut_tap, cut_write = args.power_cut or (0, 0)
    reader = EmulatedReader("contactless")
    now = args.start
    with Journal(args.workdir / "journal") as journal:
        station = build_station(
            args.config, settings, reader=reader, sam=sam, journal=journal, rules=rules
        )
        processor = station.processor
        restored = restore_pending(processor, journal)
        processor.prefetch()
        _say("ready", journal.last_seq, restored)
        for number in range(1, args.taps + 1):
            index = queue.pop(0) if queue else rnd.randrange(len(fleet))
            entry = fleet[index]
            shutil.copyfile(entry.image, entry.before)
            card = entry.load(rnd.getrandbits(32))
            if number == cut_tap:
                card.power_fail_at(cut_write)
            _say("begin", number, index, now.isoformat())
            reader.insert(_GateCut(card, tear_close=rnd.random() < args.unknown_rate))
            if rnd.random() < args.tear_rate:
                kind = rnd.choice([FaultKind.REMOVED_BEFORE, FaultKind.REMOVED_DURING])
                reader.inject(Fault(kind, rnd.randint(2, 9)))
            record = processor.process(reader.connect(), TapContext(now, args.station))
            reader.clear_faults()
            reader.remove()
            _say("done", number, record.seq, index, record.result.outcome.value)
            processor.prefetch()
            if record.result.outcome in RETRY_OUTCOMES:
                queue.insert(0, index)  # the passenger tries again at once
                now += dt.timedelta(seconds=rnd.randint(3, 20))
            else:
                now += dt.timedelta(seconds=rnd.randint(30, 600))
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The child's arguments."""
    parser = argparse.ArgumentParser(prog="python -m lab.reliability.faults.crash_child")
    parser.add_argument("--config", type=Path, required=True, help="validator.yaml's folder")
    parser.add_argument("--workdir", type=Path, required=True, help="fleet.json, cards, journal")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=dt.datetime.fromisoformat, required=True)
    parser.add_argument("--station", type=int, default=101)
    parser.add_argument("--taps", type=int, default=10**9, help="stop after this many taps")
    parser.add_argument("--tear-rate", type=float, default=0.1, help="card pulled at an APDU")
    parser.add_argument("--unknown-rate", type=float, default=0.15, help="card pulled in Close")
    parser.add_argument("--first", nargs="*", default=[], help="card serials that tap first")
    parser.add_argument("--power-cut", type=_cut, help="TAP:WRITE, a gate power cut")
    return parser.parse_args(argv)


def _cut(text: str) -> tuple[int, int]:
    tap, _, write = text.partition(":")
    return int(tap), int(write)


if __name__ == "__main__":
    sys.exit(serve(parse()))
