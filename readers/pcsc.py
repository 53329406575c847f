# SPDX-License-Identifier: Apache-2.0
"""PC/SC readers through pyscard's low-level ``scard`` API: PcscReader and PcscConnection.

pyscard is an optional extra (``pip install '.[pcsc]'``) and is imported on first use only, so the
rest of the package runs without it. Facts relied on (reference/pcsc-nfc-testing.md 4-6):
libpcsclite serialises the calls made on one context, so each reader gets its own; a card torn
mid-APDU may come back as SCARD_S_SUCCESS with an empty response; a mute card blocks a transmit
forever, hence the watchdog; a context whose pcscd went away stays dead and must be re-established.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from readers.apdu import ResponseApdu
from readers.base import CardRemovedError, ReaderError, ReaderTimeoutError, transmit_timeout
from readers.watchdog import Watchdog

logger = logging.getLogger(__name__)

# PC/SC return codes (pcsclite's pcsclite.h; the same values as WinSCard's).
SCARD_S_SUCCESS = 0x00000000
SCARD_E_CANCELLED = 0x80100002
SCARD_E_TIMEOUT = 0x8010000A
# The card left, lost power or was reset: its volatile state (an open session) is gone.
CARD_GONE = frozenset(
    {
        0x8010000C,  # SCARD_E_NO_SMARTCARD
        0x80100016,  # SCARD_E_NOT_TRANSACTED (vpcd, right after a tear; contactless readers)
        0x80100066,  # SCARD_W_UNRESPONSIVE_CARD
        0x80100067,  # SCARD_W_UNPOWERED_CARD
        0x80100068,  # SCARD_W_RESET_CARD
        0x80100069,  # SCARD_W_REMOVED_CARD
        0x8010002F,  # SCARD_E_COMM_DATA_LOST
    }
)
# pcscd went away (stopped, restarted): the context is dead and must be established again.
CONTEXT_DEAD = frozenset(
    {
        0x80100003,  # SCARD_E_INVALID_HANDLE
        0x8010001D,  # SCARD_E_NO_SERVICE
        0x8010001E,  # SCARD_E_SERVICE_STOPPED
        0x80100013,  # SCARD_F_COMM_ERROR (the socket to pcscd broke)
    }
)
# The reader itself is gone (unplugged): find it again by name.
READER_GONE = frozenset(
    {
        0x80100009,  # SCARD_E_UNKNOWN_READER
        0x80100017,  # SCARD_E_READER_UNAVAILABLE
        0x8010002E,  # SCARD_E_NO_READERS_AVAILABLE
    }
)
NO_READERS = 0x8010002E
SHARING_VIOLATION = 0x8010000B


def scard() -> Any:
    """pyscard's low-level module, imported on first use (ReaderError when not installed)."""
    try:
        from smartcard import scard as module
    except ImportError as exc:
        raise ReaderError(
            "pyscard is not installed: pip install 'calypso-gate-validator[pcsc]'"
        ) from exc
    return module


def describe(hresult: int) -> str:
    """A PC/SC return code as text: "Service not available. (0x8010001D)"."""
    try:
        text = str(scard().SCardGetErrorMessage(hresult)).strip()
    except ReaderError:
        text = "PC/SC error"
    return text if f"{hresult:08X}" in text.upper() else f"{text} (0x{hresult:08X})"


class PcscError(ReaderError):
    """A PC/SC call failed with a return code that is not a lost card."""

    def __init__(self, hresult: int, what: str) -> None:
        self.hresult = hresult
        super().__init__(f"PC/SC {what} failed: {describe(hresult)}")


DEFAULT_TRANSMIT_TIMEOUT = 5.0
# Longest single SCardGetStatusChange: a bounded wait lets close() and a dead pcscd be noticed.
_MAX_WAIT_S = 1.0
# Shortest gap between two attempts to reach a pcscd (or a reader) that just failed.
DEFAULT_RETRY_INTERVAL = 0.5


