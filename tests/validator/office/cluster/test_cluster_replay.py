# SPDX-License-Identifier: Apache-2.0
"""``validator replay`` on Dask gives the in-process report on a network's journals (issue 21)."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
from cluster_network import KEYS, Network, comparable, run_replay, write_network

from validator.journal.writer import canonical

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """The four validators' journals, shared by the module."""
    return write_network(tmp_path_factory.mktemp("network"))


@pytest.fixture(scope="module")
def in_process(network: Network) -> dict[str, Any]:
    """The in-process report of the network: what every cluster run must give."""
    code, doc, _ = run_replay(str(network.journals), *network.args())
    assert code == 0
    return doc


def test_the_network_has_what_reconciliation_finds(in_process: dict[str, Any]) -> None:
    """The journals hold unknowns, recoveries and double debits, all verified: a real test."""
    assert in_process["integrity"]["ok"] and in_process["integrity"]["authenticated"]
    assert in_process["unknown"]["total"] > 0 and in_process["recoveries"]["total"] > 0
    assert in_process["double_debit_count"] > 0
    assert in_process["mac"]["verified"] > 0 and in_process["mac"]["failed"] == 0
    assert in_process["mac"]["pki"]["verified"] > 0
    assert len(in_process["journals"]) == 4


def test_workers_give_the_in_process_report(network: Network, in_process: dict[str, Any]) -> None:
    """--workers 2 starts a local cluster: the same report, and a cluster part of that shape."""
    code, doc, _ = run_replay(str(network.journals), *network.args(), "--workers", "2")
    assert code == 0
    assert comparable(doc) == comparable(in_process)
    cluster = doc["cluster"]
    assert set(cluster) == {"workers", "scheduler", "tasks", "retried", "peak_worker_rss_bytes"}
    assert cluster["workers"] == 2 and cluster["retried"] == 0
    assert cluster["tasks"] > 4 and cluster["peak_worker_rss_bytes"] > 0


def test_scheduler_gives_the_in_process_report(
    network: Network, in_process: dict[str, Any], scheduler: str
) -> None:
    """--scheduler uses a running cluster: the same report; it names that scheduler."""
    code, doc, _ = run_replay(str(network.journals), *network.args(), "--scheduler", scheduler)
    assert code == 0
    assert comparable(doc) == comparable(in_process)
    assert doc["cluster"]["scheduler"] == scheduler


def test_file_urls_give_the_in_process_report(
    network: Network, in_process: dict[str, Any], scheduler: str
) -> None:
    """A file:// URL names the same journals: the same report, paths and all."""
    url = f"file://{network.journals}"
    code, doc, _ = run_replay(url, *network.args(), "--scheduler", scheduler)
    assert code == 0
    assert comparable(doc) == comparable(in_process)


def test_one_journal_and_a_time_range(network: Network, scheduler: str) -> None:
    """A file given alone, with --since and --until: the same report in-process and on Dask."""
    args = [str(network.journals / "a"), str(network.journals / "c"), *network.args()]
    args += ["--since", "2026-03-02T08:00:00", "--until", "2026-03-02T10:00:00"]
    code, alone, _ = run_replay(*args)
    code_cluster, on_dask, _ = run_replay(*args, "--scheduler", scheduler)
    assert (code, comparable(alone)) == (code_cluster, comparable(on_dask))
    assert 0 < alone["entries"] < alone["lines"]


def test_a_broken_journal_is_reported_alike(
    network: Network, scheduler: str, tmp_path: Path
) -> None:
    """An edited entry and a removed one: the same breaks, in the same order, exit 1 both."""
    copy = tmp_path / "journals"
    shutil.copytree(network.journals, copy)
    path = sorted((copy / "b").glob("journal-*.jsonl"))[0]
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"station":102', '"station":103')
    del lines[7]
    path.write_text("".join(line + "\n" for line in lines))
    code, alone, _ = run_replay(str(copy), *network.args())
    code_cluster, on_dask, _ = run_replay(str(copy), *network.args(), "--scheduler", scheduler)
    assert code == code_cluster == 1
    assert alone["integrity"]["counts"]["missing"] >= 1
    assert comparable(alone) == comparable(on_dask)


