# SPDX-License-Identifier: Apache-2.0
"""The Keyple demo record layouts against the demo's own parser test vectors (section 3.3)."""

from __future__ import annotations

import datetime as dt

from calypso.layouts.demo import Contract, Environment, Event, date_to_compact

ENV = "01" + "00000001" + "0FFB" + "1C92" + "07" + "00000008"
EVENT = "01" + "0FBF" + "0348" + "00000001" + "01" + "01000000"
CONTRACT = "01" + "01" + "0FBF" + "0FDD"


class TestDemoLayout:
    """Decoding the published vectors and encoding back."""

    def test_environment(self) -> None:
        """Version 1, app 1, issued 2021-03-15, ends 2030-01-10, company 7, holder 8."""
        env = Environment.decode(bytes.fromhex(ENV))
        assert env == Environment(1, 1, dt.date(2021, 3, 15), dt.date(2030, 1, 10), 7, 8)
        assert env.encode() == bytes.fromhex(ENV).ljust(29, b"\x00")

    def test_event(self) -> None:
        """2021-01-14 14:00, location 1, contract 1, priorities [1, 0, 0, 0]."""
        event = Event.decode(bytes.fromhex(EVENT))
        assert event.stamp == dt.datetime(2021, 1, 14, 14, 0)
        assert (event.location, event.contract_used, event.priorities) == (1, 1, (1, 0, 0, 0))
        assert event.encode() == bytes.fromhex(EVENT).ljust(29, b"\x00")

    def test_contract(self) -> None:
        """A season pass sold 2021-01-14, valid until 2021-02-13."""
        contract = Contract.decode(bytes.fromhex(CONTRACT))
        assert contract.tariff == 1
        assert contract.sale_date == dt.date(2021, 1, 14)
        assert contract.validity_end_date == dt.date(2021, 2, 13)
        assert contract.encode() == bytes.fromhex(CONTRACT).ljust(29, b"\x00")

    def test_unsigned_fields(self) -> None:
        """32-bit fields with the top bit set stay positive (demo pitfall 7)."""
        env = Environment.decode(bytes.fromhex("01FFFFFFFF"))
        assert env.application_number == 0xFFFFFFFF

    def test_date_epoch(self) -> None:
        """DateCompact counts days from 2010-01-01."""
        assert date_to_compact(dt.date(2010, 1, 1)) == 0
        assert date_to_compact(dt.date(2021, 1, 14)) == 0x0FBF
