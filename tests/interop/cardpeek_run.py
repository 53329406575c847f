# SPDX-License-Identifier: Apache-2.0
"""Running cardpeek headless, bounded, and reading back the tree its scripts decoded.

cardpeek in console mode loops on its prompt when stdin is closed and can write gigabytes of
log in seconds: it runs here with a scratch HOME (its configuration pre-created, so that it
asks nothing on first run), stdout and stderr to a file whose size is watched, a wall-clock
limit, and a driver script that ends with ``os.exit(0)``. The shipped scripts
(/usr/share/cardpeek) are used as they are, through a symlink.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

SHIPPED_SCRIPTS = Path("/usr/share/cardpeek")
# cardpeek compares this stamp with the one built in; the same value means "scripts up to date".
SCRIPTS_VERSION = "1422823341"
OUTPUT_CAP = 4 * 1024 * 1024  # bytes of console output before cardpeek is killed
POLL_S = 0.05

# The driver: run the shipped Calypso script, dump the tree as XML, exit. pcall keeps the tree
# when the script stops on an error (the error is logged with a DRIVER: prefix).
DRIVER = """\
local ok, err = pcall(dofile, "calypso.lua")
if not ok then log.print(log.ERROR, "DRIVER: " .. tostring(err)) end
ui.save_view("{xml}")
os.exit(0)
"""


class CardpeekUnavailable(Exception):
    """cardpeek is not installed or cannot run here (the test skips with this reason)."""


@dataclass
class Record:
    """One record cardpeek read: its file (LID path), number, bytes and decoded leaves."""

    path: tuple[str, ...]
    number: int
    data: bytes
    leaves: list[tuple[str, str]] = field(default_factory=list)  # (label, bits)


@dataclass
class CardpeekResult:
    """What a run left: exit code, console log, and the records of the tree."""

    returncode: int
    log: str
    records: list[Record]
    crashes: list[str] = field(default_factory=list)  # logs of runs cardpeek crashed in


def available() -> str | None:
    """Why cardpeek cannot run here, or None."""
    if shutil.which("cardpeek") is None:
        return "cardpeek is not installed (apt-get install cardpeek, or make system-deps)"
    if not (SHIPPED_SCRIPTS / "calypso.lua").exists():
        return f"cardpeek's calypso script is missing from {SHIPPED_SCRIPTS}"
    return None


def _scratch_home(home: Path) -> Path:
    """A HOME where cardpeek finds its configuration and the shipped scripts."""
    dot = home / ".cardpeek"
    dot.mkdir(parents=True)
    (dot / "version").write_text(SCRIPTS_VERSION)
    (dot / "config.lua").write_text("cardpeek = {}\n")
    (dot / "cardpeekrc.lua").write_text(
        'require("scripts.lib.apdu")\ndofile("scripts/lib/compatibility-with-0.7.lua")\n'
    )
    (dot / "scripts").symlink_to(SHIPPED_SCRIPTS)
    (dot / "replay").mkdir()
    return dot


def run_cardpeek(reader: str, workdir: Path, env: dict[str, str], timeout: float) -> CardpeekResult:
    """Run the shipped Calypso script on ``reader``; kill on timeout or too much output.

    cardpeek 0.8.4 itself crashes now and then (SIGSEGV in its own code, after the card's last
    answer; seen once in a fresh CI run, never in 50 runs alone): a run that ends on that crash
    is run once more, and the crash kept in ``crashes``. Anything else fails at once.
    """
    crashes: list[str] = []
    for attempt in (1, 2):
        try:
            result = _run_once(reader, workdir / f"run{attempt}", env, timeout)
        except CardpeekCrashed as crash:
            if attempt == 2:
                raise AssertionError(f"cardpeek crashed twice; last log:\n{crash.log}") from None
            crashes.append(crash.log)
            continue
        result.crashes = crashes
        return result
    raise AssertionError("unreachable")  # pragma: no cover


class CardpeekCrashed(Exception):
    """cardpeek died on a signal of its own (its log says "Received signal")."""

    def __init__(self, log: str) -> None:
        super().__init__("cardpeek crashed")
        self.log = log


def _run_once(reader: str, workdir: Path, env: dict[str, str], timeout: float) -> CardpeekResult:
    """One run of cardpeek in ``workdir`` (created)."""
    workdir.mkdir(parents=True)
    dot = _scratch_home(workdir / "home")
    xml_path = workdir / "tree.xml"
    driver = workdir / "driver.lua"
    driver.write_text(DRIVER.format(xml=xml_path))
    log_path = workdir / "cardpeek.log"
    argv = ["cardpeek", "--console", "--reader", f"pcsc://{reader}"]
    argv += ["--exec", f'dofile("{driver}")']
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=dot,
            env={**env, "HOME": str(workdir / "home")},
        )
        deadline = time.monotonic() + timeout
        why = None
        while proc.poll() is None:
            if time.monotonic() > deadline:
                why = f"no exit within {timeout} s"
            elif log_path.stat().st_size > OUTPUT_CAP:
                why = f"more than {OUTPUT_CAP} bytes of output (looping on its prompt?)"
            if why is not None:
                proc.kill()
                proc.wait()
                break
            time.sleep(POLL_S)
    text = log_path.read_bytes()[:20000].decode(errors="replace")
    if why is not None:
        raise AssertionError(f"cardpeek killed: {why}; log starts:\n{text[:3000]}")
    if not xml_path.exists():
        if "Received signal" in text:
            raise CardpeekCrashed(text)
        raise AssertionError(f"cardpeek wrote no tree (exit {proc.returncode}); log:\n{text}")
    return CardpeekResult(proc.returncode, text, parse_tree(xml_path.read_text()))


def _attrs(node: ET.Element) -> dict[str, str]:
    return {a.get("name", ""): a.text or "" for a in node.findall("attr")}


def _leaves(node: ET.Element, prefix: str, out: list[tuple[str, str]]) -> None:
    for child in node.findall("node"):
        attrs = _attrs(child)
        label = attrs.get("label", "")
        if child.findall("node"):
            _leaves(child, f"{prefix}{label}.", out)
        else:
            out.append((f"{prefix}{label}", attrs.get("val", "")))


def parse_tree(text: str) -> list[Record]:
    """The records of a saved cardpeek view, with their file path and decoded leaves."""
    # cardpeek 0.8.4 writes `<?xml version="1.0" type="UTF-8"?>`, which no XML parser accepts.
    if text.startswith("<?xml"):
        text = text.split("\n", 1)[1]
    records: list[Record] = []

    def walk(node: ET.Element, path: tuple[str, ...]) -> None:
        attrs = _attrs(node)
        if attrs.get("classname") == "record":
            value = attrs.get("val", "")
            data = bytes.fromhex(value.split(":", 1)[1]) if ":" in value else b""
            record = Record(path, int(attrs.get("id", "0")), data)
            _leaves(node, "", record.leaves)
            records.append(record)
            return
        here = (*path, attrs["id"]) if "id" in attrs else path
        for child in node.findall("node"):
            walk(child, here)

    walk(ET.fromstring(text), ())  # noqa: S314 - a file this test just had cardpeek write
    return records
