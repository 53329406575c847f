# SPDX-License-Identifier: Apache-2.0
"""Model-based test of the card emulator: random sessions, writes, aborts and power losses."""

from __future__ import annotations

from calypso_terminal import Terminal, h, scripted_rng, vector_profile
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from calypso.emulator.dispatch import CardEmulator, PowerLostError
from readers.apdu import SW, CommandApdu

SFI_EVENTS, SFI_CONTRACTS, SFI_COUNTERS = 0x08, 0x09, 0x19
BUFFER = 430  # startup info byte 0 = 0A (calypso-protocol 2.2)


class CardModel(RuleBasedStateMachine):
    """A simple model of records, counters, transaction counter and ratification flag."""

    def __init__(self) -> None:
        super().__init__()
        self.profile = vector_profile()
        self.card = CardEmulator(self.profile, scripted_rng())
        self.terminal = Terminal(self.card.process, self.profile)
        image = self.card.snapshot()
        self.files = {sfi: list(records) for sfi, records in image.files.items()}
        self.tc = image.transaction_counter
        self.ratified = image.ratified
        self.pending: dict[int, list[bytes]] | None = None
        self.key = 0
        self.buffer = 0
        self.ratification_pending = False

    # --- helpers ------------------------------------------------------------------------------

    def _view(self) -> dict[int, list[bytes]]:
        return self.pending if self.pending is not None else self.files

    def _counter(self, number: int) -> int:
        record = self._view()[SFI_COUNTERS][0]
        return int.from_bytes(record[3 * (number - 1) : 3 * number], "big")

    def _send_write(self, command: CommandApdu, allowed: bool, fits_value: bool = True) -> bool:
        response = self.terminal.send(command)
        cost = len(command.data) + 6 + (1 if command.le is not None else 0)
        if not allowed:
            assert response.sw == SW.SECURITY_NOT_SATISFIED
            return False
        if not fits_value:
            assert response.sw == SW.INCORRECT_PARAMETERS_IN_DATA
            return False
        if self.buffer + cost > BUFFER:
            assert response.sw == SW.SESSION_BUFFER_OVERFLOW
            return False
        assert response.ok, f"{response.sw:04X}"
        self.buffer += cost
        return True

    def _any_command(self) -> None:
        if self.ratification_pending:
            self.ratification_pending = False
            self.ratified = True

    # --- rules --------------------------------------------------------------------------------

    @precondition(lambda self: self.pending is None)
    @rule(key=st.sampled_from([2, 3]))
    def open_session(self, key: int) -> None:
        """Open a session with the load or debit key."""
        self._any_command()
        response = self.terminal.open(key)
        assert response.ok
        assert response.data[4] == (0 if self.ratified else 1)
        self.tc -= 1
        self.pending = {sfi: list(records) for sfi, records in self.files.items()}
        self.key = key
        self.buffer = 0

    @precondition(lambda self: self.pending is not None)
    @rule(marker=st.integers(0, 255), size=st.integers(1, 29))
    def append_event(self, marker: int, size: int) -> None:
        """Append an event (session3)."""
        data = bytes([marker]) * size
        command = CommandApdu(0x00, 0xE2, 0x00, SFI_EVENTS * 8, data)
        if self._send_write(command, allowed=True) and self.pending is not None:
            events = self.pending[SFI_EVENTS]
            self.pending[SFI_EVENTS] = [data.ljust(29, b"\x00"), *events[:-1]]

    @precondition(lambda self: self.pending is not None)
    @rule(record=st.integers(1, 4), marker=st.integers(0, 255), size=st.integers(1, 29))
    def update_contract(self, record: int, marker: int, size: int) -> None:
        """Update a contract (session2)."""
        data = bytes([marker]) * size
        command = CommandApdu(0x00, 0xDC, record, SFI_CONTRACTS * 8 + 4, data)
        if self._send_write(command, allowed=self.key <= 2) and self.pending is not None:
            old = self.pending[SFI_CONTRACTS][record - 1]
            self.pending[SFI_CONTRACTS][record - 1] = data + old[size:]

    @precondition(lambda self: self.pending is not None)
    @rule(number=st.integers(1, 4), delta=st.integers(0, 0x80), up=st.booleans())
    def change_counter(self, number: int, delta: int, up: bool) -> None:
        """Increase (session2) or decrease (session3) a counter."""
        value = self._counter(number) + (delta if up else -delta)
        ins = 0x32 if up else 0x30
        command = CommandApdu(0x00, ins, number, SFI_COUNTERS * 8, delta.to_bytes(3, "big"), le=0)
        allowed = self.key <= 2 if up else True
        fits = 0 <= value <= 0xFFFFFF
        if self._send_write(command, allowed, fits) and self.pending is not None:
            record = self.pending[SFI_COUNTERS][0]
            start = 3 * (number - 1)
            new = record[:start] + value.to_bytes(3, "big") + record[start + 3 :]
            self.pending[SFI_COUNTERS][0] = new

    @rule(sfi=st.sampled_from([SFI_EVENTS, SFI_CONTRACTS, SFI_COUNTERS]), record=st.integers(1, 4))
    def read_record(self, sfi: int, record: int) -> None:
        """Read a record: the card sees its own buffered writes."""
        self._any_command()
        records = self._view()[sfi]
        response = self.terminal.send(CommandApdu(0x00, 0xB2, record, sfi * 8 + 4, le=0))
        if record > len(records):
            assert response.sw == SW.RECORD_NOT_FOUND
        else:
            assert response.data == records[record - 1]

    @precondition(lambda self: self.pending is not None)
    @rule(ratify=st.booleans())
    def close_session(self, ratify: bool) -> None:
        """Close with a good MAC: everything lands."""
        assert self.terminal.close(ratify=ratify).ok
        assert self.pending is not None
        self.files, self.pending = self.pending, None
        self.ratified = ratify
        self.ratification_pending = not ratify

    @precondition(lambda self: self.pending is not None)
    @rule()
    def close_with_wrong_mac(self) -> None:
        """A wrong terminal MAC: 6988, nothing lands."""
        assert self.terminal.close(terminal_mac=h("00000000")).sw == SW.INCORRECT_SIGNATURE
        self.pending = None

    @precondition(lambda self: self.pending is not None)
    @rule()
    def abort(self) -> None:
        """Abort: nothing lands."""
        assert self.terminal.abort().ok
        self.pending = None

    @rule()
    def power_loss(self) -> None:
        """Power cut between commands: the session and its writes are gone."""
        self.card.power_off()
        self.card.power_on()
        self.terminal.mac = None
        self.pending = None
        self.ratification_pending = False

    @precondition(lambda self: self.pending is not None)
    @rule(cut=st.integers(1, 40), ratify=st.booleans())
    def power_loss_in_close(self, cut: int, ratify: bool) -> None:
        """Power cut at an internal write of Close: the card is before or after, never between."""
        self.card.power_fail_at(cut)
        try:
            self.terminal.close(ratify=ratify)
            landed = True
            self.ratification_pending = not ratify
        except PowerLostError:
            self.card.power_on()
            image = self.card.snapshot()
            assert self.pending is not None
            new = {s: tuple(r) for s, r in self.pending.items()}
            landed = image.files == new and image.ratified == ratify
            if not landed:
                assert image.files == {s: tuple(r) for s, r in self.files.items()}
                assert image.ratified == self.ratified
            self.ratification_pending = False
        self.card.power_fail_at(None)
        self.terminal.mac = None
        if landed and self.pending is not None:
            self.files = self.pending
            self.ratified = ratify
        self.pending = None

    @invariant()
    def committed_image_matches(self) -> None:
        """The card's committed EEPROM equals the model's."""
        image = self.card.snapshot()
        assert image.files == {sfi: tuple(records) for sfi, records in self.files.items()}
        assert image.transaction_counter == self.tc
        assert image.ratified == self.ratified or self.ratification_pending


CardModel.TestCase.settings = settings(max_examples=300, stateful_step_count=25, deadline=None)
TestCardModel = CardModel.TestCase
TestCardModel.__doc__ = "Random command sequences keep the card equal to the model."
