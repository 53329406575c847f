# SPDX-License-Identifier: Apache-2.0
"""A private pcscd with vpcd readers, for the end-to-end tests, the benchmark and the campaign
(reference/pcsc-nfc-testing.md 6-7).

The daemon gets its own reader.conf.d with free ports, its client socket by systemd-style socket
activation (so it never touches a system pcscd and also runs unprivileged once /run/pcscd
exists), and clients find it through PCSCLITE_CSOCK_NAME, which libpcsclite reads once per
process: it is set before the first PC/SC call and keeps its value across restarts.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from readers.vpcd import VpcdCard

VPCD_DRIVER_DIR = Path("/usr/lib/pcsc/drivers/serial")
STOCK_VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
SBIN_PATH = os.pathsep.join(("/usr/local/sbin", "/usr/sbin", "/sbin"))
CARD_READER = "Test Card 00 00"
SAM_READER = "Test SAM 00 00"
# Each vpcd entry gives two slots: "<name> 00 00" on its port and "<name> 00 01" on port + 1.
ENTRIES = ("Test Card", "Test SAM")

# insert_card(handler, reader=CARD_READER) -> the VpcdCard serving it, once pcscd shows it.
InsertCard = Callable[..., VpcdCard]

# Hands the listening socket over as fd 3 and execs pcscd with the same pid, as systemd does.
# PR_SET_PDEATHSIG (1) survives the exec: a test run killed before its teardown takes its
# pcscd along instead of leaving it running.
_TRAMPOLINE = (
    "import ctypes,os,signal,sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "fd=int(sys.argv[1]); os.dup2(fd, 3); fd != 3 and os.close(fd); "
    "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def pcscd_binary() -> str | None:
    """Where pcscd is (it lives in sbin, often not on a user's PATH), or None."""
    return shutil.which("pcscd", path=os.pathsep.join((os.environ.get("PATH", ""), SBIN_PATH)))


def vpcd_driver() -> Path | None:
    """The vpcd driver library pcscd loads, or None when vsmartcard-vpcd is not installed."""
    if STOCK_VPCD_CONF.exists():
        match = re.search(r"^\s*LIBPATH\s+(\S+)", STOCK_VPCD_CONF.read_text(), re.MULTILINE)
        if match and Path(match.group(1)).exists():
            return Path(match.group(1)).resolve()
    found = sorted(VPCD_DRIVER_DIR.glob("libifdvpcd.so*"))
    return found[0].resolve() if found else None


def missing_binaries() -> str | None:
    """Why the stack cannot run here, or None when pcscd and the vpcd driver are both present."""
    if pcscd_binary() is None:
        return "pcscd is not installed (apt-get install pcscd, or run make system-deps)"
    if vpcd_driver() is None:
        return "the vpcd driver is not installed (apt-get install vsmartcard-vpcd)"
    return None


def _free_port_pair() -> int:
    """A port P with P and P + 1 both free on every interface (vpcd binds 0.0.0.0)."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 2)  # noqa: S311 - not for security
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("0.0.0.0", base))  # noqa: S104 - probing what vpcd will bind
                second.bind(("0.0.0.0", base + 1))  # noqa: S104
        except OSError:
            continue
        return base
    raise RuntimeError("no free pair of TCP ports")


class PrivatePcscd:
    """A pcscd of our own with two vpcd entries (card reader, SAM reader; 2 slots each)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.confdir = workdir / "reader.conf.d"
        self.socket_path = workdir / "pcscd.comm"
        self.log_path = workdir / "pcscd.log"
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0
        self._configure()

    @property
    def readers(self) -> list[str]:
        """The reader names this daemon serves."""
        return list(self.ports)

    def _configure(self) -> None:
        driver = vpcd_driver()
        if driver is None:
            raise RuntimeError("the vpcd driver is not installed")
        self.confdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "drivers").mkdir(exist_ok=True)
        lines = []
        for index, name in enumerate(ENTRIES):
            # Two entries on one driver file clobber each other's sockets: copy it per entry.
            library = self.workdir / "drivers" / f"libifdvpcd-{index}.so"
            shutil.copyfile(driver, library)
            port = _free_port_pair()
            self.ports[f"{name} 00 00"] = port
            self.ports[f"{name} 00 01"] = port + 1
            lines += [
                f'FRIENDLYNAME "{name}"',
                f"DEVICENAME   /dev/null:{port}",
                f"LIBPATH      {library}",
                f"CHANNELID    {port}",
                "",
            ]
        (self.confdir / "vpcd").write_text("\n".join(lines))

    def start(self, timeout: float = 10.0) -> None:
        """Start pcscd and return once a client lists every reader."""
        binary = pcscd_binary()
        if binary is None:
            raise RuntimeError("pcscd is not installed")
        if os.geteuid() == 0:
            Path("/run/pcscd").mkdir(mode=0o755, exist_ok=True)
        os.environ["PCSCLITE_CSOCK_NAME"] = str(self.socket_path)
        self.socket_path.unlink(missing_ok=True)
        started = time.monotonic()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(self.socket_path))
            listener.listen()
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                    [sys.executable, "-c", _TRAMPOLINE, str(listener.fileno()), binary]
                    + ["--foreground", "--config", str(self.confdir)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(listener.fileno(),),
                )
        # Our copy of the socket is closed now: if pcscd dies, clients get "no service"
        # instead of hanging forever in the backlog of a socket nobody serves.
        self._wait_ready(timeout)
        self.startup_s = time.monotonic() - started

    def _wait_ready(self, timeout: float) -> None:
        from smartcard import scard

        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult == scard.SCARD_S_SUCCESS:
                hresult, names = scard.SCardListReaders(context, [])
                scard.SCardReleaseContext(context)
                seen = list(names) if hresult == scard.SCARD_S_SUCCESS else []
                if set(self.ports) <= set(seen):
                    return
            time.sleep(0.01)  # pcscd offers no readiness signal before its socket answers
        log = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"private pcscd not ready (readers seen: {seen}); log:\n{log}")

    def stop(self) -> None:
        """Stop pcscd by its pid (SIGTERM, SIGKILL after 5 s) and remove its socket."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.socket_path.unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start again with the same readers, ports and socket."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the daemon process is alive."""
        return self.proc is not None and self.proc.poll() is None


def wait_reader_state(reader: str, *, present: bool, timeout: float = 5.0) -> None:
    """Block on SCardGetStatusChange until ``reader`` shows a card (or none); never sleeps.

    After a removal the reader reports the stale PRESENT state until pcscd's next presence poll
    (~400 ms): waiting for the EMPTY transition is what makes a re-insertion safe.
    """
    from smartcard import scard

    wanted = scard.SCARD_STATE_PRESENT if present else scard.SCARD_STATE_EMPTY
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise RuntimeError(f"no PC/SC context: {scard.SCardGetErrorMessage(hresult)}")
    try:
        deadline = time.monotonic() + timeout
        known = scard.SCARD_STATE_UNAWARE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{reader}: still not {'present' if present else 'empty'}")
            hresult, states = scard.SCardGetStatusChange(
                context, int(remaining * 1000), [(reader, known)]
            )
            if hresult == scard.SCARD_E_TIMEOUT:
                continue
            if hresult != scard.SCARD_S_SUCCESS:
                raise RuntimeError(f"{reader}: {scard.SCardGetErrorMessage(hresult)}")
            state = states[0][1]
            if state & wanted:
                return
            known = state & ~scard.SCARD_STATE_CHANGED
    finally:
        scard.SCardReleaseContext(context)
