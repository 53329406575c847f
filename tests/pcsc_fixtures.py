# SPDX-License-Identifier: Apache-2.0
"""pytest plugin: a session-wide private pcscd and an ``insert_card`` fixture over vpcd.

Test modules load it with ``pytest_plugins = ["pcsc_fixtures"]``. A tests/readers/conftest.py
is avoided on purpose: a second conftest module replaces ``sys.modules["conftest"]``, which breaks
the ``from conftest import ...`` of the tests collected after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.pcscd import (
    CARD_READER,
    InsertCard,
    PrivatePcscd,
    missing_binaries,
    wait_reader_state,
)
from readers.base import ApduHandler
from readers.vpcd import VpcdCard


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePcscd]:
    """A private pcscd with the readers "Test Card 00 00/01" and "Test SAM 00 00/01"."""
    reason = missing_binaries()
    if reason is not None:
        pytest.skip(reason)
    daemon = PrivatePcscd(tmp_path_factory.mktemp("pcscd"))
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def insert_card(pcscd: PrivatePcscd) -> Iterator[InsertCard]:
    """insert_card(handler, reader=CARD_READER): serve ``handler`` in a reader, once it shows."""
    slots: list[tuple[str, VpcdCard]] = []

    def insert(handler: ApduHandler, reader: str = CARD_READER) -> VpcdCard:
        # A card removed just before still shows PRESENT until pcscd's next poll (~400 ms).
        wait_reader_state(reader, present=False)
        slot = VpcdCard(pcscd.ports[reader])
        slot.insert(handler)
        slots.append((reader, slot))
        wait_reader_state(reader, present=True)
        return slot

    yield insert
    for reader, slot in slots:
        slot.remove()
        if pcscd.running:
            # The next test may insert into this reader: let pcscd see it empty first.
            wait_reader_state(reader, present=False)
