# SPDX-License-Identifier: Apache-2.0
"""``validator office retention``: card-level data older than N days deleted, aggregates kept.

In one transaction, for the taps whose tap time is more than ``days`` days before the
database's clock (``localtimestamp``: tap times are the validators' local time):

1. their aggregates are added to ``tap_aggregates``: taps and revenue (the sum of ``debit``) per
   station, hour and outcome (entries are the ``granted`` and ``recovered`` rows);
2. each deleted entry's seq, hash and prev go to ``retained_chain`` (no card data), so that a
   file sent again later is recognised as the one received, not taken for a replaced entry;
3. the taps are deleted, with the records (entries of other kinds) written before the same
   cut-off (their ``time``, UTC, against ``now()``; a record stored as bytes, by the time its
   file was received); unknown taps older than the cut-off keep their resolution but lose their
   card; the lines held after a break that came in files received before the cut-off are
   deleted (their integrity break stays recorded).

What is kept: every validator's anchor (ingestion goes on from it), the aggregates, the
integrity breaks, the list of files received. Running it again adds and deletes nothing: a tap
is counted in the aggregates in the very transaction that deletes it, once.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from validator.office.database.schema import OfficeDatabaseError, connect, require_schema

__all__ = ["RetentionResult", "apply_retention"]

MAX_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention run deleted and kept."""

    days: int
    cutoff: str  # the tap time before which taps were deleted (the database's local clock)
    taps: int
    records: int
    unknown_cards: int  # unknown taps whose card was cleared
    held: int
    aggregates: int  # (station, hour, outcome) rows added to or updated
    kept_taps: int  # taps left, all younger than the cut-off


_AGGREGATE = """
INSERT INTO tap_aggregates (station, hour, outcome, taps, revenue)
SELECT station, date_trunc('hour', time), outcome, count(*), coalesce(sum(debit), 0)
FROM taps WHERE time < %(cutoff)s GROUP BY 1, 2, 3
ON CONFLICT (station, hour, outcome) DO UPDATE SET
    taps = tap_aggregates.taps + EXCLUDED.taps,
    revenue = tap_aggregates.revenue + EXCLUDED.revenue,
    updated_at = now()
"""

# An entry's ``time`` is the writer's ISO 8601 UTC time; anything else is not cast.
_ISO_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
_OLD_RECORDS = """
records r WHERE CASE
    WHEN jsonb_typeof(r.entry -> 'time') = 'string' AND (r.entry ->> 'time') ~ %(iso)s
        THEN (r.entry ->> 'time')::timestamptz < %(cutoff_utc)s
    ELSE (SELECT f.received_at < %(cutoff_utc)s FROM ingested_files f WHERE f.id = r.file_id)
END
"""


def apply_retention(url: str, days: int) -> RetentionResult:
    """Delete card-level data older than ``days`` days, keeping aggregates (ValueError if < 1)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days must be between 1 and {MAX_DAYS}, not {days}")
    try:
        with connect(url) as conn:
            require_schema(conn)
            with conn.transaction():
                # One retention at a time; ingestion may go on (it only adds younger rows).
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('office_retention'))")
                found = conn.execute(
                    "SELECT localtimestamp - make_interval(days => %s),"
                    " now() - make_interval(days => %s)",
                    (days, days),
                ).fetchone()
                assert found is not None  # noqa: S101 - a SELECT of values
                params = {"cutoff": found[0], "cutoff_utc": found[1], "iso": _ISO_TIME}
                aggregates = conn.execute(_AGGREGATE, params).rowcount
                conn.execute(
                    "INSERT INTO retained_chain (validator, seq, hash, prev)"
                    " SELECT validator, seq, hash, prev FROM taps WHERE time < %(cutoff)s"
                    " ON CONFLICT (validator, seq) DO NOTHING",
                    params,
                )
                taps = conn.execute("DELETE FROM taps WHERE time < %(cutoff)s", params).rowcount
                conn.execute(
                    "INSERT INTO retained_chain (validator, seq, hash, prev)"  # noqa: S608
                    f" SELECT validator, seq, hash, prev FROM {_OLD_RECORDS}"
                    " ON CONFLICT (validator, seq) DO NOTHING",
                    params,
                )
                records = conn.execute(f"DELETE FROM {_OLD_RECORDS}", params).rowcount  # noqa: S608
                unknown = conn.execute(
                    "UPDATE unknown_taps SET card = NULL"
                    " WHERE card IS NOT NULL AND tap_time < %(cutoff)s",
                    params,
                ).rowcount
                held = conn.execute(
                    "DELETE FROM held_entries h USING ingested_files f"
                    " WHERE f.id = h.file_id AND f.received_at < %(cutoff_utc)s",
                    params,
                ).rowcount
                kept = conn.execute("SELECT count(*) FROM taps").fetchone()
    except psycopg.Error as exc:
        raise OfficeDatabaseError(f"retention not applied (nothing deleted): {exc}") from None
    return RetentionResult(
        days,
        str(params["cutoff"])[:19],
        taps,
        records,
        unknown,
        held,
        aggregates,
        int(str(kept[0])) if kept is not None else 0,
    )
