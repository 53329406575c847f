# SPDX-License-Identifier: Apache-2.0
"""(c) Keys and PINs never appear in logs, journals, reprs or tracebacks.

Everything the security part does (forged MACs, production set-up, journal writing) runs with
the root logger at TRAFFIC (5) and stdout/stderr captured, plus: a demo run and a gate loop
(``validator demo`` and ``validator run --log-level traffic`` as subprocesses, both log
formats), the error paths (a card with wrong keys, a locked SAM given wrong unlock data, plain
and ciphered PIN presentation right and wrong, Change Key), the reprs and dumps of key objects,
broken key files and card profiles, and exceptions raised inside crypto code with key locals,
formatted by ``traceback`` and logged through the project's own log configuration
(``validator.app.logs.configure``, console and JSON). All of it, and every file the part wrote, is
scanned for every key, PIN and unlock value (lab.reliability.security.leakscan).
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import structlog

from calypso import crypto
from calypso.commands.keys import change_key, get_challenge, parse_change_key, parse_get_challenge
from calypso.commands.pin import parse_verify_pin, verify_pin, verify_pin_ciphered
from calypso.commands.select import parse_select_application, select_application
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import load_profile
from lab.paths import CONFIG
from lab.reliability.security import leakscan
from lab.reliability.security.journal import journal_key
from lab.reliability.security.station import CARDS, card, simulation_station
from readers.apdu import CommandApdu, ResponseApdu
from readers.channel import TRAFFIC, ApduChannel, redacted
from readers.emulated import EmulatedReader
from sam.keys import load_keys
from sam.software.dispatch import SoftwareSam
from sam.software.link import in_process_sam
from validator.app.logs import configure

UNLOCK = random.Random(5150).randbytes(16)  # noqa: S311 - a throw-away test secret
CNA = CARDS / "other" / "cna_test_kit.yaml"


class Checker(Protocol):
    """What the part's check collector offers (lab.reliability.security.campaign.Checks)."""

    def expect(self, ok: bool, what: str) -> bool:
        """One check."""
        ...


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """Root logger at TRAFFIC and stdout/stderr, all into one buffer; restored afterwards."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(TRAFFIC)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    # Only the buffer: a handler an earlier part configured would print every APDU on the
    # campaign's own stderr (it holds the real stream, which redirect_stderr does not reach).
    root.handlers[:] = [handler]
    root.setLevel(TRAFFIC)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _attempt(texts: list[str], label: str, action: Callable[[], object]) -> bool:
    """Run ``action``; keep its result's repr, or its formatted traceback. True if it ran."""
    try:
        texts.append(f"{label}: {action()!r}")
        return True
    except Exception:  # every error text and traceback is scanned
        texts.append(f"{label}: {traceback.format_exc()}")
        return False


# Which flows of ``card_flows`` succeed: the wrong PINs and the wrong unlock data must fail.
EXPECTED_FLOWS = [True, False, True, False, True, True, False, True]


