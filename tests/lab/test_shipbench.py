# SPDX-License-Identifier: Apache-2.0
"""The shipping benchmark at a tiny size: both figures measured, every run acknowledged."""

from __future__ import annotations

import pytest

from lab import shipbench
from lab.postgres import missing_binaries


def test_tiny_benchmark_prints_both_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """Closed files of two validators and a growing current file ship end to end, all ok."""
    reason = missing_binaries()
    if reason is not None:
        pytest.skip(reason)
    pytest.importorskip("psycopg", reason="psycopg is not installed (the office extra)")
    shipbench.main(
        ["--validators", "2", "--taps", "60", "--file-kib", "40", "--sample", "12"]
        + ["--current", "30", "--step", "5", "--runs", "2"]
    )
    out = capsys.readouterr().out
    closed = next(line for line in out.splitlines() if line.startswith("closed"))
    fields = closed.split()  # figure, validators, files, taps, MB, seconds, rates..., ok
    assert fields[1] == "2" and fields[3] == "120" and fields[-1] == "ok"
    assert int(fields[2]) >= 4  # 60 taps of ~2 kB in 40 KiB files: several files each
    growing = next(line for line in out.splitlines() if line.startswith("growing"))
    assert "2 runs of 5 new taps" in growing and growing.endswith("ok")
