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


@pytest.fixture(scope="session")
def _shared_office_db(postgres: PrivatePostgres) -> str:
    """One database with the office schema for the session (creating one costs ~0.3 s)."""
    from validator.office.database.schema import init_db

    url = postgres.create_database("office_shared")
    init_db(url)
    return url


@pytest.fixture
def office_db(_shared_office_db: str) -> str:
    """The URL of a database holding the office schema (``validator office init-db``), empty.

    The session's one database, emptied before each test: every table truncated, the schema
    version back to this release's.
    """
    import psycopg

    from validator.office.database.schema import SCHEMA_VERSION

    with psycopg.connect(_shared_office_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE taps, records, unknown_taps, integrity_breaks, held_entries, validators,"
            " ingested_files, tap_aggregates, retained_chain RESTART IDENTITY CASCADE"
        )
        conn.execute("UPDATE office_settings SET pseudonymise = false, key_id = NULL")
        conn.execute("DELETE FROM office_schema WHERE version <> %s", (SCHEMA_VERSION,))
    return _shared_office_db
