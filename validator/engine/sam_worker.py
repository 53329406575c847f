# SPDX-License-Identifier: Apache-2.0
"""Runs a session's SAM work on its own thread, so that it overlaps the card's exchanges.

The SAM sits on its own reader: while the card executes a command, the SAM can digest what the
session exchanged so far. One worker thread per session keeps the SAM calls in order; the
engine only waits where it needs an answer (the terminal MAC for Close, an SV preparation) and
checks every earlier call's outcome there, so a SAM failure surfaces before anything is decided.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class SamWorker:
    """An ordered queue of SAM calls on one thread; ``inline`` runs them at once instead."""

    def __init__(self, *, inline: bool = False) -> None:
        self.inline = inline
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a call whose result is not needed now (its error shows at the next sync)."""
        if self.inline:
            fn(*args, **kwargs)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam")
        self._pending.append(self._executor.submit(fn, *args, **kwargs))

    def future(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue a call whose result is needed later; ``sync`` before reading it."""
        if self.inline:
            done: Future[T] = Future()
            try:
                done.set_result(fn(*args, **kwargs))
            except Exception as exc:
                done.set_exception(exc)
            self._pending.append(done)
            return done
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam")
        queued = self._executor.submit(fn, *args, **kwargs)
        self._pending.append(queued)
        return queued

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a call after every queued one and return its result (raising the first error)."""
        self.sync()
        return fn(*args, **kwargs)

    def sync(self) -> None:
        """Wait for the queued calls; raise the first error any of them met."""
        pending, self._pending = self._pending, []
        first: BaseException | None = None
        for future in pending:
            error = future.exception()
            if error is not None and first is None:
                first = error
        if first is not None:
            raise first

    def drain(self) -> None:
        """Wait for the queued calls and forget their errors (the session is being dropped)."""
        try:
            self.sync()
        except Exception:  # noqa: S110 - an aborted session has nothing left to verify
            pass

    def close(self) -> None:
        """Stop the thread once the queue is empty."""
        self.drain()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
