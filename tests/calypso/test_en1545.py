# SPDX-License-Identifier: Apache-2.0
"""The EN 1545 codec against the public samples of calypso-data-model 2.7, and its edges."""

from __future__ import annotations

import datetime as dt

import pytest

from calypso.en1545 import decode, encode
from calypso.en1545.bits import BitReader, BitWriter
from calypso.en1545.codes import event_code
from calypso.en1545.tables import CONTRACT, CONTRACT_LIST, COUNTERS, ENVIRONMENT, EVENT
from calypso.en1545.types import Kind, display, to_raw
from calypso.layouts.intercode import carnet_journeys, counter_values

# 2.7: keyple-parser IntercodeEnvParserTest.kt (Navigo environment), 29-byte record.
NAVIGO_ENV = bytes.fromhex("24B928480805E66460B00012C100").ljust(29, b"\x00")
# 2.7: Atoumod (Normandy) event from Navigoat issue #3 (the published prefix of the record).
ATOUMOD_EVENT = bytes.fromhex("856dfbd14048a230e8281915c0080008e70adbe5")


class TestBits:
    """MSB-first bit streams."""

    def test_reads_msb_first_across_bytes(self) -> None:
        """6 bits then 7 bits of 24 B9: version 9, bitmap 0010111."""
        reader = BitReader(bytes.fromhex("24B9"))
        assert reader.read(6) == 9
        assert reader.read(7) == 0b0010111
        assert reader.remaining == 3

    def test_short_read_returns_none_and_keeps_position(self) -> None:
        """Asking for more bits than remain gives None without moving."""
        reader = BitReader(b"\xff")
        assert reader.read(9) is None
        assert reader.position == 0
        assert reader.read(8) == 0xFF

    def test_writer_pads_with_zero_bits(self) -> None:
        """Fields are packed without gaps and the last byte is padded with 0."""
        writer = BitWriter()
        writer.write(9, 6)
        writer.write(0b0010111, 7)
        assert writer.to_bytes() == bytes.fromhex("24B8")
        assert writer.to_bytes(4) == bytes.fromhex("24B80000")

    def test_writer_refuses_overflow(self) -> None:
        """A value wider than its field is an error, never silently cut."""
        with pytest.raises(ValueError, match="does not fit"):
            BitWriter().write(64, 6)


class TestNavigoEnvironment:
    """The Navigo environment sample (section 2.7)."""

    def test_decodes_to_the_stated_values(self) -> None:
        """Version 9, network 250901, issuer 0, end 2030-01-31, authenticator 2305h, holder."""
        d = decode(ENVIRONMENT, NAVIGO_ENV)
        assert d.get("EnvApplicationVersionNumber") == 9
        assert d.get("EnvNetworkId") == 0x250901
        assert d.get("EnvApplicationIssuerId") == 0
        assert d.get("EnvApplicationValidityEndDate") == 12083
        assert d.get("EnvAuthenticator") == 0x2305
        assert d.values["HolderData"] == {"HolderDataCardStatus": 6, "HolderDataCommercialID": 2}
        assert d.bits_used == 105
        assert d.complete and not d.empty

    def test_readable_values(self) -> None:
        """ISO date and the network id as its BCD digits."""
        fields = decode(ENVIRONMENT, NAVIGO_ENV).to_json()["fields"]
        assert fields["EnvApplicationValidityEndDate"] == "2030-01-31"
        assert fields["EnvNetworkId"] == "250901"

    def test_encodes_back_bit_for_bit(self) -> None:
        """Decoding then encoding gives the same 29 bytes."""
        d = decode(ENVIRONMENT, NAVIGO_ENV)
        assert d.encode() == NAVIGO_ENV
        assert encode(ENVIRONMENT, d.values) == NAVIGO_ENV


