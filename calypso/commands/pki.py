# SPDX-License-Identifier: Apache-2.0
"""PKI mode commands (reference/calypso-pki.md "Session", calypso-protocol 1.1, 1.2, 1.11):
Get Data of the card and CA certificates, Open Secure Session in PKI mode, Close's signature.

- Get Data ``CLA CA DF 4C 00`` then ``CLA CA DF 4D 00`` (card certificate, 316 bytes), ``DF 4A``
  then ``DF 4B`` (CA certificate, 384 bytes): the first answer starts with the header
  ``DF 4C 82 01 3C`` (``DF 4A 82 01 80``), the second is the rest of the certificate.
- Open Secure Session ``00 8A rec*8 sfi*8+3 09 00 <8-byte terminal challenge> 00``; the answer
  is ``Li AID(Li) SN(8) RFU(1) CTR(3) RND(5) flags(1) RFU(2) Ld record`` (flags b0: the previous
  session was not ratified), as Keyple's parser reads it; the RFU bytes are this project's
  choice where the layout is not public (docs/pki.md).
- Close ``CLA 8E 00 00 00``: the answer is the 64-byte ECDSA signature r || s. P1 80h (ratify at
  once) is this emulator's extension, as in symmetric mode; the reference's close is P1 00h.

A PKI session has no abort of its own: ``CLA 8E 00 00 00`` is this house's abort in symmetric
mode and the close in PKI mode (Keyple sends the same bytes for both). To cancel a PKI session,
select the application again (or cut the power): the card drops the session and its writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from calypso.commands import CommandRef, check_status, status_table
from calypso.commands.files import GetDataTag, get_data
from calypso.constants import MAX_SFI, CardClass
from calypso.errors import CardResponseError, UnexpectedResponseLengthError
from readers.apdu import SW, CommandApdu, ResponseApdu

PKI_SESSION_MODE = 0x03  # Open Secure Session P2 low bits in PKI mode
TERMINAL_CHALLENGE_SIZE = 8
SIGNATURE_SIZE = 64
CERTIFICATE_HEADER_SIZE = 5  # tag (2) + BER length 82 LL LL

_GET_DATA_STATUS = status_table(
    SW.WRONG_LENGTH,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.WRONG_P1_P2,
    SW.INS_NOT_SUPPORTED,
    0x6A88,  # data object not found: no such certificate on this card
)
_OPEN_STATUS = status_table(
    SW.WRONG_LENGTH,
    SW.TRANSACTION_COUNTER_EXHAUSTED,
    SW.COMMAND_INCOMPATIBLE_WITH_FILE,
    SW.SECURITY_NOT_SATISFIED,
    SW.CONDITIONS_NOT_SATISFIED,
    SW.NO_CURRENT_EF,
    SW.FILE_NOT_FOUND,
    SW.RECORD_NOT_FOUND,
    SW.WRONG_P1_P2,
)
_CLOSE_STATUS = status_table(
    SW.WRONG_LENGTH, SW.WRONG_P1_P2, SW.CONDITIONS_NOT_SATISFIED, SW.INCORRECT_SIGNATURE
)


class Certificate(Enum):
    """The two certificates a PKI card holds: Get Data tag of the first part, total size."""

    CARD = (GetDataTag.CARD_CERTIFICATE, 316)
    CA = (GetDataTag.CA_CERTIFICATE, 384)

    def __init__(self, tag: GetDataTag, size: int) -> None:
        self.tag = tag
        self.size = size

    @property
    def header(self) -> bytes:
        """The first answer's header: the tag, then the BER length 82 LL LL."""
        return self.tag.to_bytes(2, "big") + b"\x82" + self.size.to_bytes(2, "big")


