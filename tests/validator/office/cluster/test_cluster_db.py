# SPDX-License-Identifier: Apache-2.0
"""``validator replay --db`` on Dask: each validator's chain read from the office database by a
worker, with the in-process report (issue 21)."""

from __future__ import annotations

import pytest
from cluster_network import Network, comparable, run_replay, write_network

pytest_plugins = ["postgres_fixtures"]
distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")
pytest.importorskip("psycopg", reason="the office extra is not installed")

from validator.office.database.ingest import ingest_paths  # noqa: E402


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """The four validators' journals on disk."""
    return write_network(tmp_path_factory.mktemp("network"))


def test_database_replay_on_workers(network: Network, office_db: str, scheduler: str) -> None:
    """The network ingested: --db on a cluster gives the in-process --db report, whole
    (every chain, the HMACs, the reconciliation) and selected (--validator, --since)."""
    results = ingest_paths(office_db, [network.journals], key=network.key)
    assert all(result.ok for result in results)  # type: ignore[union-attr]
    selections = (
        [],
        ["--validator", "validator-a", "--validator", "validator-b"],
        ["--since", "2026-03-02T09:00:00"],
    )
    for selection in selections:
        args = ["--db", office_db, *network.args(), *selection]
        code, in_process, _ = run_replay(*args)
        code_cluster, on_dask, _ = run_replay(*args, "--scheduler", scheduler)
        assert code == code_cluster == 0
        assert comparable(on_dask) == comparable(in_process)
        assert in_process["entries"] > 0 and in_process["integrity"]["authenticated"]
    assert in_process["journals"][0]["directory"].startswith("office:validator-")
