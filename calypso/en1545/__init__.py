# SPDX-License-Identifier: Apache-2.0
"""EN 1545 bit structures: bit streams, final types, structures as data, codec (section 2)."""

from __future__ import annotations

from calypso.en1545.codec import Decoded, decode, encode
from calypso.en1545.schema import Bitmap, Container, Field, Repeat, Structure
from calypso.en1545.types import Kind

__all__ = [
    "Bitmap",
    "Container",
    "Decoded",
    "Field",
    "Kind",
    "Repeat",
    "Structure",
    "decode",
    "encode",
]
