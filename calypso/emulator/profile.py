# SPDX-License-Identifier: Apache-2.0
"""YAML card profiles for the card emulator: application identity, keys, file map and content.

A profile describes one personalised Calypso card (calypso-data-model 1.3-1.5). Schema (every
hex value is a quoted string; a wrong profile is refused with its path, line, field and reason):

``description``
    free text.
``product``
    ``rev1``, ``rev2``, ``rev3``, ``light`` or ``basic``; by default derived from the startup
    information's application type (calypso-protocol 4). ``rev1`` cards have no FCI: they are
    known from their 20-byte B-prime ATR. Extended mode is a Rev3 card with type bit 08h.
``aid``, ``df_lid`` (default 2000), ``serial`` (8 bytes), ``startup_info`` (7 bytes),
``transaction_counter``, ``ratified``, ``invalidated``
    the application identity and state at personalisation.
``df_names``
    other DF names the application answers to besides ``aid`` (a real Navigo card answers
    ``1TIC.ICA`` as well as its IDF AID); Select Application matches any prefix of any name.
``mf_files``
    the EFs at MF level, same schema as ``files``; by default ICC (0002h, SFI 02h: the serial at
    bytes 12..19, as real cards) and ID (0003h, SFI 03h), read always, never written.
``card_classes``
    the instruction classes the card answers (``"00"``, ``"94"``); by default 94h on Rev1/Rev2,
    00h and 94h on Rev3 (real Prime Rev3 cards, Navigo included, answer the legacy class),
    00h on Light and Basic. ``["00"]`` restricts a Rev3 card to the ISO class.
``postpones_counters``
    Rev1/Rev2 only: Increase/Decrease answer 6200 in session and give the value at Close.
``keys``
    ``issuer``, ``load``, ``debit``: ``{kif, kvc, key | master}`` (master: diversified with
    the serial, CSIM1 3.2).
``pin``
    optional (needs application type bit 01h): ``{value: 4 bytes, attempts: 0..3,
    cipher_key: issuer|load|debit}``; the cipher key ciphers PIN blocks outside a session.
``sv``
    optional (needs type bit 02h): ``{balance, transaction_number, signature_lo (3 or 6 bytes),
    load_log (22 bytes), debit_log (19 bytes), negative_balance}``. SV logs are the files
    SFI 14h (1 record) and 15h (3 records), added when the profile does not declare them.
``pki``
    optional (needs application type bit 10h, Rev3): the card's PKI personalisation,
    ``{private_key: 32-byte P-256 scalar, card_certificate: 316 bytes, ca_certificate: 384
    bytes, session_key: issuer|load|debit}``: the card answers Get Data DF4C/DF4D and DF4A/DF4B
    with the certificates, opens PKI sessions (Open P2 low bits 3) with the access rights of the
    ``session_key`` slot (debit by default) and signs them with its key (calypso.emulator.pki).
    The certificates are checked for their size and type only: a hostile card may carry a
    certificate for another card.
``files``
    a list of ``{name, sfi, lid, type, record_size, records, size, access, content,
    counters, counter_view}``: ``type`` is ``binary`` (``size`` bytes), ``linear``, ``cyclic``,
    ``counters`` (``counters`` = initial values) or ``simulated_counter`` (``counter_view`` =
    ``{sfi, counter}``: a view of counter n of a counters file). ``access`` maps ``read``,
    ``update``, ``write``, ``append``, ``decrease``, ``increase`` to ``always``, ``never``,
    ``session1``, ``session2``, ``session3`` or ``pin``.

Key material and PINs are held as ``SecretBytes`` and never appear in a repr, a log or an
error message.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretBytes,
    model_validator,
)

from calypso.constants import (
    AID_1TIC_ICA1,
    MAX_COUNTER_VALUE,
    MAX_RECORD_NUMBER,
    MAX_SFI,
    RECORD_SIZE,
    ProductType,
    session_buffer_size,
)
from calypso.crypto import KEY_LENGTH, diversify
from yamlconfig import ConfigError, load_model

# Startup information (calypso-protocol 4): buffer 0A (430 bytes), platform 3C, application type
# 20 (plain Rev3), subtype 05, software issuer 14, version 10, revision 01.
DEFAULT_STARTUP_INFO = bytes.fromhex("0A3C2005141001")
DEFAULT_TRANSACTION_COUNTER = 0x030491

ICC_LID = 0x0002  # the MF-level ICC file (calypso-data-model 1.3 C)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_HEX_JUNK = re.compile(r"[\s_:]")


class ProfileError(ConfigError):
    """A card profile could not be read or is invalid; names the file (and the line)."""

    what = "card profile"


def _hex_to_bytes(value: object) -> bytes:
    """Decode a hex string (spaces, '_' and ':' allowed); never echo the value in errors."""
    if isinstance(value, bytes | SecretBytes):
        return value if isinstance(value, bytes) else value.get_secret_value()
    if not isinstance(value, str):
        # YAML reads unquoted digit strings as integers: ask for quotes instead of guessing.
        raise ValueError("expected a quoted hex string")
    text = _HEX_JUNK.sub("", value)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("not a valid hex string") from None


def _hex_to_byte(value: object) -> int:
    if isinstance(value, int):
        raise ValueError("expected a quoted hex string such as '21'")
    raw = _hex_to_bytes(value)
    if len(raw) != 1:
        raise ValueError("expected exactly one byte of hex")
    return raw[0]


def _hex_to_lid(value: object) -> int:
    if isinstance(value, int):
        raise ValueError("expected a quoted 4-digit hex string such as '2010'")
    raw = _hex_to_bytes(value)
    if len(raw) != 2:
        raise ValueError("expected two bytes of hex (4 digits)")
    return int.from_bytes(raw, "big")


HexBytes = Annotated[bytes, BeforeValidator(_hex_to_bytes)]
HexByte = Annotated[int, BeforeValidator(_hex_to_byte)]
HexLid = Annotated[int, BeforeValidator(_hex_to_lid)]
SecretHex = Annotated[SecretBytes, BeforeValidator(_hex_to_bytes)]


class AccessCondition(StrEnum):
    """An access condition of one file operation (calypso-data-model 1.3-1.5)."""

    ALWAYS = "always"
    NEVER = "never"
    SESSION1 = "session1"  # a session opened with the issuer key (index 1)
    SESSION2 = "session2"  # ... with the issuer or load key (index <= 2)
    SESSION3 = "session3"  # ... with any of the three keys
    PIN = "pin"  # the PIN was presented successfully since the application was selected

    def allows(self, session_key_index: int | None, *, pin_verified: bool = False) -> bool:
        """Whether a card in this state (no session: None; else key index 1..3) may proceed."""
        if self is AccessCondition.ALWAYS:
            return True
        if self is AccessCondition.PIN:
            return pin_verified
        if self is AccessCondition.NEVER or session_key_index is None:
            return False
        return session_key_index <= int(self.value[-1])


class FileType(StrEnum):
    """Record-file structures the emulator supports (calypso-data-model 1.4)."""

    BINARY = "binary"
    LINEAR = "linear"
    CYCLIC = "cyclic"
    COUNTERS = "counters"
    SIMULATED_COUNTER = "simulated_counter"


class ProductName(StrEnum):
    """Product types a profile can describe (calypso-protocol 0, 4)."""

    REV1 = "rev1"
    REV2 = "rev2"
    REV3 = "rev3"
    LIGHT = "light"
    BASIC = "basic"

    @property
    def product_type(self) -> ProductType:
        """The matching ProductType."""
        return {
            "rev1": ProductType.PRIME_REVISION_1,
            "rev2": ProductType.PRIME_REVISION_2,
            "rev3": ProductType.PRIME_REVISION_3,
            "light": ProductType.LIGHT,
            "basic": ProductType.BASIC,
        }[self.value]


class FileAccess(BaseModel):
    """Access conditions of one EF; unspecified operations are never allowed, reads always."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read: AccessCondition = AccessCondition.ALWAYS
    update: AccessCondition = AccessCondition.NEVER
    write: AccessCondition = AccessCondition.NEVER
    append: AccessCondition = AccessCondition.NEVER
    decrease: AccessCondition = AccessCondition.NEVER
    increase: AccessCondition = AccessCondition.NEVER


