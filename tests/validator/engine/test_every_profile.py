# SPDX-License-Identifier: Apache-2.0
"""The engine selects, authenticates and reads every shipped card profile, every product type."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CARDS, Station

from calypso.card_image import CalypsoCard
from calypso.commands.select import (
    ApplicationInfo,
    parse_bprime_atr,
    parse_select_application,
    select_application,
)
from calypso.constants import ProductType, WriteAccessLevel
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import AccessCondition, FileType, load_profile
from calypso.errors import CardResponseError
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from validator.engine.session import Ratification, SecureSession

# wrong_keys is personalised with keys the SAM does not hold: its refusal is tested elsewhere.
PROFILES = [p for p in sorted(CARDS.glob("*.yaml")) if p.stem != "wrong_keys"] + sorted(
    (CARDS / "other").glob("*.yaml")
)
RECORD_FILES = {FileType.LINEAR, FileType.CYCLIC, FileType.COUNTERS}
SIMULATION_KVC = 0xF0  # Rev1 cards name no key: the default KVC of the settings


def select(channel: ApduChannel, atr: bytes, aid: bytes) -> ApplicationInfo:
    """Select Application, or read a Rev1 (B-prime) card from its ATR."""
    try:
        return parse_bprime_atr(atr)
    except CardResponseError:
        command = select_application(aid)
        return parse_select_application(channel.transmit(command), command)


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_secure_read_of_every_profile(station: Station, path: Path) -> None:
    """Open a DEBIT session, read every record of every file, close: card MAC verified."""
    profile = load_profile(path)
    card = CardEmulator(profile)
    reader = EmulatedReader("card")
    reader.insert(card)
    connection = reader.connect()
    channel = ApduChannel(connection)
    app = select(channel, connection.atr, profile.aid)
    assert app.serial == profile.serial
    extended = app.startup.extended_mode
    crypto = station.sam.session_crypto(app.serial, extended=extended)
    image = CalypsoCard(app)
    # Files behind a PIN (the test kit's ID file) are not read without presenting it.
    files = [
        f
        for f in profile.files
        if f.type in RECORD_FILES and f.access.read is AccessCondition.ALWAYS
    ]
    with SecureSession(
        channel, crypto, image, extended=extended, default_kvc=SIMULATION_KVC
    ) as session:
        session.open(WriteAccessLevel.DEBIT, read=(files[0].sfi, 1) if files else None)
        for ef in files:
            records = session.read_records(ef.sfi, 1, count=ef.records, record_size=ef.record_size)
            assert sorted(records) == list(range(1, ef.records + 1)), ef.name
        session.close(Ratification.IMMEDIATE)
    assert session.mac_verified
    if app.product_type in (ProductType.PRIME_REVISION_1, ProductType.PRIME_REVISION_2):
        assert all(ex.command[0] == 0x94 for ex in channel.exchanges[1:])
