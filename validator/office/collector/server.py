# SPDX-License-Identifier: Apache-2.0
"""The collector: an aiohttp HTTPS server with mutual TLS in front of ``ingest_file``.

Each ``POST /v1/journals/<name>`` is ingested in one transaction on a connection of its own
(in a worker thread: psycopg is blocking), as the validator its certificate names; the answer
is the new anchor, or a typed refusal (validator.app.ship.protocol). A database that does not
answer, or is full, stores nothing: the validator keeps the file and sends it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from validator.app.ship.protocol import (
    ANCHOR_PATH,
    DIGEST_HEADER,
    FILE_NAME,
    JOURNALS_PATH,
    STATUS,
    Refusal,
)
from validator.office.database.chain import valid_validator_id
from validator.office.database.ingest import MAX_FILE, IngestError, IngestResult, ingest_file
from validator.office.database.schema import OfficeDatabaseError
from validator.office.pseudonym import Pseudonymiser

Log = Callable[[str], None]
INSUFFICIENT_RESOURCES = "53"  # SQLSTATE class 53: disk full, out of memory, too many connections
DISK_FULL = "53100"


def refusal(kind: Refusal, message: str, **extra: Any) -> web.Response:
    """One typed refusal: its HTTP status and ``{"error", "message", ...}``."""
    return web.json_response(
        {"error": kind.value, "message": message, **extra}, status=STATUS[kind]
    )


def peer_validator(request: web.Request) -> str | None:
    """The validator id the client certificate names (its subject CN), or None."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and valid_validator_id(value):
                return str(value)
    return None


def _database_refusal(exc: BaseException, name: str) -> web.Response:
    cause = exc.__context__ or exc.__cause__
    state = str(getattr(cause, "sqlstate", "") or "")
    if state == DISK_FULL or (state.startswith(INSUFFICIENT_RESOURCES) and "space" in str(exc)):
        return refusal(Refusal.DATABASE_FULL, f"{name}: the office database is full")
    return refusal(Refusal.DATABASE_UNAVAILABLE, f"{name}: the office database did not answer")


class Collector:
    """The request handlers over one database URL and journal key."""

    def __init__(
        self,
        url: str,
        key: bytes | None,
        log: Log,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        """``url``: the office database; ``key``: the journal HMAC key, if checked;
        ``pseudonymiser``: the office key's, for a pseudonyms-only database."""
        self.url = url
        self.key = key
        self.log = log
        self.pseudonymiser = pseudonymiser

    def app(self) -> web.Application:
        """The aiohttp application (bodies up to a journal file's maximum)."""
        application = web.Application(client_max_size=MAX_FILE)
        application.router.add_post(JOURNALS_PATH + "{name}", self.receive)
        application.router.add_get(ANCHOR_PATH, self.anchor)
        return application

    def _ingest(self, name: str, data: bytes, validator: str) -> IngestResult:
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            return ingest_file(
                conn,
                name,
                data,
                key=self.key,
                validator=validator,
                pseudonymiser=self.pseudonymiser,
            )

    def _anchor(self, validator: str) -> tuple[int, str] | None:
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT last_seq, last_hash FROM validators WHERE id = %s", (validator,)
            ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    async def anchor(self, request: web.Request) -> web.Response:
        """``GET /v1/anchor``: the anchor held for the certificate's validator."""
        validator = peer_validator(request)
        if validator is None:
            return refusal(Refusal.FORBIDDEN, "the client certificate names no validator (CN)")
        try:
            found = await asyncio.to_thread(self._anchor, validator)
        except psycopg.Error as exc:
            return _database_refusal(exc, "anchor")
        anchor = {"seq": found[0], "hash": found[1]} if found else {"seq": 0, "hash": None}
        return web.json_response({"validator": validator, "anchor": anchor})

    async def receive(self, request: web.Request) -> web.Response:
        """``POST /v1/journals/<name>``: ingest one file, answer the anchor or a refusal."""
        validator = peer_validator(request)
        if validator is None:
            return refusal(Refusal.FORBIDDEN, "the client certificate names no validator (CN)")
        name = request.match_info["name"]
        if not FILE_NAME.fullmatch(name):
            return refusal(Refusal.MALFORMED, "not a journal file name")
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return refusal(Refusal.MALFORMED, f"{name}: larger than a journal file ({MAX_FILE})")
        digest = request.headers.get(DIGEST_HEADER)
        if digest is None or digest != hashlib.sha256(data).hexdigest():
            return refusal(Refusal.MALFORMED, f"{name}: {DIGEST_HEADER} missing or not the body's")
        try:
            result = await asyncio.to_thread(self._ingest, name, data, validator)
        except IngestError as exc:
            return refusal(Refusal.MALFORMED, str(exc))
        except (OfficeDatabaseError, psycopg.Error) as exc:
            self.log(f"{validator} {name}: not ingested: {exc}")
            return _database_refusal(exc, name)
        answer = result.as_dict()
        seq = result.anchor[0] if result.anchor else 0
        if result.breaks:
            kinds = ", ".join(sorted({b.kind for b in result.breaks}))
            self.log(f"{validator} {name}: integrity break ({kinds}); anchored at seq {seq}")
            return web.json_response(
                {"error": Refusal.CHAIN_BREAK.value, "message": f"{name}: {kinds}", **answer},
                status=STATUS[Refusal.CHAIN_BREAK],
            )
        self.log(f"{validator} {name}: {result.status}, {result.new_taps} new taps, seq {seq}")
        return web.json_response(answer)


async def _serve(
    collector: Collector, context: Any, host: str, port: int, ready: Callable[[str], None]
) -> None:
    runner = web.AppRunner(collector.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context, reuse_address=True)
    await site.start()
    bound = int(runner.addresses[0][1]) if runner.addresses else port  # port 0: the one bound
    ready(f"https://{host}:{bound}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(
    config_dir: Path,
    *,
    port: int | None = None,
    ready: Callable[[str], None],
    log: Log,
) -> None:
    """Run the collector until SIGTERM or SIGINT (ConfigError on a bad settings file)."""
    from validator.journal.keyfile import read_journal_key
    from validator.office.collector.settings import (
        database_url,
        load_collector_settings,
        server_context,
    )
    from validator.office.pseudonym import read_office_key

    settings = load_collector_settings(config_dir)
    context = server_context(settings, config_dir)
    key = None
    if settings.journal_key_file:
        key = read_journal_key(config_dir / settings.journal_key_file)
    pseudonymiser = None
    if settings.office_key_file:
        pseudonymiser = Pseudonymiser(read_office_key(config_dir / settings.office_key_file))
    collector = Collector(database_url(settings, config_dir), key, log, pseudonymiser)
    chosen = settings.port if port is None else port
    asyncio.run(_serve(collector, context, settings.listen_address, chosen, ready))
