# SPDX-License-Identifier: Apache-2.0
"""Select Application and the FCI: DF name, serial number, startup information (section 4)."""

from __future__ import annotations

from dataclasses import dataclass

from calypso.commands import CommandRef, check_status, status_table
from calypso.constants import CardClass, ProductType, session_buffer_size
from calypso.errors import ApplicationNotFoundError, CardResponseError, ClassNotSupportedError
from readers.apdu import SW, CommandApdu, ResponseApdu

_SELECT_STATUS = {
    **status_table(SW.WRONG_LENGTH, SW.WRONG_P1_P2),
    # The two ways an AID is absent, which the terminal tells apart (the next AID, or a Prime
    # Rev1 card known from its ATR).
    SW.FILE_NOT_FOUND: ApplicationNotFoundError,
    SW.CLA_NOT_SUPPORTED: ClassNotSupportedError,
}
BASIC_MODIFICATION_MIN, BASIC_MODIFICATION_MAX = 0x04, 0x37  # section 2.2
# The products whose application-type PIN (01h) and SV (02h) bits mean those features.
_OPTION_BITS_PRODUCTS = (ProductType.PRIME_REVISION_2, ProductType.PRIME_REVISION_3)


@dataclass(frozen=True, slots=True)
class StartupInfo:
    """The 7+ bytes of FCI tag 53 (calypso-protocol section 4).

    ``product`` is set when the product type is known from elsewhere than the application type:
    a Prime Rev1 card is only known from its ATR (its startup information is rebuilt from it).
    """

    raw: bytes
    product: ProductType | None = None

    @property
    def buffer_indicator(self) -> int:
        """Byte 0: session modification buffer size indicator."""
        return self.raw[0]

    @property
    def platform(self) -> int:
        """Byte 1: chip platform."""
        return self.raw[1]

    @property
    def application_type(self) -> int:
        """Byte 2: application type (product type and option bits)."""
        return self.raw[2]

    @property
    def application_subtype(self) -> int:
        """Byte 3: file-structure reference."""
        return self.raw[3]

    @property
    def software_issuer(self) -> int:
        """Byte 4: software issuer."""
        return self.raw[4]

    @property
    def software_version(self) -> int:
        """Byte 5: software version."""
        return self.raw[5]

    @property
    def software_revision(self) -> int:
        """Byte 6: software revision."""
        return self.raw[6]

    @property
    def product_type(self) -> ProductType:
        """Product type from the application type: 01-1F Rev2, 90-97 Light, 98-9F Basic, Rev3."""
        if self.product is not None:
            return self.product
        app_type = self.application_type
        if app_type == 0xFF:
            return ProductType.UNKNOWN
        if 0x01 <= app_type <= 0x1F:
            return ProductType.PRIME_REVISION_2
        if 0x90 <= app_type <= 0x97:
            return ProductType.LIGHT
        if 0x98 <= app_type <= 0x9F:
            return ProductType.BASIC
        return ProductType.PRIME_REVISION_3

    @property
    def has_pin(self) -> bool:
        """PIN feature: application type bit 01h on Prime Rev2/Rev3 only (section 4).

        Light and Basic have no PIN whatever their bits say; a Rev1 card known from its ATR
        has none either (Keyple's CalypsoCardAdapter).
        """
        if self.product_type not in _OPTION_BITS_PRODUCTS:
            return False
        return bool(self.application_type & 0x01)

    @property
    def has_stored_value(self) -> bool:
        """Stored Value feature: application type bit 02h on Prime Rev1/Rev2/Rev3 (section 4).

        Light and Basic have no stored value: their application-type bits mean something else.
        Rev1: the bit read from the ATR, where Keyple reports no SV at all (it cannot know);
        a deliberate difference, see docs/protocol-differences.md.
        """
        if self.product_type not in (*_OPTION_BITS_PRODUCTS, ProductType.PRIME_REVISION_1):
            return False
        return bool(self.application_type & 0x02)

    @property
    def ratification_command_required(self) -> bool:
        """Application type bit 04h: ratification needs the command (not done on deselect)."""
        return bool(self.application_type & 0x04)

    @property
    def extended_mode(self) -> bool:
        """Application type bit 08h: Calypso Rev3.2 mode (Rev3 only)."""
        return self.product_type is ProductType.PRIME_REVISION_3 and bool(
            self.application_type & 0x08
        )

    @property
    def pki_mode(self) -> bool:
        """Application type bit 10h: public-key authentication (Rev3 only)."""
        return self.product_type is ProductType.PRIME_REVISION_3 and bool(
            self.application_type & 0x10
        )

    @property
    def card_class(self) -> CardClass:
        """CLA for this card: 94h for Rev1/Rev2 (legacy), 00h for Rev3/Light/Basic (section 0)."""
        if self.product_type in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
            return CardClass.LEGACY
        return CardClass.ISO

    @property
    def session_buffer_commands(self) -> int | None:
        """Modification buffer in commands: Rev2 6, Basic 4; None when counted in bytes (2.2)."""
        if self.product_type is ProductType.PRIME_REVISION_2:
            return 6
        if self.product_type is ProductType.BASIC:
            return 4
        return None

    @property
    def session_buffer_bytes(self) -> int | None:
        """Modification buffer in bytes (Rev3, Light), or None when counted in commands."""
        if self.product_type in (ProductType.PRIME_REVISION_3, ProductType.LIGHT):
            return session_buffer_size(self.buffer_indicator)
        return None

    @property
    def payload_capacity(self) -> int:
        """Largest data field the card takes: 128 Rev1/Rev2; 235 on a Prime Rev3 of platform
        3Ch, software version 10h (Keyple's patch, Rev3 only: not Light nor Basic); else 250."""
        product = self.product_type
        if product in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
            return 128
        if (
            product is ProductType.PRIME_REVISION_3
            and self.platform == 0x3C
            and self.software_version == 0x10
        ):
            return 235
        return 250


