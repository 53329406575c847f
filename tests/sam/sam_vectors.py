# SPDX-License-Identifier: Apache-2.0
"""Hex vectors from csim1-vectors.txt and keyple-stub-trace.md, built from named parts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

h = bytes.fromhex

SIM_KEYS = Path(__file__).resolve().parents[2] / "config" / "keys.sim.yaml"

# --- csim1-vectors.txt, regular-mode session, debit key 30/F0 --------------------------------
SN8 = h("0000000011223344")
TC = h("C1C2C3C4")
KIF_DEBIT, KVC_SIM = 0x30, 0xF0
RECORD_1 = h("81") + h("11") * 28
OSS_DATA_OUT = h("030490980030F01D71") + h("11") * 28
READ_CMD = h("00B2014400")
READ_RSP = RECORD_1 + h("9000")
APPEND_CMD = h("00E200401D82") + h("22") * 28
APPEND_RSP = h("9000")
DECREASE_CMD = h("003001C803000001")  # Le already stripped (case 4, CL-C4-MAC)
DECREASE_RSP = h("0000639000")
ITEMS = [READ_CMD, READ_RSP, APPEND_CMD, APPEND_RSP, DECREASE_CMD, DECREASE_RSP]
MULTIPLE_PAYLOAD = h(
    "0500B20144001F811111111111111111111111111111111111111111111111111111111190002200E200401D82"
    "2222222222222222222222222222222222222222222222222222222202900008003001C803000001050000639000"
)
TERMINAL_MAC = h("9F1DEC7B")
CARD_MAC = h("CF42745B")

SAM_SELECT_DIVERSIFIER = h("8014000008") + SN8
SAM_GET_CHALLENGE = h("8084000004")
SAM_DIGEST_INIT = h("808A00FF27") + bytes((KIF_DEBIT, KVC_SIM)) + OSS_DATA_OUT
SAM_DIGEST_UPDATE_MULTIPLE = h("808C8000") + bytes((len(MULTIPLE_PAYLOAD),)) + MULTIPLE_PAYLOAD
SAM_DIGEST_CLOSE = h("808E000004")
SAM_DIGEST_AUTHENTICATE = h("8082000004") + CARD_MAC

# --- csim1-vectors.txt, extended-mode session, load key 27/F0 --------------------------------
TC8 = h("C1C2C3C4C5C6C7C8")
EXT_DIGEST_INIT = h("808A02FF0E27F00304907A1B2C3D4E0227F000")
EXT_TERMINAL_MAC = h("92F74CD31551C0DE")
EXT_CARD_MAC = h("C7374159FB185591")

# --- keyple-stub-trace.md, SAM C1 table ------------------------------------------------------
STUB_SAM_ATR = h("3B3F9600805A0080C120000012345678829000")
STUB_CARD_SERIAL = h("00000000AABBCCDD")
STUB_CHALLENGE = h("00112233")
STUB_OSS_DATA_OUT = h("0308D1810030791D00112233445566778899AABBCCDDEEFF00112233445566778899AABBCC")
STUB_KIF, STUB_KVC = 0x30, 0x79
STUB_TERMINAL_MAC = h("12345678")
STUB_CARD_MAC = h("87654321")
STUB_SAM_TABLE = [
    (h("801400000800000000AABBCCDD"), h("9000")),
    (h("8084000004"), STUB_CHALLENGE + h("9000")),
    (h("808A00FF273079") + STUB_OSS_DATA_OUT, h("9000")),
    (h("808E000004"), STUB_TERMINAL_MAC + h("9000")),
    (h("808200000487654321"), h("9000")),
]


def fixed_rng(challenge: bytes) -> Callable[[int], bytes]:
    """An rng(n) that returns the first n bytes of a fixed challenge."""

    def rng(n: int) -> bytes:
        return challenge[:n]

    return rng
