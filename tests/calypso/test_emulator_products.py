# SPDX-License-Identifier: Apache-2.0
"""The emulator per product type and feature: Rev1, Rev2, Light, Basic, PIN, SV, DF status."""

from __future__ import annotations

from pathlib import Path

from calypso_terminal import Terminal, h, scripted_rng

from calypso.crypto import sv_key, sv_mac
from calypso.emulator.dispatch import CardEmulator
from calypso.emulator.profile import CardProfile, load_profile
from readers.apdu import SW, CommandApdu

OTHER = Path(__file__).parents[2] / "config" / "cards" / "other"
SFI_EVENTS, SFI_CONTRACTS, SFI_COUNTERS = 0x08, 0x09, 0x19


def card_of(name: str, *randoms: str) -> tuple[CardEmulator, CardProfile]:
    """A powered card from config/cards/other/<name>.yaml."""
    profile = load_profile(OTHER / f"{name}.yaml")
    card = CardEmulator(profile, scripted_rng(*randoms))
    card.power_on()
    return card, profile


def append(cla: int, marker: int) -> CommandApdu:
    """Append a 29-byte event."""
    return CommandApdu(cla, 0xE2, 0x00, SFI_EVENTS * 8, bytes([marker]) * 29)


class TestRev2:
    """Prime Rev2.4: CLA 94, its Open layout, postponed counters, 6 commands per session."""

    def test_class_and_select(self) -> None:
        """Select Application in CLA 00 answers the FCI; other commands need CLA 94."""
        card, _ = card_of("rev2")
        assert card.process(h("00A4040009315449432E4943413100"))[-2:] == h("9000")
        assert card.process(h("00B2013C00")) == h("6E00")
        assert card.process(h("94B2013C1D"))[-2:] == h("9000")

    def test_session_with_postponed_counter(self) -> None:
        """Open answers KVC + challenge; Decrease answers 6200; Close returns the value."""
        card, profile = card_of("rev2", "98")
        terminal = Terminal(card.process, profile, cla=0x94)
        opened = terminal.open(3, p1=0x83, p2=0x00)
        assert opened.data == h("F0 030490 98")
        decrease = CommandApdu(0x94, 0x30, 1, SFI_COUNTERS * 8, h("000001"))
        assert terminal.send(decrease).sw == SW.WARNING_NO_INFO
        closed = terminal.close()
        assert closed.ok and closed.data[:4] == h("04 000009")
        assert card.counter(SFI_COUNTERS, 1) == 9

    def test_six_commands(self) -> None:
        """The seventh modification of a session answers 6400."""
        card, profile = card_of("rev2")
        terminal = Terminal(card.process, profile, cla=0x94)
        terminal.open(3, p1=0x83, p2=0x00)
        for marker in range(6):
            assert terminal.send(append(0x94, marker)).ok
        assert terminal.send(append(0x94, 7)).sw == SW.SESSION_BUFFER_OVERFLOW


class TestRev1:
    """Prime Rev1: B-prime ATR, no Select Application, 3 commands per session."""

    def test_atr_and_session(self) -> None:
        """The ATR carries serial and startup info; the fourth write answers 6400."""
        card, profile = card_of("rev1", "98")
        assert card.power_on().hex().upper() == "3B6F0000805A080803040200C0FFEE1082900000"
        assert card.process(h("00A4040009315449432E4943413100")) == h("6E00")
        terminal = Terminal(card.process, profile, cla=0x94)
        assert terminal.open(3, p1=0x03, p2=0x00).data == h("030490 98")
        for marker in range(3):
            assert terminal.send(append(0x94, marker)).ok
        assert terminal.send(append(0x94, 9)).sw == SW.SESSION_BUFFER_OVERFLOW
        assert terminal.close().ok


class TestLightAndBasic:
    """Light counts 215 bytes; Basic 3 generic + 1 counter modifications."""

    def test_light_buffer(self) -> None:
        """Six 35-byte appends fit in 215 bytes, a seventh answers 6400; no binary."""
        card, profile = card_of("light")
        terminal = Terminal(card.process, profile)
        terminal.open(3)
        for marker in range(6):
            assert terminal.send(append(0x00, marker)).ok
        assert terminal.send(append(0x00, 7)).sw == SW.SESSION_BUFFER_OVERFLOW
        assert terminal.send(h("00B0810001")).sw == SW.INS_NOT_SUPPORTED

    def test_basic_buffer(self) -> None:
        """Three appends and one decrease; a fourth append or second decrease answers 6400."""
        card, profile = card_of("basic")
        terminal = Terminal(card.process, profile)
        terminal.open(3)
        decrease = CommandApdu(0x00, 0x30, 1, SFI_COUNTERS * 8, h("000001"), le=0)
        for marker in range(3):
            assert terminal.send(append(0x00, marker)).ok
        assert terminal.send(append(0x00, 3)).sw == SW.SESSION_BUFFER_OVERFLOW
        assert terminal.send(decrease).data == h("000009")
        assert terminal.send(decrease).sw == SW.SESSION_BUFFER_OVERFLOW
        assert terminal.close().ok

    def test_basic_has_no_change_key(self) -> None:
        """Change Key is not a Basic command: 6D00."""
        card, _ = card_of("basic")
        card.process(h("0084000008"))
        assert card.process(h("00D8000220") + bytes(32)) == h("6D00")


