# SPDX-License-Identifier: Apache-2.0
"""The replay report: totals kept while streaming (mergeable), one JSON document, rich tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from validator.app.words import counted
from validator.office.replay.anchor import AnchorCheck
from validator.office.replay.findings import Totals
from validator.office.replay.integrity import ChainChecker
from validator.office.replay.mac import FAILED, NOT_CHECKED, UNVERIFIABLE, VERIFIED
from validator.office.replay.recon import Reconciler

UNPROVEN = (  # issue 15.3: nobody takes ``ok`` for proof
    "the journal is neither authenticated nor anchored: without a journal key and an "
    "anchored head, a rewritten or removed tail or a recomputed chain goes unseen"
)


@dataclass
class ReplayReport:
    """Everything a replay found."""

    totals: Totals
    chains: list[ChainChecker]
    recon: Reconciler | None
    fares: str | None  # "in force" or the what-if file; None when decisions were not replayed
    mac_checked: bool
    seconds: float = 0.0
    lines: int = 0
    authenticated: bool = False  # a journal key was given: every entry's HMAC is checked
    anchors: AnchorCheck | None = None  # published heads checked (``--anchor``)
    cluster: dict[str, Any] | None = None  # run on Dask: workers, tasks, retried (issue 21)

    @property
    def warning(self) -> str | None:
        """Why ``ok`` proves little: neither HMACs nor anchors were checked (issue 15.3)."""
        if self.authenticated or self.anchors is not None:
            return None
        return UNPROVEN

    @property
    def integrity_ok(self) -> bool:
        """No chain, sequence, HMAC or readability problem in any journal."""
        anchored_ok = self.anchors is None or not self.anchors.counts
        return anchored_ok and all(not chain.counts for chain in self.chains)

    @property
    def exit_code(self) -> int:
        """0 when integrity holds and no MAC failed, else 1."""
        return 0 if self.integrity_ok and self.totals.mac[FAILED] == 0 else 1

    def as_json(self) -> dict[str, Any]:
        """The one JSON document of ``validator replay --json``."""
        t = self.totals
        counts: dict[str, int] = {}
        for chain in self.chains:
            for kind, n in chain.counts.items():
                counts[kind] = counts.get(kind, 0) + n
        breaks = [p.as_dict() for chain in self.chains for p in chain.problems]
        if self.anchors is not None:
            for kind, n in self.anchors.counts.items():
                counts[kind] = counts.get(kind, 0) + n
            breaks += [p.as_dict() for p in self.anchors.problems]
        recon = self.recon.summary() if self.recon is not None else _no_recon()
        intents = {
            "total": sum(chain.intents for chain in self.chains),
            "settled_at_restart": sum(chain.intents_settled_at_restart for chain in self.chains),
            "open_at_end": [
                {"directory": str(chain.source.directory), **item}
                for chain in self.chains
                for item in chain.open_intents()
            ],
        }
        return {
            "entries": t.entries,
            "lines": self.lines,
            "journals": [chain.summary() for chain in self.chains],
            "integrity": {
                "ok": self.integrity_ok,
                "breaks": breaks,
                "counts": counts,
                "quarantined": [q for chain in self.chains for q in chain.quarantined()],
                "duplicates": [d for chain in self.chains for d in chain.duplicates],
                "duplicate_count": sum(chain.duplicate_count for chain in self.chains),
                "authenticated": self.authenticated,
                "anchored": self.anchors is not None,
                "anchors": self.anchors.summary() if self.anchors is not None else [],
                "warning": self.warning,
            },
            "mac": {
                "checked": self.mac_checked,
                "verified": t.mac[VERIFIED],
                "failed": t.mac[FAILED],
                "unverifiable": t.mac[UNVERIFIABLE],
                "not_checked": t.mac[NOT_CHECKED],
                "failures": t.mac_failures,
                "pki": {
                    "verified": t.pki[VERIFIED],
                    "failed": t.pki[FAILED],
                    "unverifiable": t.pki[UNVERIFIABLE],
                    "not_checked": t.pki[NOT_CHECKED],
                },
            },
            "decisions": {
                "fares": self.fares,
                **t.decisions,
                "incomplete_state": t.incomplete,
                "revenue": _difference(t.revenue),
                "ridership": _difference(t.riders),
                "differences": t.differences,
            },
            **recon,
            "intents": intents,
            "seconds": round(self.seconds, 3),
            "taps_per_second": round(self.lines / self.seconds) if self.seconds else None,
            "exit_code": self.exit_code,
        } | ({"cluster": self.cluster} if self.cluster is not None else {})


def _difference(pair: list[int]) -> dict[str, int]:
    return {"recorded": pair[0], "replayed": pair[1], "difference": pair[1] - pair[0]}


def _no_recon() -> dict[str, Any]:
    return {
        "unknown": {"total": 0, "resolved": 0, "unresolved": [], "items": []},
        "recoveries": {"total": 0, "with_paid_entry": 0, "without_paid_entry": []},
        "double_debits": [],
        "double_debit_count": 0,
    }


def _where(item: dict[str, Any]) -> str:
    return f"{item.get('file')}:{item.get('line')} seq {item.get('seq')}"


def render(report: ReplayReport, console: Console, *, limit: int = 20) -> None:
    """The readable summary: one table per part, the first ``limit`` details of each."""
    doc = report.as_json()
    integrity, mac, decisions = doc["integrity"], doc["mac"], doc["decisions"]
    summary = Table(title="Replay", show_header=False)
    summary.add_row("journals", str(len(doc["journals"])))
    summary.add_row("entries in range", f"{doc['entries']} (of {counted(doc['lines'], 'line')})")
    state = "[green]ok[/]" if integrity["ok"] else "[red]BROKEN[/]"
    summary.add_row("integrity", f"{state} {integrity['counts'] or ''}".strip())
    summary.add_row("quarantined torn tails", str(len(integrity["quarantined"])))
    if integrity["duplicate_count"]:
        summary.add_row("duplicated entries (counted once)", str(integrity["duplicate_count"]))
    if integrity["warning"]:
        summary.add_row("[yellow]warning[/]", f"[yellow]{integrity['warning']}[/]")
    if mac["checked"]:
        failed = f"[red]{mac['failed']}[/]" if mac["failed"] else "0"
        unchecked = f", {mac['not_checked']} not checked" if mac["not_checked"] else ""
        summary.add_row(
            "MACs",
            f"{mac['verified']} verified, {failed} failed, {mac['unverifiable']} not verifiable"
            + unchecked,
        )
    else:
        summary.add_row("MACs", "not recomputed (give --keys, --sam-reader or --pki-root)")
    pki = mac["pki"]
    if sum(pki.values()):
        summary.add_row(
            "of which PKI signatures",
            f"{pki['verified']} verified, {pki['failed']} failed, "
            f"{pki['unverifiable']} not verifiable, {pki['not_checked']} not checked",
        )
    if decisions["fares"] is not None:
        rev, riders = decisions["revenue"], decisions["ridership"]
        summary.add_row(
            f"decisions ({decisions['fares']})",
            f"{decisions['same']} same, {decisions['different']} different, "
            f"{decisions['not_replayable']} not replayable",
        )
        summary.add_row(
            "revenue (units)", f"{rev['recorded']} -> {rev['replayed']} ({rev['difference']:+d})"
        )
        summary.add_row(
            "ridership",
            f"{riders['recorded']} -> {riders['replayed']} ({riders['difference']:+d})",
        )
    unknown = doc["unknown"]
    summary.add_row(
        "unknown outcomes",
        f"{unknown['total']} ({unknown['resolved']} resolved, "
        f"{unknown['total'] - unknown['resolved']} unresolved)",
    )
    intents = doc["intents"]
    if intents["total"] or intents["settled_at_restart"]:
        summary.add_row(
            "closing intents",
            f"{intents['total']} ({len(intents['open_at_end'])} open at the end, "
            f"{intents['settled_at_restart']} unknown at a restart)",
        )
    rec = doc["recoveries"]
    summary.add_row("recoveries", f"{rec['total']} ({rec['with_paid_entry']} with the paid entry)")
    summary.add_row("double debits", str(doc["double_debit_count"]))
    summary.add_row("time", f"{doc['seconds']} s ({doc['taps_per_second']} lines/s)")
    console.print(summary)
    _details(console, "Integrity problems", integrity["breaks"], limit, _problem_row)
    _details(console, "Torn tails", integrity["quarantined"], limit, _torn_row)
    _details(console, "MAC failures", mac["failures"], limit, _mac_row)
    _details(console, "Decisions that differ", decisions["differences"], limit, _difference_row)
    _details(console, "Unresolved unknowns", unknown["unresolved"], limit, _unknown_row)
    _details(console, "Double debits", doc["double_debits"], limit, _double_row)


def _details(
    console: Console, title: str, items: list[dict[str, Any]], limit: int, row: Any
) -> None:
    if not items:
        return
    table = Table(title=f"{title} ({len(items)})", show_header=False)
    for item in items[:limit]:
        table.add_row(*row(item))
    if len(items) > limit:
        table.add_row(f"... {len(items) - limit} more (--json for all)", "")
    console.print(table)


def _problem_row(p: dict[str, Any]) -> tuple[str, str]:
    where = f" {p['file']}:{p['line']}" if p["file"] else ""  # truncated: in no file
    return f"{p['kind']}{where} seq {p['seq']}", p["detail"]


def _torn_row(q: dict[str, Any]) -> tuple[str, str]:
    after = f" after seq {q['after_seq']}" if q.get("after_seq") is not None else ""
    return f"{q['kind']} {q['file']}", f"{q['size']} bytes{after}"


def _mac_row(m: dict[str, Any]) -> tuple[str, str]:
    return f"{_where(m)} card {m['card']}", m["note"]


def _difference_row(d: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{_where(d)} {d['time']} card {d['card']}",
        f"recorded: {d['recorded_explanation']}\nreplayed: {d['replayed_explanation']}",
    )


def _unknown_row(u: dict[str, Any]) -> tuple[str, str]:
    return f"{_where(u)} {u['time']}", f"card {u['card']}, {u['debit_sent']} units sent"


def _double_row(d: dict[str, Any]) -> tuple[str, str]:
    return f"card {d['card']}", f"{_where(d['first'])} and {_where(d['second'])}"