@dataclass(frozen=True, slots=True)
class ApplicationInfo:
    """What Select Application tells about the card's Calypso application."""

    df_name: bytes
    serial: bytes
    startup: StartupInfo
    invalidated: bool
    product_override: ProductType | None = None  # Rev1: known from the ATR, not the FCI

    @property
    def product_type(self) -> ProductType:
        """The product type: from the ATR for Rev1, else from the startup information."""
        if self.product_override is not None:
            return self.product_override
        return self.startup.product_type

    @property
    def card_class(self) -> CardClass:
        """CLA byte for this card's commands (94h Rev1/Rev2, 00h otherwise)."""
        if self.product_type in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
            return CardClass.LEGACY
        return CardClass.ISO

    @property
    def application_serial(self) -> bytes:
        """The serial with its 2 first bytes zeroed (they may carry validity data)."""
        return b"\x00\x00" + self.serial[2:]

    @property
    def is_hce(self) -> bool:
        """HCE card flag: bit 7 of serial byte 3."""
        return bool(self.serial[3] & 0x80)


def select_application(aid: bytes, *, next_occurrence: bool = False) -> CommandApdu:
    """Select Application by AID, asking for the FCI: 00 A4 04 P2 Lc AID 00."""
    if not 5 <= len(aid) <= 16:
        raise ValueError(f"AID must be 5 to 16 bytes, got {len(aid)}")
    return CommandApdu(0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, aid, le=0)