class PcscConnection:
    """A connection to the card (or SAM) in one PC/SC reader; transmit runs under a watchdog."""

    def __init__(
        self,
        reader: PcscReader,
        handle: int,
        protocol: int,
        atr: bytes,
        *,
        timeout: float,
    ) -> None:
        self._reader = reader
        self._handle = handle
        self._protocol = protocol
        self._atr = atr
        self._timeout = timeout
        self._watchdog = Watchdog(reader.name)
        self._closed = False
        self._deadline: float | None = None

    @property
    def atr(self) -> bytes:
        """The ATR (for a contactless card, the reader's PC/SC part 3 pseudo-ATR)."""
        return self._atr

    @property
    def protocol(self) -> str:
        """The negotiated protocol: "T=0" or "T=1"."""
        return "T=0" if self._protocol == scard().SCARD_PROTOCOL_T0 else "T=1"

    def set_deadline(self, deadline: float | None) -> None:
        """Cut transmits at a tap's deadline (time.monotonic()), never sooner than the minimum."""
        self._deadline = deadline

    def transmit(self, apdu: bytes) -> ResponseApdu:
        """Send one APDU; a status word never raises, a lost card or a dead link does."""
        if self._closed:
            raise ReaderError("connection closed")
        sc = scard()
        timeout = transmit_timeout(self._timeout, self._deadline)
        assert timeout is not None  # noqa: S101 - a connection always has its own timeout
        try:
            hresult, response = self._watchdog.call(
                lambda: sc.SCardTransmit(self._handle, self._protocol, list(apdu)), timeout
            )
        except ReaderTimeoutError:
            self._abandon()
            raise
        if hresult != SCARD_S_SUCCESS:
            raise self._error(hresult, "transmit")
        if len(response) < 2:
            # vpcd reports a card torn mid-APDU as a successful empty answer.
            raise CardRemovedError(f"card gave no answer ({len(response)} bytes): torn")
        return ResponseApdu.from_bytes(bytes(response))

    def close(self) -> None:
        """Disconnect, leaving the card powered (a no-op after a failure or a hung transmit)."""
        if self._closed:
            return
        self._closed = True
        if not self._watchdog.stuck:
            sc = scard()
            try:
                self._watchdog.call(
                    lambda: sc.SCardDisconnect(self._handle, sc.SCARD_LEAVE_CARD), self._timeout
                )
            except ReaderTimeoutError:
                self._abandon()
            self._watchdog.stop()

    def _abandon(self) -> None:
        """A call hangs: the reader moves to a new context, and this one is cleaned up later.

        The stuck handle may hold the reader exclusively; once the call returns (the card
        answered late or left), the worker disconnects it and releases the old context, so
        that the next card can be connected.
        """
        context = self._reader._abandon_context()
        handle = self._handle
        sc = scard()

        def cleanup() -> None:
            sc.SCardDisconnect(handle, sc.SCARD_LEAVE_CARD)
            if context is not None:
                sc.SCardReleaseContext(context)

        self._watchdog.submit(cleanup)
        self._watchdog.stop()

    def _error(self, hresult: int, what: str) -> ReaderError:
        if hresult in CARD_GONE:
            return CardRemovedError(f"card lost during {what}: {describe(hresult)}")
        if hresult in CONTEXT_DEAD or hresult in READER_GONE:
            self._reader._forget(context_dead=hresult in CONTEXT_DEAD)
        return PcscError(hresult, what)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcscReader:
    """The first PC/SC reader whose name matches a regular expression, with its own context.

    Every call re-establishes what a pcscd restart or an unplugged reader took away, and reports
    ReaderError while it cannot; attempts are spaced by ``retry_interval`` so that a caller
    looping on ReaderError does not spin.
    """

    def __init__(
        self,
        pattern: str,
        *,
        timeout: float = DEFAULT_TRANSMIT_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        exclusive: bool = True,
    ) -> None:
        self.pattern = re.compile(pattern)
        self.name = f"pcsc:{pattern}"
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.exclusive = exclusive
        self._context: int | None = None
        self._reader: str | None = None
        self._last_failure = 0.0
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"PcscReader({self.pattern.pattern!r}, reader={self._reader!r})"

    @property
    def reader_name(self) -> str | None:
        """The PC/SC name of the matched reader (None until found)."""
        return self._reader

    def wait_for_card(self, timeout: float | None = None) -> PcscConnection | None:
        """Wait for a card and connect (exclusive, else shared; T=0 or T=1); None on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        known = scard().SCARD_STATE_UNAWARE
        while True:
            state, atr = self._state_change(deadline, until=_present, known=known)
            if state is None:
                return None
            connection = self._connect(atr)
            if connection is not None:
                return connection
            # The card left between the state change and the connect: wait for the next change.
            known = state

    def wait_for_removal(self, timeout: float | None = None) -> bool:
        """Wait until the reader is empty; False on timeout, ReaderError if it cannot tell."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state, _ = self._state_change(deadline, until=_empty)
        return state is not None

    def is_present(self) -> bool:
        """Whether a card is in the reader now (ReaderError when pcscd or the reader is gone)."""
        state, _ = self._state_change(time.monotonic(), until=_present)
        return state is not None

    def cancel(self) -> None:
        """Interrupt a wait in progress in another thread (it returns None / False)."""
        context = self._context
        if context is not None:
            scard().SCardCancel(context)

    def close(self) -> None:
        """Release the context; the reader cannot be used afterwards."""
        self._closed.set()
        context, self._context = self._context, None
        if context is not None:
            scard().SCardReleaseContext(context)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- context and reader (re)acquisition --------------------------------------------------

    def _ensure(self) -> tuple[int, str]:
        if self._closed.is_set():
            raise ReaderError(f"{self.name}: reader closed")
        if self._context is not None and self._reader is not None:
            return self._context, self._reader
        pause = self._last_failure + self.retry_interval - time.monotonic()
        if pause > 0:
            self._closed.wait(pause)  # pace reconnection attempts without spinning
        try:
            if self._context is None:
                hresult, context = scard().SCardEstablishContext(scard().SCARD_SCOPE_USER)
                if hresult != SCARD_S_SUCCESS:
                    raise PcscError(hresult, "establish context")
                self._context = context
            names = _list(self._context)
            match = next((n for n in names if self.pattern.search(n)), None)
            if match is None:
                raise ReaderError(f"no PC/SC reader matches {self.pattern.pattern!r}: {names}")
        except ReaderError:
            self._last_failure = time.monotonic()
            raise
        if match != self._reader:
            logger.info("PC/SC reader %r for %s", match, self.name)
        self._reader = match
        return self._context, match

    def _forget(self, *, context_dead: bool) -> None:
        """Drop what an error showed to be dead: the context, or just the reader's name."""
        self._last_failure = time.monotonic()
        self._reader = None
        if context_dead:
            # Releasing a context of a vanished pcscd only fails; dropping it is enough.
            self._context = None

    def _abandon_context(self) -> int | None:
        """A call hangs on this context: use a new one from now on; returns the old one."""
        context, self._context = self._context, None
        self._reader = None
        return context

    def _state_change(
        self, deadline: float | None, *, until: Callable[[int], bool], known: int = 0
    ) -> tuple[int | None, bytes]:
        """Wait for a state, not ``known``, satisfying ``until``: (state, atr) or (None, b"").

        ``known`` 0 is SCARD_STATE_UNAWARE: the first call returns the current state at once.
        """
        sc = scard()
        context, name = self._ensure()
        if known:
            known &= ~sc.SCARD_STATE_CHANGED
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            wait = _MAX_WAIT_S if remaining is None else max(0.0, min(remaining, _MAX_WAIT_S))
            hresult, states = sc.SCardGetStatusChange(context, int(wait * 1000), [(name, known)])
            if hresult in (SCARD_E_TIMEOUT, SCARD_E_CANCELLED):
                if hresult == SCARD_E_CANCELLED or self._closed.is_set():
                    return None, b""
                if remaining is not None and remaining <= wait:
                    return None, b""
                continue
            if hresult != SCARD_S_SUCCESS:
                self._forget(context_dead=hresult not in READER_GONE)
                raise PcscError(hresult, f"status of {name!r}")
            _, event, atr = states[0]
            if event & (sc.SCARD_STATE_UNKNOWN | sc.SCARD_STATE_UNAVAILABLE):
                self._forget(context_dead=False)
                raise ReaderError(f"reader {name!r} is gone")
            if until(event) and (event & ~sc.SCARD_STATE_CHANGED) != known:
                return event, bytes(atr)
            known = event & ~sc.SCARD_STATE_CHANGED

    def _connect(self, atr: bytes) -> PcscConnection | None:
        sc = scard()
        context, name = self._ensure()
        protocols = sc.SCARD_PROTOCOL_T0 | sc.SCARD_PROTOCOL_T1
        share = sc.SCARD_SHARE_EXCLUSIVE if self.exclusive else sc.SCARD_SHARE_SHARED
        hresult, handle, protocol = sc.SCardConnect(context, name, share, protocols)
        if hresult == SHARING_VIOLATION and share == sc.SCARD_SHARE_EXCLUSIVE:
            # Another application holds the card: share it rather than fail the tap.
            logger.warning("%s: exclusive access refused, connecting shared", name)
            hresult, handle, protocol = sc.SCardConnect(
                context, name, sc.SCARD_SHARE_SHARED, protocols
            )
        if hresult in CARD_GONE:
            return None
        if hresult != SCARD_S_SUCCESS:
            self._forget(context_dead=hresult in CONTEXT_DEAD)
            raise PcscError(hresult, f"connect to {name!r}")
        hresult, _, _, _, status_atr = sc.SCardStatus(handle)
        if hresult == SCARD_S_SUCCESS and status_atr:
            atr = bytes(status_atr)
        return PcscConnection(self, handle, protocol, atr, timeout=self.timeout)


