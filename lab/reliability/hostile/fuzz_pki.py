# SPDX-License-Identifier: Apache-2.0
"""The PKI parsers under fuzz (lab.reliability.hostile.fuzz_targets builds their targets).

The certificates (a card certificate verified against the shipped test CA, a CA certificate
against the test root: parsed, recovered, checked as the gate checks them), the card's PKI
answers (Get Data parts, the PKI Open, the signature of the Close), and seeds for the root key
file and the revocation list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from calypso.commands import CardIns
from calypso.commands.pki import (
    Certificate,
    get_data_certificate,
    join_certificate,
    open_pki_secure_session,
    parse_close_pki_secure_session,
    parse_get_data_certificate,
    parse_open_pki_secure_session,
)
from calypso.pki.certificates import parse_card_certificate
from calypso.pki.chain import ChainPolicy, TrustedRoot, TrustStore
from calypso.pki.fields import CaScope
from lab.paths import CONFIG
from readers.apdu import CommandApdu, ResponseApdu
from validator.engine.pki.files import RootKeyFile
from yamlconfig import load_model

NOW = dt.datetime(2026, 3, 2, 8, 0)


def shipped_root() -> TrustedRoot:
    """The shipped test root."""
    return load_model(CONFIG / "pki" / "test_pki_root.yaml", RootKeyFile).root()


def pki_certificates(root: TrustedRoot) -> Callable[[bytes], object]:
    """First byte even: a card certificate, verified against the shipped test CA; odd: a CA
    certificate, verified against the root (each parsed, recovered, checked as the gate does)."""
    policy = ChainPolicy(NOW.date(), scopes=frozenset(CaScope))
    store = TrustStore.of([root])
    store.add_ca(load_model(CONFIG / "pki" / "test_pki_ca.yaml", _CaFile).raw(), policy)

    def run(data: bytes) -> object:
        if not data:
            return None
        raw = data[1:]
        if data[0] % 2:
            return TrustStore.of([root]).add_ca(raw, policy)
        certificate = parse_card_certificate(raw)
        return store.verify_card(certificate, policy, serial=certificate.serial)

    return run


_PKI_PARSERS: tuple[tuple[CommandApdu | None, str], ...] = (
    (get_data_certificate(Certificate.CARD), "get"),
    (get_data_certificate(Certificate.CARD, second_part=True), "get"),
    (get_data_certificate(Certificate.CA), "get"),
    (get_data_certificate(Certificate.CA, second_part=True), "get"),
    (open_pki_secure_session(bytes(8), sfi=7, record=1), "open"),
    (None, "close"),
)


def pki_answer(data: bytes) -> object:
    """First byte: which PKI answer the rest is (Get Data part, PKI Open, PKI Close)."""
    if not data:
        return None
    command, kind = _PKI_PARSERS[data[0] % len(_PKI_PARSERS)]
    response = ResponseApdu.from_bytes(data[1:])
    if kind == "get" and command is not None:
        part = parse_get_data_certificate(response, command)
        return join_certificate(part) if part.first else part
    if kind == "open":
        return parse_open_pki_secure_session(response, command)
    return parse_close_pki_secure_session(response)


def pki_answer_seeds(commands: list[bytes], responses: list[bytes]) -> list[bytes]:
    """Real PKI answers of the corpus, each behind the byte that names its parser."""
    seeds = []
    for command, response in zip(commands, responses, strict=True):
        if len(command) < 4:
            continue
        for index, (known, _) in enumerate(_PKI_PARSERS):
            if known is not None and command[1:4] == bytes(known)[1:4]:
                seeds.append(bytes((index,)) + response)
            elif known is None and command[1] == CardIns.CLOSE_SECURE_SESSION:
                seeds.append(bytes((index,)) + response)
    return seeds[:40] or [b"\x05\x90\x00"]


class _CaFile(BaseModel):
    """The shipped CA certificate file (lab.pki writes it): its certificate."""

    model_config = ConfigDict(extra="ignore")
    certificate: str

    def raw(self) -> bytes:
        """The certificate bytes."""
        return bytes.fromhex(self.certificate)


REVOCATIONS = (  # a revocation list naming one of each
    b"ca_references: [0954455354504B49434100000000000000000000000000000100000001]\n"
    b"card_serials: [00000000C0FFEE12]\n"
    b"card_certificates:\n  - {serial: 00000000C0FFEE11, index: 1}\n"
)
