# SPDX-License-Identifier: Apache-2.0
"""The gate's feedback interface (open, show, sound) and its console, JSON and null forms."""

from __future__ import annotations

import json
from typing import Protocol

import click

from validator.engine.outcome import Outcome
from validator.engine.tap import TapRecord

OUTCOME_COLOURS = {
    "granted": "green",
    "recovered": "cyan",
    "denied": "yellow",
    "card_lost": "magenta",
    "unknown": "red",
    "error": "red",
}


class Gate(Protocol):
    """What the validator tells the barrier and the passenger."""

    def feedback(self, record: TapRecord) -> None:
        """Open for a granted or recovered tap (MAC verified), show the outcome, sound."""
        ...

    def out_of_service(self, reason: str) -> None:
        """Keep the barrier shut and show that the validator cannot serve."""
        ...

    def in_service(self) -> None:
        """Back in service after an outage."""
        ...


PRODUCT_WIDTH = 24  # the product column of a tap's line


def tap_line(record: TapRecord, when: str) -> str:
    """One readable, coloured line for a tap."""
    tap = record.result.summary()
    outcome = str(tap["outcome"])
    remaining = tap["remaining"]
    left = f"{remaining} left" if remaining is not None else ""
    product = str(tap["product"] or "-")
    if len(product) > PRODUCT_WIDTH:  # a network's tariff name: cut, the journal has it whole
        product = product[: PRODUCT_WIDTH - 1] + "…"
    result = record.result
    # A PKI tap (the card's own signature, no SAM) says so instead of its SAM APDUs.
    apdus = f"{result.card_apdus} card + {result.sam_apdus} SAM APDUs"
    if result.pki is not None:
        apdus = f"{result.card_apdus} card APDUs, PKI: no SAM"
    return (
        f"{record.index:4d}  {when}  {tap['card'] or '-':<16}  {product:<{PRODUCT_WIDTH}} "
        + click.style(f"{outcome:<9}", fg=OUTCOME_COLOURS.get(outcome))
        + f" {tap['reason']:<26} {left:<9} {tap['ms']:>6.1f} ms"
        f"  ({apdus})"
    )


class ConsoleGate:
    """A gate drawn on the terminal: one coloured line per tap, outages in red."""

    def __init__(self) -> None:
        self.opened = 0
        self._out_of_service: str | None = None

    def feedback(self, record: TapRecord) -> None:
        """Print the tap; count an opening only for a verified grant or recovery."""
        if record.result.outcome.opens_gate and record.result.mac_verified:
            self.opened += 1
        when = str(record.entry.get("tap_time", ""))[11:19]
        click.echo(tap_line(record, when))

    def out_of_service(self, reason: str) -> None:
        """Print the outage once, until service resumes."""
        if reason != self._out_of_service:
            click.echo(click.style(f"OUT OF SERVICE: {reason}", fg="red", bold=True), err=True)
        self._out_of_service = reason

    def in_service(self) -> None:
        """Say so when an outage ends."""
        if self._out_of_service is not None:
            click.echo(click.style("back in service", fg="green"), err=True)
        self._out_of_service = None


class JsonGate(ConsoleGate):
    """One JSON object per tap on stdout (the demo's fields); outages on stderr."""

    def feedback(self, record: TapRecord) -> None:
        """Print the tap as JSON."""
        if record.result.outcome.opens_gate and record.result.mac_verified:
            self.opened += 1
        result = record.result
        summary = result.summary()
        if result.outcome is Outcome.UNKNOWN:
            summary["debit"] = result.sent_debit
        obj = {
            "tap": record.index,
            "time": record.entry.get("tap_time"),
            **summary,
            "station": record.entry.get("station"),
            "recovered_from": record.recovered_from,
            "journal_seq": record.seq,
        }
        click.echo(json.dumps(obj))


class NullGate:
    """A gate that does nothing (tests, benchmarks)."""

    def __init__(self) -> None:
        self.records: list[TapRecord] = []
        self.outages: list[str] = []

    def feedback(self, record: TapRecord) -> None:
        """Keep the record."""
        self.records.append(record)

    def out_of_service(self, reason: str) -> None:
        """Keep the reason."""
        self.outages.append(reason)

    def in_service(self) -> None:
        """Nothing to do."""
