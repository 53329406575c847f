# SPDX-License-Identifier: Apache-2.0
"""Fuzzing: every parser fed seeded mutations of real inputs, no unexpected exception allowed.

A hand-written mutational fuzzer (reproducible: one ``random.Random`` per target, seeded by its
name) over seed corpora taken from the project itself: the APDUs and answers of emulated taps,
the FCIs of every shipped card profile, the demo and Intercode records, the shipped YAML files,
real journal lines (lab.reliability.hostile.fuzz_targets). Binary inputs get byte-level mutations
(bit
flips, interesting values, insertions, deletions, duplications, splices with another seed);
YAML and JSON inputs also get structure-aware ones (a value replaced by an extreme or a
wrongly-typed one, a key dropped or added, a list item duplicated) so that the inputs reach the
schemas and the code behind them, not only the syntax check.

Each target lists the errors its parser documents; any other exception is a violation,
recorded once per (target, exception type, raising line) with the first input that raised it
(hex, truncated) and how many inputs did. Figures: inputs per target, distinct refusals seen,
inputs per second.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import random
import time
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.reliability.hostile.fuzz_targets import PropertyError, Target, targets
from lab.reliability.report import Level, Log, PartResult

NAME = "fuzzing"
SEED = 1545
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x1F, 0x20, 0x3F, 0x40, 0x90, 0x61, 0x6C)
# Values a structure-aware mutation puts in place of a YAML/JSON value.
EXTREMES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 255, 256, 65535, 2**24, 2**31, 2**63, 2**64 + 1, -(2**63),
    1e308, -0.5, "", " ", "x" * 300, "ZZ", "00" * 130, "FFFFFFFFFFFFFFFF", "2026-13-45",
    "25:99", "1997-01-01", "9999-12-31T23:59:59", "\u00e9\u0000", [], {}, [0, -1], {"k": None},
)  # fmt: skip


@dataclass
class Finding:
    """One distinct unexpected exception of a target."""

    target: str
    kind: str
    where: str
    message: str
    first_input: bytes
    count: int = 0

    def line(self) -> str:
        """The violation line of the report."""
        sample = self.first_input[:48].hex()
        more = "..." if len(self.first_input) > 48 else ""
        return (
            f"{self.target}: {self.kind} at {self.where}: {self.message[:100]} "
            f"(input {sample}{more}, {len(self.first_input)} bytes; {self.count} inputs)"
        )


@dataclass
class TargetStats:
    """What one target went through."""

    inputs: int = 0
    seconds: float = 0.0
    refusals: Counter[str] = field(default_factory=Counter)  # expected exception types
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)


def where(exc: BaseException) -> str:
    """The innermost project frame of a traceback: 'module.py:line'."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        f for f in frames if "site-packages" not in f.filename and "/lib/python" not in f.filename
    ]
    frame = (own or frames)[-1]
    return f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno}"


# --- mutations ------------------------------------------------------------------------------


def mutate_bytes(data: bytes, rnd: random.Random, corpus: list[bytes]) -> bytes:
    """One to a few byte-level mutations of ``data``."""
    out = bytearray(data)
    for _ in range(rnd.choice((1, 1, 1, 2, 2, 3, 4, 8))):
        op = rnd.randrange(11)
        size = len(out)
        at = rnd.randrange(size) if size else 0
        if op == 0 and size:
            out[at] ^= 1 << rnd.randrange(8)
        elif op == 1 and size:
            out[at] = rnd.choice(INTERESTING)
        elif op == 2 and size:
            out[at] = rnd.randrange(256)
        elif op == 3:
            out[at:at] = rnd.randbytes(rnd.choice((1, 1, 2, 4, 16, 64)))
        elif op == 4 and size:
            del out[at : at + rnd.choice((1, 1, 2, 4, 16, 64))]
        elif op == 5 and size:
            chunk = out[at : at + rnd.choice((1, 2, 4, 8, 29))]
            out[at:at] = chunk
        elif op == 6 and size:
            del out[rnd.randrange(size + 1) :]
        elif op == 7 and corpus:
            other = rnd.choice(corpus)
            cut = rnd.randrange(len(other) + 1)
            out = out[:at] + bytearray(other[cut:])
        elif op == 8 and size:
            fill = rnd.choice((0x00, 0xFF))
            end = min(size, at + rnd.choice((1, 3, 8, 29)))
            out[at:end] = bytes((fill,)) * (end - at)
        elif op == 9 and size:
            out[at] = (out[at] + rnd.choice((1, -1, 16, -16))) & 0xFF
        elif op == 10:
            out += rnd.randbytes(rnd.choice((1, 2, 29, 200)))
    return bytes(out)


