# SPDX-License-Identifier: Apache-2.0
"""Reader specifications as written on the command line and in validator.yaml.

``pcsc:REGEX`` is the first PC/SC reader whose name matches REGEX (re.search), ``nfc:PATH`` an
nfcpy device (``usb``, ``usb:VID:PID``, ``tty:...``, ``udp:host:port``). ``emulated`` and
``software`` are resolved by the validator, which owns the emulated cards and the software SAM.
"""

from __future__ import annotations

import re

from readers.base import CardReader
from readers.pcsc import DEFAULT_TRANSMIT_TIMEOUT

SCHEMES = ("pcsc", "nfc")


def open_reader(spec: str, *, timeout: float = DEFAULT_TRANSMIT_TIMEOUT) -> CardReader:
    """Build the reader a spec names; ValueError for anything but pcsc:REGEX or nfc:PATH.

    ``timeout`` bounds one APDU exchange (the watchdog of a mute card); neither pyscard nor
    nfcpy is imported until the reader is first used.
    """
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"unknown reader {spec!r}: expected pcsc:REGEX (a PC/SC reader name pattern) "
            "or nfc:PATH (an nfcpy device such as nfc:usb or nfc:tty:ttyUSB0:pn532)"
        )
    if not rest:
        raise ValueError(f"reader {spec!r}: nothing after {scheme}:")
    if scheme == "pcsc":
        try:
            re.compile(rest)
        except re.error as exc:
            raise ValueError(f"reader {spec!r}: bad regular expression: {exc}") from None
        from readers.pcsc import PcscReader

        return PcscReader(rest, timeout=timeout)
    from readers.nfc import NfcReader

    return NfcReader(rest, timeout=timeout)
