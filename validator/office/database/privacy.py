# SPDX-License-Identifier: Apache-2.0
"""The office database's pseudonymisation setting: card serials stored as pseudonyms only.

``validator office init-db --pseudonymise KEYFILE`` turns it on, once, for good: on a database
that holds no card-level data yet (taps, records, unknown taps, held lines), since rows already
stored with clear serials would stay so. Its ``office_settings`` row then holds the office key's
``key_id`` (validator.office.pseudonym: an HMAC of a fixed label, never the key), and every
ingestion must present the same key: a file ingested without it, or with another, is refused
before anything of it is stored (OfficeDatabaseError), so that a collector started without the
key never writes a clear serial into the database.

How an entry is stored then (validator.office.database.rows): each line is checked first as
received (hash, chain from the anchor, HMAC with the journal key); only then is the entry
pseudonymised (validator.office.pseudonym.Pseudonymiser.entry: card replaced, trace dropped,
every copy of the serial replaced) and stored with the hash and prev of the line as received.
Lines held after a break are the exception: they are kept as received, untrusted, because
their chain must be checked again when a gap fills; ``validator office retention`` deletes them
with the rest of the card-level data.
"""

from __future__ import annotations

from typing import Any

import psycopg

from validator.office.database.schema import OfficeDatabaseError, connect, require_schema
from validator.office.pseudonym import Pseudonymiser

__all__ = ["database_pseudonymiser", "enable_pseudonyms", "pseudonymised"]

_CARD_TABLES = ("taps", "records", "unknown_taps", "held_entries")


def pseudonymised(conn: psycopg.Connection[Any]) -> str | None:
    """The key id of the office key when the database stores pseudonyms only, else None."""
    row = conn.execute("SELECT pseudonymise, key_id FROM office_settings").fetchone()
    return str(row[1]) if row is not None and row[0] else None


def database_pseudonymiser(
    conn: psycopg.Connection[Any], given: Pseudonymiser | None
) -> Pseudonymiser | None:
    """The pseudonymiser ingestion must use on this database (OfficeDatabaseError if unfit).

    None when the database stores clear serials and no key was given; ``given`` when the
    database stores pseudonyms of that very key; refused otherwise (no key for a pseudonymised
    database, another key, or a key for a database that stores clear serials).
    """
    key_id = pseudonymised(conn)
    if key_id is None:
        if given is not None:
            raise OfficeDatabaseError(
                "the office database stores clear card serials: turn pseudonymisation on with "
                "`validator office init-db --pseudonymise KEYFILE` (on a database with no taps "
                "yet), or ingest without the office key"
            )
        return None
    if given is None:
        raise OfficeDatabaseError(
            "the office database stores pseudonyms only: give the office key "
            "(--office-key-file): nothing ingested"
        )
    if given.key_id != key_id:
        raise OfficeDatabaseError(
            f"the office key given (key id {given.key_id}) is not the database's "
            f"(key id {key_id}): its pseudonyms would not link; nothing ingested"
        )
    return given


def enable_pseudonyms(url: str, pseudonymiser: Pseudonymiser) -> bool:
    """Store pseudonyms only from now on; False when already so with this key.

    OfficeDatabaseError when the database already holds card-level data in clear, or
    pseudonyms of another key.
    """
    with connect(url) as conn:
        require_schema(conn)
        with conn.transaction():
            conn.execute("LOCK TABLE office_settings IN EXCLUSIVE MODE")
            key_id = pseudonymised(conn)
            if key_id == pseudonymiser.key_id:
                return False
            if key_id is not None:
                raise OfficeDatabaseError(
                    f"the office database stores pseudonyms of another office key "
                    f"(key id {key_id}, this one is {pseudonymiser.key_id}): not changed"
                )
            for table in _CARD_TABLES:  # names from the constant above, never from input
                found = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()  # noqa: S608
                if found is not None and found[0]:
                    raise OfficeDatabaseError(
                        f"the office database already holds card data in clear ({table}): "
                        "pseudonymisation can only be turned on before the first ingestion"
                    )
            conn.execute(
                "UPDATE office_settings SET pseudonymise = true, key_id = %s, updated_at = now()",
                (pseudonymiser.key_id,),
            )
    return True