def _extreme(rnd: random.Random) -> Any:
    """One of EXTREMES, copied (a list or mapping must not be shared between documents)."""
    return copy.deepcopy(rnd.choice(EXTREMES))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a YAML/JSON document."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def mutate_document(doc: Any, rnd: random.Random) -> Any:
    """A copy of a parsed document with one to three values changed, dropped or added."""
    doc = json.loads(json.dumps(doc, default=str))  # a deep copy, dates as text
    for _ in range(rnd.choice((1, 1, 2, 3))):
        paths = _paths(doc)
        if not paths:
            return _extreme(rnd)
        path = rnd.choice(paths)
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        op = rnd.randrange(6)
        if op <= 2:
            parent[key] = _extreme(rnd)
        elif op == 3 and isinstance(parent, dict):
            del parent[key]
        elif op == 3 and isinstance(parent, list):
            parent.append(parent[key])
        elif op == 4 and isinstance(parent, dict):
            parent[f"unknown_{rnd.randrange(100)}"] = _extreme(rnd)
        elif isinstance(parent[key], int) and not isinstance(parent[key], bool):
            parent[key] = parent[key] + rnd.choice((1, -1, 2**8, 2**16, 2**32))
        elif isinstance(parent[key], str):
            text = parent[key]
            parent[key] = text[: rnd.randrange(len(text) + 1)] + rnd.choice(("", "0", "Z", "\n"))
    return doc


class Mutator:
    """Mutations for one target: byte-level, plus structure-aware ones for text targets."""

    def __init__(self, target: Target, rnd: random.Random) -> None:
        self.target = target
        self.rnd = rnd
        self.docs: list[tuple[Any, bool]] = []  # (parsed seed, is JSON)
        if target.text:
            for seed in target.seeds:
                try:
                    self.docs.append((json.loads(seed), True))
                except ValueError:
                    self.docs.append((yaml.safe_load(seed), False))

    def next(self) -> bytes:
        """The next input."""
        rnd = self.rnd
        if self.docs and rnd.random() < 0.7:
            doc, is_json = rnd.choice(self.docs)
            changed = mutate_document(doc, rnd)
            if is_json:
                return json.dumps(changed, allow_nan=True).encode()
            return yaml.safe_dump(changed, allow_unicode=True).encode()
        return mutate_bytes(rnd.choice(self.target.seeds), rnd, self.target.seeds)


# --- the campaign ---------------------------------------------------------------------------


def fuzz(target: Target, count: int, seed: int) -> TargetStats:
    """Feed ``count`` inputs (the seeds first, then mutations) to one target."""
    rnd = random.Random(f"{seed}:{target.name}")  # noqa: S311 - reproducible fuzzing
    mutator = Mutator(target, rnd)
    stats = TargetStats()
    start = time.perf_counter()
    for number in range(count):
        data = target.seeds[number] if number < len(target.seeds) else mutator.next()
        try:
            target.run(data)
        except target.expected as exc:
            stats.refusals[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - the invariant under test
            kind = type(exc).__name__
            key = (kind, where(exc))
            if key not in stats.findings:
                message = str(exc) if isinstance(exc, PropertyError) else repr(exc)
                stats.findings[key] = Finding(target.name, kind, key[1], message, data)
            stats.findings[key].count += 1
        stats.inputs += 1
    stats.seconds = time.perf_counter() - start
    return stats


WORKERS = 2  # this machine's cores: FULL and QUICK fuzz two targets at a time


def _fuzz_in_worker(name: str, count: int, workdir: str) -> TargetStats:
    """Worker process: build the targets (and their seed corpus) here, fuzz the one named."""
    target = next(t for t in targets(Path(workdir)) if t.name == name)
    return fuzz(target, count, SEED)


def run(level: Level, workdir: Path, log: Log) -> PartResult:
    """Fuzz every target: FULL 100,000 inputs each, QUICK 5,000, SMOKE a few hundred."""
    all_targets = targets(workdir / "main")
    counts = {
        t.name: level.pick(100_000, 5_000, max(100, math.ceil(600 / t.cost))) for t in all_targets
    }
    results: dict[str, TargetStats] = {}
    if level is Level.SMOKE:
        for target in all_targets:
            results[target.name] = fuzz(target, counts[target.name], SEED)
    else:
        # Each target is seeded by its name: the same inputs whichever process runs it. The
        # dearest targets go first so that the two workers finish together.
        order = sorted(all_targets, key=lambda t: -t.cost)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(WORKERS, mp_context=context) as pool:
            futures = {
                t.name: pool.submit(
                    _fuzz_in_worker, t.name, counts[t.name], str(workdir / f"worker-{i}")
                )
                for i, t in enumerate(order)
            }
            results = {name: future.result() for name, future in futures.items()}
    violations: list[str] = []
    figures: dict[str, object] = {}
    for target in all_targets:
        stats = results[target.name]
        findings = sorted(stats.findings.values(), key=lambda f: -f.count)
        violations.extend(f.line() for f in findings)
        rate = stats.inputs / stats.seconds if stats.seconds else 0.0
        figures[target.name] = {
            "inputs": stats.inputs,
            "seconds": round(stats.seconds, 1),
            "inputs_per_s": round(rate),
            "refusals": dict(stats.refusals),
            "distinct_unexpected": len(findings),
            "unexpected_inputs": sum(f.count for f in findings),
        }
        log(
            f"{target.name}: {stats.inputs} inputs in {stats.seconds:.1f} s ({rate:.0f}/s), "
            f"refused {dict(stats.refusals)}, unexpected {len(findings)}"
        )
    total = sum(s.inputs for s in results.values())
    refused = sum(sum(s.refusals.values()) for s in results.values())
    return PartResult(
        NAME,
        tried=f"{total} inputs, {len(all_targets)} parsers",
        broke=f"{refused} refused as documented",
        violations=violations,
        figures=figures,
    )
