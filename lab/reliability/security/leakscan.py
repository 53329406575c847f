# SPDX-License-Identifier: Apache-2.0
"""Scan texts and files for secrets: SAM keys, card keys, PINs, unlock data, journal keys.

``collect_secrets`` gathers every secret the campaign knows of (config/keys.sim.yaml, the card
profiles of config/cards/**, the demo fleet's diversified card keys, and any generated key file
or extra value); ``scan_text`` and ``scan_paths`` look for each in the forms a leak would take:
hex in either case (plain, halves, spaced or colon-separated), a Python bytes repr, and base64
(standard and URL-safe, at every byte alignment, so a key inside a longer base64 blob is found
too), after terminal colour codes are taken out. A finding names the secret by its label and
the place, never by its value.

Files that hold secrets by design (key files, card profiles, card EEPROM images, ``*.key``)
are skipped by ``scan_paths`` and listed as skipped, so the campaign's whole work directory can
be scanned at the end.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from calypso.emulator.profile import load_profile
from sam.keys import load_keys
from validator.app.demo import build_fleet

CHUNK = 8 * 1024 * 1024  # bytes read at a time; memory stays bounded on big journals
MIN_FORM = 8  # shorter forms would match by chance
MAX_FINDINGS_PER_FILE = 50
_HEAD = 4096  # bytes read to recognise a file that stores secrets by design
# Terminal colour and style sequences: a coloured log line splits a value into pieces.
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Secret:
    """One secret value and a label that says what it is without showing it."""

    label: str
    value: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"Secret({self.label!r}, {len(self.value)} bytes)"


@dataclass(frozen=True, slots=True)
class Form:
    """One text form of a secret, as bytes; ``folded``: searched in the lower-cased text."""

    secret: str
    name: str
    needle: bytes = field(repr=False)
    folded: bool


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret found somewhere: which one (label), in which form, where (file and line)."""

    secret: str
    form: str
    where: str
    line: int

    def __str__(self) -> str:
        return f"{self.secret} ({self.form}) in {self.where}:{self.line}"


