# SPDX-License-Identifier: Apache-2.0
"""Transport layer: APDU types, reader and connection protocols, and reader implementations.

Nothing here knows about Calypso: it moves bytes and reports transport failures.
"""

from __future__ import annotations

from readers.apdu import SW, ApduError, CommandApdu, ResponseApdu
from readers.base import (
    ApduHandler,
    CardConnection,
    CardReader,
    CardRemovedError,
    NoCardError,
    PassThroughHandler,
    ReaderError,
    ReaderTimeoutError,
)
from readers.channel import ApduChannel
from readers.trace import Exchange

__all__ = [
    "SW",
    "ApduChannel",
    "ApduError",
    "ApduHandler",
    "CardConnection",
    "CardReader",
    "CardRemovedError",
    "CommandApdu",
    "Exchange",
    "NoCardError",
    "PassThroughHandler",
    "ReaderError",
    "ReaderTimeoutError",
    "ResponseApdu",
]
