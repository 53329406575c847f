# SPDX-License-Identifier: Apache-2.0
"""Test helpers for the card emulator: scripted randoms and a terminal that mirrors the MAC."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from calypso.crypto import SessionMac, ctr_transform, digest_item
from calypso.emulator.profile import CardProfile, load_profile
from readers.apdu import CommandApdu, ResponseApdu

VECTOR_CARD = Path(__file__).with_name("vector_card.yaml")
RATIFICATION = bytes.fromhex("00B2000000")


def h(text: str) -> bytes:
    """Hex with spaces allowed, for readable named parts."""
    return bytes.fromhex(text.replace(" ", ""))


def scripted_rng(*chunks: str) -> Callable[[int], bytes]:
    """A card random source that gives these hex chunks in order, checking each size."""
    queue = [h(chunk) for chunk in chunks]

    def rng(n: int) -> bytes:
        value = queue.pop(0) if queue else bytes([0x5A] * n)
        if len(value) != n:
            raise AssertionError(f"scripted random of {len(value)} bytes, card asked {n}")
        return value

    return rng


def vector_profile(**update: object) -> CardProfile:
    """The CSIM1 vector card profile, validated again with some fields changed."""
    data = load_profile(VECTOR_CARD).model_dump()
    for slot in ("issuer", "load", "debit"):
        master = data["keys"][slot]["master"]
        data["keys"][slot]["master"] = master.get_secret_value().hex()
        data["keys"][slot].pop("key")
        data["keys"][slot]["kif"] = f"{data['keys'][slot]['kif']:02X}"
        data["keys"][slot]["kvc"] = f"{data['keys'][slot]['kvc']:02X}"
    data["aid"] = data["aid"].hex()
    data["serial"] = data["serial"].hex()
    data["startup_info"] = data["startup_info"].hex()
    data["df_lid"] = f"{data['df_lid']:04X}"
    for f in data["files"]:
        f["lid"] = f"{f['lid']:04X}"
        f["content"] = [record.hex() for record in f["content"]]
    data.update(update)
    return CardProfile.model_validate(data)


class Terminal:
    """The terminal and SAM in software: mirrors the transcript (and encryption), computes MACs."""

    def __init__(
        self, transmit: Callable[[bytes], bytes], profile: CardProfile, *, cla: int = 0x00
    ) -> None:
        self.transmit = transmit
        self.profile = profile
        self.cla = cla
        self.mac: SessionMac | None = None
        self.encrypting = False

    def send(self, apdu: bytes | CommandApdu) -> ResponseApdu:
        """Send one APDU, digesting it and its answer (ciphering both when encryption is on)."""
        plain = bytes(apdu)
        mac = self.mac
        wire = plain
        if mac is not None and self.encrypting and len(plain) > 5:
            end = 5 + plain[4]
            wire = plain[:5] + ctr_transform(mac.sk_enc, mac.items, plain[5:end]) + plain[end:]
        raw = self.transmit(wire)
        if mac is not None and plain != RATIFICATION:
            mac.add(digest_item(plain))
            if self.encrypting and len(raw) > 2:
                raw = ctr_transform(mac.sk_enc, mac.items, raw[:-2]) + raw[-2:]
            mac.add(raw)
        return ResponseApdu.from_bytes(raw)

    def open(
        self,
        key_index: int = 3,
        *,
        challenge: bytes = h("C1C2C3C4"),
        p1: int | None = None,
        p2: int = 0x01,
        kvc_offset: int = 6,
    ) -> ResponseApdu:
        """Open a session (regular by default); start the MAC when the card accepts."""
        extended = len(challenge) == 8
        data = b"\x00" + challenge if extended else challenge
        command = CommandApdu(self.cla, 0x8A, key_index if p1 is None else p1, p2, data, le=0)
        response = ResponseApdu.from_bytes(self.transmit(bytes(command)))
        if response.ok:
            slot = self.profile.keys.slot(key_index)
            self.mac = SessionMac.start(
                slot.card_key(self.profile.serial),
                extended=extended,
                kif=slot.kif,
                kvc=slot.kvc,
                open_data_out=response.data,
                terminal_challenge=challenge,
            )
        return response

    def close(self, *, ratify: bool = True, terminal_mac: bytes | None = None) -> ResponseApdu:
        """Close with the right terminal MAC (or the one given); check the card MAC on success."""
        if self.mac is None:
            raise AssertionError("no session")
        signature = terminal_mac if terminal_mac is not None else self.mac.terminal_mac()
        expected = self.mac.card_mac()
        self.mac = None
        self.encrypting = False
        command = CommandApdu(self.cla, 0x8E, 0x80 if ratify else 0x00, 0x00, signature, le=0)
        response = ResponseApdu.from_bytes(self.transmit(bytes(command)))
        if response.ok and response.data[-len(expected) :] != expected:
            raise AssertionError("card MAC mismatch")
        return response

    def abort(self) -> ResponseApdu:
        """Abort the session."""
        self.mac = None
        self.encrypting = False
        return ResponseApdu.from_bytes(self.transmit(bytes((self.cla, 0x8E, 0, 0, 0))))
