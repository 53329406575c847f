# SPDX-License-Identifier: Apache-2.0
"""VpcdCard: serves any ApduHandler (card emulator, software SAM) to a vpcd virtual reader.

vpcd (vsmartcard's PC/SC driver, loaded by pcscd) listens on a TCP port per slot; a card
"inserts" itself by connecting and is "removed" when the connection closes. Each message in
either direction is a 2-byte big-endian length and a payload (reference/pcsc-nfc-testing.md 2.2):
one byte from vpcd is a control event (00 power off, 01 power on, 02 reset, 04 get ATR; only
the last is answered), anything longer is a command APDU answered with the response APDU.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Self

from readers.base import ApduHandler

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0x00, 0x01, 0x02, 0x04


@dataclass(frozen=True, slots=True)
class _Mute:
    """An armed mute fault: on the APDU after ``after`` more, silence, then answer or leave."""

    after: int
    seconds: float
    answer: bool


_TEAR = _Mute(0, 0.0, False)  # sentinel, compared by identity: execute, never answer, leave


class VpcdCard:
    """A card slot of a vpcd reader, served from a background thread, with fault injection."""

    def __init__(self, port: int, host: str = DEFAULT_HOST, *, quickack: bool = True) -> None:
        self.host = host
        self.port = port
        # Debian's vpcd writes length and payload with two send() calls and no TCP_NODELAY:
        # without TCP_QUICKACK before every recv, Nagle and delayed ACK cost ~44 ms per message.
        self.quickack = quickack
        self._lock = threading.Condition()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._handler: ApduHandler | None = None
        self._atr = b""
        self._tear_in: int | None = None
        self._mute: _Mute | None = None
        self._stopping = threading.Event()
        self.apdu_count = 0
        self.atr_polls = 0
        self.events: list[int] = []

    def __repr__(self) -> str:
        return f"VpcdCard({self.host}:{self.port}, present={self.present})"

    @property
    def present(self) -> bool:
        """Whether the card is connected to vpcd (inserted)."""
        with self._lock:
            return self._thread is not None

    @property
    def atr(self) -> bytes:
        """The ATR of the card being served (empty when none)."""
        return self._atr

    def insert(self, handler: ApduHandler, *, timeout: float = 5.0) -> None:
        """Power the handler on and connect it to vpcd (retrying while vpcd is not listening)."""
        self.remove()
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise ConnectionError(
                        f"vpcd is not listening on {self.host}:{self.port}: {exc}"
                    ) from exc
                self._stopping.wait(0.05)  # pcscd starting: nothing to wait on but time
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._stopping.clear()
            self._sock = sock
            self._handler = handler
            self._atr = handler.power_on()
            self.apdu_count = 0
            self.atr_polls = 0
            self.events = []
            self._thread = threading.Thread(
                target=self._serve, args=(sock, handler), name=f"vpcd-{self.port}", daemon=True
            )
            self._thread.start()

    def remove(self, *, timeout: float = 5.0) -> None:
        """Take the card out: close the connection (vpcd sees a removal) and cut its power."""
        with self._lock:
            thread, sock = self._thread, self._sock
            self._stopping.set()
        if sock is not None:
            _shutdown(sock)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.wait_removed(timeout)

    def wait_removed(self, timeout: float | None = None) -> bool:
        """Wait until the card has left (torn, removed or dropped by vpcd); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._thread is None, timeout)

    def tear_on_next_apdu(self, after: int = 0) -> None:
        """Tear the card on the APDU after ``after`` more: it is executed, never answered."""
        with self._lock:
            self._tear_in = after

    def mute_on_next_apdu(self, seconds: float, *, answer: bool = False, after: int = 0) -> None:
        """Stay silent ``seconds`` on a coming APDU, then answer it late or (default) leave."""
        with self._lock:
            self._mute = _Mute(after, seconds, answer)

    def clear_faults(self) -> None:
        """Disarm the faults not yet triggered."""
        with self._lock:
            self._tear_in = None
            self._mute = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # --- the serving thread --------------------------------------------------------------------

    def _serve(self, sock: socket.socket, handler: ApduHandler) -> None:
        try:
            while True:
                message = self._receive(sock)
                if message is None:
                    return
                if not message:
                    continue  # an empty message means nothing in this protocol
                if len(message) == 1:
                    self._control(sock, handler, message[0])
                    continue
                self.apdu_count += 1
                fault = self._fault()
                if fault is _TEAR:
                    handler.process(message)
                    logger.debug("vpcd %d: torn on APDU #%d", self.port, self.apdu_count)
                    return
                if fault is not None:
                    # Mute: vpcd (and so pcscd's transmit) blocks in recv() all this time.
                    if self._stopping.wait(fault.seconds) or not fault.answer:
                        return
                _send(sock, handler.process(message))
        except OSError as exc:
            logger.debug("vpcd %d: connection lost: %s", self.port, exc)
        finally:
            _shutdown(sock)
            sock.close()
            handler.power_off()
            with self._lock:
                if self._sock is sock:
                    self._sock = None
                    self._thread = None
                    self._atr = b""
                self._lock.notify_all()

    def _control(self, sock: socket.socket, handler: ApduHandler, event: int) -> None:
        if event == _GET_ATR:
            # pcscd's presence poll, about every 400 ms: a non-empty ATR means "present".
            self.atr_polls += 1
            _send(sock, self._atr)
            return
        self.events.append(event)
        if event in (_POWER_ON, _RESET):
            self._atr = handler.power_on()
        elif event == _POWER_OFF:
            handler.power_off()

    def _fault(self) -> _Mute | None:
        with self._lock:
            if self._tear_in is not None:
                if self._tear_in == 0:
                    self._tear_in = None
                    return _TEAR
                self._tear_in -= 1
            if self._mute is not None:
                if self._mute.after == 0:
                    mute, self._mute = self._mute, None
                    return mute
                self._mute = _Mute(self._mute.after - 1, self._mute.seconds, self._mute.answer)
            return None

    def _receive(self, sock: socket.socket) -> bytes | None:
        header = self._exact(sock, 2)
        if header is None:
            return None
        (size,) = struct.unpack(">H", header)
        return self._exact(sock, size) if size else b""

    def _exact(self, sock: socket.socket, size: int) -> bytes | None:
        buffer = b""
        while len(buffer) < size:
            if self.quickack:
                # Linux clears the flag after each ACK: set it again before every recv.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(size - len(buffer))
            if not chunk:
                return None
            buffer += chunk
        return buffer


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or by the other thread
