# SPDX-License-Identifier: Apache-2.0
"""``validator doctor`` against the private pcscd: a real SAM reader, missing and present."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from lab.pcscd import SAM_READER, InsertCard, PrivatePcscd
from sam.software.dispatch import SoftwareSam
from validator.cli.main import main

pytest_plugins = ["pcsc_fixtures"]

CONFIG = Path(__file__).resolve().parents[3] / "config"


def doctor(tmp_path: Path, **settings: Any) -> tuple[int, dict[str, dict[str, str]]]:
    """Run ``validator doctor --json`` on the shipped configuration with ``settings`` on top."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / "validator.yaml"
    content = yaml.safe_load(path.read_text())
    content.update(journal_dir=str(tmp_path / "journal"), **settings)
    path.write_text(yaml.safe_dump(content))
    result = CliRunner().invoke(main, ["doctor", "--json", "--config", str(config)])
    report = json.loads(result.stdout)
    return result.exit_code, {check["name"]: check for check in report["checks"]}


def test_sam_reader_missing(pcscd: PrivatePcscd, tmp_path: Path) -> None:
    """pcscd answers but no reader matches the SAM pattern: the precise failure, exit 2."""
    code, checks = doctor(
        tmp_path, card_reader="pcsc:Test Card 00 00", sam_reader="pcsc:No Such SAM"
    )
    assert code == 2
    assert checks["pcscd"]["status"] == "pass" and SAM_READER in checks["pcscd"]["detail"]
    assert checks["card_reader"]["status"] == "pass"
    assert checks["sam_reader"]["status"] == "fail"
    assert checks["sam_reader"]["detail"].startswith("no PC/SC reader matches 'No Such SAM'")
    assert checks["sam"]["status"] == "fail"


def test_sam_reader_empty(pcscd: PrivatePcscd, tmp_path: Path) -> None:
    """The SAM reader is there but holds no SAM: sam fails and says to insert it."""
    code, checks = doctor(
        tmp_path, card_reader="pcsc:Test Card 00 00", sam_reader="pcsc:Test SAM 00 01"
    )
    assert code == 2
    assert checks["sam_reader"]["status"] == "pass"
    assert checks["sam"] == {
        "name": "sam",
        "status": "fail",
        "detail": "no SAM in the SAM reader",
        "hint": "insert the SAM (contacts down)",
    }


def test_sam_in_pcsc_reader(insert_card: InsertCard, tmp_path: Path) -> None:
    """A SAM served through pcscd: identified by its ATR, challenge served, keys all present."""
    software = SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)
    insert_card(software, SAM_READER)
    _, checks = doctor(
        tmp_path, card_reader="pcsc:Test Card 00 00", sam_reader=f"pcsc:{SAM_READER}"
    )
    assert checks["sam"]["status"] == "pass", checks["sam"]
    assert checks["sam"]["detail"] == "SAM C1 serial 5AFE0001; challenge served"
    assert checks["sam_keys"] == {
        "name": "sam_keys",
        "status": "pass",
        "detail": "the SAM holds the 4 keys of the key file",
        "hint": "",
    }
    # Simulation keys at a real reader: the one warning.
    assert checks["simulation"]["status"] == "warn"
