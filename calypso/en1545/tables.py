# SPDX-License-Identifier: Apache-2.0
"""Intercode structures as data (calypso-data-model 2.2-2.6), decoded by calypso.en1545.codec.

Field names are the EN 1545 / Intercode names of the reference; sub-fields of compound
fields carry their parent's prefix (ContractValidityInfo -> ContractValidityStartDate).
"""

from __future__ import annotations

from calypso.en1545 import codes
from calypso.en1545.schema import Bitmap, Container, Field, Repeat, Structure, fields
from calypso.en1545.types import Kind

# 2.2 Environment + Holder (2001h / SFI 07h): env fields, then the holder's, in one record.
ENV_NETWORK_ID = Field("EnvNetworkId", 24, Kind.NETWORK_ID, codes.network)
_ENVIRONMENT = Bitmap(
    None,
    (
        ENV_NETWORK_ID,
        Field("EnvApplicationIssuerId", 8),
        Field("EnvApplicationValidityEndDate", 14, Kind.DATE),
        Field("EnvPayMethod", 11),
        Field("EnvAuthenticator", 16),
        Field("EnvSelectList", 32),
        Bitmap("EnvData", fields(("EnvDataCardStatus", 1), ("EnvData2", 0, Kind.UNKNOWN))),
    ),
)
_HOLDER = Bitmap(
    None,
    (
        Bitmap(
            "HolderName",
            fields(("HolderSurname", 85, Kind.ALPHA), ("HolderForename", 85, Kind.ALPHA)),
        ),
        Bitmap(
            "HolderBirth",
            fields(("HolderBirthDate", 32, Kind.BCD_DATE), ("HolderBirthPlace", 115, Kind.ALPHA)),
        ),
        Field("HolderBirthName", 85, Kind.ALPHA),
        Field("HolderIdNumber", 32),
        Field("HolderCountryAlpha", 24),
        Field("HolderCompany", 32),
        # 4-bit repeat as cardpeek, pssi and Metroflip read it (Metrodroid uses 2 bits).
        Repeat(
            "HolderProfiles",
            4,
            Bitmap(
                None,
                fields(
                    ("ProfileNetworkId", 24, Kind.NETWORK_ID),
                    ("ProfileNumber", 8),
                    ("ProfileDate", 14, Kind.DATE),
                ),
            ),
        ),
        Bitmap(
            "HolderData",
            (
                Field("HolderDataCardStatus", 4, meaning=codes.card_status),
                Field("HolderDataTeleReglement", 4),
                Field("HolderDataResidence", 17),
                Field("HolderDataCommercialID", 6),
                Field("HolderDataWorkPlace", 17),
                Field("HolderDataStudyPlace", 17),
                Field("HolderDataSaleDevice", 16),
                Field("HolderDataAuthenticator", 16),
                Field("HolderDataProfileStartDate1", 14, Kind.DATE),
                Field("HolderDataProfileStartDate2", 14, Kind.DATE),
                Field("HolderDataProfileStartDate3", 14, Kind.DATE),
                Field("HolderDataProfileStartDate4", 14, Kind.DATE),
            ),
        ),
    ),
)
ENVIRONMENT = Structure(
    "environment",
    Container(
        None,
        (
            Field("EnvApplicationVersionNumber", 6, meaning=codes.application_version),
            _ENVIRONMENT,
            _HOLDER,
        ),
    ),
    description="Environment + Holder (2001h, SFI 07h)",
)

# 2.3 Contract (2020h/2030h, SFI 09h/06h), Intercode "type FF" generic layout.
CONTRACT = Structure(
    "contract",
    Bitmap(
        None,
        (
            Field("ContractNetworkId", 24, Kind.NETWORK_ID, codes.network),
            Field("ContractProvider", 8),
            Field("ContractTariff", 16),
            Field("ContractSerialNumber", 32),
            Bitmap(
                "ContractCustomerInfo",
                fields(("ContractCustomerProfile", 6), ("ContractCustomerNumber", 32)),
            ),
            Bitmap(
                "ContractPassengerInfo",
                fields(("ContractPassengerClass", 8), ("ContractPassengerTotal", 8)),
            ),
            Field("ContractVehicleClassAllowed", 6),
            Field("ContractPaymentPointer", 32),
            Field("ContractPayMethod", 11),
            Field("ContractServices", 16),
            Field("ContractPriceAmount", 16, Kind.AMOUNT),
            Field("ContractPriceUnit", 16),
            Bitmap(
                "ContractRestriction",
                fields(
                    ("ContractRestrictStart", 11, Kind.TIME),
                    ("ContractRestrictEnd", 11, Kind.TIME),
                    ("ContractRestrictDay", 8),
                    ("ContractRestrictTimeCode", 8),
                    ("ContractRestrictCode", 8),
                    ("ContractRestrictProduct", 16),
                    ("ContractRestrictLocation", 16),
                ),
            ),
            Bitmap(
                "ContractValidityInfo",
                fields(
                    ("ContractValidityStartDate", 14, Kind.DATE),
                    ("ContractValidityStartTime", 11, Kind.TIME),
                    ("ContractValidityEndDate", 14, Kind.DATE),
                    ("ContractValidityEndTime", 11, Kind.TIME),
                    ("ContractValidityDuration", 8),
                    ("ContractValidityLimitDate", 14, Kind.DATE),
                    ("ContractValidityZones", 8, Kind.ZONES),
                    ("ContractValidityJourneys", 16),
                    ("ContractValidityPeriodJourneys", 16),
                ),
            ),
            Bitmap(
                "ContractJourneyData",
                fields(
                    ("ContractJourneyOrigin", 16),
                    ("ContractJourneyDestination", 16),
                    ("ContractJourneyRouteNumbers", 16),
                    ("ContractJourneyRouteVariants", 8),
                    ("ContractJourneyRun", 16),
                    ("ContractJourneyVia", 16),
                    ("ContractJourneyDistance", 16),
                    ("ContractJourneyInterchanges", 8),
                ),
            ),
            Bitmap(
                "ContractSaleData",
                fields(
                    ("ContractSaleDate", 14, Kind.DATE),
                    ("ContractSaleTime", 11, Kind.TIME),
                    ("ContractSaleAgent", 8),
                    ("ContractSaleDevice", 16),
                ),
            ),
            Field("ContractStatus", 8, meaning=codes.contract_status),
            Field("ContractLoyaltyPoints", 16),
            Field("ContractAuthenticator", 16),
            Field("ContractData", 0, Kind.UNKNOWN),  # the remainder: its layout is unspecified
        ),
    ),
    description="Contract (2020h/2030h, SFI 09h/06h), generic layout",
)

