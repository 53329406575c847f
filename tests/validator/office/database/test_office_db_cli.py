# SPDX-License-Identifier: Apache-2.0
"""``validator office init-db`` and ``validator office ingest``: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from office_journals import JOURNAL_KEY, changed, count, lines_of, tap_lines, write_journal

from validator.cli.main import main

pytest_plugins = ["postgres_fixtures"]
pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A 60-tap journal with HMACs (and the closing intents of its Closes), in several files."""
    return write_journal(tmp_path_factory.mktemp("cli") / "validator-1")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """The journal key as hex, mode 0600."""
    path = tmp_path / "journal.key"
    path.write_text(JOURNAL_KEY.hex(), encoding="utf-8")
    path.chmod(0o600)
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``validator ...``: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_init_db_then_up_to_date(empty_db: str) -> None:
    """init-db creates the schema once, then says it is up to date."""
    assert run("office", "init-db", "--db", empty_db)[:2] == (
        0,
        "office schema version 2 (was none)\n",
    )
    assert run("office", "init-db", "--db", empty_db)[:2] == (
        0,
        "office schema version 2: up to date\n",
    )


def test_ingest_twice(office_db: str, journal: list[Path], key_file: Path) -> None:
    """Each file's new taps and the anchor, then 'already ingested' for each: exit 0 both times."""
    args = ("office", "ingest", "--db", office_db, str(journal[0].parent))
    code, out, err = run(*args, "--journal-key-file", str(key_file))
    assert code == 0, err
    last = len(lines_of(journal))  # the taps and their closing intents
    assert out.count("new taps") == len(journal)
    assert out.rstrip().endswith(f"validator-1 anchored at seq {last}")
    assert "warning" not in err
    code, out, err = run(*args, "--journal-key-file", str(key_file))
    assert code == 0 and out.count("already ingested, nothing added") == len(journal)
    assert count(office_db, "taps") == 60


def test_ingest_without_key_warns(office_db: str, journal: list[Path]) -> None:
    """Without a journal key the HMACs are not checked, and stderr says so."""
    code, _, err = run("office", "ingest", str(journal[0]), env={"CALYPSO_OFFICE_DB": office_db})
    assert code == 0 and "HMACs were not checked" in err


def test_break_exits_1_with_the_break(office_db: str, journal: list[Path], tmp_path: Path) -> None:
    """A missing entry: exit 1, the break printed and in the JSON document."""
    lines = lines_of(journal)
    folder = tmp_path / "in" / "validator-1"
    folder.mkdir(parents=True)
    (folder / journal[0].name).write_text("\n".join([*lines[:9], *lines[10:]]) + "\n")
    code, out, _ = run("office", "ingest", "--db", office_db, str(folder), "--json")
    assert code == 1
    (result,) = json.loads(out)["files"]
    assert result["breaks"][0]["kind"] == "missing" and result["breaks"][0]["seq"] == 10
    assert result["anchor"]["seq"] == 9 and result["held"] == len(lines) - 10


def test_edited_entry_printed(office_db: str, journal: list[Path], tmp_path: Path) -> None:
    """An edited entry under the key: exit 1 and an 'integrity break' line naming its seq."""
    lines = lines_of(journal)
    path = tmp_path / "validator-1" / journal[0].name
    path.parent.mkdir()
    path.write_text("\n".join([*lines[:4], changed(lines[4], debit=999), *lines[5:]]) + "\n")
    key = tmp_path / "k"
    key.write_text(JOURNAL_KEY.hex())
    key.chmod(0o600)
    code, out, _ = run(
        "office", "ingest", "--db", office_db, str(path), "--journal-key-file", str(key)
    )
    assert code == 1 and "integrity break: hmac_failure at seq 5" in out


def test_no_schema_exits_2(empty_db: str, journal: list[Path]) -> None:
    """A database without the office schema: exit 2, the message names init-db."""
    code, _, err = run("office", "ingest", "--db", empty_db, str(journal[0]))
    assert code == 2 and "init-db" in err


def test_unreachable_database_exits_2(tmp_path: Path, journal: list[Path]) -> None:
    """No server: exit 2 and one error line, no traceback."""
    code, _, err = run("office", "init-db", "--db", f"postgresql://x@/y?host={tmp_path}")
    assert code == 2 and err.startswith("error: cannot connect") and "Traceback" not in err


def test_a_late_file_is_taken_in_when_the_gap_fills(
    office_db: str, journal: list[Path], key_file: Path
) -> None:
    """The second file first (exit 1, held), then the first: the held entries continue it."""
    args = ("office", "ingest", "--db", office_db, "--journal-key-file", str(key_file))
    code, out, _ = run(*args, str(journal[1]))
    assert code == 1 and "integrity break: missing at seq 1" in out
    code, out, _ = run(*args, str(journal[0]))
    held = journal[1].read_text().splitlines()
    assert code == 0 and f"{len(held)} held entries now continue it" in out
    first = tap_lines(journal[0].read_text().splitlines())
    assert count(office_db, "taps") == len(first) + len(tap_lines(held))
