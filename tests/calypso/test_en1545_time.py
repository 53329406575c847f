# SPDX-License-Identifier: Apache-2.0
"""EN 1545 times of day above 23:59 are decoded as invalid, never shown as a time (15.20)."""

from __future__ import annotations

from calypso.en1545.codec import decode
from calypso.en1545.keyple_demo import EVENT
from calypso.en1545.types import Kind, display

# EventVersionNumber 1, date 0, EventTimeStamp FFFFh (1092:15 if read as minutes), then zeros.
BAD_EVENT = bytes.fromhex("010000FFFF") + bytes(24)
GOOD_EVENT = bytes.fromhex("010000059F") + bytes(24)  # 059Fh = 1439 = 23:59


def test_display_says_invalid() -> None:
    """display() of a time past 23:59 says so; 23:59 itself is a time."""
    assert display(Kind.TIME_COMPACT, 1439, 16) == "23:59"
    shown = display(Kind.TIME_COMPACT, 0xFFFF, 16)
    assert isinstance(shown, str) and shown.startswith("1092:15") and "invalid" in shown
    assert "invalid" in str(display(Kind.TIME, 1440, 11))


def test_decoded_record_lists_the_invalid_field() -> None:
    """The decoded event names EventTimeStamp as invalid, in its JSON too."""
    bad = decode(EVENT, BAD_EVENT)
    assert bad.invalid == ["EventTimeStamp: 1092:15 is not a time of day (above 23:59)"]
    assert bad.to_json()["invalid"] == bad.invalid
    good = decode(EVENT, GOOD_EVENT)
    assert good.invalid == [] and "invalid" not in good.to_json()
    assert good.to_json()["fields"]["EventTimeStamp"] == "23:59"
