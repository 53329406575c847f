# SPDX-License-Identifier: Apache-2.0
"""What the validator and the collector say to each other over HTTPS (mutual TLS).

``POST /v1/journals/<file name>``, the body a journal file's finished bytes (whole lines), or,
for a file that grew since the collector acknowledged its start, only the lines after it (sent
only when the collector's anchor is the last of them: they chain from it as a file does):
200 with the validator's new anchor once the collector's database holds the file (``status``:
ingested, already_ingested, empty); otherwise a typed refusal, one JSON object with ``error``
(one of :class:`Refusal`) and ``message``. ``GET /v1/anchor``: the anchor the collector holds
for the validator its certificate names. The validator id is the client certificate's subject
CN: a validator cannot ship as another.
"""

from __future__ import annotations

import re
from enum import StrEnum

JOURNALS_PATH = "/v1/journals/"
ANCHOR_PATH = "/v1/anchor"
DIGEST_HEADER = "X-Content-SHA256"  # the body's SHA-256: a body cut in transit is refused
# What a file sent may be named: the journal's own names (validator.journal.files), nothing else.
FILE_NAME = re.compile(r"journal-[A-Za-z0-9_.-]{1,200}\.jsonl")


class Refusal(StrEnum):
    """Why the collector did not acknowledge a file (the ``error`` of its answer)."""

    CHAIN_BREAK = "chain_break"  # stored, the break recorded, what follows it held (409)
    MALFORMED = "malformed"  # a request or file it cannot take as it is (400, 413)
    FORBIDDEN = "forbidden"  # a certificate that names no validator (403)
    DATABASE_UNAVAILABLE = "database_unavailable"  # nothing stored; try again (503)
    DATABASE_FULL = "database_full"  # nothing stored; an operator must act (507)


STATUS = {
    Refusal.CHAIN_BREAK: 409,
    Refusal.MALFORMED: 400,
    Refusal.FORBIDDEN: 403,
    Refusal.DATABASE_UNAVAILABLE: 503,
    Refusal.DATABASE_FULL: 507,
}
