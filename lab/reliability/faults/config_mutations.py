# SPDX-License-Identifier: Apache-2.0
"""Campaign part "config-mutations": mistakes in the shipped config/ files must be refused.

Each mutation copies config/ to its own folder, breaks one file one way (a fault class of issue
15: duplicate keys, wrong types, out-of-range numbers, unknown keys, truncation, bad encodings,
huge files, bad regexes, missing files, a bad journal key...) and runs the real command line in
a child process: ``validator check-config`` must exit 2 with a message naming the broken file,
and ``validator run --max-taps 1`` must exit 2 as well, never with a traceback. A few valid
mutations must be accepted by both (exit 0), so that the checker can fail both ways.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab.paths import CONFIG
from lab.reliability.report import Level, Log, PartResult

EXIT_CONFIG = 2
CHILD_TIMEOUT_S = 60.0  # a mutation that makes a command hang is a violation, not a stall
JOURNAL_KEY_HEX = "5F" * 32  # a throw-away test key, never shipped
Mutate = Callable[[Path], None]


@dataclass(frozen=True)
class Mutation:
    """One change to a copy of config/: its name, the file it breaks, and whether it is valid."""

    name: str
    file: str  # the file the messages must name (relative to the configuration folder)
    mutate: Mutate
    valid: bool = False


def _replace(file: str, old: str, new: str) -> Mutate:
    def mutate(config: Path) -> None:
        path = config / file
        text = path.read_text(encoding="utf-8")
        if old not in text:
            raise AssertionError(f"mutation out of date: {old!r} not in {file}")
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return mutate


def _append(file: str, text: str) -> Mutate:
    def mutate(config: Path) -> None:
        with (config / file).open("a", encoding="utf-8") as out:
            out.write(text)

    return mutate


def _append_bytes(file: str, data: bytes) -> Mutate:
    def mutate(config: Path) -> None:
        with (config / file).open("ab") as out:
            out.write(data)

    return mutate


def _first_line(path: Path) -> str:
    """The first top-level 'key: value' line of a YAML file (to write it a second time)."""
    text = path.read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if line[:1].isalpha() and ":" in line) + "\n"


def _write_bytes(file: str, data: bytes) -> Mutate:
    def mutate(config: Path) -> None:
        (config / file).write_bytes(data)

    return mutate


def _truncate_after(file: str, marker: str) -> Mutate:
    """Cut the file just after the first ``marker`` (a write cut short by a full disk)."""

    def mutate(config: Path) -> None:
        path = config / file
        data = path.read_bytes()
        end = data.index(marker.encode()) + len(marker)
        path.write_bytes(data[:end])

    return mutate


def _delete(file: str) -> Mutate:
    def mutate(config: Path) -> None:
        (config / file).unlink()

    return mutate


def _rename(file: str, to: str) -> Mutate:
    def mutate(config: Path) -> None:
        (config / file).rename(config / to)

    return mutate


def _journal_key(content: bytes | None, mode: int) -> Mutate:
    """validator.yaml names journal.key, written with ``content`` (None: not written)."""

    def mutate(config: Path) -> None:
        _append("validator.yaml", "journal_key_file: journal.key\n")(config)
        if content is not None:
            path = config / "journal.key"
            path.write_bytes(content)
            path.chmod(mode)

    return mutate


def _both(*steps: Mutate) -> Mutate:
    def mutate(config: Path) -> None:
        for step in steps:
            step(config)

    return mutate


def _huge(file: str) -> Mutate:
    """A 2 MiB comment: over the 1 MiB cap, refused before any parsing."""
    return _append(file, "#" + "x" * (2 * 1024 * 1024) + "\n")


def _alias_bomb() -> str:
    """Nine levels of ten aliases each: 10^9 leaves if anything expanded them."""
    lines = ["bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*b{level - 1}"] * 10)
        lines.append(f"bomb{level}: &b{level} [{refs}]")
    return "\n".join(lines) + "\n"


V, F, K = "validator.yaml", "fares.yaml", "keys.sim.yaml"
CARD = "cards/season_pass.yaml"
KEY = "journal.key"

CATALOGUE: tuple[Mutation, ...] = (
    # validator.yaml
    Mutation("settings-duplicate-key", V, _append(V, "simulation: false\n")),
    Mutation("settings-wrong-type", V, _replace(V, "time_budget_ms: 500", "time_budget_ms: soon")),
    Mutation("settings-out-of-range", V, _replace(V, "time_budget_ms: 500", "time_budget_ms: 1")),
    Mutation("settings-unknown-key", V, _append(V, "colour: blue\n")),
    Mutation("settings-truncated", V, _truncate_after(V, "simulation: tr")),
    Mutation("settings-latin1", V, _append_bytes(V, b"# caf\xe9\n")),
    Mutation("settings-huge", V, _huge(V)),
    Mutation("settings-control-chars", V, _append(V, "validator_id: a\x00b\n")),
    Mutation("settings-not-a-mapping", V, _write_bytes(V, b"- simulation\n- true\n")),
    Mutation("settings-deep-nesting", V, _write_bytes(V, b"x: " + b"[" * 5000 + b"\n")),
    Mutation("settings-alias-bomb", V, _append(V, _alias_bomb())),
    Mutation(
        "settings-bad-regex", V, _replace(V, "card_reader: emulated", "card_reader: 'pcsc:[x'")
    ),
    Mutation("settings-unknown-reader", V, _replace(V, "sam_reader: emulated", "sam_reader: usb")),
    Mutation("settings-bad-metrics", V, _append(V, "metrics_address: 'no such host!'\n")),
    Mutation("settings-bad-aid", V, _replace(V, "- 315449432E49434131", "- 31544943ZZ")),
    Mutation("settings-bad-layout", V, _replace(V, ": intercode", ": navigo")),
    Mutation("settings-missing", V, _delete(V)),
    Mutation("settings-misnamed", V, _rename(V, "validator.yml")),
    Mutation("settings-fares-missing", F, _delete(F)),
    # fares.yaml
    Mutation("fares-duplicate-key", F, _append(F, "deny_list: []\n")),
    Mutation("fares-negative-fare", F, _replace(F, "{1: 2, 2: 3}", "{1: -2, 2: 3}")),
    Mutation("fares-huge-fare", F, _replace(F, "{2: 200}", "{2: 99999999}")),
    Mutation(
        "fares-inverted-peak",
        F,
        _replace(F, 'start: "07:00", end: "09:30"', 'start: "09:30", end: "07:00"'),
    ),
    Mutation(
        "fares-bad-days",
        F,
        _replace(F, '{days: [0, 1, 2, 3, 4], start: "07:00"', '{days: [9, -3], start: "07:00"'),
    ),
    Mutation(
        "fares-huge-window",
        F,
        _replace(F, "anti_passback_minutes: 1", "anti_passback_minutes: 1e23"),
    ),
    Mutation(
        "fares-long-window", F, _replace(F, "transfer_minutes: 60", "transfer_minutes: 100000")
    ),
    Mutation("fares-unknown-zone", F, _replace(F, "  zone: 1\n", "  zone: 7\n")),
    Mutation("fares-location-too-wide", F, _replace(F, "location_id: 101", "location_id: 70000")),
    Mutation("fares-wrong-type", F, _replace(F, "  - tariff: 2", "  - tariff: two")),
    Mutation("fares-unknown-key", F, _append(F, "surcharge: 5\n")),
    Mutation("fares-truncated", F, _truncate_after(F, "# Products by")),
    Mutation("fares-huge", F, _huge(F)),
    Mutation("fares-utf16", F, lambda c: _write_bytes(F, (c / F).read_text().encode("utf-16"))(c)),
    # SAM key file and a card profile
    Mutation("keys-duplicate-key", K, _append(K, "simulation: true\n")),
    Mutation("keys-missing", K, _delete(K)),
    Mutation("card-duplicate-key", CARD, lambda c: _append(CARD, _first_line(c / CARD))(c)),
    Mutation("card-wrong-type", CARD, _append(CARD, "serial: 12\n")),
    # journal key file
    Mutation("journal-key-missing", KEY, _journal_key(None, 0o600)),
    Mutation("journal-key-empty", KEY, _journal_key(b"", 0o600)),
    Mutation("journal-key-not-hex", KEY, _journal_key(b"not a key\n", 0o600)),
    Mutation("journal-key-short", KEY, _journal_key(b"00112233\n", 0o600)),
    Mutation("journal-key-shared", KEY, _journal_key(JOURNAL_KEY_HEX.encode(), 0o644)),
    # valid mutations: both commands must accept them
    Mutation("valid-comment", V, _append(V, "# a comment an operator added\n"), valid=True),
    Mutation("valid-fare-change", F, _replace(F, "{1: 2, 2: 3}", "{1: 3, 2: 4}"), valid=True),
    Mutation(
        "valid-window-of-a-day",
        F,
        _replace(F, "transfer_minutes: 60", "transfer_minutes: 1440"),
        valid=True,
    ),
    Mutation("valid-zone-2", F, _replace(F, "  zone: 1\n", "  zone: 2\n"), valid=True),
    Mutation("valid-journal-key", KEY, _journal_key(JOURNAL_KEY_HEX.encode(), 0o600), valid=True),
)


@dataclass
class Outcome:
    """What one child command did."""

    code: int | None  # None: killed after CHILD_TIMEOUT_S
    stderr: str
    seconds: float


def validator_command() -> list[str]:
    """The ``validator`` console script beside this interpreter (else ``python -m validator``)."""
    script = Path(sys.executable).with_name("validator")
    return [str(script)] if script.exists() else [sys.executable, "-m", "validator"]


def _child(args: list[str], cwd: Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALYPSO_VALIDATOR_")}
    start = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - our own command line, fixed arguments
            [*validator_command(), *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr if isinstance(exc.stderr, str) else ""
        return Outcome(None, stderr, time.monotonic() - start)
    return Outcome(done.returncode, done.stderr, time.monotonic() - start)


def prepare(mutation: Mutation, workdir: Path) -> Path:
    """A copy of config/ for ``mutation``, its journal inside ``workdir``, then mutated."""
    folder = workdir / mutation.name
    if folder.exists():
        shutil.rmtree(folder)
    config = folder / "config"
    shutil.copytree(CONFIG, config)
    settings = config / "validator.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text.replace("journal_dir: ../var/journal", "journal_dir: ../journal"))
    mutation.mutate(config)
    return config


def judge(mutation: Mutation, workdir: Path) -> tuple[list[str], dict[str, Outcome]]:
    """Run check-config and run on the mutated copy; the invariants each broke, if any."""
    config = prepare(mutation, workdir)
    outcomes = {
        "check-config": _child(["check-config", "--config", str(config)], config.parent),
        "run": _child(
            ["run", "--config", str(config), "--max-taps", "1", "--interval", "0"], config.parent
        ),
    }
    broken: list[str] = []
    named = Path(mutation.file).name
    for command, outcome in outcomes.items():
        what = f"{mutation.name}: {command}"
        if outcome.code is None:
            broken.append(f"{what} did not finish in {CHILD_TIMEOUT_S:.0f} s")
            continue
        if "Traceback" in outcome.stderr:
            broken.append(f"{what} printed a traceback (exit {outcome.code})")
        if mutation.valid:
            if outcome.code != 0:
                last = outcome.stderr.strip().splitlines()[-1:] or ["(no message)"]
                broken.append(f"{what} refused a valid change (exit {outcome.code}: {last[0]})")
            continue
        if outcome.code != EXIT_CONFIG:
            broken.append(f"{what} exit {outcome.code}, expected {EXIT_CONFIG}")
        elif named not in outcome.stderr:
            broken.append(f"{what} refused it without naming {named}")
    return broken, outcomes


def select(level: Level) -> list[Mutation]:
    """Every mutation at full level; every fourth refused one and the valid ones at quick level
    (about 20 s); a few of each kind in the default test run."""
    if level is Level.FULL:
        return list(CATALOGUE)
    if level is Level.QUICK:
        invalid = [m for m in CATALOGUE if not m.valid]
        return invalid[::4] + [m for m in CATALOGUE if m.valid]
    wanted = {
        "settings-duplicate-key",
        "settings-bad-regex",
        "settings-missing",
        "fares-negative-fare",
        "journal-key-shared",
        "valid-comment",
        "valid-journal-key",
    }
    return [m for m in CATALOGUE if m.name in wanted]


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Every mutation of the catalogue (or the smoke subset): refused or accepted as it must."""
    mutations = select(level)
    violations: list[str] = []
    slowest = 0.0
    refused = accepted = 0
    for mutation in mutations:
        broken, outcomes = judge(mutation, workdir)
        violations += broken
        slowest = max([slowest, *(o.seconds for o in outcomes.values())])
        if all(o.code == EXIT_CONFIG for o in outcomes.values()):
            refused += 1
        if all(o.code == 0 for o in outcomes.values()):
            accepted += 1
        log(f"{mutation.name}: " + ", ".join(f"{c} exit {o.code}" for c, o in outcomes.items()))
    invalid = sum(not m.valid for m in mutations)
    return PartResult(
        "config-mutations",
        f"{len(mutations)} config mutations ({invalid} invalid, {len(mutations) - invalid} "
        "valid) x check-config and run",
        f"{refused} refused with exit 2, {accepted} accepted",
        violations,
        figures={
            "mutations": len(mutations),
            "invalid": invalid,
            "refused": refused,
            "accepted": accepted,
            "slowest_command_s": round(slowest, 2),
            "tried": [m.name for m in mutations],
        },
    )
