# SPDX-License-Identifier: Apache-2.0
"""Counts as printed to people: "1 tap", "2 taps", never "1 taps"."""

from __future__ import annotations


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` and its noun, singular for exactly one (``plural`` defaults to noun + "s")."""
    noun = singular if count == 1 else (plural if plural is not None else singular + "s")
    return f"{count} {noun}"