def test_a_clock_that_stepped_back_is_merged_alike(
    network: Network, scheduler: str, tmp_path: Path
) -> None:
    """validator-b's clock set back an hour mid-journal (its entries edited: breaks too):
    the merge order, the reconciliation's horizon and the report stay the single-process ones
    (ranking b's lines by their own tap time instead of its highest so far fails here)."""
    import datetime as dt

    copy = tmp_path / "journals"
    shutil.copytree(network.journals, copy)
    for path in sorted((copy / "b").glob("journal-*.jsonl")):
        entries = [json.loads(line) for line in path.read_text().splitlines()]
        for entry in entries:
            if entry["seq"] > 30 and entry.get("tap_time"):
                when = dt.datetime.fromisoformat(entry["tap_time"]) - dt.timedelta(hours=1)
                entry["tap_time"] = when.isoformat()
        path.write_text("".join(canonical(entry) + "\n" for entry in entries))
    code, alone, _ = run_replay(str(copy), *network.args())
    code_cluster, on_dask, _ = run_replay(str(copy), *network.args(), "--scheduler", scheduler)
    assert code == code_cluster == 1
    assert alone["double_debit_count"] > 0
    assert comparable(alone) == comparable(on_dask)


def test_anchors_are_checked_alike(network: Network, scheduler: str) -> None:
    """Anchors matched, edited (a wrong hash) and past the end: the same statuses and breaks."""
    head = json.loads(run_cli("journal-head", str(network.journals / "b"))[1])
    anchors = [
        f"{head['validator']}:{head['seq']}:{head['hash']}",
        f"validator-a:5:{'0' * 64}",
        f"validator-c:9999:{'1' * 64}",
    ]
    args = [str(network.journals), *network.args()]
    args += [arg for anchor in anchors for arg in ("--anchor", anchor)]
    code, alone, _ = run_replay(*args)
    code_cluster, on_dask, _ = run_replay(*args, "--scheduler", scheduler)
    assert code == code_cluster == 1
    statuses = [anchor["status"] for anchor in alone["integrity"]["anchors"]]
    assert statuses == ["matched", "mismatch", "truncated"]
    assert comparable(alone) == comparable(on_dask)


def test_a_copy_across_journals_is_refused(
    network: Network, scheduler: str, tmp_path: Path
) -> None:
    """The same journal in two folders: the cluster refuses (exit 2) what only a merge sees."""
    shutil.copytree(network.journals / "c", tmp_path / "c")
    shutil.copytree(network.journals / "c", tmp_path / "c-again")
    code, _, err = _run_failing(str(tmp_path), *network.args(), "--scheduler", scheduler)
    assert code == 2 and "in-process" in err and "validator-c" in err


def run_cli(*args: str) -> tuple[int, str, str]:
    """``validator ARGS``: the exit code, stdout and stderr."""
    from click.testing import CliRunner

    from validator.cli.main import main

    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _run_failing(*args: str) -> tuple[int, str, str]:
    """``validator replay ARGS --json`` that is expected to fail: exit code, stdout, stderr."""
    from conftest import CONFIG

    return run_cli("replay", *args, "--config", str(CONFIG), "--json")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2", "--jobs", "2"], "--jobs runs in this process only"),
        (["--workers", "2", "--sam-reader", "pcsc:x"], "--sam-reader runs in this process only"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
        (["--scheduler", "127.0.0.1:8786"], "tcp://HOST:8786"),
    ],
)
def test_unsupported_combinations_are_refused(
    network: Network, extra: list[str], message: str
) -> None:
    """What a cluster run cannot do is refused with a usage error naming it (exit 2)."""
    code, _, err = _run_failing(str(network.journals), *extra)
    assert code == 2 and message in err


def test_a_url_needs_a_cluster() -> None:
    """An s3:// URL without --workers or --scheduler: a usage error that says what to give."""
    code, _, err = _run_failing("s3://bucket/journals")
    assert code == 2 and "--workers N or --scheduler" in err


def test_keys_stay_out_of_the_graph_and_the_logs(
    network: Network, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal key and the CSIM1 keys never reach a task, a worker's or the scheduler's log.

    Every task submitted is pickled as Dask sends it (cloudpickle: function and arguments);
    the keys' bytes and hex are searched in it, in the logs and in the output.
    """
    import cloudpickle
    import yaml

    pickled: list[bytes] = []
    submit = distributed.Client.submit

    def recording(self: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
        pickled.append(cloudpickle.dumps((function, args, kwargs)))
        return submit(self, function, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "submit", recording)
    code, doc, err = run_replay(str(network.journals), *network.args(), "--scheduler", scheduler)
    assert code == 0 and doc["mac"]["verified"] > 0 and doc["integrity"]["authenticated"]
    with distributed.Client(scheduler) as client:
        logs = repr(client.get_worker_logs()) + repr(client.get_scheduler_logs())
    csim1 = yaml.safe_load(KEYS.read_text())["keys"]
    secrets = [network.key] + [bytes.fromhex(k["key"]) for k in csim1]
    assert pickled and all(b"analyse_chain" not in p or b"journal.key" in p for p in pickled)
    haystacks = [*pickled, pickle.dumps(doc), logs.encode(), err.encode()]
    for secret in secrets:
        for form in (secret, secret.hex().encode(), secret.hex().upper().encode()):
            assert not any(form in haystack for haystack in haystacks)