class CounterView(BaseModel):
    """What a simulated counter file shows: counter ``counter`` of the counters file ``sfi``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sfi: int = Field(ge=1, le=MAX_SFI)
    counter: int = Field(ge=1, le=83)


class FileProfile(BaseModel):
    """One elementary file: identity, structure, access conditions and initial content."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    sfi: int = Field(ge=1, le=MAX_SFI)
    lid: HexLid
    type: FileType
    record_size: int = Field(default=RECORD_SIZE, ge=1, le=250)
    records: int = Field(default=1, ge=1, le=MAX_RECORD_NUMBER)
    access: FileAccess = FileAccess()
    content: list[HexBytes] = Field(default_factory=list)
    counters: list[int] | None = None
    size: int | None = Field(default=None, ge=1, le=32768)
    counter_view: CounterView | None = None

    @model_validator(mode="after")
    def _check_content(self) -> Self:
        if (self.size is not None) != (self.type is FileType.BINARY):
            raise ValueError("'size' is for binary files, and binary files need it")
        if (self.counter_view is not None) != (self.type is FileType.SIMULATED_COUNTER):
            raise ValueError("'counter_view' is for simulated counter files, and they need it")
        if self.type is FileType.BINARY:
            if len(self.content) > 1 or (self.content and len(self.content[0]) > (self.size or 0)):
                raise ValueError("binary content is one hex string no longer than 'size'")
            return self
        if len(self.content) > self.records:
            raise ValueError(f"{len(self.content)} content records for {self.records} records")
        for index, record in enumerate(self.content, start=1):
            if len(record) > self.record_size:
                raise ValueError(f"content record {index} longer than {self.record_size} bytes")
        if self.counters is not None:
            if self.type is not FileType.COUNTERS:
                raise ValueError("'counters' is only for a counters file")
            if self.content:
                raise ValueError("give either 'content' or 'counters', not both")
            if 3 * len(self.counters) > self.record_size:
                raise ValueError(f"more counters than fit in {self.record_size} bytes")
            if any(not 0 <= value <= MAX_COUNTER_VALUE for value in self.counters):
                raise ValueError("counter values must be in 0..16777215")
        return self

    @property
    def cell_size(self) -> int:
        """Bytes of one stored record (the whole file for a binary file)."""
        return self.size if self.size is not None else self.record_size

    @property
    def record_count(self) -> int:
        """Stored records: 1 for binary files."""
        return 1 if self.type is FileType.BINARY else self.records

    def initial_records(self) -> list[bytes]:
        """The records at personalisation: content right-padded with 00, missing ones zero."""
        if self.type is FileType.BINARY:
            return [(self.content[0] if self.content else b"").ljust(self.cell_size, b"\x00")]
        if self.counters is not None:
            # Counter n at bytes 3(n-1)..3n-1 of record 1 (calypso-protocol 1.7).
            first = b"".join(value.to_bytes(3, "big") for value in self.counters)
            given = [first]
        else:
            given = list(self.content)
        padded = [record.ljust(self.record_size, b"\x00") for record in given]
        return padded + [bytes(self.record_size)] * (self.records - len(padded))


