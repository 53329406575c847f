# SPDX-License-Identifier: Apache-2.0
"""No key material in any log line, repr or exception text of the SAM flows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sam_vectors import (
    CARD_EXTENDED_JOURNAL,
    CARD_REGULAR_JOURNAL,
    EXT_AUTH_CARD_MAC,
    EXT_CARD_MAC,
    EXT_OSS_DATA_OUT,
    EXT_READ3_CIPHERED,
    EXT_READ3_CMD,
    EXT_READ_CMD,
    EXT_READ_RSP,
    EXT_UPDATE_PLAIN,
    ITEMS,
    KEY_CARD_CHALLENGE,
    LEAK_SCAN_KEYS,
    OSS_DATA_OUT,
    PIN,
    PIN_CARD_CHALLENGE,
    SIM_KEYS,
    SN8,
    SV_DEBIT_PARTIAL,
    SV_GET_HEADER,
    SV_GET_RESPONSE,
    UNLOCK_DATA,
    h,
    queued_rng,
)

from calypso import crypto
from readers.channel import TRAFFIC, ApduChannel
from readers.emulated import EmulatedReader
from sam.base import SvOperation, SvRequest
from sam.client import LegacySam
from sam.keys import KeyFileError, load_keys
from sam.software.dispatch import SoftwareSam
from sam.verify import recompute_session


def _forms(hex_key: str) -> list[str]:
    """The ways a key could show up in text: hex in either case, halves, bytes repr."""
    raw = bytes.fromhex(hex_key)
    return [hex_key.lower(), hex_key[:16].lower(), hex_key[16:].lower(), repr(raw)[2:-1].lower()]


def _assert_clean(text: str) -> None:
    lowered = text.lower()
    for key in LEAK_SCAN_KEYS:
        for form in _forms(key):
            assert form not in lowered, f"key material ({key[:4]}...) found in output"


def _station(locked: bool = False) -> tuple[LegacySam, SoftwareSam]:
    rng = queued_rng(*[h("C1C2C3C4C5C6C7C8")] * 20)
    software = SoftwareSam(
        load_keys(SIM_KEYS, allow_simulation=True),
        rng=rng,
        locked=locked,
        unlock_data=UNLOCK_DATA if locked else None,
    )
    reader = EmulatedReader("sam")
    reader.insert(software)
    return LegacySam(ApduChannel(reader.connect(), label="sam")), software


def _every_flow(texts: list[str]) -> None:
    """Run each SAM flow once, collecting reprs and exception texts."""
    sam, software = _station()
    texts += [repr(sam), repr(software), repr(sam.identity)]
    session = sam.session_crypto(SN8)
    texts.append(repr(session))
    session.init_session()
    session.init_session_mac(OSS_DATA_OUT, 0x30, 0xF0)
    for item in ITEMS:
        session.update_session_mac(item)
    texts.append(repr(session))
    session.cipher_pin_for_presentation(PIN_CARD_CHALLENGE, PIN)
    session.finalize_session_mac()
    session.verify_card_session_mac(h("00000000"))
    extended = sam.session_crypto(SN8, extended=True)
    extended.init_session()
    extended.init_session_mac(EXT_OSS_DATA_OUT, 0x27, 0xF0)
    extended.update_session_mac(EXT_READ_CMD)
    extended.update_session_mac(EXT_READ_RSP)
    extended.generate_terminal_session_mac()
    extended.verify_card_session_mac(EXT_AUTH_CARD_MAC)
    extended.activate_encryption()
    extended.process_session_apdu(EXT_UPDATE_PLAIN)
    extended.process_session_apdu(h("9000"))
    extended.process_session_apdu(EXT_READ3_CMD)
    extended.process_session_apdu(EXT_READ3_CIPHERED)
    extended.finalize_session_mac()
    extended.verify_card_session_mac(EXT_CARD_MAC)
    other = sam.session_crypto(SN8)
    other.generate_ciphered_card_key(KEY_CARD_CHALLENGE, 0x21, 0xF0, 0x27, 0xF1)
    other.cipher_pin_for_modification(PIN_CARD_CHALLENGE, bytes(4), b"4567", 0x30, 0xF0)
    request = SvRequest(SvOperation.DEBIT, SV_GET_HEADER, SV_GET_RESPONSE, SV_DEBIT_PARTIAL)
    prepared = other.prepare_sv(request)
    texts.append(repr(prepared))
    other.verify_card_sv_mac(h("000000"))
    texts.append(repr(recompute_session(sam, SN8, CARD_REGULAR_JOURNAL)))
    texts.append(repr(recompute_session(sam, SN8, CARD_EXTENDED_JOURNAL)))
    failing = sam.session_crypto(SN8)
    failing.init_session()
    for kif, kvc in ((0x30, 0x79), (0x30, 0xF0)):
        try:
            failing.init_session_mac(OSS_DATA_OUT, kif, kvc)
        except Exception as error:  # every error text is scanned
            texts += [str(error), repr(error)]
    locked, _ = _station(locked=True)
    for attempt in (
        lambda: locked.unlock(bytes(16)),
        lambda: locked.session_crypto(SN8).init_session(),
    ):
        try:
            attempt()
        except Exception as error:  # every error text is scanned
            texts += [str(error), repr(error)]
    keys = load_keys(SIM_KEYS, allow_simulation=True)
    texts += [repr(keys), str(keys), keys.model_dump_json(), repr(keys.keys[0])]
    card_key = crypto.diversify(keys.keys[2].secret(), 0x30, 0xF0, SN8)
    texts.append(
        repr(
            crypto.SessionMac.start(
                card_key,
                extended=False,
                kif=0x30,
                kvc=0xF0,
                open_data_out=OSS_DATA_OUT,
                terminal_challenge=h("C1C2C3C4"),
            )
        )
    )


class TestNoKeyLeak:
    """Scan everything the flows print, log, repr and raise for every test key."""

    def test_flows(
        self, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Every SAM flow at TRAFFIC log level: no key in logs, reprs, errors or output."""
        texts: list[str] = []
        with caplog.at_level(TRAFFIC):
            _every_flow(texts)
            logging.getLogger("test").log(TRAFFIC, "texts %s", texts)
        captured = capsys.readouterr()
        assert "sam > 8084" in caplog.text.lower()  # the APDU traffic was logged
        _assert_clean(caplog.text + captured.out + captured.err + "\n".join(texts))

    def test_key_file_errors(self, tmp_path: Path) -> None:
        """Errors of broken key files name the file and field, never the key or unlock data."""
        good = SIM_KEYS.read_text(encoding="utf-8").replace("simulation: true", "")
        texts = []
        for broken in (
            good,  # simulation KVCs in a file that does not say simulation
            good.replace("F0", "79").replace("F1", "7A"),  # production, but mode 644
            good.replace("F0", "79").replace("F1", "7A").replace("AES128", "DES"),
            "locked: true\nunlock_data: " + UNLOCK_DATA.hex()[:-2] + "\n" + good,
        ):
            path = tmp_path / "keys.yaml"
            path.write_text(broken, encoding="utf-8")
            path.chmod(0o644)
            with pytest.raises(KeyFileError) as caught:
                load_keys(path)
            texts += [str(caught.value), repr(caught.value)]
        _assert_clean("\n".join(texts))
