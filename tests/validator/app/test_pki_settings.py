# SPDX-License-Identifier: Apache-2.0
"""PKI settings (issue 19): trusted roots, the chain policy, the revocation list, no SAM."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import CONFIG

from calypso.pki.chain import DatePolicy
from calypso.pki.fields import CaScope
from validator.app.settings import load_settings, load_trust
from validator.cli.common import EXIT_CONFIG
from validator.cli.main import main
from yamlconfig import ConfigError

TEST_ROOT_REFERENCE = "0B54455354504B49524F4F540000000000000000000000000100000001"


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped configuration."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    return target


def edit(config_dir: Path, **changes: object) -> Path:
    """validator.yaml with top-level keys changed (None removes one)."""
    path = config_dir / "validator.yaml"
    document = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def pki(**changes: object) -> dict[str, object]:
    """The shipped pki section with changes."""
    section: dict[str, object] = {
        "roots": [{"file": "pki/test_pki_root.yaml", "reference": TEST_ROOT_REFERENCE}],
        "scopes": ["production", "test"],
    }
    section.update(changes)
    return section


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of ``path`` containing ``needle``."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def check_config(config_dir: Path) -> tuple[int, str, str]:
    """``validator check-config``: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, ["check-config", "--config", str(config_dir)])
    return result.exit_code, result.stdout, result.stderr


class TestShipped:
    """The embedded default trusts the test root, in simulation."""

    def test_shipped_trust(self) -> None:
        """The shipped settings trust one root, the test scope, and reject date problems."""
        settings = load_settings(CONFIG, environ={})
        trust = load_trust(CONFIG, settings)
        assert trust is not None
        assert [root.reference.hex() for root in trust.roots] == [TEST_ROOT_REFERENCE]
        assert trust.policy.scopes == {CaScope.PRODUCTION, CaScope.TEST, CaScope.ANY}
        assert trust.policy.expired is DatePolicy.REJECT
        assert trust.cache_size == 10_000

    def test_check_config_names_the_roots(self) -> None:
        """check-config counts the trusted roots."""
        code, out, _ = check_config(CONFIG)
        assert code == 0
        assert "1 trusted PKI root," in out

    def test_no_root_is_pki_off(self, config_copy: Path) -> None:
        """Without the pki section the validator trusts no root: PKI mode is off."""
        edit(config_copy, pki=None)
        assert load_trust(config_copy, load_settings(config_copy, environ={})) is None


class TestRefusals:
    """A trust that cannot be honoured stops start-up and check-config, with file and line."""

    def test_test_scope_needs_simulation(self, config_copy: Path) -> None:
        """The test scope outside simulation, without the opt-in, is refused at its line."""
        path = edit(config_copy, simulation=False)
        code, _, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert f"validator.yaml:{line_of(path, 'pki:')}: pki: Value error, scopes:" in err
        assert "allow_test_material" in err

    def test_opt_in_allows_the_test_scope(self, config_copy: Path) -> None:
        """allow_test_material lets an operator trust the test PKI on purpose."""
        edit(config_copy, simulation=False, pki=pki(allow_test_material=True))
        trust = load_trust(config_copy, load_settings(config_copy, environ={}))
        assert trust is not None and CaScope.TEST in trust.policy.scopes

    def test_test_root_needs_simulation(self, config_copy: Path) -> None:
        """A root file marked test material is refused outside simulation, at its own line."""
        edit(config_copy, simulation=False, pki=pki(scopes=["production"]))
        root = config_copy / "pki" / "test_pki_root.yaml"
        with pytest.raises(ConfigError) as caught:
            load_trust(config_copy, load_settings(config_copy, environ={}))
        assert caught.value.path == root
        assert caught.value.line == line_of(root, "test_material:")

    def test_reference_must_be_the_files(self, config_copy: Path) -> None:
        """A reference that is not the root file's is refused at the reference's line."""
        other = "0B" + "00" * 28
        path = edit(
            config_copy, pki=pki(roots=[{"file": "pki/test_pki_root.yaml", "reference": other}])
        )
        code, _, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert f"validator.yaml:{line_of(path, 'reference:')}: pki.roots.0.reference" in err

    def test_malformed_reference(self, config_copy: Path) -> None:
        """A reference of the wrong size is refused by the settings' schema, with its line."""
        path = edit(config_copy, pki=pki(roots=[{"file": "x.yaml", "reference": "0B00"}]))
        with pytest.raises(ConfigError) as caught:
            load_settings(config_copy, environ={})
        assert caught.value.line == line_of(path, "reference:")
        assert "29 bytes" in str(caught.value)

    def test_missing_root_file(self, config_copy: Path) -> None:
        """A root file that is not there is named."""
        (config_copy / "pki" / "test_pki_root.yaml").unlink()
        code, _, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert "test_pki_root.yaml" in err and "cannot read" in err

    def test_malformed_root_file(self, config_copy: Path) -> None:
        """A root modulus of the wrong size is refused at its line in the root file."""
        root = config_copy / "pki" / "test_pki_root.yaml"
        root.write_text(root.read_text().replace("modulus: 97", "modulus: 0097"))
        with pytest.raises(ConfigError) as caught:
            load_trust(config_copy, load_settings(config_copy, environ={}))
        assert caught.value.path == root
        assert caught.value.line == line_of(root, "modulus:")

    def test_no_sam_needs_a_root(self, config_copy: Path) -> None:
        """sam_reader none with no trusted root could validate no card: refused at its line."""
        path = edit(config_copy, sam_reader="none", pki=None)
        code, _, err = check_config(config_copy)
        assert code == EXIT_CONFIG
        assert f"validator.yaml:{line_of(path, 'sam_reader:')}: sam_reader: 'none'" in err

    def test_no_sam_with_a_root(self, config_copy: Path) -> None:
        """sam_reader none with a root is valid, and check-config says there is no SAM."""
        edit(config_copy, sam_reader="none")
        code, out, _ = check_config(config_copy)
        assert code == 0
        assert "no SAM" in out


class TestRevocations:
    """The revocation list becomes the chain policy's."""

    def test_revocation_list_loaded(self, config_copy: Path) -> None:
        """CA references, serials and certificates of the list are revoked."""
        (config_copy / "pki" / "revoked.yaml").write_text(
            "ca_references: ['" + "09" + "AB" * 28 + "']\n"
            "card_serials: [00000000C0FFEE12]\n"
            "card_certificates: [{serial: 00000000C0FFEE11, index: 2}]\n"
        )
        edit(config_copy, pki=pki(revocations="pki/revoked.yaml", expired="accept"))
        trust = load_trust(config_copy, load_settings(config_copy, environ={}))
        assert trust is not None
        revoked = trust.policy.revocations
        assert revoked.ca_references == {bytes.fromhex("09" + "AB" * 28)}
        assert revoked.card_serials == {bytes.fromhex("00000000C0FFEE12")}
        assert revoked.card_certificates == {(bytes.fromhex("00000000C0FFEE11"), 2)}
        assert trust.policy.expired is DatePolicy.ACCEPT

    def test_malformed_revocation_list(self, config_copy: Path) -> None:
        """A serial of the wrong size in the list is refused at its line."""
        path = config_copy / "pki" / "revoked.yaml"
        path.write_text("card_serials:\n  - C0FFEE\n")
        edit(config_copy, pki=pki(revocations="pki/revoked.yaml"))
        with pytest.raises(ConfigError) as caught:
            load_trust(config_copy, load_settings(config_copy, environ={}))
        assert caught.value.path == path
        assert caught.value.line == line_of(path, "card_serials")
