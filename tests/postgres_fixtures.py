# SPDX-License-Identifier: Apache-2.0
"""pytest plugin: a session-wide private PostgreSQL and a fresh office database per test.

Test modules load it with ``pytest_plugins = ["postgres_fixtures"]`` (as ``pcsc_fixtures``).
Tests that need it skip with the reason when PostgreSQL or psycopg is not installed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from lab.postgres import PrivatePostgres, missing_binaries

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster on a Unix socket in a temporary directory (no TCP)."""
    reason = missing_binaries()
    if reason is not None:
        pytest.skip(reason)
    pytest.importorskip("psycopg", reason="psycopg is not installed (the office extra)")
    cluster = PrivatePostgres()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def empty_db(postgres: PrivatePostgres) -> str:
    """The URL of a new empty database of the private cluster."""
    return postgres.create_database(f"office_{next(_numbers)}")


@pytest.fixture
def office_db(empty_db: str) -> str:
    """The URL of a new database holding the office schema (``validator office init-db``)."""
    from validator.office.database.schema import init_db

    init_db(empty_db)
    return empty_db
