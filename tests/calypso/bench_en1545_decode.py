# SPDX-License-Identifier: Apache-2.0
"""Per-record decoding time of the EN 1545 structures, and of the layouts' typed views.

Not a test (pytest does not collect it): ``python tests/calypso/bench_en1545_decode.py``
prints, for the records of the shipped card profiles (config/cards: the Navigo-like and OùRA
Intercode cards, the Keyple demo's), the CPU microseconds per record (time.process_time, best
of 3) of ``decode_reference`` (the walk ``decode`` was before the compiled decoders), of
``decode``, and of the calypso.layouts views the validator builds from a record (decode, then
``get`` by name). On a checkout without ``decode_reference`` (before), both columns time
``decode``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from calypso.en1545 import codec, keyple_demo, tables  # noqa: E402
from calypso.en1545.contracts import contract_structure, structure_label  # noqa: E402
from calypso.en1545.schema import Structure  # noqa: E402
from calypso.layouts import intercode  # noqa: E402

CARDS = ROOT / "config" / "cards"
INTERCODE_CARDS = ("intercode.yaml", "oura.yaml")
DEMO_CARDS = ("season_pass.yaml", "multi_trip.yaml", "sv_purse.yaml")
RECORD = 29


def _files(card: str) -> dict[int, list[bytes]]:
    """A card profile's records by SFI, padded to their record size (counters as bytes)."""
    doc = yaml.safe_load((CARDS / card).read_text())
    out: dict[int, list[bytes]] = {}
    for entry in doc["files"]:
        if "counters" in entry:
            raw = b"".join(n.to_bytes(3, "big") for n in entry["counters"])
            out[entry["sfi"]] = [raw.ljust(entry.get("record_size", 27), b"\x00")]
        elif "content" in entry:
            records = [bytes.fromhex(h.replace(" ", "")) for h in entry["content"]]
            out[entry["sfi"]] = [r.ljust(RECORD, b"\x00") for r in records]
    return out


def samples() -> list[tuple[str, Structure, bytes]]:
    """(label, structure, record) for every record of the shipped profiles."""
    out: list[tuple[str, Structure, bytes]] = []
    for card in INTERCODE_CARDS:
        files = _files(card)
        name = card.removesuffix(".yaml")
        out.append((f"{name} environment", tables.ENVIRONMENT, files[0x07][0]))
        out.append((f"{name} event", tables.EVENT, files[0x08][0]))
        out.append((f"{name} contract list", tables.CONTRACT_LIST, files[0x1E][0]))
        kinds = {b.pointer: b.contract_type for b in intercode.decode_contract_list(files[0x1E][0])}
        for number, record in enumerate(files[0x09], start=1):
            structure = contract_structure(kinds.get(number))
            label = structure_label(kinds.get(number))
            out.append((f"{name} contract {number} ({label})", structure, record))
        if 0x19 in files:
            out.append((f"{name} counters", tables.COUNTERS, files[0x19][0]))
    demo = {0x07: keyple_demo.ENVIRONMENT, 0x08: keyple_demo.EVENT, 0x09: keyple_demo.CONTRACT}
    for card in DEMO_CARDS:
        files = _files(card)
        name = "demo " + card.removesuffix(".yaml")
        for sfi, structure in demo.items():
            if sfi in files:
                out.append((f"{name} {structure.name}", structure, files[sfi][0]))
    out.append(("demo counters", keyple_demo.COUNTERS, _files(DEMO_CARDS[1])[0x19][0]))
    return out


def per_call(call: Callable[[], Any], seconds: float = 0.2) -> float:
    """CPU microseconds per call: best of 3 timed loops of about ``seconds`` each."""
    count = 1
    while True:
        start = time.process_time()
        for _ in range(count):
            call()
        spent = time.process_time() - start
        if spent >= seconds / 4:
            break
        count *= 4
    best = spent
    for _ in range(2):
        start = time.process_time()
        for _ in range(count):
            call()
        best = min(best, time.process_time() - start)
    return 1e6 * best / count


def views() -> list[tuple[str, Callable[[], Any]]]:
    """The typed views the Intercode layout builds in replay, on the Navigo-like card."""
    files = _files(INTERCODE_CARDS[0])
    env, event, listed = files[0x07][0], files[0x08][0], files[0x1E][0]
    best = intercode.decode_contract_list(listed)
    first = next(b for b in best if b.pointer == 1)
    contract = files[0x09][0]
    counters = files[0x19][0]
    return [
        ("IntercodeEnvironment.decode", lambda: intercode.IntercodeEnvironment.decode(env)),
        ("IntercodeEvent.decode", lambda: intercode.IntercodeEvent.decode(event)),
        ("decode_contract_list", lambda: intercode.decode_contract_list(listed)),
        (
            "IntercodeContract.decode (FF)",
            lambda: intercode.IntercodeContract.decode(contract, first.contract_type),
        ),
        ("counter_values", lambda: intercode.counter_values(counters)),
    ]


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=0.2, help="per timed loop")
    args = parser.parse_args(argv)
    reference = getattr(codec, "decode_reference", codec.decode)
    print(f"{'record':<50}{'bits':>5}{'reference µs':>14}{'decode µs':>11}{'ratio':>7}")
    for label, structure, data in samples():
        used = codec.decode(structure, data).bits_used
        slow = per_call(lambda: reference(structure, data), args.seconds)  # noqa: B023
        fast = per_call(lambda: codec.decode(structure, data), args.seconds)  # noqa: B023
        print(f"{label:<50}{used:>5}{slow:>14.2f}{fast:>11.2f}{slow / fast:>7.1f}")
    print()
    print(f"{'typed view (decode + get)':<50}{'µs':>10}")
    for label, call in views():
        print(f"{label:<50}{per_call(call, args.seconds):>10.2f}")


if __name__ == "__main__":
    main()