@dataclass
class ScanReport:
    """What ``scan_paths`` looked at and what it found."""

    files: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no secret was found."""
        return not self.findings


def _base64_fragments(value: bytes) -> Iterator[tuple[str, bytes]]:
    """Base64 text that depends only on ``value``, for the value at each of 3 alignments."""
    for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        yield name, encode(value)  # the value encoded on its own, padding included
        for shift in range(3):
            text = encode(bytes(shift) + value + bytes(3))
            start = -(-8 * shift // 6)  # first character made of value bits only
            end = (8 * (shift + len(value))) // 6  # characters entirely inside the value
            yield f"{name}@{shift}", text[start:end]


def forms(secret: Secret) -> list[Form]:
    """Every text form of ``secret`` the scan looks for (none shorter than MIN_FORM)."""
    value = secret.value
    hexed = value.hex()
    found: dict[bytes, Form] = {}

    def add(name: str, needle: bytes, folded: bool) -> None:
        if len(needle) >= MIN_FORM and needle not in found:
            found[needle] = Form(secret.label, name, needle, folded)

    add("hex", hexed.encode(), True)
    add("hex-spaced", " ".join(hexed[i : i + 2] for i in range(0, len(hexed), 2)).encode(), True)
    add("hex-colons", ":".join(hexed[i : i + 2] for i in range(0, len(hexed), 2)).encode(), True)
    if len(value) >= 16:
        half = len(hexed) // 2
        add("hex-half", hexed[:half].encode(), True)
        add("hex-half", hexed[half:].encode(), True)
    inner = repr(value)[2:-1]
    if "\\" in inner:  # a printable value's repr is just the text (a PIN "0000": too common)
        add("bytes-repr", inner.encode(), False)
    for name, needle in _base64_fragments(value):
        add(name, needle, False)
    return list(found.values())


def key_file_secrets(path: Path, *, allow_simulation: bool = True) -> list[Secret]:
    """The work keys and unlock data of a SAM key file."""
    keys = load_keys(path, allow_simulation=allow_simulation)
    secrets = [
        Secret(f"{path.name} KIF {k.kif:02X} KVC {k.kvc:02X}", k.secret()) for k in keys.keys
    ]
    unlock = keys.unlock_secret()
    if unlock is not None:
        secrets.append(Secret(f"{path.name} unlock data", unlock))
    return secrets


def profile_secrets(path: Path) -> list[Secret]:
    """The key material (masters or card keys) and the PIN of a card profile."""
    profile = load_profile(path)
    secrets = []
    for name in ("issuer", "load", "debit"):
        slot = getattr(profile.keys, name)
        material = slot.master if slot.master is not None else slot.key
        if material is not None:
            what = "master" if slot.master is not None else "key"
            secrets.append(Secret(f"{path.name} {name} {what}", material.get_secret_value()))
    if profile.pin is not None:
        secrets.append(Secret(f"{path.name} PIN", profile.pin.value.get_secret_value()))
    if profile.pki is not None:
        secrets.append(Secret(f"{path.name} PKI key", profile.pki.private_key.get_secret_value()))
    return secrets


def fleet_card_keys(cards_dir: Path) -> list[Secret]:
    """The diversified card keys of the demo fleet (``validator.app.demo.build_fleet``)."""
    secrets = []
    for card in build_fleet(cards_dir, random.Random(0)):  # noqa: S311 - serials only
        keys = card.profile.keys
        for index, name in enumerate(("issuer", "load", "debit"), start=1):
            value = keys.slot(index).card_key(card.serial)
            secrets.append(Secret(f"card {card.serial.hex().upper()} {name} key", value))
    return secrets


def collect_secrets(
    config_dir: Path,
    *,
    key_files: Iterable[Path] = (),
    extra: Iterable[Secret] = (),
    card_keys: bool = True,
) -> list[Secret]:
    """Every secret of the shipped configuration, plus generated key files and extra values."""
    secrets = key_file_secrets(config_dir / "keys.sim.yaml")
    for path in sorted((config_dir / "cards").rglob("*.yaml")):
        secrets += profile_secrets(path)
    if card_keys:
        secrets += fleet_card_keys(config_dir / "cards")
    for path in key_files:
        secrets += key_file_secrets(path)
    secrets += list(extra)
    unique: dict[bytes, Secret] = {}
    for secret in secrets:
        unique.setdefault(secret.value, secret)  # one label per value (masters are shared)
    return list(unique.values())


def _all_forms(secrets: Sequence[Secret]) -> list[Form]:
    return [form for secret in secrets for form in forms(secret)]


def _search(buffer: bytes, lowered: bytes, form: Form, start: int) -> Iterator[int]:
    """Offsets of ``form`` in the buffer that end after ``start`` (earlier ones were seen)."""
    haystack = lowered if form.folded else buffer
    position = max(0, start - len(form.needle) + 1)
    while (position := haystack.find(form.needle, position)) >= 0:
        yield position
        position += 1


def _scan_stream(chunks: Iterable[bytes], all_forms: Sequence[Form], where: str) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[tuple[str, int]] = set()  # one finding per secret and line, whatever the form
    overlap = max((len(f.needle) for f in all_forms), default=1) - 1
    tail = b""
    lines_before = 0  # newlines before the start of ``buffer``
    for chunk in chunks:
        buffer = tail + (_ANSI.sub(b"", chunk) if b"\x1b" in chunk else chunk)
        lowered = buffer.lower()
        for form in all_forms:
            for offset in _search(buffer, lowered, form, len(tail)):
                line = lines_before + buffer.count(b"\n", 0, offset) + 1
                if (form.secret, line) in seen:
                    continue
                seen.add((form.secret, line))
                findings.append(Finding(form.secret, form.name, where, line))
                if len(findings) >= MAX_FINDINGS_PER_FILE:
                    return findings
        keep = min(overlap, len(buffer))
        lines_before += buffer.count(b"\n", 0, len(buffer) - keep)
        tail = buffer[len(buffer) - keep :]
    return findings


def scan_text(text: str | bytes, secrets: Sequence[Secret], where: str = "text") -> list[Finding]:
    """Every secret found in ``text`` (each named by label, form and line)."""
    data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    return _scan_stream([data], _all_forms(secrets), where)


def secret_store(path: Path) -> bool:
    """Whether a file holds secrets by design: a key file, a card profile, a card image."""
    if path.suffix == ".key":
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD)
    except OSError:
        return False
    if path.suffix in (".yaml", ".yml"):
        words = (b"kvc", b"master:", b"unlock_data", b"private_key_pem:")
        return any(word in head for word in words)
    return head.lstrip().startswith(b"{") and b'"cells"' in head and b'"serial"' in head


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        elif path.is_file():
            yield path


def _read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def scan_paths(paths: Iterable[Path], secrets: Sequence[Secret]) -> ScanReport:
    """Scan files and directory trees (secret stores skipped and listed); bounded memory."""
    report = ScanReport()
    all_forms = _all_forms(secrets)
    for path in _files(paths):
        if secret_store(path):
            report.skipped.append(str(path))
            continue
        try:
            report.findings += _scan_stream(_read_chunks(path), all_forms, str(path))
            report.bytes += path.stat().st_size
        except OSError as exc:  # a file that vanished or cannot be read is reported, not fatal
            report.skipped.append(f"{path} (unreadable: {exc.strerror})")
            continue
        report.files += 1
    return report
