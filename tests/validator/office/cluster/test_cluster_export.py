# SPDX-License-Identifier: Apache-2.0
"""``validator export`` on Dask writes the in-process dataset, or nothing (issue 21)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cluster_network import Network, write_network
from conftest import CONFIG

from validator.cli.main import main

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """The four validators' journals."""
    return write_network(tmp_path_factory.mktemp("network"))


def export(*args: str) -> Result:
    """``validator export ARGS --config CONFIG``."""
    return CliRunner().invoke(main, ["export", *args, "--config", str(CONFIG)])


def dataset(folder: Path) -> dict[str, list[dict[str, object]]]:
    """Every file of an exported folder: its rows, by file name."""
    return {path.name: pq.read_table(path).to_pylist() for path in sorted(folder.iterdir())}


def test_cluster_export_writes_the_same_dataset(
    network: Network, scheduler: str, tmp_path: Path
) -> None:
    """One task per journal: the same files and rows (pseudonyms too), the same summary lines."""
    office_key = tmp_path / "office.key"
    office_key.write_text(os.urandom(32).hex() + "\n")
    office_key.chmod(0o600)
    common = [str(network.journals), "--journal-key-file", str(network.key_file)]
    common += ["--pseudonymise", str(office_key)]
    alone = export(*common, "--out", str(tmp_path / "alone"))
    on_dask = export(*common, "--out", str(tmp_path / "dask"), "--scheduler", scheduler)
    assert alone.exit_code == on_dask.exit_code == 0
    assert on_dask.stdout == alone.stdout.replace(str(tmp_path / "alone"), str(tmp_path / "dask"))
    assert "cluster: 2 workers" in on_dask.stderr and "0 retried" in on_dask.stderr
    rows = dataset(tmp_path / "alone")
    cards = [row["card"] for row in rows["taps-a.parquet"] if row["card"] is not None]
    assert len(rows) == 4 and cards and all(card.startswith("ps-") for card in cards)
    assert dataset(tmp_path / "dask") == rows


def test_cluster_export_of_a_tampered_journal_writes_nothing(
    network: Network, scheduler: str, tmp_path: Path
) -> None:
    """An edited entry: exit 1, the break on stderr, and no file in the output folder."""
    copy = tmp_path / "journals"
    shutil.copytree(network.journals, copy)
    path = sorted((copy / "c").glob("journal-*.jsonl"))[0]
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"station":201', '"station":202')
    path.write_text("".join(line + "\n" for line in lines))
    args = [str(copy), "--journal-key-file", str(network.key_file), "--out", str(tmp_path / "o")]
    result = export(*args, "--scheduler", scheduler)
    assert result.exit_code == 1 and "integrity BROKEN" in result.stderr
    assert list((tmp_path / "o").iterdir()) == []


def test_cluster_export_refuses_the_database(tmp_path: Path) -> None:
    """export --db runs in this process: with a cluster, a usage error (exit 2)."""
    result = export("--db", "postgresql:///x", "--out", str(tmp_path), "--workers", "2")
    assert result.exit_code == 2 and "--db runs in this process only" in result.stderr
