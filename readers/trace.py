# SPDX-License-Identifier: Apache-2.0
"""Timed APDU exchanges and their hex trace form ("> 00B2..." / "< ...9000")."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Exchange:
    """One command and its response as sent and received, with the time it took."""

    label: str
    command: bytes
    response: bytes
    elapsed: float

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready form (hex strings, milliseconds)."""
        return {
            "to": self.label,
            "c": self.command.hex().upper(),
            "r": self.response.hex().upper(),
            "ms": round(self.elapsed * 1000, 3),
        }


def format_trace(exchanges: Iterable[Exchange]) -> str:
    """Render exchanges as trace lines: '> LABEL CMD' then '< LABEL RSP (ms)'."""
    lines = []
    for ex in exchanges:
        lines.append(f"> {ex.label} {ex.command.hex().upper()}")
        lines.append(f"< {ex.label} {ex.response.hex().upper()} ({ex.elapsed * 1000:.2f} ms)")
    return "\n".join(lines)


def parse_trace(text: str, label: str | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Read '> CMD' / '< RSP' line pairs (optionally labelled) back into byte pairs."""
    pending: bytes | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        direction, _, rest = line.partition(" ")
        parts = rest.split()
        if len(parts) >= 2 and not _is_hex(parts[0]):
            if label is not None and parts[0] != label:
                continue
            parts = parts[1:]
        if not parts or not _is_hex(parts[0]):
            raise ValueError(f"trace line {number}: no hex payload: {raw!r}")
        payload = bytes.fromhex(parts[0])
        if direction == ">":
            if pending is not None:
                raise ValueError(f"trace line {number}: command without a response before it")
            pending = payload
        elif direction == "<":
            if pending is None:
                raise ValueError(f"trace line {number}: response without a command")
            yield pending, payload
            pending = None
        else:
            raise ValueError(f"trace line {number}: expected '>' or '<': {raw!r}")
    if pending is not None:
        raise ValueError("trace ends with a command that has no response")


def _is_hex(token: str) -> bool:
    try:
        bytes.fromhex(token)
    except ValueError:
        return False
    return len(token) % 2 == 0
