# SPDX-License-Identifier: Apache-2.0
"""PKI taps replayed with public keys only: the root key files, and what the journals hold.

A PKI tap's card trace holds its signed session (PKI Open to Close, the Close answered with
the card's ECDSA signature) and, when the validator read them from the card, its certificates
(Get Data DF4C/DF4D, DF4A/DF4B); a tap of a card the validator had cached names its
certificate by reference (the entry's ``pki``: the CA reference, the card certificate's id).
The auditor keeps every certificate seen in the journals, in order, verifies the chain root ->
CA -> card at the tap's date, then the signature over the stream rebuilt from the trace. No
key file, no SAM: anyone holding the root's public key can check every PKI tap.

The chain is checked for authenticity, not for the gate's policy: the dates are those of the
tap and a certificate out of them is still verified (with a note), and every scope is
accepted (the auditor trusts a root on purpose by giving its file). A certificate the journals
given do not hold (the tap that read it is in an earlier, removed file) leaves the tap
unverifiable, never failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from calypso.commands import CardIns
from calypso.commands.pki import (
    PKI_SESSION_MODE,
    Certificate,
    CertificatePart,
    join_certificate,
    parse_get_data_certificate,
)
from calypso.errors import CardCommandError, CardResponseError
from calypso.pki.certificates import parse_ca_certificate, parse_card_certificate
from calypso.pki.chain import ChainPolicy, DatePolicy, TrustedRoot, TrustStore
from calypso.pki.errors import CertificateError
from calypso.pki.fields import CaScope
from calypso.pki.session import SIGNATURE_SIZE, SignedStream, verify_session_signature
from readers.apdu import CommandApdu, ResponseApdu
from validator.engine.pki.trust import certificate_id
from validator.journal.entry import JournalEntry
from validator.office.replay.mac import FAILED, UNVERIFIABLE, VERIFIED, MacCheck, sessions

_OK = b"\x90\x00"
_OSS = f"{int(CardIns.OPEN_SECURE_SESSION):02X}"  # as a trace's command writes the INS
_ALL_SCOPES = frozenset(CaScope)
MAX_CERTIFICATES = 100_000  # card certificates kept (about 316 bytes each)

Exchanges = list[tuple[bytes, bytes]]
Place = tuple[str, int]  # a tap's file and line


def is_pki_session(session: Exchanges) -> bool:
    """Whether a session (from its Open) was opened in PKI mode (P2 low bits 3)."""
    command = session[0][0]
    return len(command) > 3 and command[3] & 0x07 == PKI_SESSION_MODE


def is_pki_tap(entry: JournalEntry) -> bool:
    """Whether the tap ran a PKI session (its evidence, or a PKI Open in its trace)."""
    if entry.pki is not None:
        return True
    trace = entry.trace
    if trace is None:
        return False
    for exchange in trace.card:
        command = str(exchange.get("c", ""))
        if command[2:4].upper() == _OSS and len(command) >= 8:
            try:
                if int(command[6:8], 16) & 0x07 == PKI_SESSION_MODE:
                    return True
            except ValueError:
                return False
    return False


def signature_of(session: Exchanges) -> bytes | None:
    """The card's signature of a PKI session whose Close it answered, else None."""
    command, response = session[-1]
    if len(command) < 2 or command[1] != CardIns.CLOSE_SECURE_SESSION:
        return None
    if response[-2:] != _OK or len(response) != SIGNATURE_SIZE + 2:
        return None
    return response[:-2]


def certificates_in(trace: Iterable[Mapping[str, Any]]) -> list[tuple[Certificate, bytes]]:
    """The certificates a card trace read (Get Data, first part then second), joined."""
    found: list[tuple[Certificate, bytes]] = []
    first: CertificatePart | None = None
    for exchange in trace:
        try:
            command = CommandApdu.from_bytes(bytes.fromhex(str(exchange.get("c", ""))))
            response = ResponseApdu.from_bytes(bytes.fromhex(str(exchange.get("r", ""))))
        except ValueError:
            continue
        tag = command.p1 << 8 | command.p2
        if command.ins != CardIns.GET_DATA or tag & ~1 not in (0xDF4A, 0xDF4C):
            continue
        try:
            part = parse_get_data_certificate(response, command)
        except (CardCommandError, CardResponseError):
            first = None
            continue
        if part.first:
            first = part
            if len(part.data) >= part.certificate.size:
                found.append(_joined(part, None))
                first = None
        elif first is not None and first.certificate is part.certificate:
            found.append(_joined(first, part))
            first = None
    return [item for item in found if item[1]]


def _joined(first: CertificatePart, second: CertificatePart | None) -> tuple[Certificate, bytes]:
    try:
        return first.certificate, join_certificate(first, second)
    except CardResponseError:
        return first.certificate, b""


