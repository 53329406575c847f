# SPDX-License-Identifier: Apache-2.0
"""The whole benchmark as one JSON document, and its tables for a terminal."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from validator.bench.host import measure_host
from validator.bench.pki import measure_pki
from validator.bench.scenarios import (
    CARD_APDU_S,
    CARD_BYTE_S,
    KEYPLE_CARD_APDUS,
    SAM_APDU_S,
    SCENARIOS,
    measure_modelled,
)


def run_bench(
    config_dir: Path,
    *,
    taps: int = 3,
    host_taps: int = 1000,
    pcsc_taps: int = 500,
    intent_taps: int = 200,
    scaling: tuple[int, ...] | None = (1, 10_000, 1_000_000),
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Every scenario (exchanges, modelled times, host cost, through pcscd), the closing
    intent's cost per tap, the PKI tap with no SAM (validator.bench.pki) and scaling.

    ``pcsc_taps=0`` or a machine without pcscd/vpcd leaves ``pcsc_ms`` null (with the reason);
    ``intent_taps=0`` leaves ``intent`` null; ``scaling=None`` skips the scaling runs."""
    started = time.monotonic()
    scenarios: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        progress(f"{scenario.name}: modelled taps")
        modelled = measure_modelled(config_dir, scenario, taps)
        progress(f"{scenario.name}: {host_taps} in-process taps")
        host = measure_host(config_dir, scenario, host_taps)
        scenarios[scenario.name] = {
            "card_apdus": modelled.card_apdus,
            "sam_apdus": modelled.sam_apdus,
            "sam_critical": modelled.sam_critical,
            "keyple_card_apdus": KEYPLE_CARD_APDUS[scenario.name],
            "modeled_ms": {
                "sequential": round(modelled.sequential_ms, 1),
                "engine": round(modelled.engine_ms, 1),
                "ratio": round(modelled.engine_ms / modelled.sequential_ms, 3),
            },
            "host_ms": host.as_dict(),
            "pcsc_ms": None,
        }
    progress("pki: modelled taps (returning card, CA cached, cold) and host time")
    symmetric = scenarios.get("multi_trip", {}).get("modeled_ms", {}).get("engine")
    pki = measure_pki(config_dir, taps, max(20, host_taps // 5), symmetric)
    document: dict[str, Any] = {
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "latency_model": {
            "card_apdu_ms": CARD_APDU_S * 1000,
            "card_byte_us": round(CARD_BYTE_S * 1e6, 1),
            "sam_apdu_ms": SAM_APDU_S * 1000,
        },
        "scenarios": scenarios,
        "pki": pki,
        "pcsc_unavailable": None,
    }
    if pcsc_taps:
        from validator.bench.pcsc import measure_pcsc, unavailable

        reason = unavailable()
        document["pcsc_unavailable"] = reason
        if reason is None:
            progress(f"through pcscd and vpcd: {pcsc_taps} taps per scenario")
            for name, figures in measure_pcsc(config_dir, SCENARIOS, pcsc_taps).items():
                scenarios[name]["pcsc_ms"] = figures.as_dict()
    document["intent"] = None
    if intent_taps:
        from validator.bench.intent import measure_intent

        progress(f"closing intent: {intent_taps} taps with it and without, in process")
        document["intent"] = measure_intent(
            config_dir, intent_taps, latency_taps=max(1, intent_taps // 4)
        )
    if scaling:
        from validator.bench.scaling import cards_seen_scaling, journal_scaling

        progress(f"scaling: journal of {', '.join(map(str, scaling))} entries")
        document["scaling"] = {"journal_entries": journal_scaling(config_dir, scaling)}
        progress("scaling: cards seen")
        document["scaling"]["cards_seen"] = cards_seen_scaling(config_dir, scaling)
    document["seconds"] = round(time.monotonic() - started, 1)
    return document


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def format_tables(document: dict[str, Any]) -> str:
    """The document as tables: exchanges and modelled time, host cost, pcscd, scaling."""
    rows = document["scenarios"]
    out = [
        f"{'scenario':<13}{'card':>5}{'keyple':>7}{'sam':>5}{'crit':>5}"
        f"{'seq ms':>9}{'engine ms':>10}{'ratio':>7}{'pcsc med':>10}{'p99':>7}"
    ]
    for name, row in rows.items():
        modelled, pcsc = row["modeled_ms"], row["pcsc_ms"] or {}
        out.append(
            f"{name:<13}{row['card_apdus']:>5}{row['keyple_card_apdus']:>7}{row['sam_apdus']:>5}"
            f"{row['sam_critical']:>5}{modelled['sequential']:>9}{modelled['engine']:>10}"
            f"{modelled['ratio']:>7}{pcsc.get('median', '-'):>10}{pcsc.get('p99', '-'):>7}"
        )
    if document.get("pcsc_unavailable"):
        out.append(f"(pcsc: {document['pcsc_unavailable']})")
    out += [
        "",
        "host ms per tap (in process)",
        f"{'scenario':<13}{'validator':>10}{'p99':>7}"
        f"{'card':>7}{'sam':>7}{'journal':>9}{'fsync':>7}",
    ]
    for name, row in rows.items():
        host = row["host_ms"]
        out.append(
            f"{name:<13}{host['validator_median']:>10}{host['validator_p99']:>7}"
            f"{host['card_median']:>7}{host['sam_median']:>7}{host['journal_median']:>9}"
            f"{host['journal_fsync_median']:>7}"
        )
    intent = document.get("intent")
    if intent:
        out += [
            "",
            "closing intent: multi-trip tap median, ms (validation and journal)",
            f"{'setting':<15}{'taps':>6}{'without':>9}{'with':>9}{'cost':>8}{'bytes':>7}",
        ]
        for name, row in intent.items():
            out.append(
                f"{name:<15}{row['taps']:>6}{row['without_ms']:>9}{row['with_ms']:>9}"
                f"{row['cost_ms']:>+8.3f}{row['intent_bytes']:>7}"
            )
    pki = document.get("pki")
    if pki:
        out += [
            "",
            f"pki, no SAM: modelled ms (target {pki['target_ms']} for a returning card; "
            f"symmetric multi-trip {pki['symmetric_multi_trip_ms']})",
            f"{'case':<16}{'card':>5}{'certs':>6}{'decision':>10}{'last APDU':>11}",
        ]
        for name, row in pki["cases"].items():
            out.append(
                f"{name:<16}{row['card_apdus']:>5}{row['certificate_apdus']:>6}"
                f"{row['decision_ms']:>10}{row['last_apdu_ms']:>11}"
            )
        host = pki["host"]
        out.append(
            f"host: validator {host['validator_median_ms']} ms + card "
            f"{host['card_median_ms']} ms per returning tap; us per CA certificate "
            f"{host['ca_certificate_us']}, card certificate {host['card_certificate_us']}, "
            f"cached recheck {host['cached_card_recheck_us']}, ECDSA {host['ecdsa_verify_us']}"
        )
    scaling = document.get("scaling")
    if scaling:
        out += ["", f"{'scaling':<26}{'size':>10}{'tap ms':>9}{'open ms':>9}"]
        for what, by_size in scaling.items():
            for size, row in by_size.items():
                opened = row.get("open_ms", "-")
                out.append(f"{what:<26}{size:>10}{row['tap_median_ms']:>9}{opened:>9}")
    out.append(f"\n{document['seconds']} s")
    return "\n".join(out)
