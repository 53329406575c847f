# SPDX-License-Identifier: Apache-2.0
"""The fuzzing part at SMOKE level, and the fuzzer's own machinery."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lab.reliability.hostile import fuzz
from lab.reliability.hostile.fuzz import Mutator, mutate_bytes, mutate_document
from lab.reliability.hostile.fuzz import fuzz as fuzz_target
from lab.reliability.hostile.fuzz_targets import PropertyError, Target
from lab.reliability.report import Level, PartResult


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> PartResult:
    """One SMOKE run of the part, shared by the tests of this module."""
    return fuzz.run(Level.SMOKE, tmp_path_factory.mktemp("fuzz"), lambda _: None)


def test_smoke_fuzzes_every_parser(smoke: PartResult) -> None:
    """Every target gets at least a hundred inputs, and the parsers refuse some of them."""
    names = {
        *("apdu-response", "apdu-command", "fci", "records-demo", "records-intercode"),
        *("en1545", "yaml-settings", "yaml-fares", "yaml-card-profile", "journal-line"),
        *("pki-certificates", "pki-answers", "yaml-pki-root", "yaml-pki-revocations"),
    }
    assert set(smoke.figures) == names
    for figures in smoke.figures.values():
        assert isinstance(figures, dict) and figures["inputs"] >= 100
    fci = smoke.figures["fci"]
    assert isinstance(fci, dict) and sum(fci["refusals"].values()) > 0


def test_smoke_has_no_violation(smoke: PartResult) -> None:
    """No parser raises an exception outside its documented errors."""
    assert smoke.violations == []


def test_an_unexpected_exception_is_a_violation_with_its_input() -> None:
    """A parser raising outside its documented errors is recorded once, with input and count."""

    def parser(data: bytes) -> object:
        if data[:1] == b"\x00":
            raise IndexError("boom")
        if data[:1] == b"\x01":
            raise ValueError("documented refusal")
        return data

    target = Target("toy", [b"\x00ab", b"\x01cd", b"\x02ef"], parser, (ValueError,))
    stats = fuzz_target(target, 500, seed=1)
    assert stats.inputs == 500
    assert stats.refusals["ValueError"] >= 1
    (finding,) = [f for f in stats.findings.values() if f.kind == "IndexError"]
    assert finding.first_input == b"\x00ab" and finding.count >= 1
    assert "toy: IndexError" in finding.line() and "0061" in finding.line()


def test_property_errors_are_violations() -> None:
    """A broken promise other than an exception (a round trip) is reported as a violation."""

    def parser(data: bytes) -> object:
        raise PropertyError("does not encode back")

    stats = fuzz_target(Target("prop", [b"x"], parser), 10, seed=1)
    assert [f.kind for f in stats.findings.values()] == ["PropertyError"]


def test_mutations_are_reproducible_and_vary() -> None:
    """The same seed gives the same inputs; the inputs differ from the seed and each other."""
    seed = bytes(range(40))
    rnd_a, rnd_b = random.Random(3), random.Random(3)
    first = [mutate_bytes(seed, rnd_a, [seed]) for _ in range(20)]
    assert first == [mutate_bytes(seed, rnd_b, [seed]) for _ in range(20)]
    rnd = random.Random(4)
    many = [mutate_bytes(seed, rnd, [seed]) for _ in range(200)]
    assert len(set(many)) > 150
    assert sum(1 for m in many if m == seed) < 10


def test_document_mutations_keep_the_seed_intact() -> None:
    """A structure-aware mutation changes a copy, never the parsed seed (no shared values)."""
    doc = {"a": [1, 2, {"b": "text"}], "c": 3}
    rnd = random.Random(5)
    changed = [mutate_document(doc, rnd) for _ in range(300)]
    assert doc == {"a": [1, 2, {"b": "text"}], "c": 3}
    assert any(c != doc for c in changed)


def test_text_targets_get_structured_inputs(tmp_path: Path) -> None:
    """A YAML target's inputs are mostly still YAML documents, so they reach the schema."""
    target = Target("yaml", [b"a: 1\nb: [x, y]\n"], lambda d: d, text=True)
    mutator = Mutator(target, random.Random(6))
    inputs = [mutator.next() for _ in range(100)]
    assert sum(1 for i in inputs if b":" in i) > 60
