# SPDX-License-Identifier: Apache-2.0
"""``python -m lab.reliability [--quick] [--part NAME ...] [--json PATH]``: run the campaign."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from lab.paths import CONFIG
from lab.reliability.report import Level, PartResult, format_table
from lab.reliability.security import leakscan
from validator.app.logs import configure as configure_logs

# Part name -> module; each module has run(level, workdir, log) -> PartResult.
PARTS = {
    "tear-sweep": "lab.reliability.tearing.sweep",
    "hostile-cards": "lab.reliability.hostile.cards",
    "fuzzing": "lab.reliability.hostile.fuzz",
    "process-crashes": "lab.reliability.faults.crashes",
    "infrastructure": "lab.reliability.faults.infra",
    "disk-full": "lab.reliability.faults.disk_full",
    "clock-steps": "lab.reliability.faults.clock_steps",
    "journal-corruption": "lab.reliability.faults.journal_corruption",
    "security": "lab.reliability.security.campaign",
    "soak": "lab.reliability.soak",
    "config-mutations": "lab.reliability.faults.config_mutations",
    "shipping-faults": "lab.reliability.shipping.campaign",
}


CAMPAIGN_LOG = "campaign.log"  # every part's progress and every log line, scanned at the end


def run_part(name: str, level: Level, workdir: Path) -> PartResult:
    """Run one part in its own work directory and time it."""
    module = importlib.import_module(PARTS[name])
    part_dir = workdir / name
    part_dir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        line = f"[{name}] {message}"
        print(line, file=sys.stderr, flush=True)
        with (workdir / CAMPAIGN_LOG).open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    start = time.monotonic()
    result: PartResult = module.run(level, part_dir, log)
    result.seconds = time.monotonic() - start
    return result


def scan_campaign(workdir: Path) -> PartResult:
    """Every file the campaign wrote (journals, logs, outputs) scanned for keys and PINs."""
    start = time.monotonic()
    secrets = leakscan.collect_secrets(CONFIG)
    report = leakscan.scan_paths([workdir], secrets)
    return PartResult(
        "leak-scan",
        f"{report.files} files, {report.bytes / 1e6:.1f} MB, {len(secrets)} secrets",
        f"{len(report.skipped)} key stores skipped",
        [str(finding) for finding in report.findings[:20]],
        time.monotonic() - start,
        {"files": report.files, "bytes": report.bytes, "findings": len(report.findings)},
    )


def main(argv: list[str] | None = None) -> int:
    """Run the campaign; exit 0 when no invariant was violated, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m lab.reliability", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="reduced campaign (under 5 min)")
    parser.add_argument("--part", action="append", choices=sorted(PARTS), help="only these")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep journals and cards here")
    args = parser.parse_args(argv)
    configure_logs("auto", "warning")  # log lines to stderr: stdout carries the table only
    level = Level.QUICK if args.quick else Level.FULL
    names = args.part or list(PARTS)
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        workdir = args.workdir or Path(tmp)
        handler = logging.FileHandler(workdir / CAMPAIGN_LOG, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
        try:
            results = [run_part(name, level, workdir) for name in names]
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        results.append(scan_campaign(workdir))
    print(format_table(results))
    if args.json:
        document = {"level": level.value, "parts": [r.as_dict() for r in results]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any(r.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
