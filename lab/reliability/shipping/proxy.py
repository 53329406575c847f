# SPDX-License-Identifier: Apache-2.0
"""A TCP forwarder in front of the collector that cuts the network in the middle of an upload.

The validator's HTTPS connection goes through it unchanged (TLS end to end: the forwarder sees
only ciphertext). While ``cut_after`` is set, every connection is cut (both sockets shut) once
that many bytes went from the validator towards the collector: the TLS handshake and the first
requests pass, the body of a large file is cut partway, as a network that drops mid-upload.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

CHUNK = 16 * 1024


class CutProxy:
    """Forwards 127.0.0.1:<port> to the collector's port; cuts uploads on demand."""

    def __init__(self, target_port: int) -> None:
        """Listen on a free port of 127.0.0.1 and forward to ``target_port`` there."""
        self.target_port = target_port
        self.cut_after: int | None = None
        self.cuts = 0  # connections cut so far
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="cut-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The collector's URL through the forwarder."""
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop accepting (open connections end with their peers)."""
        self._closed.set()
        with suppress(OSError):  # wakes the accepting thread (close alone does not, on Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            self._listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        budget = self.cut_after
        down = threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True)
        down.start()
        self._pump(client, upstream, budget)
        down.join(30)

    def _pump(self, source: socket.socket, sink: socket.socket, budget: int | None) -> None:
        """Copy ``source`` to ``sink``; with a ``budget``, cut both after that many bytes."""
        sent = 0
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if budget is not None and sent + len(data) >= budget:
                    sink.sendall(data[: budget - sent])
                    with self._lock:
                        self.cuts += 1
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                end.close()
