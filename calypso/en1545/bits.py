# SPDX-License-Identifier: Apache-2.0
"""Bit streams read and written MSB first (calypso-data-model 2.1).

An EN 1545 record is a bit stream, byte aligned only at its start: fields follow each other
without padding, and the unused bits after the last field are 0.
"""

from __future__ import annotations


class BitReader:
    """Reads unsigned fields MSB first from a byte string; never reads past its end."""

    def __init__(self, data: bytes) -> None:
        """Start at the first bit of ``data``."""
        self._value = int.from_bytes(data, "big")
        self.total = 8 * len(data)
        self.position = 0

    @property
    def remaining(self) -> int:
        """Bits not read yet."""
        return self.total - self.position

    def read(self, bits: int) -> int | None:
        """The next ``bits`` bits as an unsigned integer, or None (position kept) if too few."""
        if bits < 0:
            raise ValueError("a field has a non-negative size")
        if bits > self.remaining:
            return None
        shift = self.total - self.position - bits
        self.position += bits
        return (self._value >> shift) & ((1 << bits) - 1)

    def rest(self) -> tuple[int, int]:
        """Everything not read yet as (value, size in bits), without moving."""
        size = self.remaining
        return self._value & ((1 << size) - 1), size


class BitWriter:
    """Appends unsigned fields MSB first; ``to_bytes`` pads the last byte with 0 bits."""

    def __init__(self) -> None:
        """An empty stream."""
        self._value = 0
        self.size = 0

    def write(self, value: int, bits: int) -> None:
        """Append ``value`` on ``bits`` bits; ValueError if it does not fit."""
        if bits < 0:
            raise ValueError("a field has a non-negative size")
        if not 0 <= value < (1 << bits) and not (bits == 0 and value == 0):
            raise ValueError(f"value {value} does not fit in {bits} bits")
        self._value = (self._value << bits) | value
        self.size += bits

    def to_bytes(self, size: int | None = None) -> bytes:
        """The stream padded with 0 bits to whole bytes, then to ``size`` bytes if given."""
        length = (self.size + 7) // 8
        if size is not None:
            if length > size:
                raise ValueError(f"{self.size} bits do not fit in a {size}-byte record")
            length = size
        return (self._value << (8 * length - self.size)).to_bytes(length, "big")