def card_flows(texts: list[str]) -> list[bool]:
    """PIN (plain and ciphered, right and wrong), Change Key, Unlock: whether each went through."""
    profile = load_profile(CNA)
    cna = CardEmulator(profile, rng=random.Random(3).randbytes)  # noqa: S311
    assert profile.pin is not None  # noqa: S101 - the CNA test kit card has a PIN
    pin = profile.pin.value.get_secret_value()
    reader = EmulatedReader("card")
    reader.insert(cna)
    channel = ApduChannel(reader.connect(), label="card")
    software = SoftwareSam(load_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
    sam = in_process_sam(software)
    ran: list[bool] = []

    def sent(
        command: CommandApdu,
        parse: Callable[[ResponseApdu, CommandApdu], object],
        *,
        secret: bool = False,
    ) -> object:
        # The command's own parser raises its typed error, with a PIN redacted from the audit.
        response = channel.transmit(command, secret=secret)
        return parse(response, redacted(command) if secret else command)

    flows: list[tuple[str, Callable[[], object]]] = [
        ("select", lambda: sent(select_application(profile.aid), parse_select_application)),
        ("wrong PIN", lambda: sent(verify_pin(b"9999"), parse_verify_pin, secret=True)),
        ("right PIN", lambda: sent(verify_pin(pin), parse_verify_pin, secret=True)),
    ]

    def ciphered(value: bytes) -> object:
        challenge = parse_get_challenge(channel.transmit(get_challenge()))
        session = sam.session_crypto(cna.serial)
        block = session.cipher_pin_for_presentation(challenge, value, 0x30, 0xF0)
        return sent(verify_pin_ciphered(block), parse_verify_pin)

    def new_key() -> object:
        challenge = parse_get_challenge(channel.transmit(get_challenge()))
        session = sam.session_crypto(cna.serial)
        blob = session.generate_ciphered_card_key(challenge, 0x21, 0xF0, 0x27, 0xF1)
        return sent(change_key(2, blob), parse_change_key)

    flows += [
        ("ciphered wrong PIN", lambda: ciphered(b"1234")),
        ("ciphered right PIN", lambda: ciphered(pin)),
        ("change key", new_key),
    ]
    for label, action in flows:
        ran.append(_attempt(texts, label, action))
    locked = SoftwareSam(
        load_keys(CONFIG / "keys.sim.yaml", allow_simulation=True), locked=True, unlock_data=UNLOCK
    )
    locked_sam = in_process_sam(locked, name="locked sam")
    ran.append(_attempt(texts, "wrong unlock", lambda: locked_sam.unlock(bytes(16))))
    ran.append(_attempt(texts, "right unlock", lambda: locked_sam.unlock(UNLOCK)))
    texts += [repr(cna), repr(profile), str(profile), repr(profile.pin), repr(profile.keys)]
    texts += [repr(software), repr(locked), repr(sam), repr(sam.session_crypto(cna.serial))]
    keys = load_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)
    texts += [repr(keys), str(keys), keys.model_dump_json(), repr(keys.model_dump())]
    texts += [repr(k) for k in keys.keys]
    return ran


def broken_files(workdir: Path, texts: list[str]) -> None:
    """Key files and card profiles with broken key material: their errors are scanned."""
    keys_text = (CONFIG / "keys.sim.yaml").read_text(encoding="utf-8")
    profile_text = (CARDS / "multi_trip.yaml").read_text(encoding="utf-8")
    broken = workdir / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    cases = {
        "keys-short.yaml": keys_text.replace("0E0F", "0E"),
        "keys-nosim.yaml": keys_text.replace("simulation: true", ""),
        "keys-badhex.yaml": keys_text.replace("0A0B", "0X0B"),
        "card-short.yaml": profile_text.replace("2E2F", "2E"),
        "card-badhex.yaml": profile_text.replace("0A0B", "ZZ0B"),
    }
    for name, text in cases.items():
        path = broken / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        loader = load_profile if name.startswith("card") else load_keys
        _attempt(texts, name, lambda loader=loader, path=path: loader(path))  # type: ignore[misc]
    shutil.rmtree(broken)  # the broken files hold keys by design; their errors are the point


def logged_tracebacks(texts: list[str]) -> None:
    """An exception inside crypto code with keys in its locals, logged the project's way."""
    master = load_keys(CONFIG / "keys.sim.yaml", allow_simulation=True).keys[2].secret()
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        for log_format in ("console", "json"):
            buffer = io.StringIO()
            with contextlib.redirect_stderr(buffer):
                configure(log_format, "traffic")  # binds its handler to this sys.stderr
                try:
                    crypto.diversify(master, 0x30, 0xF0, bytes(9))  # a serial of the wrong size
                except Exception:
                    structlog.get_logger("reliability").exception("tap_failed")
                    logging.getLogger("reliability.stdlib").exception("tap_failed")
            texts.append(f"log format {log_format}:\n{buffer.getvalue()}")
    finally:
        structlog.reset_defaults()
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)


