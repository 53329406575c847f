# SPDX-License-Identifier: Apache-2.0
"""systemd's notify protocol (sd_notify) over $NOTIFY_SOCKET, without extra dependencies.

Under ``Type=notify`` the service says READY=1 once it can serve, STATUS= with its state and last
tap (``systemctl status`` shows it), WATCHDOG=1 while the gate loop is alive (``WatchdogSec=``
restarts a loop that stopped pinging, e.g. on a transmit that never returns), and STOPPING=1.
Outside systemd ($NOTIFY_SOCKET unset) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

import structlog

from validator.engine.tap import TapRecord

log = structlog.get_logger("validator.systemd")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd asks for ($WATCHDOG_USEC, for this process), in seconds."""
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # meant for another process (e.g. our parent)
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET (a path, or @name in the abstract namespace)."""

    def __init__(self, address: str | None = None, *, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.address = address if address is not None else environ.get("NOTIFY_SOCKET")
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.sent: list[str] = []  # the last messages (bounded), for tests and diagnostics

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to notify (we run under a Type=notify unit)."""
        return bool(self.address)

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; False when not enabled or it failed."""
        if not self.address:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items())
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.sendto(message.encode("utf-8"), target)
            except OSError as exc:
                log.warning("sd_notify_failed", socket=self.address, error=str(exc))
                return False
            self.sent.append(message)
            del self.sent[:-50]
        return True

    def ready(self, status: str = "") -> bool:
        """READY=1 (with a status line)."""
        return self.notify(READY="1", STATUS=status) if status else self.notify(READY="1")

    def status(self, text: str) -> bool:
        """STATUS=text: the line ``systemctl status`` shows."""
        return self.notify(STATUS=text.replace("\n", " "))

    def watchdog(self) -> bool:
        """WATCHDOG=1: the service is alive."""
        return self.notify(WATCHDOG="1")

    def stopping(self) -> bool:
        """STOPPING=1."""
        return self.notify(STOPPING="1")

    def close(self) -> None:
        """Close the socket."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


def tap_status(record: TapRecord) -> str:
    """A short status-line text for the last tap."""
    result = record.result
    when = str(record.entry.get("tap_time", ""))[11:19]
    product = result.product or "-"
    return (
        f"last tap #{record.index} {when} {result.outcome.value} {result.reason} "
        f"({product}, {result.elapsed * 1000:.0f} ms)"
    )


class SystemdObserver:
    """A gate-loop observer: watchdog pings while the loop is alive, a status line per change.

    Pings are spaced by at least ``min_ping_s`` (default: a quarter of the watchdog timeout,
    or 1 s), so a loop polling every 250 ms does not flood the manager.
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        min_ping_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        interval = watchdog_interval()
        if min_ping_s is None:
            min_ping_s = interval / 4 if interval else 1.0
        self.min_ping_s = min_ping_s
        self._clock = clock
        self._last_ping: float | None = None
        self._in_service: bool | None = None
        self._reason: str | None = None
        self._last_tap = "no tap yet"
        self.pings = 0

    def on_idle(self) -> None:
        """The loop is alive (waiting for a card, for removal, or for a SAM to come back)."""
        now = self._clock()
        if self._last_ping is not None and now - self._last_ping < self.min_ping_s:
            return
        self._last_ping = now
        if self.notifier.watchdog():
            self.pings += 1

    def on_tap(self, record: TapRecord) -> None:
        """A tap was served: ping and update the status line."""
        self._last_tap = tap_status(record)
        self._in_service = True
        self._reason = None
        self._send_status()
        self.on_idle()

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """In or out of service: update the status line when the state or the reason changes."""
        if in_service == self._in_service and reason == self._reason:
            return
        self._in_service = in_service
        self._reason = reason
        self._send_status()

    def status_line(self) -> str:
        """The current status line: state, then the last tap."""
        if self._in_service is False:
            state = f"OUT OF SERVICE ({self._reason})" if self._reason else "OUT OF SERVICE"
        else:
            state = "in service"
        return f"{state}; {self._last_tap}"

    def _send_status(self) -> None:
        self.notifier.status(self.status_line())
