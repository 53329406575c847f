# SPDX-License-Identifier: Apache-2.0
"""CLI commands for support staff: ``validator inspect`` and ``validator decode``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from readers.base import CardConnection
from validator.cli.common import CONFIG_ERRORS, config_folder, config_option, exits_on

EXIT_FAILED = 1
EXIT_READERS = 4
SIMULATION_KVC = 0xF0  # Rev1 cards name no KVC in their Open answer: the simulation keys' KVC
STRUCTURE_NAMES = ("environment", "contract", "contract-list", "event", "counters")


def register(group: click.Group) -> None:
    """Add these commands to the ``validator`` group."""
    group.add_command(inspect_command)
    group.add_command(decode_command)


@click.command("inspect")
@config_option()
@click.option(
    "--card-reader",
    default=None,
    help="emulated | pcsc:REGEX | nfc:PATH (default: emulated with --card-profile, else "
    "card_reader from validator.yaml).",
)
@click.option(
    "--card-profile",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Emulated reader: the card profile (YAML) to present.",
)
@click.option("--secure", is_flag=True, help="Read inside a DEBIT secure session, MAC checked.")
@click.option(
    "--sam-reader", default=None, help="With --secure: software | pcsc:REGEX (default: settings)."
)
@click.option(
    "--layout",
    type=click.Choice(["demo", "intercode"]),
    default=None,
    help="Decode with this layout (default: by AID from the settings' layouts, else demo).",
)
@click.option("--aid", "aids", multiple=True, help="AID (hex) to select first; repeatable.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for a card on a real reader.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def inspect_command(
    config: Path | None,
    card_reader: str | None,
    card_profile: Path | None,
    secure: bool,
    sam_reader: str | None,
    layout: str | None,
    aids: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """Read a card and show its application, files and decoded records (never writes)."""
    import datetime as dt

    from validator.app.settings import load_settings, load_trust
    from validator.office.inspect.read import InspectError, inspect_card

    config_dir = config_folder(config)
    with exits_on(
        CONFIG_ERRORS,
        (_ReaderProblem, "reader", EXIT_READERS),
        (InspectError, "inspect", EXIT_FAILED),
    ):
        settings = load_settings(config_dir)
        wanted = [_hex_arg(aid, "--aid") for aid in aids] + settings.aid_bytes()
        spec = card_reader or ("emulated" if card_profile is not None else settings.card_reader)
        connection = _connect(spec, card_profile, timeout)
        opener = _secure_opener(config_dir, settings, sam_reader) if secure else None
        rules = _fare_rules(config_dir / settings.fares)
        trust = load_trust(config_dir, settings)  # a PKI card's chain, judged as at the gate
        with connection:
            result = inspect_card(
                connection,
                aids=wanted,
                layouts=settings.layouts,
                layout=layout,
                secure=opener,
                rules=rules,
                pki=trust,
                today=dt.date.today(),
            )
    if as_json:
        from validator.office.inspect.as_json import inspection_json

        click.echo(json.dumps(inspection_json(result), ensure_ascii=False, indent=2))
    else:
        from validator.office.inspect.view import print_inspection

        print_inspection(result)
    if result.secure is not None and not result.secure.mac_verified:
        sys.exit(EXIT_FAILED)


def _fare_rules(path: Path) -> Any:
    """The fare rules that tell what a contract's counter holds; None without the file."""
    from validator.engine.fares.decide import FareRules
    from yamlconfig import load_model

    return load_model(path, FareRules) if path.exists() else None


class _ReaderProblem(Exception):
    """The card or SAM reader could not give a card."""


def _hex_arg(text: str, what: str) -> bytes:
    try:
        data = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not hex", param_hint=what) from None
    if not data:
        raise click.BadParameter("empty: give the bytes in hex", param_hint=what)
    # An AID (DF name) is 5 to 16 bytes (ISO 7816-4 8.2.1.2; Select Application's Lc).
    if what == "--aid" and not 5 <= len(data) <= 16:
        raise click.BadParameter(f"an AID is 5 to 16 bytes, got {len(data)}", param_hint=what)
    return data


