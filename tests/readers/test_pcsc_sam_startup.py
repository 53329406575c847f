# SPDX-License-Identifier: Apache-2.0
"""`validator run` start-up with a SAM behind pcscd: ATR check, Unlock from the key file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from calypso.emulator.dispatch import CardEmulator
from lab.pcscd import CARD_READER, SAM_READER, InsertCard, PrivatePcscd
from sam.keys import load_keys
from sam.software.dispatch import SoftwareSam
from validator.app.settings import load_settings
from validator.app.station import RunError, open_sam
from validator.app.station import load_journal_key as journal_key
from validator.journal.verify import verify_journal
from yamlconfig import ConfigError

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[2] / "config"
UNLOCK = "F0E1D2C3B4A5968778695A4B3C2D1E0F"


@pytest.fixture
def locked_config(tmp_path: Path) -> Path:
    """The shipped configuration whose simulation key file locks the SAM."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    keys = target / "keys.sim.yaml"
    keys.write_text(keys.read_text() + f'\nlocked: true\nunlock_data: "{UNLOCK}"\n')
    return target


class TestSamStartup:
    """What serve() does with a SAM in a PC/SC reader before the first tap."""

    def test_locked_sam_is_unlocked(
        self, pcscd: PrivatePcscd, insert_card: InsertCard, locked_config: Path
    ) -> None:
        """A locked SAM is unlocked with the key file's unlock data, then serves a session."""
        settings = load_settings(locked_config)
        keys = load_keys(locked_config / settings.keys, allow_simulation=True)
        software = SoftwareSam(keys, locked=True, unlock_data=bytes.fromhex(UNLOCK))
        insert_card(software, SAM_READER)
        sam = open_sam(f"pcsc:{re.escape(SAM_READER)}", locked_config, settings)
        channel = sam.channel
        try:
            assert not software.locked
            sam.prefetch()  # a locked SAM would answer 6985
            assert channel.exchanges[0].command[1] == 0x20  # Unlock came first
        finally:
            channel.connection.close()

    def test_a_card_is_not_a_sam(self, pcscd: PrivatePcscd, insert_card: InsertCard) -> None:
        """A transit card in the SAM slot is refused at start-up, with its ATR."""
        insert_card(CardEmulator.from_profile(CONFIG / "cards" / "season_pass.yaml"), SAM_READER)
        settings = load_settings(CONFIG)
        with pytest.raises(RunError, match="not a Calypso SAM"):
            open_sam(f"pcsc:{re.escape(SAM_READER)}", CONFIG, settings)

    def test_atr_filter(self, pcscd: PrivatePcscd, insert_card: InsertCard) -> None:
        """sam_atr_filter refuses a SAM whose ATR does not match."""
        insert_card(
            SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True), SAM_READER
        )
        settings = load_settings(CONFIG).model_copy(update={"sam_atr_filter": "3B.*D0.*"})
        with pytest.raises(RunError, match="sam_atr_filter"):
            open_sam(f"pcsc:{re.escape(SAM_READER)}", CONFIG, settings)
        assert CARD_READER  # the card reader is untouched by these checks


class TestJournalKey:
    """journal_key_file MACs every entry."""

    def test_key_file(self, tmp_path: Path) -> None:
        """A hex key file gives the journal its HMAC key; a short one is refused."""
        (tmp_path / "journal.key").write_text("00112233445566778899AABBCCDDEEFF\n")
        (tmp_path / "journal.key").chmod(0o600)  # the production key-file rule (issue 15.5)
        settings = load_settings(CONFIG).model_copy(update={"journal_key_file": "journal.key"})
        key = journal_key(tmp_path, settings)
        assert key == bytes.fromhex("00112233445566778899AABBCCDDEEFF")
        (tmp_path / "short.key").write_text("0011")
        (tmp_path / "short.key").chmod(0o600)
        with pytest.raises(ConfigError, match="at least 16 bytes"):
            journal_key(tmp_path, settings.model_copy(update={"journal_key_file": "short.key"}))
        from validator.journal.writer import Journal

        with Journal(tmp_path / "j", key=key) as journal:
            journal.append({"tap": 1})
        assert verify_journal(tmp_path / "j", key=key).ok
