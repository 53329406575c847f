# SPDX-License-Identifier: Apache-2.0
"""A private PostgreSQL, for the back-office tests, the ingest benchmark and the campaign.

Debian's server binaries (``/usr/lib/postgresql/<version>/bin``, package ``postgresql``) run a
cluster of our own: ``initdb`` in a fresh temporary directory, the server listening on a Unix
socket in that directory only (``listen_addresses=''``: no TCP), trust authentication, which the
directory's mode 0700 confines to its owner (and root). It never touches a system cluster.

PostgreSQL refuses to run as root. Run as root (as CI does), the cluster belongs to the
``postgres`` account that Debian's package creates, and both ``initdb`` and the server are started
through ``setpriv`` as that user; root reaches the socket regardless of the directory's mode.
The server runs in the foreground as our child with a parent-death signal, so a test run killed
before its teardown takes its server along; ``stop`` ends it by its pid.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "office"  # the cluster's superuser role (any name: trust on a private socket)
SERVICE_ACCOUNT = "postgres"  # whom the cluster runs as when we are root
# Throw-away settings for tests: no fsync (a crash of the test machine loses a test database).
FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, or None."""
    found = []
    for candidate in POSTGRES_ROOT.glob("*/bin"):
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            match = re.fullmatch(r"\d+", candidate.parent.name)
            found.append((int(match.group()) if match else 0, candidate))
    return max(found)[1] if found else None


def missing_binaries() -> str | None:
    """Why a private PostgreSQL cannot run here, or None when it can."""
    if postgres_bindir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql, or run make system-deps)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing: it starts the server with a parent-death signal"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_ACCOUNT)
        except KeyError:
            return f"running as root and there is no {SERVICE_ACCOUNT!r} account to run it as"
    return None


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary directory, on a Unix socket only."""

    def __init__(self, *, durable: bool = False) -> None:
        """``durable``: keep PostgreSQL's fsync (benchmarks); tests turn it off for speed."""
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed")
        self.bindir = bindir
        self.durable = durable
        # Short on purpose: a Unix socket path is at most 107 bytes, pytest's tmp paths are long.
        self.directory = Path(tempfile.mkdtemp(prefix="office-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVICE_ACCOUNT)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
            self._as = [
                "setpriv",
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--clear-groups",
            ]
        self.directory.chmod(0o700)

    def _command(self, tool: str, *args: str, pdeathsig: bool = False) -> list[str]:
        prefix = list(self._as) or (["setpriv"] if pdeathsig else [])
        if pdeathsig:
            prefix.append("--pdeathsig=TERM")
        if prefix:
            prefix.append("--")
        return [*prefix, str(self.bindir / tool), *args]

    def url(self, dbname: str = "postgres") -> str:
        """The libpq URL of a database of this cluster (its socket directory as host)."""
        host = quote(str(self.directory), safe="")
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={host}"

    def start(self, timeout: float = 30.0) -> None:
        """Create the cluster (first time) and start the server; return once it answers."""
        started = time.monotonic()
        if not self.data.exists():
            subprocess.run(  # noqa: S603 - fixed argv, no shell
                self._command(
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ),
                check=True,
                capture_output=True,
                cwd=self.directory,
            )
        settings = ["-c", "listen_addresses=", "-c", f"unix_socket_directories={self.directory}"]
        settings += ["-c", "unix_socket_permissions=0700"]
        if not self.durable:
            settings += FAST
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self._command("postgres", "-D", str(self.data), *settings, pdeathsig=True),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        finally:
            os.close(log)
        self._wait_ready(timeout)
        self.startup_s = time.monotonic() - started

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            ready = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [str(self.bindir / "pg_isready"), "-q", "-h", str(self.directory), "-U", SUPERUSER],
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)  # the server offers no readiness signal but its answer
        log = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"private PostgreSQL not ready; log:\n{log}")

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"{name!r}: a database name here is [a-z_][a-z0-9_]*")
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [str(self.bindir / "createdb"), "-h", str(self.directory), "-U", SUPERUSER, name],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def stop(self) -> None:
        """Stop the server by its pid (fast shutdown; SIGKILL after 10 s)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def remove(self) -> None:
        """Stop the server and delete the cluster's directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same cluster and socket."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