def _connect(spec: str, profile: Path | None, timeout: float) -> CardConnection:
    """A connection to the card: an emulated one from a profile, or from a real reader."""
    if spec == "emulated":
        from calypso.emulator.dispatch import CardEmulator
        from readers.emulated import EmulatedReader

        if profile is None:
            raise click.UsageError("the emulated reader needs --card-profile FILE")
        reader = EmulatedReader("emulated contactless")
        reader.insert(CardEmulator.from_profile(profile))
        return reader.connect()
    from readers.base import ReaderError
    from readers.spec import open_reader

    try:
        connection = open_reader(spec).wait_for_card(timeout)
    except (ValueError, ReaderError) as exc:
        raise _ReaderProblem(str(exc)) from exc
    if connection is None:
        raise _ReaderProblem(f"no card on {spec} within {timeout:g} s")
    return connection


def _secure_opener(config_dir: Path, settings: Any, sam_spec: str | None) -> Any:
    """Build the SAM and return a function opening a SecureSession on a selected card."""
    from calypso.card_image import CalypsoCard
    from readers.channel import ApduChannel
    from sam.base import SamError
    from validator.app.station import RunError, open_sam
    from validator.engine.session import SecureSession

    try:
        sam = open_sam(sam_spec or settings.sam_reader, config_dir, settings)
    except RunError as exc:
        raise _ReaderProblem(str(exc)) from exc
    if sam is None:
        raise _ReaderProblem("--secure reads in a symmetric session: it needs a SAM, not none")

    def opener(channel: ApduChannel, image: CalypsoCard) -> SecureSession:
        serial, extended = image.serial, image.application.startup.extended_mode
        try:
            crypto = sam.session_crypto(serial, extended=extended)
        except SamError:
            if not extended:
                raise
            extended = False  # a SAM without extended mode: a regular session
            crypto = sam.session_crypto(serial)
        return SecureSession(
            channel,
            crypto,
            image,
            authorized=settings.key_policy(),
            payload_capacity=sam.card_payload_capacity,
            extended=extended,
            default_kvc=SIMULATION_KVC if settings.simulation else None,
        )

    return opener


@click.command("decode")
@click.option(
    "--layout", type=click.Choice(["demo", "intercode"]), default="intercode", show_default=True
)
@click.option("--structure", type=click.Choice(STRUCTURE_NAMES), required=True)
@click.option(
    "--contract-type",
    default="FF",
    show_default=True,
    help="Intercode contract: the contract type of its contract-list entry, in hex "
    "((BestContractTariff >> 4) & FFh): FF, 20, 46, or any other for the common format.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.argument("hex_record", nargs=-1, required=True)
def decode_command(
    layout: str, structure: str, contract_type: str, as_json: bool, hex_record: tuple[str, ...]
) -> None:
    """Decode one record given in hex (spaces allowed) with EN 1545 field names."""
    from calypso.en1545 import decode
    from calypso.en1545.contracts import contract_structure, structure_label
    from validator.office.inspect.as_json import record_json, record_network
    from validator.office.inspect.read import STRUCTURES, RecordView

    data = _hex_arg(" ".join(hex_record), "HEX_RECORD")
    table = STRUCTURES[layout].get(structure)
    if table is None:
        raise click.UsageError(
            f"the {layout} layout has no {structure} record"
            + (" (its contract priorities are in the event record)" if layout == "demo" else "")
        )
    extra: dict[str, Any] = {}
    if layout == "intercode" and structure == "contract":
        kind = _contract_type_arg(contract_type)
        table = contract_structure(kind)
        extra = {"contract_type": f"{kind:02X}", "format": structure_label(kind)}
    item = RecordView(1, data, decode(table, data))
    decoded = item.decoded
    network = record_network(decoded) if layout == "intercode" and decoded else None
    if network is not None:
        extra["network"] = network.describe()
    if as_json:
        out = {"layout": layout, "structure": structure, **extra, **record_json(item, network)}
        del out["record"]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    from validator.office.inspect.view import print_record

    shown = f" {extra['format']}" if "format" in extra else ""
    print_record(item, f"{layout} {structure}{shown} ({len(data)} bytes)", table=network)


def _contract_type_arg(text: str) -> int:
    """A contract type given in hex (one byte)."""
    try:
        value = int(text, 16)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not hex", param_hint="--contract-type") from None
    if not 0 <= value <= 0xFF:
        raise click.BadParameter("a contract type is one byte", param_hint="--contract-type")
    return value
