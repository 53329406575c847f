# SPDX-License-Identifier: Apache-2.0
"""Anti-tearing: power cut at every internal write of a commit, image reloaded from disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from calypso_terminal import Terminal, h, scripted_rng, vector_profile

from calypso.emulator.dispatch import CardEmulator, PowerLostError
from calypso.emulator.files import CardImage
from calypso.emulator.profile import CardProfile
from readers.apdu import CommandApdu

SFI_EVENTS, SFI_CONTRACTS, SFI_COUNTERS = 0x08, 0x09, 0x19


def modifications(count: int) -> list[CommandApdu]:
    """``count`` writes of a load session: appends, updates and counter changes in turn."""
    commands = [
        CommandApdu(0x00, 0xE2, 0x00, SFI_EVENTS * 8, bytes([0xE0 + i]) * 29)
        if i % 3 == 0
        else CommandApdu(0x00, 0xDC, i % 4 + 1, SFI_CONTRACTS * 8 + 4, bytes([0xC0 + i]) * 29)
        if i % 3 == 1
        else CommandApdu(0x00, 0x30, 1, SFI_COUNTERS * 8, (i + 1).to_bytes(3, "big"), le=0)
        for i in range(count)
    ]
    return commands


def run_session(card: CardEmulator, profile: CardProfile, count: int) -> Terminal:
    """Open a load session and send ``count`` modifications, all accepted."""
    terminal = Terminal(card.process, profile)
    assert terminal.open(2).ok
    for command in modifications(count):
        assert terminal.send(command).ok
    return terminal


def image(card: CardEmulator) -> CardImage:
    """The committed image."""
    return card.snapshot()


class TestTearAtEveryWrite:
    """A power cut before any internal write of Close leaves the card before or after."""

    @pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6])
    def test_every_cut_point(self, tmp_path: Path, count: int) -> None:
        """Reloaded from disk, the card is as before the session, or as after Close."""
        profile = vector_profile(ratified=True)
        dry = CardEmulator(profile, scripted_rng(), image_path=tmp_path / "dry.json")
        terminal = run_session(dry, profile, count)
        before = image(dry)
        writes_before = dry.nv_writes
        assert terminal.close(ratify=False).ok
        after = image(dry)
        steps = dry.nv_writes - writes_before
        assert steps >= 2 * 2 + 2  # journal, flag, apply, clear: at least 2 cells
        assert not after.ratified and before.ratified
        outcomes = []
        for cut in range(1, steps + 1):
            path = tmp_path / f"cut{cut}.json"
            card = CardEmulator(profile, scripted_rng(), image_path=path)
            terminal = run_session(card, profile, count)
            card.power_fail_at(cut)
            with pytest.raises(PowerLostError):
                terminal.close(ratify=False)
            reloaded = CardEmulator(profile, image_path=path)
            state = image(reloaded)
            assert state in (before, after), f"cut before write {cut}: torn image"
            assert state.transaction_counter == before.transaction_counter
            outcomes.append(state == after)
            assert not list(tmp_path.glob(".*.tmp"))
        # Before the commit flag: the old image; from the flag on: the new one.
        flag_write = outcomes.index(True) + 1
        assert outcomes == [False] * (flag_write - 1) + [True] * (steps - flag_write + 1)

    def test_cut_before_ratification_write(self, tmp_path: Path) -> None:
        """Close P1=00 then a cut at the ratifying write: data kept, next Open says 01."""
        profile = vector_profile()
        path = tmp_path / "card.json"
        card = CardEmulator(profile, scripted_rng(), image_path=path)
        terminal = run_session(card, profile, 2)
        assert terminal.close(ratify=False).ok
        card.power_fail_at(1)
        with pytest.raises(PowerLostError):
            card.process(h("00B2000000"))
        reloaded = CardEmulator(profile, scripted_rng(), image_path=path)
        assert not reloaded.ratified
        assert Terminal(reloaded.process, profile).open(3).data[4] == 0x01

    def test_cut_inside_session_drops_writes(self, tmp_path: Path) -> None:
        """Power lost before Close: reloaded card has the old records and the new counter."""
        profile = vector_profile()
        path = tmp_path / "card.json"
        card = CardEmulator(profile, scripted_rng(), image_path=path)
        old = image(card)
        run_session(card, profile, 4)
        card.power_off()
        reloaded = CardEmulator(profile, image_path=path)
        assert image(reloaded).files == old.files
        assert reloaded.transaction_counter == old.transaction_counter - 1

    def test_same_card_recovers_at_power_on(self, tmp_path: Path) -> None:
        """Without reloading, power-on replays a committed journal on the same object."""
        profile = vector_profile()
        dry = CardEmulator(profile, scripted_rng())
        terminal = run_session(dry, profile, 3)
        start = dry.nv_writes
        assert terminal.close().ok
        steps = dry.nv_writes - start
        card = CardEmulator(profile, scripted_rng(), image_path=tmp_path / "card.json")
        terminal = run_session(card, profile, 3)
        card.power_fail_at(steps)  # the last write: clearing the flag after every cell moved
        with pytest.raises(PowerLostError):
            terminal.close()
        card.power_on()
        assert image(card) == image(dry)
        assert card.counter(SFI_COUNTERS, 1) == 0x64 - 3
        assert card.read_record(SFI_EVENTS, 1) == bytes([0xE0]) * 29
