# SPDX-License-Identifier: Apache-2.0
"""Offline re-verification of a journaled secure session with a SAM in verification mode.

``session_transcript`` (pure) rebuilds, from the card APDUs of one session, what the SAM
digested: the terminal challenge, the Open Secure Session data-out and KIF/KVC, every digest
item in order (csim1.md 1.4: OSS, Manage Secure Session, Close and Ratification excluded; a
case-4 command loses its Le), the mid-session mutual authentications, and both MAC halves of
the Close. ``recompute_session`` drives a SAM through Digest Init in verification mode (our
CSIM1 extension, docs/sam.md) and reports whether the terminal and card MACs check out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from calypso import crypto
from calypso.commands import CardIns
from calypso.constants import DEFAULT_KIF, CardClass, WriteAccessLevel
from calypso.frozen import fast_init
from sam.client import LegacySam

_MANAGE_AUTHENTICATE = 0x01  # Manage Secure Session P2 bit0 (calypso-protocol.md 1.21)
_MANAGE_ENCRYPT = 0x02  # Manage Secure Session P2 bit1


class TranscriptError(ValueError):
    """The journaled APDUs are not one secure session this helper can rebuild."""


@fast_init
@dataclass(frozen=True, slots=True)
class DigestStep:
    """One digested item, as it travelled (ciphered if ``encrypted``)."""

    item: bytes
    encrypted: bool = False


@fast_init
@dataclass(frozen=True, slots=True)
class AuthenticationStep:
    """A Manage Secure Session with mutual authentication: both 8-byte MACs."""

    terminal_mac: bytes
    card_mac: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class SessionTranscript:
    """What the SAM digested in one session, rebuilt from the card APDUs."""

    extended: bool
    terminal_challenge: bytes
    open_data_out: bytes
    kif: int
    kvc: int
    steps: tuple[DigestStep | AuthenticationStep, ...]
    terminal_mac: bytes | None  # from the Close command; None if Close was never sent
    card_mac: bytes | None  # from the Close answer; None if it never came


@dataclass(frozen=True, slots=True)
class SessionVerification:
    """The result of a recomputation: each MAC the journal holds, checked."""

    terminal_mac_ok: bool
    card_mac_ok: bool
    authentications_ok: bool

    @property
    def ok(self) -> bool:
        """Whether every MAC of the session is the one the keys give."""
        return self.terminal_mac_ok and self.card_mac_ok and self.authentications_ok


def _is_rev2_open(command: bytes) -> bool:
    """A Prime Rev2.4 Open Secure Session: CLA 94h, P1 bit 80h, P2 = SFI * 8 (section 1.1)."""
    return (
        command[0] == CardClass.LEGACY
        and bool(command[2] & 0x80)
        and command[3] & 0x07 == 0
        and 1 <= command[2] & 0x07 <= 3
    )


def session_transcript(exchanges: Iterable[tuple[bytes, bytes]]) -> SessionTranscript:
    """Rebuild the digest of one session from its card (command, response) pairs, OSS first."""
    pairs = list(exchanges)
    if not pairs or len(pairs[0][0]) < 5 or pairs[0][0][1] != CardIns.OPEN_SECURE_SESSION:
        raise TranscriptError("the first exchange must be Open Secure Session")
    open_command, open_response = pairs[0]
    # OSS Rev3 (calypso-protocol.md 1.1): P2 low bits 1 regular (Lc 04 TC), 2 extended (Lc 09
    # 00 TC); data-out KIF/KVC at [5][6] regular, [9][10] extended.
    extended = open_command[3] & 0x03 == 0x02
    size = 8 if extended else 4
    data = open_command[5 : 5 + open_command[4]]
    terminal_challenge = data[1:] if extended else data
    open_data_out = open_response[:-2]
    key_at = 9 if extended else 5
    if _is_rev2_open(open_command):
        # Prime Rev2.4: the answer starts with the KVC and names no KIF; the engine took the
        # default KIF of the level (key index = P1 bits 0..2), as Keyple does (section 2.1).
        if len(terminal_challenge) != size or len(open_data_out) < 1:
            raise TranscriptError("Open Secure Session of an unsupported layout")
        kif = DEFAULT_KIF[WriteAccessLevel((open_command[2] & 0x07) - 1)]
        kvc = open_data_out[0]
    elif len(terminal_challenge) != size or len(open_data_out) < key_at + 2:
        raise TranscriptError("Open Secure Session of an unsupported layout")
    else:
        kif, kvc = open_data_out[key_at], open_data_out[key_at + 1]
    steps: list[DigestStep | AuthenticationStep] = []
    encrypted = False
    terminal_mac: bytes | None = None
    card_mac: bytes | None = None
    for command, response in pairs[1:]:
        ins = command[1] if len(command) > 1 else -1
        if ins == CardIns.CLOSE_SECURE_SESSION:
            terminal_mac = command[5 : 5 + command[4]] if len(command) > 5 else None
            body = response[:-2]
            if terminal_mac is not None and response[-2:] == b"\x90\x00":
                card_mac = body[len(body) - len(terminal_mac) :] or None
            break
        if ins == CardIns.MANAGE_SECURE_SESSION:
            p2 = command[3]
            if p2 & _MANAGE_AUTHENTICATE:
                steps.append(AuthenticationStep(command[5:13], response[:-2]))
            encrypted = bool(p2 & _MANAGE_ENCRYPT)
            continue
        steps.append(DigestStep(crypto.digest_item(command), encrypted))
        steps.append(DigestStep(response, encrypted))
    return SessionTranscript(
        extended=extended,
        terminal_challenge=terminal_challenge,
        open_data_out=open_data_out,
        kif=kif,
        kvc=kvc,
        steps=tuple(steps),
        terminal_mac=terminal_mac,
        card_mac=card_mac,
    )


def recompute_session(
    sam: LegacySam, card_serial: bytes, exchanges: Iterable[tuple[bytes, bytes]]
) -> SessionVerification:
    """Re-verify a journaled session: SAM in verification mode, every MAC checked."""
    transcript = session_transcript(exchanges)
    crypto_ = sam.session_crypto(card_serial, extended=transcript.extended)
    crypto_.init_verification(
        transcript.terminal_challenge, transcript.open_data_out, transcript.kif, transcript.kvc
    )
    authentications_ok = True
    for step in transcript.steps:
        if isinstance(step, AuthenticationStep):
            terminal = crypto_.generate_terminal_session_mac()
            authentications_ok &= crypto.macs_equal(terminal, step.terminal_mac)
            if not crypto_.verify_card_session_mac(step.card_mac):
                return SessionVerification(False, False, False)  # the SAM ended the session
            continue
        if step.encrypted and not crypto_.encrypted:
            crypto_.activate_encryption()
        elif not step.encrypted and crypto_.encrypted:
            crypto_.deactivate_encryption()
        crypto_.process_session_apdu(step.item)
    terminal = crypto_.finalize_session_mac()
    terminal_ok = transcript.terminal_mac is not None and crypto.macs_equal(
        terminal, transcript.terminal_mac
    )
    card_ok = transcript.card_mac is not None and crypto_.verify_card_session_mac(
        transcript.card_mac
    )
    return SessionVerification(terminal_ok, card_ok, authentications_ok)
