# SPDX-License-Identifier: Apache-2.0
"""``python -m lab.pki``: make the test PKI (TEST MATERIAL) and PKI card profiles from a checkout.

    python -m lab.pki make-test-pki [--out config/pki] [--cards-out config/cards/pki] [--force]
    python -m lab.pki issue-card --pki config/pki --profile BASE.yaml --serial HEX --out FILE

``make-test-pki`` generates a root (PCA) key, a CA key and the CA certificate, writes them to
``--out`` and makes a PKI card profile for each base profile (by default the demo multi-trip
and season pass cards) into ``--cards-out``. ``issue-card`` certifies one more card with an
existing test PKI. Only public data and file names are printed, never a private key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lab.paths import CONFIG
from lab.pki.material import (
    ROOT_FILE,
    load_test_pki,
    make_test_pki,
    pki_card_profile,
    save_card_profile,
    save_test_pki,
)

# Base profile -> the serial of its PKI twin (the base serial + 10h: never the same card).
DEFAULT_CARDS = {
    "multi_trip": bytes.fromhex("00000000C0FFEE12"),
    "season_pass": bytes.fromhex("00000000C0FFEE11"),
}


def _make(args: argparse.Namespace) -> int:
    out: Path = args.out
    if (out / ROOT_FILE).exists() and not args.force:
        print(f"{out / ROOT_FILE} exists: give --force to replace the test PKI", file=sys.stderr)
        return 2
    pki = make_test_pki()
    written = save_test_pki(pki, out)
    for name, serial in DEFAULT_CARDS.items():
        document = pki_card_profile(args.cards / f"{name}.yaml", pki, serial=serial)
        written.append(save_card_profile(document, args.cards_out / f"test_pki_{name}.yaml"))
    print(f"test root {pki.root.reference.hex()}")
    print(f"test CA   {pki.ca.reference.hex()} (scope test, may sign card certificates)")
    for path in written:
        print(f"wrote {path}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    pki = load_test_pki(args.pki)
    serial = bytes.fromhex(args.serial)
    if len(serial) != 8:
        print("--serial is 8 bytes of hex", file=sys.stderr)
        return 2
    document = pki_card_profile(args.profile, pki, serial=serial, index=args.index)
    print(f"wrote {save_card_profile(document, args.out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m lab.pki", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make-test-pki", help="new root, CA and PKI card profiles")
    make.add_argument("--out", type=Path, default=CONFIG / "pki")
    make.add_argument("--cards", type=Path, default=CONFIG / "cards", help="base profiles")
    make.add_argument("--cards-out", type=Path, default=CONFIG / "cards" / "pki")
    make.add_argument("--force", action="store_true", help="replace an existing test PKI")
    make.set_defaults(run=_make)
    issue = commands.add_parser("issue-card", help="certify one more card with a test PKI")
    issue.add_argument("--pki", type=Path, default=CONFIG / "pki")
    issue.add_argument("--profile", type=Path, required=True, help="the base card profile")
    issue.add_argument("--serial", required=True, help="the new card's serial (8 bytes, hex)")
    issue.add_argument("--index", type=int, default=1, help="the certificate index")
    issue.add_argument("--out", type=Path, required=True)
    issue.set_defaults(run=_issue)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