class KeySlot(BaseModel):
    """One card key slot: KIF, KVC and either the card key or the master it derives from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kif: HexByte
    kvc: HexByte
    key: SecretHex | None = Field(default=None, repr=False)
    master: SecretHex | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _check_key(self) -> Self:
        if (self.key is None) == (self.master is None):
            raise ValueError("give exactly one of 'key' (card key) or 'master' (master key)")
        secret = self.key if self.key is not None else self.master
        if secret is None or len(secret.get_secret_value()) != KEY_LENGTH:
            raise ValueError(f"a key must be {KEY_LENGTH} bytes ({2 * KEY_LENGTH} hex digits)")
        return self

    def card_key(self, serial: bytes) -> bytes:
        """The card key: as given, or the master diversified with the serial (CSIM1 3.2)."""
        if self.key is not None:
            return self.key.get_secret_value()
        if self.master is None:
            raise ValueError("key slot without key material")
        return diversify(self.master.get_secret_value(), self.kif, self.kvc, serial)


class CardKeys(BaseModel):
    """The three session key slots: 1 issuer, 2 load, 3 debit (calypso-protocol 2.1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: KeySlot
    load: KeySlot
    debit: KeySlot

    def slot(self, key_index: int) -> KeySlot:
        """The slot for an Open Secure Session key index 1..3."""
        return (self.issuer, self.load, self.debit)[key_index - 1]


class KeyName(StrEnum):
    """A key slot by name."""

    ISSUER = "issuer"
    LOAD = "load"
    DEBIT = "debit"

    @property
    def key_index(self) -> int:
        """Key index 1..3."""
        return ("issuer", "load", "debit").index(self.value) + 1


class PinProfile(BaseModel):
    """The card PIN (calypso-protocol 1.16, 2.10): value, attempts left, ciphering key slot."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: SecretHex = Field(repr=False)
    attempts: int = Field(default=3, ge=0, le=3)
    cipher_key: KeyName = KeyName.DEBIT

    @model_validator(mode="after")
    def _check_pin(self) -> Self:
        if len(self.value.get_secret_value()) != 4:
            raise ValueError("a PIN is 4 bytes (8 hex digits)")
        return self


class PkiProfile(BaseModel):
    """The card's PKI material (calypso-pki.md): its ECC key and the two certificates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    private_key: SecretHex = Field(repr=False)
    card_certificate: HexBytes = Field(repr=False)
    ca_certificate: HexBytes = Field(repr=False)
    session_key: KeyName = KeyName.DEBIT

    @model_validator(mode="after")
    def _check_pki(self) -> Self:
        scalar = int.from_bytes(self.private_key.get_secret_value(), "big")
        if len(self.private_key.get_secret_value()) != 32 or not 0 < scalar < P256_ORDER:
            raise ValueError("private_key is a 32-byte P-256 scalar in 1..n-1")
        for name, raw, size, kind in (
            ("card_certificate", self.card_certificate, 316, 0x91),
            ("ca_certificate", self.ca_certificate, 384, 0x90),
        ):
            if len(raw) != size or raw[0] != kind:
                raise ValueError(f"{name} is {size} bytes of type {kind:02X}h")
        return self


class SvProfile(BaseModel):
    """The stored-value purse at personalisation (calypso-protocol 1.19-1.20, CSIM1 3.8)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    balance: int = Field(default=0, ge=-8388608, le=8388607)
    transaction_number: int = Field(default=0, ge=0, le=0xFFFF)
    signature_lo: HexBytes = b"\x00\x00\x00"
    load_log: HexBytes = bytes(22)
    debit_log: HexBytes = bytes(19)
    negative_balance: bool = False

    @model_validator(mode="after")
    def _check_sv(self) -> Self:
        if len(self.signature_lo) not in (3, 6):
            raise ValueError("signature_lo is 3 or 6 bytes")
        if len(self.load_log) != 22 or len(self.debit_log) != 19:
            raise ValueError("load_log is 22 bytes and debit_log 19 bytes")
        return self


def _derive_product(startup_info: bytes) -> ProductType:
    app_type = startup_info[2]
    if 0x01 <= app_type <= 0x1F:
        return ProductType.PRIME_REVISION_2
    if 0x90 <= app_type <= 0x97:
        return ProductType.LIGHT
    if 0x98 <= app_type <= 0x9F:
        return ProductType.BASIC
    return ProductType.PRIME_REVISION_3


class CardProfile(BaseModel):
    """A personalised Calypso card (Rev1, Rev2, Rev3, Light or Basic), as loaded from YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    product: ProductName | None = None
    postpones_counters: bool = False
    pin: PinProfile | None = None
    sv: SvProfile | None = None
    pki: PkiProfile | None = None
    aid: HexBytes = AID_1TIC_ICA1
    df_lid: HexLid = 0x2000
    serial: HexBytes
    startup_info: HexBytes = DEFAULT_STARTUP_INFO
    transaction_counter: int = Field(default=DEFAULT_TRANSACTION_COUNTER, ge=0, le=0xFFFFFF)
    ratified: bool = True
    invalidated: bool = False
    keys: CardKeys
    files: list[FileProfile] = Field(default_factory=list)
    card_classes: list[HexByte] | None = None
    df_names: list[HexBytes] = Field(default_factory=list)
    mf_files: list[FileProfile] | None = None

    @model_validator(mode="after")
    def _check_card(self) -> Self:
        if self.card_classes is not None and (
            not self.card_classes or not set(self.card_classes) <= {0x00, 0x94}
        ):
            raise ValueError("card_classes: give one or both of '00' and '94'")
        if any(not 5 <= len(name) <= 16 for name in self.df_names):
            raise ValueError("df_names: each name is 5 to 16 bytes")
        for f in self.mf_files or []:
            # ICC record 1 holds the serial at bytes 12..19 (Metrodroid's CalypsoApplication).
            if f.lid == ICC_LID and f.content and len(f.content[0]) >= 20:
                if f.content[0][12:20] != self.serial:
                    raise ValueError("mf_files: the ICC record's serial (bytes 12..19) differs")
        if not 5 <= len(self.aid) <= 16:
            raise ValueError("aid must be 5 to 16 bytes")
        if len(self.serial) != 8:
            raise ValueError("serial must be 8 bytes")
        if len(self.startup_info) != 7:
            raise ValueError("startup_info must be 7 bytes")
        app_type = self.startup_info[2]
        if app_type in (0x00, 0xFF) or self.startup_info[3] in (0x00, 0xFF):
            raise ValueError("startup_info: application type/subtype 00h and FFh are invalid")
        product = self.product_type
        if self.product is not None and product is not ProductType.PRIME_REVISION_1:
            if product is not _derive_product(self.startup_info):
                raise ValueError("product does not match the startup_info application type")
        if product in (ProductType.PRIME_REVISION_3, ProductType.LIGHT):
            session_buffer_size(self.startup_info[0])  # ValueError when out of 06..37
        if product is ProductType.BASIC and not 0x04 <= self.startup_info[0] <= 0x37:
            raise ValueError("a Basic card's buffer indicator is 04h..37h")
        if self.postpones_counters and product not in (
            ProductType.PRIME_REVISION_1,
            ProductType.PRIME_REVISION_2,
        ):
            raise ValueError("only Rev1/Rev2 cards postpone counter results")
        legacy = product in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2)
        if self.pin is not None and not (legacy or product is ProductType.PRIME_REVISION_3):
            raise ValueError("pin: Light and Basic cards have no PIN")
        if self.pin is not None and product is not ProductType.PRIME_REVISION_1:
            if not app_type & 0x01:
                raise ValueError("pin: the application type lacks the PIN bit 01h")
        if self.sv is not None and not (legacy or product is ProductType.PRIME_REVISION_3):
            raise ValueError("sv: Light and Basic cards have no stored value")
        if self.sv is not None and product is not ProductType.PRIME_REVISION_1:
            if not app_type & 0x02:
                raise ValueError("sv: the application type lacks the stored-value bit 02h")
        if self.pki is not None and not (
            product is ProductType.PRIME_REVISION_3 and app_type & 0x10
        ):
            raise ValueError("pki: needs a Rev3 application type with the PKI bit 10h")
        sfis = {f.sfi: f for f in self.files}
        for f in self.files:
            view = f.counter_view
            if view is not None:
                target = sfis.get(view.sfi)
                if target is None or target.type is not FileType.COUNTERS:
                    raise ValueError(f"file {f.name}: counter_view.sfi is not a counters file")
                if 3 * view.counter > target.record_size:
                    raise ValueError(f"file {f.name}: counter {view.counter} is past the file")
        for attribute in ("sfi", "lid"):
            values = [getattr(f, attribute) for f in self.files]
            if len(values) != len(set(values)):
                raise ValueError(f"two files share the same {attribute}")
        return self

    @property
    def product_type(self) -> ProductType:
        """The product type: as given, else derived from the application type."""
        if self.product is not None:
            return self.product.product_type
        return _derive_product(self.startup_info)

    @property
    def allowed_classes(self) -> frozenset[int]:
        """The CLA bytes the card answers (stored value on Rev1/Rev2 aside): as given, or the
        product's default (94h on Rev1/Rev2, 00h and 94h on Rev3, 00h on Light and Basic)."""
        if self.card_classes is not None:
            return frozenset(self.card_classes)
        product = self.product_type
        if product in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
            return frozenset({0x94})
        if product is ProductType.PRIME_REVISION_3:
            return frozenset({0x00, 0x94})
        return frozenset({0x00})

    @property
    def extended(self) -> bool:
        """Whether the card supports extended mode (Rev3 with application type bit 08h)."""
        return self.product_type is ProductType.PRIME_REVISION_3 and bool(
            self.startup_info[2] & 0x08
        )


def load_profile(path: Path | str) -> CardProfile:
    """Read and validate a YAML card profile.

    Raises:
        ProfileError: unreadable file, YAML syntax error (with its line) or invalid content.
    """
    return load_model(path, CardProfile, error=ProfileError)
