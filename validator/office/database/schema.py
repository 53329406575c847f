# SPDX-License-Identifier: Apache-2.0
"""The office database's schema, versioned, and the one way to connect to it.

``validator office init-db --db URL`` creates the tables, or brings an older schema up to this
release's by its migrations, each in one transaction; a database whose schema is newer than
this release knows is refused, never written. Every other command checks the version first.

The tables (issue 20):

- ``taps``: one row per journal entry that is a tap: the export's columns
  (validator.office.export.SCHEMA), the entry's seq, hash and prev, and the raw entry (jsonb);
- ``records``: chained entries of another kind (a record kind this release does not know as a
  tap, or a tap it cannot read), stored raw with their kind: never dropped (as jsonb, or as
  the line's bytes when jsonb cannot hold it: a NUL character, a lone surrogate);
- ``validators``: each validator's anchor, the last trusted seq and the hash of its line;
- ``unknown_taps``: taps whose Close went unanswered, and their resolution when it came;
- ``integrity_breaks``: what broke a chain (validator, seq, kind, detail), once per kind and seq;
- ``held_entries``: lines received after a break, kept raw but not trusted, with the kind of
  the break (those held for a gap, ``missing``, are taken in once the gap is filled);
- ``ingested_files``: each file received (name, SHA-256 digest): the same bytes twice add nothing.

Version 2 (privacy, validator.office.database.privacy):

- ``office_settings``: one row; ``pseudonymise`` (card serials stored as pseudonyms only) and
  the ``key_id`` of the office key that makes them (never the key);
- ``tap_aggregates``: taps and revenue per station, hour and outcome, computed by
  ``validator office retention`` before it deletes the taps they count;
- ``retained_chain``: the seq, hash and prev of each entry retention deleted (no card data), so
  that a file sent again after retention is still recognised as the one received.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "SCHEMA_VERSION",
    "OfficeDatabaseError",
    "connect",
    "init_db",
    "schema_version",
]


class OfficeDatabaseError(Exception):
    """The office database cannot be reached or used (the message says why, never a password)."""


_V1 = """
CREATE TABLE office_schema (
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE ingested_files (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    digest text NOT NULL UNIQUE,
    size bigint NOT NULL,
    validator text,
    entries integer NOT NULL,
    new_entries integer NOT NULL,
    duplicates integer NOT NULL,
    held integer NOT NULL,
    breaks integer NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE validators (
    id text PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0,
    last_hash text NOT NULL,
    last_time text,
    first_seen timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE taps (
    validator text NOT NULL REFERENCES validators (id),
    seq bigint NOT NULL,
    time timestamp NOT NULL,
    station bigint,
    card text,
    product_type text,
    product text,
    outcome text,
    reason text,
    contract bigint,
    debit bigint,
    remaining bigint,
    latency_ms double precision,
    mac_status text,
    attempts bigint,
    recovered_from_tap bigint,
    resolves_seq bigint,
    resolves_committed boolean,
    journal_time text,
    hash text NOT NULL,
    prev text NOT NULL,
    entry jsonb NOT NULL,
    file_id bigint NOT NULL REFERENCES ingested_files (id),
    PRIMARY KEY (validator, seq)
);
CREATE INDEX taps_time ON taps (time);
CREATE INDEX taps_station_time ON taps (station, time);
CREATE INDEX taps_card ON taps (card);
CREATE TABLE records (
    validator text NOT NULL REFERENCES validators (id),
    seq bigint NOT NULL,
    kind text NOT NULL,
    note text,
    hash text NOT NULL,
    prev text NOT NULL,
    entry jsonb,
    line bytea,
    file_id bigint NOT NULL REFERENCES ingested_files (id),
    PRIMARY KEY (validator, seq),
    CHECK (entry IS NOT NULL OR line IS NOT NULL)
);
CREATE TABLE unknown_taps (
    validator text NOT NULL REFERENCES validators (id),
    seq bigint NOT NULL,
    tap_time timestamp,
    card text,
    transaction_counter bigint,
    debit_sent bigint,
    resolved_by_seq bigint,
    committed boolean,
    debit bigint,
    resolved_time timestamp,
    PRIMARY KEY (validator, seq)
);
CREATE TABLE integrity_breaks (
    id bigserial PRIMARY KEY,
    validator text NOT NULL REFERENCES validators (id),
    seq bigint NOT NULL,
    kind text NOT NULL,
    detail text NOT NULL,
    file_id bigint NOT NULL REFERENCES ingested_files (id),
    line integer NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (validator, kind, seq)
);
CREATE TABLE held_entries (
    validator text NOT NULL REFERENCES validators (id),
    hash text NOT NULL,
    seq bigint,
    kind text NOT NULL,
    reason text NOT NULL,
    line bytea NOT NULL,
    size bigint NOT NULL,
    file_id bigint NOT NULL REFERENCES ingested_files (id),
    line_number integer NOT NULL,
    PRIMARY KEY (validator, hash)
);
"""

_V2 = """
CREATE TABLE office_settings (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    pseudonymise boolean NOT NULL DEFAULT false,
    key_id text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT pseudonymise OR key_id IS NOT NULL)
);
INSERT INTO office_settings DEFAULT VALUES;
CREATE TABLE tap_aggregates (
    station bigint,
    hour timestamp NOT NULL,
    outcome text,
    taps bigint NOT NULL,
    revenue bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (station, hour, outcome)
);
CREATE TABLE retained_chain (
    validator text NOT NULL REFERENCES validators (id),
    seq bigint NOT NULL,
    hash text NOT NULL,
    prev text NOT NULL,
    PRIMARY KEY (validator, seq)
);
"""

# Version n is reached by running MIGRATIONS[n - 1] on version n - 1 (0: an empty database).
MIGRATIONS = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the office database (OfficeDatabaseError if psycopg or the server fails)."""
    try:
        import psycopg
    except ImportError:
        raise OfficeDatabaseError(
            "psycopg is not installed: pip install 'calypso-gate-validator[office]'"
        ) from None
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        # libpq's message names the host and the problem; the URL (and a password) is not echoed.
        raise OfficeDatabaseError(f"cannot connect to the office database: {exc}") from None


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The schema version of the database (0 when it holds no office schema)."""
    exists = conn.execute("SELECT to_regclass('office_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT max(version) FROM office_schema").fetchone()
    return int(row[0]) if row and isinstance(row[0], int) else 0


def require_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """OfficeDatabaseError unless the database holds this release's schema."""
    version = schema_version(conn)
    if version != SCHEMA_VERSION:
        raise OfficeDatabaseError(_mismatch(version))


def _mismatch(version: int) -> str:
    if version == 0:
        return "the database holds no office schema: run `validator office init-db` first"
    if version > SCHEMA_VERSION:
        return (
            f"the database's schema is version {version}, newer than this release knows "
            f"({SCHEMA_VERSION}): upgrade the validator package"
        )
    return (
        f"the database's schema is version {version}, this release's is {SCHEMA_VERSION}: "
        "run `validator office init-db` to migrate it"
    )


def init_db(url: str) -> tuple[int, int]:
    """Create or migrate the office schema; returns (version before, version after).

    The migrations run in one transaction, under an advisory lock so that two init-db runs at
    once do not both migrate. A newer schema is refused (OfficeDatabaseError).
    """
    import psycopg

    with connect(url) as conn:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('office_schema'))")
                before = schema_version(conn)
                if before > SCHEMA_VERSION:
                    raise OfficeDatabaseError(_mismatch(before))
                for version in range(before + 1, SCHEMA_VERSION + 1):
                    conn.execute(MIGRATIONS[version - 1].encode())
                    conn.execute("INSERT INTO office_schema (version) VALUES (%s)", (version,))
        except psycopg.Error as exc:
            raise OfficeDatabaseError(f"cannot create the office schema: {exc}") from None
    return before, SCHEMA_VERSION
