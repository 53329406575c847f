# SPDX-License-Identifier: Apache-2.0
"""NFC readers driven by nfcpy (PN53x, RC-S380, ACR122U... over USB or serial, or its udp driver).

nfcpy is an optional extra (``pip install '.[nfc]'``) imported on first use. It is untyped and
unmaintained since 2022, so it stays behind our CardReader/CardConnection protocols: ISO-DEP
(Type 4A and 4B) cards only, raw APDUs through ``Type4Tag.transceive``, and nfcpy's errors mapped
to ours. nfcpy drives the chip over libusb: a reader pcscd already holds cannot be used here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from readers.apdu import ResponseApdu
from readers.base import CardRemovedError, ReaderError

logger = logging.getLogger(__name__)

DEFAULT_TARGETS = ("106A", "106B")
# nfcpy has no card-presence event: the field is polled, as any NFC reader does.
_POLL_INTERVAL_S = 0.1


def nfc_module() -> Any:
    """The nfc package, imported on first use (ReaderError when nfcpy is not installed)."""
    try:
        import nfc
        import nfc.clf
        import nfc.tag
        import nfc.tag.tt4
    except ImportError as exc:
        raise ReaderError(
            "nfcpy is not installed: pip install 'calypso-gate-validator[nfc]'"
        ) from exc
    return nfc


def contactless_atr(historical: bytes) -> bytes:
    """The PC/SC part 3 pseudo-ATR of an ISO 14443-4 card: 3B 8n 80 01 <historical> TCK."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    body = bytes((0x8 << 4 | len(historical), 0x80, 0x01)) + historical
    tck = 0
    for byte in body:  # TCK: XOR of every byte from T0 on
        tck ^= byte
    return b"\x3b" + body + bytes((tck,))


def _atr_of(tag: Any) -> bytes:
    """The pseudo-ATR a PC/SC reader would give: ATQB data for Type 4B, none kept for 4A."""
    sensb = getattr(getattr(tag, "target", None), "sensb_res", None)
    if sensb is not None and len(sensb) >= 12:
        # Part 3: application data (4), protocol info (3), then MBLI in the high nibble (0).
        return contactless_atr(bytes(sensb[5:12]) + b"\x00")
    # nfcpy does not keep the ATS, so no historical bytes can be given for a Type 4A card.
    return contactless_atr(b"")


def map_error(exc: Exception, what: str) -> ReaderError:
    """nfcpy error -> ours: broken link and timeouts are a lost card, anything else ReaderError."""
    nfc = nfc_module()
    if isinstance(exc, nfc.clf.BrokenLinkError | nfc.clf.TimeoutError):
        return CardRemovedError(f"card lost during {what}: {exc!r}")
    lost = (nfc.tag.TIMEOUT_ERROR, nfc.tag.RECEIVE_ERROR)
    if isinstance(exc, nfc.tag.tt4.Type4TagCommandError) and exc.errno in lost:
        # "Unrecoverable" timeout or transmission error after nfcpy's own R(NAK) retries:
        # how a card that left the field shows at the block level.
        return CardRemovedError(f"card lost during {what}: {exc}")
    return ReaderError(f"NFC {what} failed: {exc!r}")