class TestAtoumodEvent:
    """The Atoumod event sample (section 2.7)."""

    def test_decodes_to_the_stated_values(self) -> None:
        """2020-05-19 16:55, tram interchange entry, provider 29, location 1283, pointer 3."""
        fields = decode(EVENT, ATOUMOD_EVENT).to_json()["fields"]
        assert (fields["EventDateStamp"], fields["EventTimeStamp"]) == ("2020-05-19", "16:55")
        assert fields["EventCode"] == 0x46
        assert event_code(0x46) == "tram, interchange entry"
        assert fields["EventServiceProvider"] == 29
        assert fields["EventLocationId"] == 1283
        assert fields["EventRouteNumber"] == 8888
        assert fields["EventJourneyInterchanges"] == 1
        assert fields["EventTotalJourneys"] == 1
        assert fields["EventContractPointer"] == 3
        assert fields["EventData"]["EventDataDateFirstStamp"] == "2020-05-19"
        assert fields["EventData"]["EventDataTimeFirstStamp"] == "16:37"

    def test_bitmap_flags(self) -> None:
        """Bitmap 1010001010000000100100010100: exactly the 8 stated sub-fields are present."""
        d = decode(EVENT, ATOUMOD_EVENT)
        top = {k for k in d.values if k not in ("EventDateStamp", "EventTimeStamp")}
        assert top == {
            "EventCode",
            "EventServiceProvider",
            "EventLocationId",
            "EventRouteNumber",
            "EventJourneyInterchanges",
            "EventTotalJourneys",
            "EventContractPointer",
            "EventData",
        }

    def test_published_prefix_is_marked_truncated(self) -> None:
        """The sample stops inside EventData: what was read is kept, the stop is named."""
        d = decode(EVENT, ATOUMOD_EVENT)
        assert d.truncated == "EventData.EventDataRouteDirection"
        assert d.get("EventContractPointer") == 3


class TestNeverRaises:
    """Odd data is returned as far as it could be read."""

    @pytest.mark.parametrize("structure", [ENVIRONMENT, CONTRACT, CONTRACT_LIST, EVENT, COUNTERS])
    def test_all_ones_and_empty(self, structure) -> None:
        """An FFh-filled record (test-kit contracts) and an empty one decode without raising."""
        assert decode(structure, b"\xff" * 29).bits_used > 0
        empty = decode(structure, bytes(29))
        assert empty.empty and empty.truncated is None

    def test_zero_length_input(self) -> None:
        """No data at all: truncated at the first field."""
        d = decode(EVENT, b"")
        assert d.truncated == "EventDateStamp" and d.values == {}

    def test_unspecified_content_is_marked(self) -> None:
        """ContractData flagged present: its content is unknown and says so."""
        raw = encode(CONTRACT, {"ContractTariff": 2, "ContractData": 0})
        d = decode(CONTRACT, raw)
        assert d.unknown == ["ContractData"] and not d.complete


class TestTypes:
    """Final types of section 2.1."""

    def test_alpha(self) -> None:
        """5 bits a character; trailing spaces dropped when shown."""
        raw = to_raw(Kind.ALPHA, "DUPONT", 85)
        assert display(Kind.ALPHA, raw, 85) == "DUPONT"

    def test_bcd_date(self) -> None:
        """YYYYMMDD in BCD; an invalid one is shown as its digits."""
        assert to_raw(Kind.BCD_DATE, dt.date(1985, 7, 14), 32) == 0x19850714
        assert display(Kind.BCD_DATE, 0x19850714, 32) == "1985-07-14"
        assert display(Kind.BCD_DATE, 0x19851399, 32) == "19851399"

    def test_dates_times_zones(self) -> None:
        """Days since 1997-01-01, minutes since midnight, zone bitmaps."""
        assert display(Kind.DATE, 16383, 14) == "2041-11-09"
        assert to_raw(Kind.TIME, "16:55", 11) == 1015
        assert display(Kind.ZONES, 0b101, 8) == [1, 3]
        assert to_raw(Kind.ZONES, [1, 3], 8) == 0b101

    def test_network_id(self) -> None:
        """BCD country and network: 250901."""
        assert to_raw(Kind.NETWORK_ID, "250901", 24) == 0x250901


class TestCounters:
    """Counters file: carnet split (section 2.6)."""

    def test_metrodroid_848_cross_check(self) -> None:
        """0x2400B4 holds 9 journeys in its top 6 bits."""
        record = (0x2400B4).to_bytes(3, "big") + bytes(24)
        d = decode(COUNTERS, record)
        assert d.values["Counter1"]["CounterContractCount"] == 9
        assert counter_values(record)[1] == 0x2400B4
        assert carnet_journeys(0x2400B4) == 9


class TestEncodeErrors:
    """Encoding refuses what it cannot represent."""

    def test_unknown_name(self) -> None:
        """A misspelt field is an error, not silently dropped."""
        with pytest.raises(ValueError, match="unknown field"):
            encode(EVENT, {"EventDateStamp": 1, "EventTimeStamp": 2, "EventCod": 3})

    def test_missing_container_field(self) -> None:
        """Container fields are mandatory."""
        with pytest.raises(ValueError, match="missing field EventTimeStamp"):
            encode(EVENT, {"EventDateStamp": 1})

    def test_value_too_wide(self) -> None:
        """EventContractPointer has 5 bits."""
        with pytest.raises(ValueError, match="EventContractPointer"):
            encode(EVENT, {"EventDateStamp": 1, "EventTimeStamp": 2, "EventContractPointer": 32})
