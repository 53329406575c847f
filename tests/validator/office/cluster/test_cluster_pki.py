# SPDX-License-Identifier: Apache-2.0
"""A PKI tap whose certificate only another validator's journal holds: the same verdict on a
cluster as in process (issue 21).

The in-process replay keeps every certificate any journal read, in merge order; a cluster
analyses each journal apart, so the chain tasks hand the certificates they read to the driver,
which verifies again the taps that named one their own journal lacked.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cluster_network import PKI_ROOT, comparable, run_replay, write_pki_pair

from validator.journal.writer import journal_files

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """validator-a's and validator-b's journals, b's certificate read taken away."""
    return write_pki_pair(tmp_path_factory.mktemp("pki-pair"))


@pytest.fixture(scope="module")
def in_process(journals: Path) -> dict[str, Any]:
    """The in-process report: a's read verifies b's later tap, not its earlier one."""
    _, doc, _ = run_replay(str(journals), "--pki-root", str(PKI_ROOT))
    return doc


def test_in_process_uses_the_other_journals_certificate(in_process: dict[str, Any]) -> None:
    """In process: a's tap and b's tap after it verify; b's tap before a's read cannot."""
    assert in_process["mac"]["pki"] == {
        "verified": 2,
        "failed": 0,
        "unverifiable": 1,
        "not_checked": 0,
    }


def test_the_cluster_gives_the_in_process_verdicts(
    journals: Path, in_process: dict[str, Any], scheduler: str
) -> None:
    """On two workers, each journal analysed apart: the same report, verdicts included."""
    code, doc, _ = run_replay(str(journals), "--pki-root", str(PKI_ROOT), "--scheduler", scheduler)
    assert comparable(doc) == comparable(in_process)
    assert doc["cluster"]["tasks"] > 0


def test_a_tampered_tap_verified_again_fails_alike(
    journals: Path, scheduler: str, tmp_path: Path
) -> None:
    """b's last tap with a card answer changed: failed in both, the same failure detail."""
    copy = tmp_path / "journals"
    shutil.copytree(journals, copy)
    last = journal_files(copy / "b")[-1]
    entry = json.loads(last.read_text())
    for exchange in entry["trace"]["card"]:
        if exchange["c"][2:4] == "B2" and len(exchange["r"]) > 8:  # a record read in session
            exchange["r"] = ("00" if exchange["r"][:2] != "00" else "01") + exchange["r"][2:]
            break
    last.write_text(json.dumps(entry) + "\n")
    code, in_process, _ = run_replay(str(copy), "--pki-root", str(PKI_ROOT))
    assert code == 1
    assert in_process["mac"]["pki"]["failed"] == 1
    assert [f["validator"] for f in in_process["mac"]["failures"]] == ["validator-b"]
    cluster_code, doc, _ = run_replay(
        str(copy), "--pki-root", str(PKI_ROOT), "--scheduler", scheduler
    )
    assert cluster_code == code
    assert comparable(doc) == comparable(in_process)