def subprocess_runs(workdir: Path, taps: int) -> list[str]:
    """``validator demo`` and ``validator run`` at TRAFFIC level: their whole output."""
    config = workdir / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    settings = (config / "validator.yaml").read_text(encoding="utf-8")
    settings = settings.replace("journal_dir: ../var/journal", "journal_dir: journal")
    (config / "validator.yaml").write_text(settings, encoding="utf-8")
    exe = str(Path(sys.executable).with_name("validator"))
    runs = [
        [exe, "demo", "--config", str(config), "--taps", str(taps), "--tear-rate", "0.2"]
        + ["--log-level", "traffic", "--json", "--journal-dir", str(workdir / "journal-cli-demo")],
        [exe, "run", "--config", str(config), "--card-reader", "emulated", "--max-taps"]
        + [str(taps), "--interval", "0", "--log-level", "traffic", "--log-format", "console"],
        [exe, "run", "--config", str(config), "--card-reader", "emulated", "--max-taps"]
        + [str(taps), "--interval", "0", "--log-level", "traffic", "--log-format", "json"],
    ]
    outputs = []
    for command in runs:
        done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            command, capture_output=True, text=True, timeout=300, check=False
        )
        outputs.append(f"$ {' '.join(command[1:3])} (exit {done.returncode})\n")
        outputs.append(done.stdout + done.stderr)
    return outputs


def run_with_scan(
    workdir: Path,
    body: Callable[[], None],
    checks: Checker,
    *,
    taps: int,
    key_files: Callable[[], list[Path]],
) -> dict[str, object]:
    """Run ``body`` and the leak-prone flows captured, then scan all output and files."""
    texts: list[str] = []
    with captured() as buffer:
        body()
        station = simulation_station(workdir / "journal-leaks")
        try:
            for index in range(taps):
                for profile in ("multi_trip", "wrong_keys", "sv_purse", "intercode", "expired"):
                    record = station.tap(card(profile, index, 0x6000 + index), gap_s=400)
                    texts.append(repr(record.result))
        finally:
            station.close()
        flows = card_flows(texts)
        broken_files(workdir, texts)
    logged_tracebacks(texts)
    outputs = subprocess_runs(workdir, taps * 5)
    log_text = buffer.getvalue()
    checks.expect("card > 00a4" in log_text.lower(), "TRAFFIC logging captured no APDU")
    checks.expect(flows == EXPECTED_FLOWS, f"secret flows went otherwise than expected: {flows}")
    checks.expect(
        all("(exit 0)" in o for o in outputs if o.startswith("$")),
        f"a validator subprocess failed: {[o for o in outputs if o.startswith('$')]}",
    )
    secrets = leakscan.collect_secrets(
        CONFIG,
        key_files=key_files(),
        extra=[
            leakscan.Secret("journal HMAC key", journal_key()),
            leakscan.Secret("SAM unlock data", UNLOCK),
        ],
    )
    findings = leakscan.scan_text(log_text, secrets, "captured logs")
    for text in texts:  # each named by its flow: "log format console", "wrong PIN", ...
        findings += leakscan.scan_text(text, secrets, text.split(":", 1)[0][:40])
    findings += leakscan.scan_text("".join(outputs), secrets, "validator subprocesses")
    report = leakscan.scan_paths([workdir], secrets)
    findings += report.findings
    for finding in findings[:20]:
        checks.expect(False, f"secret leaked: {finding}")
    checks.expect(report.files > 0, "no file scanned in the work directory")
    return {
        "leak_findings": len(findings),
        "secrets": len(secrets),
        "scanned_files": report.files,
        "scanned_mb": round(report.bytes / 1e6, 1),
        "secret_stores_skipped": len(report.skipped),
        "secret_flows": len(flows),
    }
