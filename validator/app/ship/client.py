# SPDX-License-Identifier: Apache-2.0
"""The collector's client on the validator: httpx over mutual TLS, retries with backoff.

Every failure becomes one typed error: the collector unreachable (connection refused, timeout,
its database unavailable), the TLS handshake refused either way, or a file refused (a chain
break, a malformed request, a full database). Transient ones are retried ``attempts`` times
with exponential backoff first; none of them ever lets a file be deleted.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from validator.app.ship.protocol import ANCHOR_PATH, DIGEST_HEADER, JOURNALS_PATH, Refusal
from validator.app.ship.settings import ShippingSettings, check_file, check_private_key_file


class ShipError(Exception):
    """A shipment that did not end in an acknowledgement (nothing is deleted)."""


class CollectorUnreachableError(ShipError):
    """The collector did not answer, or its database did not (may come back: retried later)."""


class TlsRefusedError(ShipError):
    """The TLS handshake failed: an untrusted certificate on either side (a person must act)."""


class FileRefusedError(ShipError):
    """The collector answered with a typed refusal for one file."""

    def __init__(self, refusal: Refusal | str, message: str, answer: dict[str, Any]) -> None:
        super().__init__(f"{refusal}: {message}")
        self.refusal = refusal
        self.answer = answer


@dataclass(frozen=True)
class Anchor:
    """The collector's anchor for this validator: the last seq and line hash it holds."""

    validator: str | None
    seq: int
    hash: str | None


@dataclass(frozen=True)
class Ack:
    """The collector's answer for one file it holds."""

    status: str
    anchor: Anchor
    answer: dict[str, Any]


TRANSIENT = (Refusal.DATABASE_UNAVAILABLE,)


def _anchor(answer: dict[str, Any]) -> Anchor:
    found = answer.get("anchor") or {}
    return Anchor(answer.get("validator"), int(found.get("seq", 0)), found.get("hash"))


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    return "ssl" in text or "certificate" in text or "tlsv1" in text


def _context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


class CollectorClient:
    """One HTTPS connection pool to the collector, with this validator's certificate."""

    def __init__(
        self,
        settings: ShippingSettings,
        config_dir: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Load the certificate files (ConfigError when missing, or the key readable by others)."""
        cert = check_file(config_dir / settings.client_cert_file, "client_cert_file")
        key = check_private_key_file(config_dir / settings.client_key_file, "client_key_file")
        ca = check_file(config_dir / settings.ca_file, "ca_file")
        self._files = (cert, key, ca)
        context = _context(cert, key, ca)
        self.settings = settings
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=settings.collector_url, verify=context, timeout=settings.timeout_s
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> CollectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def anchor(self) -> Anchor:
        """The anchor the collector holds for this validator."""
        return _anchor(self._request("GET", ANCHOR_PATH, None, {}))

    def ship(self, name: str, data: bytes) -> Ack:
        """Send one file's finished bytes; the collector's acknowledgement, or a typed error."""
        headers = {
            DIGEST_HEADER: hashlib.sha256(data).hexdigest(),
            "Content-Type": "application/x-ndjson",
        }
        answer = self._request("POST", JOURNALS_PATH + name, data, headers)
        return Ack(str(answer.get("status")), _anchor(answer), answer)

    def _request(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        delay = self.settings.backoff_s
        for attempt in range(1, self.settings.attempts + 1):
            try:
                return self._once(method, path, data, headers)
            except (CollectorUnreachableError, FileRefusedError) as exc:
                transient = isinstance(exc, CollectorUnreachableError) or (
                    isinstance(exc, FileRefusedError) and exc.refusal in TRANSIENT
                )
                if not transient or attempt == self.settings.attempts:
                    raise
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _refused(self) -> bool:
        """Whether the collector aborts a TLS 1.2 handshake with this certificate.

        In TLS 1.3 the server checks the client certificate after the client's handshake is
        done: a refused certificate shows only as a connection closed before any answer. A
        TLS 1.2 handshake, where the check is inside it, tells that apart from a crash.
        """
        url = httpx.URL(self.settings.collector_url)
        probe = _context(*self._files)
        probe.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            with (
                socket.create_connection(
                    (url.host, url.port or 443), self.settings.timeout_s
                ) as raw,
                probe.wrap_socket(raw, server_hostname=url.host),
            ):
                return False
        except ssl.SSLError:
            return True
        except OSError:
            return False

    def _once(
        self, method: str, path: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        where = f"{self.settings.collector_url}{path}"
        try:
            response = self._http.request(method, path, content=data, headers=headers)
        except httpx.TransportError as exc:
            if _tls_failure(exc):
                raise TlsRefusedError(f"{where}: TLS refused: {exc}") from None
            if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and self._refused():
                raise TlsRefusedError(
                    f"{where}: TLS refused: the collector aborts the handshake "
                    "(this validator's certificate is not trusted there)"
                ) from None
            raise CollectorUnreachableError(f"{where}: {type(exc).__name__}: {exc}") from None
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise CollectorUnreachableError(
                f"{where}: HTTP {response.status_code} without a collector answer"
            )
        if response.status_code == 200:
            return answer
        kind = str(answer.get("error", "unknown"))
        refusal: Refusal | str = Refusal(kind) if kind in set(Refusal) else kind
        raise FileRefusedError(refusal, str(answer.get("message", "")), answer)
