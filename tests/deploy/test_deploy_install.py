# SPDX-License-Identifier: Apache-2.0
"""deploy/install.sh in a throw-away root: the tree, modes and owners, twice; then uninstall."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "install.sh"
FAST = ["--no-package", "--no-apt"]  # offline and quick: no venv, no apt-get


def install(destdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the script into ``destdir``; fails the test on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    done = subprocess.run(  # noqa: S603 - our script, fixed arguments
        ["/bin/sh", str(SCRIPT), "--destdir", str(destdir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def tree(destdir: Path) -> dict[str, tuple[str, int, int, int]]:
    """path -> (kind, mode, uid, gid) for everything under ``destdir``."""
    found = {}
    for path in sorted(destdir.rglob("*")):
        info = path.lstat()
        kind = "d" if path.is_dir() else "f"
        found["/" + str(path.relative_to(destdir))] = (
            kind,
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            info.st_gid,
        )
    return found


def service_ids(destdir: Path) -> tuple[int, int] | None:
    """The staged calypso-validator uid and gid (None without systemd-sysusers)."""
    passwd = destdir / "etc" / "passwd"
    if not passwd.exists():
        return None
    for line in passwd.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == "calypso-validator":
            return int(fields[2]), int(fields[3])
    return None


EXPECTED = {
    "/etc/calypso-validator": ("d", 0o750),
    "/etc/calypso-validator/validator.yaml": ("f", 0o640),
    "/etc/calypso-validator/fares.yaml": ("f", 0o640),
    "/var/lib/calypso-validator": ("d", 0o750),
    "/var/lib/calypso-validator/journal": ("d", 0o750),
    "/etc/systemd/system/calypso-validator.service": ("f", 0o644),
    "/etc/udev/rules.d/60-calypso-validator-nfc.rules": ("f", 0o644),
    "/etc/sysusers.d/calypso-validator.conf": ("f", 0o644),
    "/usr/local/bin/calypso-validator": ("f", 0o755),
    "/usr/local/share/doc/calypso-validator/operations.md": ("f", 0o644),
}


class TestInstall:
    """The production install (templates, no package)."""

    def test_tree_twice(self, tmp_path: Path) -> None:
        """Two runs give the same tree with the expected modes (and owners, as root)."""
        root = tmp_path / "root"
        first = install(root, *FAST)
        found = tree(root)
        for path, (kind, mode) in EXPECTED.items():
            assert path in found, path
            assert found[path][:2] == (kind, mode), (path, oct(found[path][1]))
        assert not (root / "opt").exists()  # --no-package
        assert "installed /etc/calypso-validator/validator.yaml" in first.stdout
        (root / "var/lib/calypso-validator/journal/journal-20260301-0001.jsonl").write_text("{}\n")
        second = install(root, *FAST)
        assert "kept /etc/calypso-validator/validator.yaml" in second.stdout
        again = tree(root)
        journal_file = "/var/lib/calypso-validator/journal/journal-20260301-0001.jsonl"
        assert {k: v for k, v in again.items() if k != journal_file} == found
        unit = root / "etc/systemd/system/calypso-validator.service"
        assert unit.read_text() == (ROOT / "deploy/systemd/calypso-validator.service").read_text()
        wrapper = (root / "usr/local/bin/calypso-validator").read_text()
        assert "CALYPSO_VALIDATOR_CONFIG:-/etc/calypso-validator" in wrapper
        assert "exec /opt/calypso-validator/bin/validator" in wrapper

    def test_owners(self, tmp_path: Path) -> None:
        """As root: configuration root:calypso-validator, state and journal the service's."""
        if os.geteuid() != 0:
            pytest.skip("owners are set only when the script runs as root")
        if shutil.which("systemd-sysusers") is None:
            pytest.skip("systemd-sysusers is missing: apt-get install systemd")
        root = tmp_path / "root"
        install(root, *FAST)
        ids = service_ids(root)
        assert ids is not None, (root / "etc/passwd").read_text()
        uid, gid = ids
        found = tree(root)
        assert found["/etc/calypso-validator"][2:] == (0, gid)
        assert found["/etc/calypso-validator/validator.yaml"][2:] == (0, gid)
        assert found["/var/lib/calypso-validator"][2:] == (uid, gid)
        assert found["/var/lib/calypso-validator/journal"][2:] == (uid, gid)
        passwd = (root / "etc/passwd").read_text()
        assert ":/var/lib/calypso-validator:/usr/sbin/nologin" in passwd

    def test_production_keys_locked_down(self, tmp_path: Path) -> None:
        """A keys.yaml dropped in with mode 0644 is set to 0600 (service-owned) at the next run."""
        root = tmp_path / "root"
        install(root, *FAST)
        keys = root / "etc/calypso-validator/keys.yaml"
        keys.write_text("keys: []\n")
        keys.chmod(0o644)
        done = install(root, *FAST)
        assert stat.S_IMODE(keys.stat().st_mode) == 0o600
        assert "keys.yaml mode 0600" in done.stdout
        ids = service_ids(root)
        if os.geteuid() == 0 and ids is not None:
            assert keys.stat().st_uid == ids[0]

    def test_demo_configuration(self, tmp_path: Path) -> None:
        """--demo installs the embedded default with the journal in /var/lib."""
        root = tmp_path / "root"
        install(root, *FAST, "--demo")
        install(root, *FAST, "--demo")
        etc = root / "etc/calypso-validator"
        assert (etc / "cards" / "multi_trip.yaml").exists()
        assert stat.S_IMODE((etc / "keys.sim.yaml").stat().st_mode) == 0o640
        settings = (etc / "validator.yaml").read_text()
        assert "journal_dir: /var/lib/calypso-validator/journal" in settings
        assert "simulation: true" in settings

    def test_uninstall_keeps_journals(self, tmp_path: Path) -> None:
        """--uninstall removes program, unit, rules and wrapper; journals and config stay."""
        root = tmp_path / "root"
        install(root, *FAST)
        (root / "opt/calypso-validator/bin").mkdir(parents=True)  # as if the venv were there
        journal = root / "var/lib/calypso-validator/journal/journal-20260301-0001.jsonl"
        journal.write_text("{}\n")
        done = install(root, "--uninstall")
        assert "kept" in done.stdout
        assert journal.read_text() == "{}\n"
        assert (root / "etc/calypso-validator/validator.yaml").exists()
        for gone in (
            "opt/calypso-validator",
            "etc/systemd/system/calypso-validator.service",
            "etc/udev/rules.d/60-calypso-validator-nfc.rules",
            "usr/local/bin/calypso-validator",
            "usr/local/share/doc/calypso-validator",
        ):
            assert not (root / gone).exists(), gone

    def test_refuses_unknown_option(self, tmp_path: Path) -> None:
        """A typo stops the script before it changes anything."""
        done = subprocess.run(  # noqa: S603 - our script, fixed arguments
            ["/bin/sh", str(SCRIPT), "--destdir", str(tmp_path / "r"), "--bogus"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 64 and "unknown option --bogus" in done.stderr
        assert not (tmp_path / "r").exists()


def test_shellcheck() -> None:
    """The script is clean POSIX sh for shellcheck (installed by make system-deps)."""
    tool = shutil.which("shellcheck")
    if tool is None:
        pytest.skip("shellcheck is missing: apt-get install shellcheck (make system-deps)")
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [tool, "-s", "sh", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout


class TestUpgradeKeepsKeys:
    """Issue 15.4: an upgrade (a second run) never makes a key file one the validator refuses."""

    def test_journal_key_generated_once(self, tmp_path: Path) -> None:
        """A fresh install generates a 32-byte hex journal key, 0600, referenced by the config."""
        from validator.app.settings import load_settings
        from validator.app.station import load_journal_key as journal_key

        root = tmp_path / "root"
        done = install(root, *FAST)
        etc = root / "etc/calypso-validator"
        settings = load_settings(etc, environ={})
        assert settings.journal_key_file == "journal.key", done.stdout
        key_file = etc / "journal.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = journal_key(etc, settings)
        assert key is not None and len(key) == 32
        text = key_file.read_text()
        assert key.hex() not in done.stdout + done.stderr  # never printed
        install(root, *FAST)
        assert key_file.read_text() == text  # an upgrade keeps the key
        assert load_settings(etc, environ={}).journal_key_file == "journal.key"
        ids = service_ids(root)
        if os.geteuid() == 0 and ids is not None:
            assert key_file.stat().st_uid == ids[0]

    def test_demo_install_gets_a_journal_key(self, tmp_path: Path) -> None:
        """--demo (whose shipped file has no journal_key_file) is given one as well."""
        from validator.app.settings import load_settings

        root = tmp_path / "root"
        install(root, *FAST, "--demo")
        install(root, *FAST, "--demo")
        etc = root / "etc/calypso-validator"
        assert load_settings(etc, environ={}).journal_key_file == "journal.key"
        assert (etc / "validator.yaml").read_text().count("journal_key_file:") == 1

    def test_private_files_stay_private(self, tmp_path: Path) -> None:
        """A 0600 journal key and a production key file named by ``keys:`` keep mode and owner."""
        from sam.keys import check_permissions

        root = tmp_path / "root"
        install(root, *FAST)
        etc = root / "etc/calypso-validator"
        conf = etc / "validator.yaml"
        conf.write_text(conf.read_text().replace("keys: keys.yaml", "keys: gate-sam.yaml"))
        sam_keys = etc / "gate-sam.yaml"
        sam_keys.write_text("keys: []\n")
        sam_keys.chmod(0o600)
        other = etc / "journal.key"
        if not other.exists():  # as an operator would have made it before the script did
            other.write_text("00" * 32 + "\n")
            conf.write_text(conf.read_text() + "journal_key_file: journal.key\n")
        other.chmod(0o600)
        ids = service_ids(root)
        if os.geteuid() == 0 and ids is not None:
            os.chown(sam_keys, ids[0], ids[1])
            os.chown(other, ids[0], ids[1])
        before = {
            p.name: (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid) for p in (sam_keys, other)
        }
        install(root, *FAST)
        after = {
            p.name: (stat.S_IMODE(p.stat().st_mode), p.stat().st_uid) for p in (sam_keys, other)
        }
        assert after == before
        for path in (sam_keys, other):
            check_permissions(path)  # the validator's own rule accepts them

    def test_unreferenced_private_file_not_loosened(self, tmp_path: Path) -> None:
        """A 0600 file the script cannot tell is a key (any name) is never made group-readable."""
        root = tmp_path / "root"
        install(root, *FAST)
        secret = root / "etc/calypso-validator/site-secret.bin"
        secret.write_text("x\n")
        secret.chmod(0o600)
        owner = secret.stat().st_uid
        install(root, *FAST)
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert secret.stat().st_uid == owner


def test_upgrade_gives_the_journal_back(tmp_path: Path) -> None:
    """Issue 15.18: journal files and the lock left by a root run go back to the service user."""
    if os.geteuid() != 0:
        pytest.skip("owners are set only when the script runs as root")
    root = tmp_path / "root"
    install(root, *FAST)
    ids = service_ids(root)
    if ids is None:
        pytest.skip("systemd-sysusers is missing: apt-get install systemd")
    journal = root / "var/lib/calypso-validator/journal"
    made = [journal / "journal-00000001.jsonl", journal / ".lock", journal / "sub" / "x.jsonl"]
    made[2].parent.mkdir()
    for path in made:
        path.write_text("{}\n")
        os.chown(path, 0, 0)
    os.chown(made[2].parent, 0, 0)
    install(root, *FAST)
    for path in [*made, made[2].parent]:
        assert (path.stat().st_uid, path.stat().st_gid) == ids, path