class TestIntercodeFiles:
    """Simulated counters, binary files, Select File and Get Data on the Navigo-like map."""

    def test_simulated_counter(self) -> None:
        """Decreasing 202B (SFI 0B) changes counter 2 of 2069h; its FCP shows data ref 19 02."""
        card, profile = card_of("navigo_intercode")
        terminal = Terminal(card.process, profile)
        terminal.open(2)
        increase = CommandApdu(0x00, 0x32, 0, 0x0B * 8, h("000010"), le=0)
        assert terminal.send(increase).data == h("000010")
        assert terminal.send(CommandApdu(0x00, 0xB2, 1, 0x0B * 8 + 4, le=0)).data[:3] == h("000010")
        assert terminal.close().ok
        assert card.counter(SFI_COUNTERS, 2) == 0x10
        header = card.process(h("00A4090002202B00"))
        assert header[:2] == h("8517") and header[2:5] == h("0B0408")
        assert header[16:18] == h("1902") and header[23:25] == h("202B")

    def test_binary_and_ef_list(self) -> None:
        """Update Binary in session, then Read Binary; Get Data lists the EFs."""
        card, profile = card_of("navigo_intercode")
        terminal = Terminal(card.process, profile)
        terminal.open(3)
        assert terminal.send(h("00D681020 2ABCD".replace(" ", ""))).ok
        assert terminal.send(h("00D0810401 01".replace(" ", ""))).ok
        assert terminal.close().ok
        assert card.process(h("00B0810005")) == h("0000ABCD01 9000")
        ef_list = card.process(h("00CA00C000"))
        assert ef_list[:1] == h("C0") and h("C106202B0B081D01") in ef_list


class TestDfStatus:
    """Invalidate and Rehabilitate (1.9)."""

    def test_invalidate_then_rehabilitate(self) -> None:
        """Invalidated: Select answers 6283 and writes 6985; the issuer key rehabilitates."""
        card, profile = card_of("extended")
        terminal = Terminal(card.process, profile)
        terminal.open(3)
        assert terminal.send(h("0004000000")).ok
        assert terminal.close().ok
        assert card.process(h("00A4040009315449432E4943413100"))[-2:] == h("6283")
        terminal.open(3)
        assert terminal.send(append(0x00, 1)).sw == SW.CONDITIONS_NOT_SATISFIED
        assert terminal.send(h("0044000000")).sw == SW.SECURITY_NOT_SATISFIED
        terminal.abort()
        terminal.open(1)
        assert terminal.send(h("0044000000")).ok
        assert terminal.close().ok
        assert card.process(h("00A4040009315449432E4943413100"))[-2:] == h("9000")


class TestPinAttempts:
    """PIN attempts and blocking; a PIN-protected file (CNA test kit ID file)."""

    def test_attempts_and_blocking(self) -> None:
        """63C2, 63C1, then 6983 (blocked), after which the right PIN is refused too."""
        card, _ = card_of("cna_test_kit")
        assert card.process(h("00B2011C00")) == h("6982")  # ID file: read needs the PIN
        assert card.process(h("002000000430303030")) == h("9000")
        assert card.process(h("00B2011C00"))[-2:] == h("9000")
        answers = [card.process(h("002000000431313131")) for _ in range(3)]
        assert answers == [h("63C2"), h("63C1"), h("6983")]
        assert card.process(h("002000000430303030")) == h("6983")
        assert card.process(h("0020000000")) == h("6983")
        assert card.pin_attempts == 0


class TestStoredValueInSession:
    """An SV debit inside a session: its signature comes with the Close answer."""

    def test_postponed_signature(self) -> None:
        """The debit answers 9000 with no data; Close gives 04 + signature lo, then the MAC."""
        card, profile = card_of("stored_value", "98", "7DFA")
        terminal = Terminal(card.process, profile)
        terminal.open(3)
        get = terminal.send(h("007C00091E"))
        assert get.ok and get.data[8:11] == h("0003E8")
        fields = h("C3 FFF6 1234 0900 F0 12345678 000010")
        kif, kvc, key = card.key_slot(3)
        hi, lo = sv_mac(
            sv_key(key, extended=False, kif=kif, kvc=kvc),
            h("7C00091E") + bytes(get),
            h("BA A1 B2") + fields,
            extended=False,
        )
        debit = CommandApdu(0x00, 0xBA, 0xA1, 0xB2, fields + hi)
        assert terminal.send(debit).sw == SW.OK
        assert terminal.send(h("00B201A400")).sw == SW.CONDITIONS_NOT_SATISFIED  # SV log
        closed = terminal.close()
        assert closed.ok and closed.data[:4] == h("04") + lo
        assert card.sv_balance == 990


class TestPreOpen:
    """Pre-open (2.8) on an extended card."""

    def test_pre_open_announces_the_open(self) -> None:
        """The pre-open answer (6200) equals the following real Open's answer."""
        card, _ = card_of("extended", "7A1B2C3D4E")
        pre = card.process(h("008A0202010000"))
        assert pre[-2:] == h("6200")
        opened = card.process(h("008A02020900C1C2C3C4C5C6C7C800"))
        assert opened[:-2] == pre[:-2] and opened[-2:] == h("9000")