# 2.4 Contract List / BestContracts (2050h, SFI 1Eh).
CONTRACT_LIST = Structure(
    "contract-list",
    Repeat(
        "BestContracts",
        4,
        Bitmap(
            None,
            (
                Field("BestContractNetworkId", 24, Kind.NETWORK_ID, codes.network),
                Field("BestContractTariff", 16, meaning=codes.best_contract_tariff),
                Field("BestContractPointer", 5),
            ),
        ),
    ),
    description="Contract list / best contracts (2050h, SFI 1Eh)",
)

# 2.5 Event (2010h event log SFI 08h; the same layout for special events 2040h / SFI 1Dh).
EVENT = Structure(
    "event",
    Container(
        None,
        (
            Field("EventDateStamp", 14, Kind.DATE),
            Field("EventTimeStamp", 11, Kind.TIME),
            Bitmap(
                None,
                (
                    Field("EventDisplayData", 8),
                    Field("EventNetworkId", 24, Kind.NETWORK_ID, codes.network),
                    Field("EventCode", 8, meaning=codes.event_code),
                    Field("EventResult", 8, meaning=codes.event_result),
                    Field("EventServiceProvider", 8),
                    Field("EventNotOkCounter", 8),
                    Field("EventSerialNumber", 24),
                    Field("EventDestination", 16),
                    Field("EventLocationId", 16),
                    Field("EventLocationGate", 8),
                    Field("EventDevice", 16),
                    Field("EventRouteNumber", 16),
                    Field("EventRouteVariant", 8),
                    Field("EventJourneyRun", 16),
                    Field("EventVehicleId", 16),
                    Field("EventVehicleClass", 8),
                    Field("EventLocationType", 5),
                    Field("EventEmployee", 240),
                    Field("EventLocationReference", 16),
                    Field("EventJourneyInterchanges", 8),
                    Field("EventPeriodJourneys", 16),
                    Field("EventTotalJourneys", 16),
                    Field("EventJourneyDistance", 16),
                    Field("EventPriceAmount", 16, Kind.AMOUNT),
                    Field("EventPriceUnit", 16),
                    Field("EventContractPointer", 5),
                    Field("EventAuthenticator", 16),
                    Bitmap(
                        "EventData",
                        fields(
                            ("EventDataDateFirstStamp", 14, Kind.DATE),
                            ("EventDataTimeFirstStamp", 11, Kind.TIME),
                            ("EventDataSimulation", 1),
                            ("EventDataTrip", 2),
                            ("EventDataRouteDirection", 2),
                        ),
                    ),
                ),
            ),
        ),
    ),
    description="Event (2010h, SFI 08h; special events 2040h, SFI 1Dh)",
)

# 2.6 Counters (2069h / SFI 19h): 9 x 24 bits; carnets split each into 6 + 18 bits.
COUNTERS_IN_FILE = 9
COUNTERS = Structure(
    "counters",
    Container(
        None,
        tuple(
            Container(
                f"Counter{n}",
                fields(("CounterContractCount", 6), ("CounterRelativeFirstStamp15mn", 18)),
            )
            for n in range(1, COUNTERS_IN_FILE + 1)
        ),
    ),
    record_size=3 * COUNTERS_IN_FILE,
    description="Counters (2069h, SFI 19h), read as carnets: 6-bit count, 18-bit first stamp",
)

STRUCTURES = {s.name: s for s in (ENVIRONMENT, CONTRACT, CONTRACT_LIST, EVENT, COUNTERS)}
