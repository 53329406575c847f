# SPDX-License-Identifier: Apache-2.0
"""A worker killed (SIGKILL) mid-run: its tasks run again elsewhere, the report is complete."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import pytest
from cluster_network import comparable, run_replay, write_network

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")
cloudpickle = pytest.importorskip("cloudpickle")


class SlowChains(distributed.WorkerPlugin):  # type: ignore[misc]
    """Test-only: each chain task starts half a second late, so a kill lands mid-run."""

    name = "slow-chains"

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        """Hold a chain task as it starts executing."""
        if finish == "executing" and "-chain-" in str(key):
            time.sleep(0.5)


def _victim(client: Any, timeout: float = 30.0) -> str:
    """The address of a worker processing a chain task, as soon as there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address, keys in client.processing().items():
            if any("-chain-" in str(key) for key in keys):
                return str(address)
        time.sleep(0.01)
    raise AssertionError("no chain task was processed")


def test_a_worker_killed_mid_run_changes_nothing(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """SIGKILL to a worker running a chain: retried >= 1 and the in-process report, whole."""
    network = write_network(tmp_path_factory.mktemp("network"))
    code, in_process, _ = run_replay(str(network.journals), *network.args())
    assert code == 0
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import it
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.register_plugin(SlowChains())
        pids = client.run(os.getpid)
        result: dict[str, Any] = {}
        args = (str(network.journals), *network.args(), "--scheduler", cluster.scheduler_address)
        replaying = threading.Thread(target=lambda: result.update(run=run_replay(*args)))
        replaying.start()
        victim = _victim(client)
        os.kill(pids[victim], signal.SIGKILL)
        replaying.join(timeout=120)
        assert not replaying.is_alive()
        client.wait_for_workers(2, timeout=30)  # the nanny started a new worker
    code, doc, _ = result["run"]
    assert code == 0
    assert doc["cluster"]["retried"] >= 1
    assert comparable(doc) == comparable(in_process)
