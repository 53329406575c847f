# SPDX-License-Identifier: Apache-2.0
"""A watchdog for blocking calls into C libraries that nothing else would ever time out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from readers.base import ReaderTimeoutError

T = TypeVar("T")


class Watchdog:
    """Runs blocking PC/SC calls on one daemon thread and gives up on them after a timeout.

    Nothing in pcscd or vpcd times out a card that never answers, and a C call cannot be
    interrupted: the caller stops waiting, and the stuck thread is abandoned (a daemon thread,
    so it never holds up the interpreter's exit).
    """

    def __init__(self, name: str) -> None:
        self._jobs: list[tuple[Callable[[], Any], _Box]] = []
        self._cond = threading.Condition()
        self.stuck = False
        self._thread = threading.Thread(target=self._run, name=f"pcsc-{name}", daemon=True)
        self._thread.start()

    def call(self, job: Callable[[], T], timeout: float) -> T:
        """Run ``job`` on the worker; ReaderTimeoutError if it has not returned in ``timeout``."""
        if self.stuck:
            raise ReaderTimeoutError("an earlier call to the card never returned")
        box = _Box()
        with self._cond:
            self._jobs.append((job, box))
            self._cond.notify()
        if not box.done.wait(timeout):
            self.stuck = True  # the caller decides what to queue behind the stuck job
            raise ReaderTimeoutError(f"no answer within {timeout:.1f} s")
        if box.error is not None:
            raise box.error
        return box.value  # type: ignore[no-any-return]

    def submit(self, job: Callable[[], object]) -> None:
        """Queue ``job`` without waiting: it runs once the worker is free, even after a hang."""
        with self._cond:
            self._jobs.append((job, _Box()))
            self._cond.notify()

    def stop(self) -> None:
        """Let the worker thread end once its current job (if any) returns."""
        with self._cond:
            self._jobs.append((_STOP, _Box()))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._jobs))
                job, box = self._jobs.pop(0)
            if job is _STOP:
                return
            try:
                box.value = job()
            except BaseException as exc:  # handed to the caller, who re-raises it
                box.error = exc
            box.done.set()


class _Box:
    """The result slot of one watchdog job."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


def _STOP() -> None:
    """Sentinel job that ends the watchdog thread (compared by identity)."""
