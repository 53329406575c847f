# SPDX-License-Identifier: Apache-2.0
"""Authenticity replayed: each journaled session's MACs recomputed by a SAM in verification mode.

The card trace of a tap is cut into secure sessions (Open Secure Session to Close). A session
whose Close the card answered with its MAC is recomputed with ``sam.verify.recompute_session``:
the software SAM loaded with CSIM1 keys (``--keys``) or a real SAM (``--sam-reader``). A tap
with no such session (refused before the session, card lost, Close unanswered, session
aborted) is not verifiable: the card never signed anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calypso.commands import CardIns
from sam.base import SamError
from sam.client import LegacySam
from sam.commands import MAX_DIGEST_ITEM
from sam.keys import load_keys
from sam.software.dispatch import SoftwareSam
from sam.software.link import in_process_sam
from sam.verify import TranscriptError, recompute_session
from validator.journal.entry import JournalEntry
from validator.office.replay.csim1 import DirectVerifier

VERIFIED = "verified"
FAILED = "failed"
UNVERIFIABLE = "unverifiable"
NOT_CHECKED = "not_checked"

_OK = b"\x90\x00"
_OPEN = int(CardIns.OPEN_SECURE_SESSION)
_CLOSE = int(CardIns.CLOSE_SECURE_SESSION)


@dataclass(frozen=True, slots=True)
class MacCheck:
    """One tap's authenticity: verified, failed, unverifiable, or not checked; and why."""

    status: str
    note: str = ""
    pki: bool = False  # a PKI session's signature (validator.office.replay.pki), not a MAC


_VERIFIED = MacCheck(VERIFIED)


def sessions(trace: Sequence[Mapping[str, Any]]) -> list[list[tuple[bytes, bytes]]]:
    """The secure sessions of a card trace, each from Open Secure Session to Close included."""
    found: list[list[tuple[bytes, bytes]]] = []
    current: list[tuple[bytes, bytes]] | None = None
    fromhex = bytes.fromhex
    for exchange in trace:
        # Every exchange is decoded, in or out of a session: one that is not hex fails the tap.
        command = fromhex(_text(exchange.get("c", "")))
        response = fromhex(_text(exchange.get("r", "")))
        ins = command[1] if len(command) > 1 else -1
        if ins == _OPEN:
            current = [(command, response)]
            found.append(current)
        elif current is not None:
            current.append((command, response))
            if ins == _CLOSE:
                current = None
    return found


def _text(value: Any) -> str:
    return value if type(value) is str else str(value)


def _signed(session: list[tuple[bytes, bytes]]) -> bytes | None:
    """The card MAC of a session closed with a terminal MAC and answered 9000, else None."""
    command, response = session[-1]
    if command[1] != CardIns.CLOSE_SECURE_SESSION or len(command) <= 5 or len(response) <= 2:
        return None
    if response[-2:] != _OK or len(session[0][1]) < 2 or session[0][1][-2:] != _OK:
        return None
    size = command[4]
    return response[-2 - size : -2]


class MacChecker:
    """Recomputes journaled sessions with one SAM (not thread-safe: one per process)."""

    def __init__(self, sam: LegacySam, direct: DirectVerifier | None = None) -> None:
        """``direct``: the software SAM's keys, to verify sessions without its APDUs (the SAM
        still answers every session they do not verify)."""
        self.sam = sam
        self.direct = direct

    @classmethod
    def from_keys(cls, path: Path | str) -> MacChecker:
        """A checker over the software SAM holding the CSIM1 keys of ``path``."""
        keys = load_keys(Path(path), allow_simulation=True)
        sam = in_process_sam(SoftwareSam(keys))
        direct = None
        if not keys.locked:  # a locked SAM refuses every session: the SAM says how
            identity = sam.identity
            direct = DirectVerifier(
                keys,
                max_item=min(MAX_DIGEST_ITEM, identity.max_digest_data),
                extended=identity.supports_extended,
            )
        return cls(sam, direct)

    def check(self, entry: JournalEntry) -> MacCheck:
        """Recompute every signed session of the tap; the tap fails if any session fails."""
        trace = entry.trace
        card = entry.card
        if trace is None or card is None:
            return MacCheck(UNVERIFIABLE, "no card trace")
        card_trace = trace.card
        try:
            found = sessions(card_trace)
            serial = bytes.fromhex(card)
        except ValueError:
            return MacCheck(FAILED, "trace is not hex")
        if not found:
            return MacCheck(UNVERIFIABLE, "no secure session")
        signed = [(session, mac) for session in found if (mac := _signed(session)) is not None]
        if not signed:
            return MacCheck(UNVERIFIABLE, "no session signed by the card")
        journal_mac = entry.card_mac
        last_mac = signed[-1][1].hex().upper()
        if journal_mac is not None and journal_mac.upper() != last_mac:
            return MacCheck(FAILED, f"card_mac {journal_mac} is not the trace's {last_mac}")
        direct = self.direct
        if direct is not None and all(direct.verified(serial, s) for s, _ in signed):
            return _VERIFIED
        return self._recompute(serial, signed)

    def _recompute(
        self, serial: bytes, signed: list[tuple[list[tuple[bytes, bytes]], bytes]]
    ) -> MacCheck:
        """Every signed session recomputed by the SAM: the reference answer, with its note."""
        for number, (session, _) in enumerate(signed, start=1):
            try:
                result = recompute_session(self.sam, serial, session)
            except (SamError, TranscriptError) as exc:
                return MacCheck(FAILED, f"session {number}: {exc}")
            finally:
                self.sam.reset_exchanges()  # the exchanges are not kept: replay runs long
            if not result.ok:
                parts = [
                    name
                    for name, ok in (
                        ("terminal MAC", result.terminal_mac_ok),
                        ("card MAC", result.card_mac_ok),
                        ("authentication", result.authentications_ok),
                    )
                    if not ok
                ]
                return MacCheck(FAILED, f"session {number}: {', '.join(parts)} wrong")
        return _VERIFIED