class NfcConnection:
    """A link to one ISO-DEP card found by an NfcReader."""

    def __init__(self, tag: Any, timeout: float | None = None) -> None:
        self._tag = tag
        self._timeout = timeout
        self._atr = _atr_of(tag)
        self._closed = False
        self.gone = False  # set once a presence check found the card out of the field

    @property
    def atr(self) -> bytes:
        """A PC/SC-style pseudo-ATR for the card."""
        return self._atr

    @property
    def tag(self) -> Any:
        """nfcpy's tag object (Type4ATag or Type4BTag)."""
        return self._tag

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """Exchange one raw APDU (SW included in the answer); never raises on a status word."""
        if self.gone:
            raise CardRemovedError("card left the field")
        if self._closed:
            raise ReaderError("connection closed")
        try:
            raw = self._tag.transceive(bytearray(apdu), timeout=self._timeout)
        except Exception as exc:  # nfcpy raises its own hierarchy, mapped here
            raise map_error(exc, "transmit") from exc
        if raw is None or len(raw) < 2:
            raise CardRemovedError(f"card gave no answer ({0 if raw is None else len(raw)} bytes)")
        return ResponseApdu.from_bytes(bytes(raw))

    def is_present(self) -> bool:
        """A presence check on the link (an ISO-DEP R(NAK)); False once the card has left."""
        if self._closed:
            return False
        try:
            return bool(self._tag.is_present)
        except Exception as exc:  # any failure of the check means the card is not answering
            logger.debug("presence check failed: %r", exc)
            return False

    def close(self) -> None:
        """Forget the card (it stays in the field until taken away)."""
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NfcReader:
    """A CardReader on an nfcpy device path: usb, usb:VID:PID, usb:BUS:DEV, tty:..., udp:H:P."""

    def __init__(
        self,
        path: str,
        *,
        targets: tuple[str, ...] = DEFAULT_TARGETS,
        timeout: float | None = None,
        clf: Any = None,
    ) -> None:
        self.path = path
        self.name = f"nfc:{path}"
        self.targets = targets
        self.timeout = timeout
        self._clf = clf  # an already open ContactlessFrontend (tests inject a fake device)
        self._current: NfcConnection | None = None
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"NfcReader({self.path!r})"

    def open(self) -> Any:
        """Open the device (ReaderError if absent, busy or not permitted) and return the clf."""
        if self._clf is None:
            nfc = nfc_module()
            try:
                self._clf = nfc.ContactlessFrontend(self.path)
            except (OSError, ValueError) as exc:
                raise ReaderError(f"cannot open NFC device {self.path!r}: {exc}") from exc
        return self._clf

    def wait_for_card(self, timeout: float | None = None) -> NfcConnection | None:
        """Poll the field for an ISO-DEP card and activate it; None on timeout."""
        clf = self.open()
        deadline = None if timeout is None else time.monotonic() + timeout

        def expired() -> bool:
            return self._closed.is_set() or (deadline is not None and time.monotonic() >= deadline)

        options = {
            "targets": list(self.targets),
            "on-connect": lambda tag: False,  # hand the tag back instead of nfcpy's own loop
            "iterations": 1,
            "beep-on-connect": False,
        }
        nfc = nfc_module()
        while not expired():
            # One sensing pass per connect() call: nfcpy's own loop would spin without a pause
            # when no card answers, so the polling interval is kept here.
            try:
                tag = clf.connect(rdwr=options, terminate=_once())
            except Exception as exc:  # nfcpy raises its own hierarchy, mapped here
                raise map_error(exc, "card activation") from exc
            if tag is None or tag is False:
                if clf.device is None:
                    raise ReaderError(f"NFC device {self.path!r} is gone")
                self._closed.wait(_POLL_INTERVAL_S)
                continue
            if not isinstance(tag, nfc.tag.tt4.Type4Tag):
                # A Mifare Classic, a FeliCa...: not a Calypso card; wait for it to leave.
                logger.info("%s: ignoring a non ISO-DEP tag: %s", self.name, tag)
                self._wait_gone(tag, deadline)
                continue
            self._current = NfcConnection(tag, self.timeout)
            return self._current
        return None

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        """Presence-check the last card until it has left the field; False on timeout."""
        current = self._current
        if current is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._wait_gone(current.tag, deadline):
            self._current = None
            current.gone = True
            return True
        return False

    def close(self) -> None:
        """Close the device; waits in progress return."""
        self._closed.set()
        clf, self._clf = self._clf, None
        if clf is not None:
            clf.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_gone(self, tag: Any, deadline: float | None) -> bool:
        while True:
            try:
                present = bool(tag.is_present)
            except Exception as exc:  # a failed presence check: the card is not answering
                logger.debug("presence check failed: %r", exc)
                present = False
            if not present:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self._closed.wait(_POLL_INTERVAL_S):
                return False


def _once() -> Callable[[], bool]:
    """A terminate callback for nfcpy's connect(): go on once, then stop."""
    passes = iter((False,))
    return lambda: next(passes, True)


def find_devices(paths: tuple[str, ...] = ("usb",)) -> list[str]:
    """Describe the nfcpy devices that open on these paths (none when nfcpy is absent)."""
    try:
        nfc = nfc_module()
    except ReaderError:
        return []
    found = []
    for path in paths:
        try:
            clf = nfc.ContactlessFrontend(path)
        except (OSError, ValueError) as exc:
            logger.debug("no nfcpy device at %s: %s", path, exc)
            continue
        try:
            found.append(f"{path}: {clf.device}")
        finally:
            clf.close()
    return found