def _present(state: int) -> bool:
    sc = scard()
    return bool(state & sc.SCARD_STATE_PRESENT) and not state & sc.SCARD_STATE_MUTE


def _empty(state: int) -> bool:
    return bool(state & scard().SCARD_STATE_EMPTY)


def _list(context: int) -> list[str]:
    hresult, names = scard().SCardListReaders(context, [])
    if hresult == NO_READERS:
        return []
    if hresult != SCARD_S_SUCCESS:
        raise PcscError(hresult, "list readers")
    return list(names)


_shared_lock = threading.Lock()
_shared_context: list[int] = []


def list_readers() -> list[str]:
    """The PC/SC reader names; a context gone stale (pcscd restarted) is replaced once."""
    sc = scard()
    with _shared_lock:
        for attempt in (1, 2):
            if not _shared_context:
                hresult, context = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
                if hresult != SCARD_S_SUCCESS:
                    raise PcscError(hresult, "establish context")
                _shared_context.append(context)
            try:
                return _list(_shared_context[0])
            except PcscError as exc:
                if exc.hresult not in CONTEXT_DEAD or attempt == 2:
                    raise
                _shared_context.clear()
    raise AssertionError("unreachable")  # pragma: no cover


def reader_states() -> list[tuple[str, bytes | None]]:
    """Every PC/SC reader with the ATR of what is in it (None when empty or mute)."""
    sc = scard()
    names = list_readers()
    if not names:
        return []
    hresult, context = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        raise PcscError(hresult, "establish context")
    try:
        # UNAWARE: answer at once with the current state of every reader.
        hresult, states = sc.SCardGetStatusChange(
            context, 0, [(name, sc.SCARD_STATE_UNAWARE) for name in names]
        )
        if hresult != SCARD_S_SUCCESS:
            raise PcscError(hresult, "reader status")
        return [(name, bytes(atr) if _present(event) else None) for name, event, atr in states]
    finally:
        sc.SCardReleaseContext(context)
