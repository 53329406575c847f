# SPDX-License-Identifier: Apache-2.0
"""``validator demo`` HMACs its journal with the configured ``journal_key_file`` (issue 15.5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from conftest import CONFIG

from validator.cli.main import main
from validator.journal.writer import entry_mac, journal_files

KEY = bytes(range(32))


def test_demo_journal_replays_with_the_configured_key(tmp_path: Path) -> None:
    """A demo with ``journal_key_file`` set writes HMACed entries that replay clean with it."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    key_file = config / "journal.key"
    key_file.write_text(KEY.hex(), encoding="utf-8")
    key_file.chmod(0o600)
    settings = config / "validator.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + "\njournal_key_file: journal.key\n",
        encoding="utf-8",
    )
    journal = tmp_path / "journal"
    runner = CliRunner()
    demo = runner.invoke(
        main, ["demo", "--config", str(config), "--taps", "5", "--journal-dir", str(journal)]
    )
    assert demo.exit_code == 0, demo.output
    lines = [line for p in journal_files(journal) for line in p.read_text("utf-8").splitlines()]
    assert len(lines) >= 5
    for line in lines:
        entry = json.loads(line)
        assert entry["hmac"] == entry_mac(KEY, entry)
    replay = runner.invoke(main, ["replay", str(journal), "--config", str(config), "--json"])
    doc = json.loads(replay.output)
    assert replay.exit_code == 0 and doc["integrity"]["counts"] == {}
