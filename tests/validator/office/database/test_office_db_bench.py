# SPDX-License-Identifier: Apache-2.0
"""The ingest benchmark's parts on a small journal (its figures are printed, never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from office_journals import JOURNAL_KEY, count, write_journal

from lab.postgres import PrivatePostgres

pytest_plugins = ["postgres_fixtures"]
pytest.importorskip("psycopg")

from validator.bench.ingest import _server, run_pass  # noqa: E402
from validator.office.database.schema import init_db  # noqa: E402


def test_a_pass_counts_what_it_ingested(postgres: PrivatePostgres, tmp_path: Path) -> None:
    """One pass into a fresh database beside --db's: every tap new, then none the second time."""
    files = write_journal(tmp_path / "validator-1", taps=20)
    with _server(postgres.url()) as (fresh, where):
        url = fresh("bench_pass")
    assert where == "the server of --db" and "dbname=bench_pass" in url
    init_db(url)
    seconds, new, ingested, ok = run_pass(url, files[0].parent, JOURNAL_KEY)
    assert (new, ingested, ok) == (20, len(files), True) and seconds > 0
    assert run_pass(url, files[0].parent, JOURNAL_KEY)[1:] == (0, len(files), True)
    assert count(url, "taps") == 20