def parse_select_application(
    response: ResponseApdu, command: CommandApdu | None = None
) -> ApplicationInfo:
    """Parse the FCI (tags 84, C7, 53 inside 6F/A5/BF0C); 6283 marks an invalidated DF."""
    ref = CommandRef.SELECT_APPLICATION
    check_status(ref, response, _SELECT_STATUS, command=command, accept=(SW.OK, SW.DF_INVALIDATED))
    tags = _flatten_tlv(ref, response.data, response)
    df_name = tags.get(0x84)
    serial = tags.get(0xC7)
    startup = tags.get(0x53)
    if df_name is None or not 5 <= len(df_name) <= 16:
        raise CardResponseError(ref.label, "FCI without a valid DF name (tag 84)", response)
    if serial is None or len(serial) != 8:
        raise CardResponseError(ref.label, "FCI without an 8-byte serial number (tag C7)", response)
    if startup is None or len(startup) < 7:
        raise CardResponseError(ref.label, "FCI without startup information (tag 53)", response)
    info = StartupInfo(startup)
    if info.application_type == 0x00:
        raise CardResponseError(ref.label, "application type 00h is invalid", response)
    if info.application_subtype in (0x00, 0xFF):
        raise CardResponseError(ref.label, "application subtype 00h/FFh is rejected", response)
    try:
        info.session_buffer_bytes  # noqa: B018 - checked now: the session engine relies on it
    except ValueError as exc:
        raise CardResponseError(ref.label, f"startup information: {exc}", response) from None
    if info.product_type is ProductType.BASIC and not (
        BASIC_MODIFICATION_MIN <= info.buffer_indicator <= BASIC_MODIFICATION_MAX
    ):
        # Counted in commands on a Basic card, but the byte must still be in range (Keyple).
        raise CardResponseError(
            ref.label,
            f"Basic session modification byte {info.buffer_indicator:02X}h not in 04h..37h",
            response,
        )
    return ApplicationInfo(df_name, serial, info, response.sw == SW.DF_INVALIDATED)


BPRIME_ATR_LENGTH = 20


def parse_bprime_atr(atr: bytes) -> ApplicationInfo:
    """A Prime Rev1 card selected without FCI, from its 20-byte ATR (section 4).

    Serial = ATR bytes 12..15 in the last 4 of 8 bytes; startup info = 03 + ATR bytes 6..11.
    """
    if len(atr) != BPRIME_ATR_LENGTH:
        raise CardResponseError("ATR", f"a Rev1 ATR has 20 bytes, got {len(atr)}")
    serial = bytes(4) + atr[12:16]
    startup = StartupInfo(b"\x03" + atr[6:12], ProductType.PRIME_REVISION_1)
    return ApplicationInfo(b"", serial, startup, False, ProductType.PRIME_REVISION_1)


def aid_matches(aid: bytes, df_name: bytes) -> bool:
    """AID match rule TL-SEL-AIDMATCH.1: the DF name starts with the AID, then only 00 bytes."""
    return df_name.startswith(aid) and not any(df_name[len(aid) :])


_CONSTRUCTED_BIT = 0x20  # ISO 7816-4 / BER: bit 6 of the first tag byte


def _flatten_tlv(ref: CommandRef, data: bytes, response: ResponseApdu) -> dict[int, bytes]:
    """Flatten BER-TLV as Keyple does: primitive tags found at any depth, first occurrence kept.

    Every constructed object (bit 20h of its first tag byte: 6F, A5, BF0C, but also 73, E0...)
    is descended into; a primitive one never is, whatever its value looks like.
    """
    found: dict[int, bytes] = {}
    stack = [data]
    while stack:
        chunk = stack.pop()
        i = 0
        while i < len(chunk):
            if chunk[i] in (0x00, 0xFF):  # padding between objects
                i += 1
                continue
            tag = chunk[i]
            constructed = bool(tag & _CONSTRUCTED_BIT)
            i += 1
            if tag & 0x1F == 0x1F:
                if i >= len(chunk):
                    raise CardResponseError(ref.label, "truncated TLV tag in FCI", response)
                tag = (tag << 8) | chunk[i]
                i += 1
            if i >= len(chunk):
                raise CardResponseError(ref.label, "truncated TLV length in FCI", response)
            length = chunk[i]
            i += 1
            if length == 0x81:
                if i >= len(chunk):
                    raise CardResponseError(ref.label, "truncated TLV length in FCI", response)
                length = chunk[i]
                i += 1
            elif length > 0x81:
                raise CardResponseError(ref.label, "TLV length form not supported", response)
            value = chunk[i : i + length]
            if len(value) != length:
                raise CardResponseError(ref.label, f"TLV {tag:X} runs past the FCI", response)
            i += length
            if constructed:
                stack.append(value)
            else:
                found.setdefault(tag, value)
    return found
