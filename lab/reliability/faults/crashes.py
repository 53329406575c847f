# SPDX-License-Identifier: Apache-2.0
"""Process crashes: the validator SIGKILLed at random points of taps, restarted each time.

Each round starts ``lab.reliability.faults.crash_child`` (a validator over an on-disk card fleet
and a
journal), lets it reach a chosen tap and kills it at a delay drawn uniformly over a tap's
duration, or arms a card power cut at a chosen internal EEPROM write that takes the process down
at that instant (a gate's power cut). After every crash the journal is opened as start-up does
and verified, and the card caught mid-tap is checked. Invariants:

- no journal entry lost: every tap the child reported as decided (after the journal append
  returned, i.e. its feedback was given) is in the journal, same card, same outcome;
- no paid tap without a record: a card caught mid-tap that holds the complete tap's image has
  the tap's entry or, when the crash came between its Close and its entry, the closing intent
  written before the Close (``committed_intent_only``); ``committed_not_journaled`` counts the
  cards with neither, and must stay 0 (issue 20);
- intents settled: every closing intent is followed by its tap's entry or, after a restart, by
  the ``unknown`` tap start-up makes of it, which the card's next tap resolves (as paid when
  the card had committed);
- torn tails quarantined: the journal opens and its chain verifies after every crash;
- cards consistent: the card caught mid-tap holds exactly its image from before the tap or
  exactly the image the complete tap gives (replayed on a copy), never a mix;
- unknowns resolved: the first tap that reads a card left ``unknown`` resolves it in the
  journal, also when a restart came in between (the unknown list must survive the restart).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from calypso.commands.sv import SV_DEBIT_LOG_SFI
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.files import CELL_RATIFIED, CELL_SV, CELL_TC, record_cell
from lab.paths import CONFIG
from lab.reliability.faults.crash_child import FleetCard, write_fleet
from lab.reliability.report import Level, Log, PartResult
from readers.emulated import EmulatedReader
from sam.software.link import software_sam
from validator.app.settings import load_settings
from validator.app.station import build_station
from validator.engine.fares.decide import FareRules, TapContext
from validator.journal.entry import EntryFormatError, JournalEntry
from validator.journal.intent import ClosingIntent, read_record
from validator.journal.verify import verify_journal
from validator.journal.writer import Journal, journal_files
from yamlconfig import load_model

NAME = "process-crashes"
START = dt.datetime(2026, 3, 2, 7, 0)
STATION = 101
POWER_CUT_SHARE = 0.3  # rounds ended by a card power cut rather than a timed kill
MAX_WRITE = 8  # internal writes of a tap: Open (TC), Close (journal scheme), ratification
CHILD_TIMEOUT_S = 30.0


@dataclass
class Round:
    """What one child run reported before it died."""

    ready: bool = False
    ready_seq: int = 0  # the journal's last seq once started (after settling open intents)
    begins: dict[int, tuple[int, dt.datetime, float]] = field(default_factory=dict)
    dones: dict[int, tuple[int | None, int, str, float]] = field(default_factory=dict)
    exit_code: int | None = None
    stderr: str = ""

    def in_flight(self) -> tuple[int, dt.datetime] | None:
        """The card and time of the tap begun and not reported done, if any."""
        pending = [n for n in self.begins if n not in self.dones]
        if not pending:
            return None
        card, when, _ = self.begins[max(pending)]
        return card, when


@dataclass
class Campaign:
    """The crash rounds against one journal and one fleet, and what they found."""

    workdir: Path
    log: Log
    rnd: random.Random
    fleet: list[FleetCard] = field(default_factory=list)
    now: dt.datetime = START
    first: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    boundaries: list[int] = field(default_factory=list)  # last seq journaled at each crash
    owed: list[tuple[str, int]] = field(default_factory=list)  # committed, never journaled
    # Committed with only the closing intent journaled: (card, the intent's seq).
    intent_owed: list[tuple[str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, by: int = 1) -> None:
        """Add to a figure."""
        self.figures[name] = self.figures.get(name, 0) + by

    @property
    def journal_dir(self) -> Path:
        """The validator's journal."""
        return self.workdir / "journal"

    def round(self, number: int) -> None:
        """Start the child, crash it, check what it left."""
        power = self.rnd.random() < POWER_CUT_SHARE
        target = self.rnd.randint(1, 4)
        args = [
            sys.executable, "-m", "lab.reliability.faults.crash_child",
            "--config", str(CONFIG), "--workdir", str(self.workdir),
            "--seed", str(self.rnd.getrandbits(32)), "--start", self.now.isoformat(),
            "--station", str(STATION), "--first", *self.first,
        ]  # fmt: skip
        if power:
            args += ["--power-cut", f"{target}:{self.rnd.randint(1, MAX_WRITE)}"]
        outcome = self._drive(args, target, power)
        self.count("power_cuts" if power else "timed_kills")
        self._after_crash(number, outcome)

    def _drive(self, args: list[str], target: int, power: bool) -> Round:
        """Run the child until the crash point; collect its lines (also those after the kill)."""
        found = Round()
        errors = self.workdir / "child.stderr"
        with errors.open("w") as stderr:
            proc = subprocess.Popen(  # noqa: S603 - our own module, fixed argv
                args, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        if proc.stdout is None:  # pragma: no cover - stdout=PIPE always gives one
            raise RuntimeError("no pipe from the child")
        # A child that hangs (no line, no exit) is killed by the timer and reported.
        hung = threading.Event()

        def hang() -> None:
            hung.set()
            proc.kill()

        watchdog = threading.Timer(CHILD_TIMEOUT_S, hang)
        watchdog.start()
        killed = False
        for line in proc.stdout:
            self._parse(found, line)
            if killed:
                continue
            if not power and target in found.begins:
                time.sleep(self.rnd.uniform(0, self._tap_seconds()))
                proc.send_signal(signal.SIGKILL)
                killed = True
            elif power and target + 1 in found.begins:
                proc.send_signal(signal.SIGKILL)  # the cut point was past this tap's writes
                killed = True
                self.count("power_cuts_missed")
        if not killed and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        found.exit_code = proc.wait(CHILD_TIMEOUT_S)
        watchdog.cancel()
        if hung.is_set():
            self.violations.append(f"child hung past {CHILD_TIMEOUT_S:.0f} s")
        proc.stdout.close()
        found.stderr = errors.read_text(errors="replace")
        return found

    def _parse(self, found: Round, line: str) -> None:
        words = line.split()
        stamp = time.monotonic()
        if words[:1] == ["ready"]:
            found.ready = True
            found.ready_seq = int(words[1]) if len(words) > 1 else 0
        elif words[:1] == ["begin"] and len(words) == 4:
            found.begins[int(words[1])] = (
                int(words[2]),
                dt.datetime.fromisoformat(words[3]),
                stamp,
            )
        elif words[:1] == ["done"] and len(words) == 5:
            seq = None if words[2] == "None" else int(words[2])
            found.dones[int(words[1])] = (seq, int(words[3]), words[4], stamp)
            began = found.begins.get(int(words[1]))
            if began is not None:
                self.durations.append(stamp - began[2])

    def _tap_seconds(self) -> float:
        """A tap's duration as seen here (median of the last ones), 20 ms before any."""
        recent = sorted(self.durations[-50:])
        return recent[len(recent) // 2] if recent else 0.02

    def _after_crash(self, number: int, found: Round) -> None:
        """Check the journal, the decided taps, the card caught mid-tap; plan the next round."""
        if found.exit_code != -signal.SIGKILL:
            tail = found.stderr.strip().splitlines()[-3:]
            self.violations.append(f"round {number}: child exited {found.exit_code}: {tail}")
        if not found.ready:
            self.violations.append(f"round {number}: child did not start: {found.stderr[-300:]}")
            return
        self.count("taps_begun", len(found.begins))
        self.count("taps_decided", len(found.dones))
        with Journal(self.journal_dir) as journal:  # start-up: a torn tail is set aside
            self.count("torn_tails_quarantined", len(journal.report.quarantined))
            last_seq = journal.last_seq
        report = verify_journal(self.journal_dir)
        if not report.ok:
            self.violations.append(f"round {number}: journal does not verify: {report.problems}")
        entries, intents = self._records_after(self.boundaries[-1] if self.boundaries else 0)
        for tap, (seq, card, outcome, _) in sorted(found.dones.items()):
            got = entries.get(seq) if seq is not None else None
            serial = self.fleet[card].serial.hex().upper()
            # A card torn during its selection has no serial in the journal yet.
            card_ok = got is not None and got.card in (serial, None)
            if got is None or not card_ok or got.outcome != outcome:
                self.violations.append(
                    f"round {number}: tap {tap} decided {outcome} (seq {seq}, card {serial})"
                    f" but the journal has {_brief(got)}"
                )
        self.boundaries.append(last_seq)
        flight = found.in_flight()
        if flight is not None:
            # The tap in flight wrote whatever follows the start-up and the taps decided.
            floor = max([found.ready_seq, *(s for s, *_ in found.dones.values() if s)])
            serial = self.fleet[flight[0]].serial.hex().upper()
            journaled = any(e.card == serial for s, e in entries.items() if s > floor)
            mine = [s for s, i in intents.items() if s > floor and i.card == serial]
            intent = max(mine, default=0)
            self._check_card(number, flight[0], flight[1], journaled, intent)
        self._plan(found, flight)

    def _entries_after(self, seq: int) -> dict[int, JournalEntry]:
        """The tap entries with a sequence number above ``seq``, by sequence number."""
        return self._records_after(seq)[0]

    def _records_after(self, seq: int) -> tuple[dict[int, JournalEntry], dict[int, ClosingIntent]]:
        """The tap entries and the closing intents above ``seq``, each by sequence number.

        A record that does not read is a violation, and left out.
        """
        taps: dict[int, JournalEntry] = {}
        intents: dict[int, ClosingIntent] = {}
        for path in reversed(journal_files(self.journal_dir)):
            lines = path.read_text(encoding="utf-8").splitlines()
            for line in reversed(lines):
                data = json.loads(line)
                if int(data["seq"]) <= seq:
                    return taps, intents
                try:
                    record = read_record(data)
                except EntryFormatError as exc:
                    self.violations.append(f"seq {data['seq']}: malformed entry: {exc}")
                    continue
                if isinstance(record, ClosingIntent):
                    intents[record.seq] = record
                else:
                    taps[record.seq] = record
        return taps, intents

    def _check_card(
        self, number: int, index: int, when: dt.datetime, journaled: bool, intent: int
    ) -> None:
        """The card caught mid-tap: its image is the old one or the complete tap's, never a mix;
        a new image has its tap's entry or its closing intent (``intent``: its seq, or 0)."""
        card = self.fleet[index]
        with tempfile.TemporaryDirectory() as tmp:
            now_copy = Path(tmp) / "now.json"
            before_copy = Path(tmp) / "before.json"
            shutil.copyfile(card.image, now_copy)
            shutil.copyfile(card.before, before_copy)
            try:
                current = _data(card.load(0, image=now_copy))
                before_card = card.load(0, image=before_copy)
            except Exception as exc:  # an image that does not load is a broken card
                self.violations.append(f"round {number}: card {index} image unusable: {exc!r}")
                return
            before = _data(before_card)
            after = _data(_complete_tap(before_card, when))
        if intent and not journaled:
            self.count("intents_open_at_crash")
        if current == before:
            self.count("cards_old_image")
        elif current == after:
            self.count("cards_new_image")
            if not journaled and intent:
                # The card committed, the crash came before the tap's entry: the closing
                # intent records it; the restart journals it as unknown (see _check_owed).
                self.count("committed_intent_only")
                self.intent_owed.append((card.serial.hex().upper(), intent))
            elif not journaled:
                # The card committed with no record at all: what the intent must prevent.
                self.count("committed_not_journaled")
                self.owed.append((card.serial.hex().upper(), self.boundaries[-1]))
        else:
            changed = sorted(k for k in current if current[k] != before.get(k))
            self.violations.append(
                f"round {number}: card {index} is neither before nor after the tap: {changed}"
            )

    def _plan(self, found: Round, flight: tuple[int, dt.datetime] | None) -> None:
        """The next round: later in time; the passenger caught by the crash taps first."""
        times = [when for _, when, _ in found.begins.values()]
        self.now = max([self.now, *times]) + dt.timedelta(seconds=self.rnd.randint(5, 40))
        self.first = []
        if flight is not None:
            self.first.append(self.fleet[flight[0]].serial.hex().upper())
        for seq, card, outcome, _ in found.dones.values():
            serial = self.fleet[card].serial.hex().upper()
            if outcome == "unknown" and serial not in self.first and seq is not None:
                self.first.append(serial)

    def check_unknowns(self) -> None:
        """Every unknown tap is resolved by the next tap that reads its card, across restarts."""
        pending: dict[str, int] = {}
        taps, intents = self._records_after(0)
        for _, entry in sorted(taps.items()):
            card = str(entry.card)
            resolves = entry.resolves
            # A tap that read the card settles its unknown; so does the unknown a restart made
            # of a closing intent whose tap had read it (it carries the intent's ``resolves``).
            if card in pending and (entry.state_read or resolves is not None):
                seq = pending.pop(card)
                if resolves is None or resolves.seq != seq:
                    self.violations.append(
                        f"unknown tap seq {seq} of card {card} not resolved by seq {entry.seq}"
                        f" (resolves: {resolves.to_json() if resolves is not None else None})"
                    )
                else:
                    self.count("unknowns_resolved")
                    if any(seq <= b < entry.seq for b in self.boundaries):
                        self.count("unknowns_resolved_after_restart")
            elif resolves is not None:
                self.violations.append(f"seq {entry.seq} resolves an unknown never pending")
            if entry.outcome == "unknown":
                pending[card] = entry.seq
                self.count("unknowns")
        self.count("unknowns_open_at_end", len(pending))
        self._check_intents(taps, intents)
        self._check_owed(taps)

    def _check_intents(
        self, taps: dict[int, JournalEntry], intents: dict[int, ClosingIntent]
    ) -> None:
        """Every closing intent is followed by its tap's entry or by the unknown tap made of it
        at the next start-up; the last intents of the journal may still be open."""
        self.count("intents", len(intents))
        made = {e.intent for e in taps.values() if e.intent is not None}
        self.count("intents_made_unknown_at_restart", len(made))
        records: list[tuple[int, JournalEntry | ClosingIntent]] = [*taps.items()]
        order = sorted(records + [*intents.items()], key=lambda item: item[0])
        for position, (seq, record) in enumerate(order):
            if not isinstance(record, ClosingIntent):
                continue
            following = next(
                (r for _, r in order[position + 1 :] if isinstance(r, JournalEntry)), None
            )
            if following is None:
                self.count("intents_open_at_end")
            elif following.card != record.card:
                self.violations.append(
                    f"closing intent seq {seq} (card {record.card}) is followed by seq "
                    f"{following.seq} of card {following.card}: its tap has no outcome"
                )

    def _check_owed(self, taps: dict[int, JournalEntry]) -> None:
        """What the next tap made of a card that committed a tap the crash kept unjournaled."""
        entries = sorted(taps.items())
        for serial, intent in self.intent_owed:
            unknown = next((e for _, e in entries if e.intent == intent), None)
            if unknown is None:
                self.count("committed_intent_only_still_open")  # the campaign's last crash
                continue
            resolution = next(
                (e for _, e in entries if e.resolves is not None and e.resolves.seq == unknown.seq),
                None,
            )
            if resolution is None or resolution.resolves is None:
                self.count("committed_intent_only_not_resolved")
            elif resolution.resolves.committed:
                self.count("committed_intent_only_resolved_paid")
            else:
                self.violations.append(
                    f"card {serial} committed the tap of closing intent seq {intent}, but its "
                    f"unknown tap seq {unknown.seq} was resolved as not committed"
                )
        for serial, after in self.owed:
            following = [e for s, e in entries if s > after and e.card == serial]
            if not following:
                self.count("committed_not_journaled_not_seen_again")
                continue
            self.count(f"committed_not_journaled_then_{following[0].outcome}")


def _brief(entry: JournalEntry | None) -> str:
    """An entry in a few words, for a violation message."""
    if entry is None:
        return "no such entry"
    return f"card {entry.card} {entry.outcome}"


SV_DEBIT_LOG_CELLS = tuple(record_cell(SV_DEBIT_LOG_SFI, n) for n in (1, 2, 3))


def _data(card: CardEmulator) -> dict[str, bytes]:
    """The card's committed data: every cell but the transaction counter and ratification flag.

    Those two change outside the session's commit (Open decrements the counter, any command
    after Close ratifies) and are not what "old or new image" is about.
    """
    cells = card.snapshot().cells
    data = {k: v for k, v in cells.items() if k not in (CELL_TC, CELL_RATIFIED)}
    for name in SV_DEBIT_LOG_CELLS:
        if name in data:
            # An SV debit log record names the SAM and its transaction number (KVC, SAM ID(4),
            # SAM TNum(3) at bytes 6..13): the replayed tap's SAM is not the crashed child's.
            record = data[name]
            data[name] = record[:6] + bytes(8) + record[14:]
    if CELL_SV in data:
        # The purse cell keeps the last SV signature after balance(3) and SV TNum(2): the
        # signature comes from the SAM's own challenge, so only the rest can be compared.
        data[CELL_SV] = data[CELL_SV][:5]
    return data


def _complete_tap(card: CardEmulator, when: dt.datetime) -> CardEmulator:
    """The same card after the same tap run to its end (no crash), on an in-memory copy."""
    settings = load_settings(CONFIG)
    rules = load_model(CONFIG / settings.fares, FareRules)
    sam = software_sam(
        CONFIG / settings.keys,
        rng=random.Random(1).randbytes,  # noqa: S311 - simulation
        allow_simulation=True,
    )
    reader = EmulatedReader("replay")
    station = build_station(CONFIG, settings, reader=reader, sam=sam, journal=None, rules=rules)
    copy = CardEmulator(card.profile, random.Random(2).randbytes)  # noqa: S311 - simulation
    copy.restore(card.snapshot())
    reader.insert(copy)
    station.processor.process(reader.connect(), TapContext(when, STATION))
    reader.remove()
    return copy


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Crash the validator ``level.pick(320, 50, 5)`` times and check every invariant."""
    rounds = level.pick(320, 50, 5)
    campaign = Campaign(workdir, log, random.Random(9))  # noqa: S311 - reproducible campaign
    started = time.monotonic()
    try:
        profiles = sorted(CONFIG.glob("cards/*.yaml"))
        campaign.fleet = write_fleet(workdir, profiles, copies=2)
        for number in range(1, rounds + 1):
            try:
                campaign.round(number)
            except Exception as exc:  # a broken round is a finding, the campaign goes on
                campaign.violations.append(f"round {number}: {exc!r}")
            if number % 25 == 0:
                log(f"{number}/{rounds} crashes, {len(campaign.violations)} violations")
        campaign.check_unknowns()
    except Exception as exc:
        campaign.violations.append(f"campaign stopped: {exc!r}")
    figures = dict(campaign.figures)
    log(f"{rounds} crashes in {time.monotonic() - started:.0f} s: {figures}")
    tried = (
        f"{figures.get('timed_kills', 0)} SIGKILLs + {figures.get('power_cuts', 0)} power cuts"
        f" over {figures.get('taps_begun', 0)} taps"
    )
    broke = (
        f"{figures.get('torn_tails_quarantined', 0)} torn tails, "
        f"{figures.get('cards_new_image', 0)}/{figures.get('cards_old_image', 0)} cards new/old, "
        f"{figures.get('unknowns_resolved_after_restart', 0)} unknowns resolved after restart, "
        f"{figures.get('committed_not_journaled', 0)} paid taps with no journal record "
        f"({figures.get('committed_intent_only', 0)} recorded by their closing intent only)"
    )
    return PartResult(NAME, tried, broke, campaign.violations, figures=dict(figures))


if __name__ == "__main__":  # pragma: no cover - python -m lab.reliability --part process-crashes
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(run(Level.SMOKE, Path(tempfile.mkdtemp()), print).as_dict())