def get_data_certificate(
    certificate: Certificate, *, second_part: bool = False, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Get Data of a certificate part: ``CLA CA DF 4C|4D|4A|4B 00`` (case 2, outside a session)."""
    tag = certificate.tag + (1 if second_part else 0)
    return get_data(GetDataTag(tag), cla=cla)


@dataclass(frozen=True, slots=True)
class CertificatePart:
    """One Get Data answer of a certificate: the certificate bytes it carries."""

    certificate: Certificate
    first: bool
    data: bytes


def parse_get_data_certificate(
    response: ResponseApdu, command: CommandApdu | None = None, *, second_part: bool | None = None
) -> CertificatePart:
    """A certificate part; the first part's header is checked and taken off.

    Which certificate and part is read from ``command`` (its P1P2), else from ``second_part``
    and the first answer's tag.

    Raises:
        DataAccessError: 6A88, the card holds no such certificate.
        CardResponseError: a first part without the expected header, or an empty answer.
    """
    ref = CommandRef.GET_DATA
    check_status(ref, response, _GET_DATA_STATUS, command=command)
    data = response.data
    if command is not None:
        tag = command.p1 << 8 | command.p2
        card = tag & ~1 == GetDataTag.CARD_CERTIFICATE
        certificate = Certificate.CARD if card else Certificate.CA
        first = not tag & 1
    else:
        first = not second_part
        certificate = Certificate.CARD if data[:2] == b"\xdf\x4c" else Certificate.CA
    if first:
        if data[:CERTIFICATE_HEADER_SIZE] != certificate.header:
            raise CardResponseError(
                ref.label,
                f"{certificate.name} certificate part without the header "
                f"{certificate.header.hex().upper()}",
                response,
            )
        data = data[CERTIFICATE_HEADER_SIZE:]
    if not data:
        raise UnexpectedResponseLengthError(ref.label, "no certificate bytes", response)
    return CertificatePart(certificate, first, data)


def join_certificate(first: CertificatePart, second: CertificatePart | None = None) -> bytes:
    """The whole certificate from its parts (UnexpectedResponseLengthError on a wrong length)."""
    if not first.first or (second is not None and second.first):
        raise ValueError("join the first part, then the second")
    whole = first.data + (second.data if second is not None else b"")
    if len(whole) != first.certificate.size:
        raise UnexpectedResponseLengthError(
            CommandRef.GET_DATA.label,
            f"{first.certificate.name} certificate of {len(whole)} bytes, "
            f"expected {first.certificate.size}",
        )
    return whole


def open_pki_secure_session(
    terminal_challenge: bytes, *, sfi: int = 0, record: int = 0
) -> CommandApdu:
    """Open Secure Session in PKI mode: ``00 8A rec*8 sfi*8+3 09 00 challenge(8) 00``."""
    if len(terminal_challenge) != TERMINAL_CHALLENGE_SIZE:
        raise ValueError("PKI mode takes an 8-byte terminal challenge")
    if not 0 <= sfi <= MAX_SFI or not 0 <= record <= 31 or (record == 0) != (sfi == 0):
        raise ValueError(f"read in open out of range: SFI {sfi} record {record}")
    return CommandApdu(
        CardClass.ISO,
        CommandRef.OPEN_SECURE_SESSION.ins,
        record * 8,
        sfi * 8 + PKI_SESSION_MODE,
        b"\x00" + terminal_challenge,
        le=0,
    )


@dataclass(frozen=True, slots=True)
class PkiOpenSessionData:
    """The PKI Open Secure Session answer (fields as Keyple's parsePki reads them)."""

    data_out: bytes  # the whole answer without SW
    aid: bytes  # the application's DF name
    serial: bytes  # the application serial number
    card_challenge: bytes  # CTR(3) || RND(5)
    transaction_counter: int
    ratified: bool  # whether the previous session was ratified (flags b0 = 0)
    flags: int
    record_data: bytes


def parse_open_pki_secure_session(
    response: ResponseApdu, command: CommandApdu | None = None
) -> PkiOpenSessionData:
    """Decode ``Li AID SN RFU CTR(3) RND(5) flags RFU(2) Ld record``.

    Raises:
        CardCommandError: the status table of Open Secure Session (6900, 6982, 6985, 6A83...).
        UnexpectedResponseLengthError: lengths that do not add up.
    """
    ref = CommandRef.OPEN_SECURE_SESSION
    check_status(ref, response, _OPEN_STATUS, command=command)
    data = response.data
    li = data[0] if data else 0
    at = 1 + li + 8 + 1  # CTR after Li, the AID, the serial and one RFU byte
    if not 5 <= li <= 16 or len(data) < at + 12 or len(data) != at + 12 + data[at + 11]:
        raise UnexpectedResponseLengthError(
            ref.label, f"{len(data)} bytes do not match the PKI layout", response
        )
    return PkiOpenSessionData(
        data_out=data,
        aid=data[1 : 1 + li],
        serial=data[1 + li : 9 + li],
        card_challenge=data[at : at + 8],
        transaction_counter=int.from_bytes(data[at : at + 3], "big"),
        ratified=not data[at + 8] & 0x01,
        flags=data[at + 8],
        record_data=data[at + 12 :],
    )


def close_pki_secure_session(
    *, ratify_now: bool = False, cla: CardClass = CardClass.ISO
) -> CommandApdu:
    """Close in PKI mode: ``CLA 8E 00 00 00`` (P1 80h: ratified at once, see the docstring)."""
    return CommandApdu(
        cla, CommandRef.CLOSE_SECURE_SESSION.ins, 0x80 if ratify_now else 0x00, 0x00, le=0
    )


def parse_close_pki_secure_session(
    response: ResponseApdu, command: CommandApdu | None = None
) -> bytes:
    """The card's 64-byte session signature r || s (verify it with ``calypso.pki.session``).

    Raises:
        CardCommandError: the status table of Close Secure Session.
        UnexpectedResponseLengthError: an answer that is not 64 bytes.
    """
    ref = CommandRef.CLOSE_SECURE_SESSION
    check_status(ref, response, _CLOSE_STATUS, command=command)
    if len(response.data) != SIGNATURE_SIZE:
        raise UnexpectedResponseLengthError(
            ref.label, f"a {len(response.data)}-byte signature, expected {SIGNATURE_SIZE}", response
        )
    return response.data
