# SPDX-License-Identifier: Apache-2.0
"""Journal lines parsed fast: ``orjson`` when it is installed, else the standard library.

Replay and export parse every line of journals of millions of taps; the standard ``json`` takes
several times longer than ``orjson`` on a journal line. Whatever ``orjson`` refuses (NaN, lone
surrogates, numbers beyond the float range...) is parsed again by ``json``, so that the result,
or the ValueError, is then the standard library's. One difference stays: an integer beyond the
64-bit range (below -2**63, above 2**64 - 1) is a float from ``orjson`` and an int from ``json``.
No valid journal holds one: the typed entries (validator.journal.entry) refuse it either way,
with the same message naming the field. A line nested too deeply for the standard parser is a
ValueError too, never a RecursionError (issue 15.13).
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback stays correct
    orjson = None  # type: ignore[assignment]


def loads(data: bytes) -> Any:
    """One JSON document, as ``json.loads`` gives it (ValueError if it is not one)."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None
