# SPDX-License-Identifier: Apache-2.0
"""Journals on object storage (s3://, an S3 server of moto's on loopback): the same report."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_network import Network, comparable, run_replay, write_network

pytest.importorskip("distributed", reason="the cluster extra is not installed")
s3fs = pytest.importorskip("s3fs", reason="the cluster extra is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

BUCKET = "journals-bucket"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """The four validators' journals on disk."""
    return write_network(tmp_path_factory.mktemp("network"))


@pytest.fixture(scope="module")
def bucket(network: Network) -> Iterator[str]:
    """The journals copied to a bucket of an S3 server on loopback; its URL.

    The credentials and the endpoint go through the environment, as on a real cluster: the
    workers started by --workers inherit it; nothing is passed in the task graph.
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        fs.put(str(network.journals), f"{BUCKET}/journals", recursive=True)
        yield f"s3://{BUCKET}/journals"
    server.stop()


def _located(doc: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``doc`` with every path under ``old`` named under ``new`` instead."""
    result: dict[str, Any] = json.loads(json.dumps(doc).replace(old, new))
    return result


def test_s3_journals_give_the_in_process_report(network: Network, bucket: str) -> None:
    """--workers 2 reading s3://: the in-process report of the same files, named by URL."""
    code, in_process, _ = run_replay(str(network.journals), *network.args())
    code_s3, on_s3, _ = run_replay(bucket, *network.args(), "--workers", "2")
    assert code == code_s3 == 0
    assert on_s3["journals"][0]["directory"] == f"{bucket}/a"
    expected = _located(comparable(in_process), str(network.journals), bucket)
    assert comparable(on_s3) == expected


def test_torn_tails_and_quarantine_files_on_s3(
    network: Network, bucket: str, tmp_path: Path
) -> None:
    """A torn last line and a quarantine file beside a journal: listed alike from s3://."""
    import shutil

    copy = tmp_path / "journals"
    shutil.copytree(network.journals, copy)
    last = sorted((copy / "d").glob("journal-*.jsonl"))[-1]
    with last.open("ab") as handle:
        handle.write(b'{"seq":99999,"torn')
    (copy / "d" / f"quarantine-{last.stem}-1.jsonl").write_bytes(b'{"torn":\n')
    fs = s3fs.S3FileSystem()
    fs.put(str(copy), f"{BUCKET}/torn", recursive=True)
    code, in_process, _ = run_replay(str(copy), *network.args())
    code_s3, on_s3, _ = run_replay(f"s3://{BUCKET}/torn", *network.args(), "--workers", "1")
    assert code == code_s3
    kinds = [item["kind"] for item in on_s3["integrity"]["quarantined"]]
    assert kinds == ["quarantine_file", "torn_tail"]
    assert comparable(on_s3) == _located(comparable(in_process), str(copy), f"s3://{BUCKET}/torn")


def test_a_missing_prefix_is_bad_input(bucket: str) -> None:
    """A URL with no journal under it: exit 2 and the reason, as for a folder on disk."""
    from click.testing import CliRunner
    from conftest import CONFIG

    from validator.cli.main import main

    args = ["replay", f"{bucket}-none/x", "--config", str(CONFIG), "--workers", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "no such file or folder" in result.stderr
