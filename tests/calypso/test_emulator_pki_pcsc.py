# SPDX-License-Identifier: Apache-2.0
"""A shipped PKI card through the real PC/SC stack (pcscd + vpcd): chain, session, signature."""

from __future__ import annotations

import datetime as dt
import re

from calypso.commands.counters import decrease, parse_increase_decrease
from calypso.commands.pki import (
    Certificate,
    close_pki_secure_session,
    get_data_certificate,
    join_certificate,
    open_pki_secure_session,
    parse_close_pki_secure_session,
    parse_get_data_certificate,
    parse_open_pki_secure_session,
)
from calypso.commands.records import append_record, parse_append_record
from calypso.commands.select import parse_select_application, select_application
from calypso.emulator.dispatch import CardEmulator
from calypso.pki.certificates import parse_card_certificate
from calypso.pki.chain import ChainPolicy, TrustedRoot, TrustStore
from calypso.pki.fields import TEST_SCOPES
from calypso.pki.session import SignedStream, verify_session_signature
from lab.paths import CONFIG
from lab.pcscd import CARD_READER, InsertCard
from lab.pki.material import ROOT_FILE, load_root
from readers.channel import ApduChannel
from readers.pcsc import PcscReader

pytest_plugins = ["pcsc_fixtures"]

PROFILE = CONFIG / "cards" / "pki" / "test_pki_multi_trip.yaml"
SFI_EVENTS, SFI_COUNTERS = 0x08, 0x19


def certificate(channel: ApduChannel, which: Certificate) -> bytes:
    """Both Get Data parts of one certificate, joined."""
    parts = []
    for second in (False, True):
        command = get_data_certificate(which, second_part=second)
        parts.append(parse_get_data_certificate(channel.transmit(command), command))
    return join_certificate(*parts)


def test_pki_tap_over_pcsc(insert_card: InsertCard) -> None:
    """Select, certificates, chain to the shipped test root, a debit in a PKI session, verified."""
    card = CardEmulator.from_profile(PROFILE)
    trips = card.counter(SFI_COUNTERS, 1)
    insert_card(card)
    root_file = load_root(CONFIG / "pki" / ROOT_FILE)
    store = TrustStore.of([TrustedRoot(root_file.reference(), root_file.public_key())])
    policy = ChainPolicy(today=dt.date(2026, 3, 2), scopes=TEST_SCOPES)
    with PcscReader(re.escape(CARD_READER)) as reader:
        connection = reader.wait_for_card(5.0)
        assert connection is not None
        channel = ApduChannel(connection)
        command = select_application(card.profile.aid)
        app = parse_select_application(channel.transmit(command), command)
        assert app.startup.pki_mode
        card_certificate = parse_card_certificate(certificate(channel, Certificate.CARD))
        if not store.knows(card_certificate.issuer_reference):
            store.add_ca(certificate(channel, Certificate.CA), policy)
        verified = store.verify_card(card_certificate, policy, serial=app.serial, aid=app.df_name)
        start = len(channel.exchanges)
        command = open_pki_secure_session(bytes(range(8)), sfi=SFI_EVENTS, record=1)
        opened = parse_open_pki_secure_session(channel.transmit(command), command)
        assert opened.serial == app.serial and opened.record_data
        command = decrease(SFI_COUNTERS, 1, 1)
        parse_increase_decrease(channel.transmit(command), command=command)
        command = append_record(SFI_EVENTS, bytes(29))
        parse_append_record(channel.transmit(command), command)
        trail = [(ex.command, ex.response) for ex in channel.exchanges[start:]]
        command = close_pki_secure_session()
        signature = parse_close_pki_secure_session(channel.transmit(command), command)
    # What replay does: the signed stream from the journaled trail, the key from the chain.
    assert verify_session_signature(verified.public_key, SignedStream.of(trail), signature)
    assert card.counter(SFI_COUNTERS, 1) == trips - 1