class PkiAuditor:
    """Verifies PKI taps in journal order with the given roots (one per process: stateful)."""

    def __init__(self, roots: Sequence[TrustedRoot], *, noting: bool = False) -> None:
        self.roots = tuple(roots)
        self.store = TrustStore.of(self.roots)  # CAs verified so far, by reference
        self.cas: dict[bytes, bytes] = {}  # CA certificates seen, by the reference they carry
        self.cards: dict[str, bytes] = {}  # card certificates seen, by their id
        # A cluster's chain task sees one journal: it notes where each certificate was first
        # read and which taps named one it lacks, for the driver to verify those taps again
        # with the certificates of every journal (validator.office.cluster.certificates).
        self.noting = noting
        self.read: list[tuple[Place, Certificate, bytes | str, bytes]] = []
        self.lacking: list[tuple[Place, JournalEntry, dt.date]] = []
        self._lacked = False

    def harvest(self, entry: JournalEntry, place: Place | None = None) -> None:
        """Keep the certificates a tap read (whatever its time: later taps may name them)."""
        trace = entry.trace
        if trace is None or not is_pki_tap(entry):
            return
        for which, raw in certificates_in(trace.card):
            key: bytes | str
            if which is Certificate.CA:
                try:
                    key = parse_ca_certificate(raw).target_reference.raw
                except CertificateError:
                    continue  # the tap that read it was refused: nothing to keep
                kept: dict[Any, bytes] = self.cas
            elif len(self.cards) < MAX_CERTIFICATES:
                key, kept = certificate_id(raw), self.cards
            else:
                continue
            if key not in kept:
                kept[key] = raw
                if self.noting and place is not None:
                    self.read.append((place, which, key, raw))

    def check(self, entry: JournalEntry, day: dt.date, place: Place | None = None) -> MacCheck:
        """Verify every signed PKI session of the tap (its chain at ``day``, the tap's date);
        the tap fails if any session fails."""
        self._lacked = False
        result = self._check(entry, day)
        if self._lacked and self.noting and place is not None:
            self.lacking.append((place, entry, day))
        return result

    def _check(self, entry: JournalEntry, day: dt.date) -> MacCheck:
        trace, card = entry.trace, entry.card
        if trace is None or card is None:
            return MacCheck(UNVERIFIABLE, "no card trace", pki=True)
        try:
            found = [s for s in sessions(trace.card) if is_pki_session(s)]
            serial = bytes.fromhex(card)
            aid = bytes.fromhex(entry.df_name) if entry.df_name else None
        except ValueError:
            return MacCheck(FAILED, "trace is not hex", pki=True)
        signed = [(s, sig) for s in found if (sig := signature_of(s)) is not None]
        if not signed:
            return MacCheck(UNVERIFIABLE, "no PKI session signed by the card", pki=True)
        last = signed[-1][1].hex().upper()
        if entry.card_mac is not None and entry.card_mac.upper() != last:
            return MacCheck(FAILED, f"card_mac {entry.card_mac} is not the trace's", pki=True)
        reference = entry.pki.card_certificate if entry.pki is not None else None
        raw = self._card_certificate(trace.card, reference)
        if raw is None:
            self._lacked = reference is not None
            shown = reference or "none named"
            return MacCheck(
                UNVERIFIABLE, f"card certificate {shown} is not in these journals", pki=True
            )
        try:
            certificate = parse_card_certificate(raw)
            policy = self._policy(day)
            if not self.store.knows(certificate.issuer_reference):
                ca = self.ca_named(certificate.issuer_reference.raw)
                if ca is None:
                    self._lacked = True
                    return MacCheck(
                        UNVERIFIABLE,
                        f"CA certificate {certificate.issuer_reference} is not in these journals",
                        pki=True,
                    )
                self.store.add_ca(ca, policy)
            verified = self.store.verify_card(certificate, policy, serial=serial, aid=aid)
        except CertificateError as exc:
            return MacCheck(FAILED, f"{exc.reason}: {exc}", pki=True)
        for number, (session, signature) in enumerate(signed, start=1):
            stream = SignedStream()
            try:
                for command, response in session[:-1]:
                    stream.add_exchange(command, response)
            except ValueError as exc:
                return MacCheck(FAILED, f"session {number}: {exc}", pki=True)
            if not verify_session_signature(verified.public_key, stream, signature):
                return MacCheck(FAILED, f"session {number}: PKI signature wrong", pki=True)
        notes = "; ".join(f"{n.kind} {n.reason} {n.date}" for n in verified.notices)
        return MacCheck(VERIFIED, notes, pki=True)

    def _card_certificate(
        self, trace: Sequence[Mapping[str, Any]], reference: str | None
    ) -> bytes | None:
        """The tap's card certificate: read in this tap, else the one its entry names."""
        for which, raw in certificates_in(trace):
            if which is not Certificate.CARD:
                continue
            if reference is None or certificate_id(raw) == reference:
                return raw
        return self.card_named(reference) if reference is not None else None

    def card_named(self, reference: str) -> bytes | None:
        """The card certificate of that id seen before this tap, if any."""
        return self.cards.get(reference)

    def ca_named(self, reference: bytes) -> bytes | None:
        """The CA certificate carrying that reference seen before this tap, if any."""
        return self.cas.get(reference)

    @staticmethod
    def _policy(day: dt.date) -> ChainPolicy:
        """Authenticity at the tap's date: dates noted, not refused; every scope."""
        return ChainPolicy(
            today=day,
            expired=DatePolicy.ACCEPT,
            not_yet_valid=DatePolicy.ACCEPT,
            scopes=_ALL_SCOPES,
        )
