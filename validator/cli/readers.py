# SPDX-License-Identifier: Apache-2.0
"""CLI commands for real readers: ``validator readers`` and ``validator emulate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from readers.base import ApduHandler, ReaderError
from validator.cli.common import CONFIG_ERRORS, exits_on

EXIT_READER = 5


def describe_atr(atr: bytes) -> str:
    """What an ATR says is in the reader: a legacy SAM, a contactless (Calypso) card, or a card."""
    from sam.atr import parse_sam_atr
    from sam.base import SamError

    try:
        identity = parse_sam_atr(atr)
    except (SamError, ValueError):
        pass
    else:
        return f"{identity.sam_type.value} serial {identity.serial.hex().upper()}"
    # PC/SC part 3 pseudo-ATR of an ISO 14443 card: 3B 8n 80 01 ...
    if len(atr) >= 4 and atr[0] == 0x3B and atr[1] >> 4 == 0x8 and atr[2:4] == b"\x80\x01":
        return "Calypso card (contactless)"
    return "card"


@click.command("readers")
@click.option(
    "--nfc",
    "nfc_paths",
    multiple=True,
    default=("usb",),
    show_default=True,
    help="nfcpy device paths to probe (repeatable), e.g. usb, tty:ttyUSB0:pn532.",
)
def readers_command(nfc_paths: tuple[str, ...]) -> None:
    """List the PC/SC readers with what is in them, and the nfcpy devices found."""
    from readers.nfc import find_devices
    from readers.pcsc import reader_states

    try:
        states = reader_states()
    except ReaderError as exc:
        click.echo(f"PC/SC: {exc}")
    else:
        if not states:
            click.echo("PC/SC: no reader")
        for name, atr in states:
            if atr is None:
                click.echo(f"pcsc  {name}: empty")
            else:
                click.echo(f"pcsc  {name}: {describe_atr(atr)}, ATR {atr.hex().upper()}")
    for device in find_devices(nfc_paths):
        click.echo(f"nfc   {device}")


def _declares_simulation(path: Path) -> bool:
    """Whether a key file says ``simulation: true`` (load_keys checks the rest)."""
    try:
        content = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False  # load_keys reports the real problem with file and line
    return isinstance(content, dict) and content.get("simulation") is True


def _handler(card_profile: Path | None, sam_keys: Path | None, simulation: bool) -> ApduHandler:
    from calypso.emulator.dispatch import CardEmulator
    from sam.software.dispatch import SoftwareSam

    if card_profile is not None:
        return CardEmulator.from_profile(card_profile)
    assert sam_keys is not None  # noqa: S101 - the caller checked that one is given
    allow = simulation or _declares_simulation(sam_keys)
    sam = SoftwareSam.from_keys(sam_keys, allow_simulation=allow)
    if allow:
        click.echo("warning: SIMULATION keys: never use them for real fares", err=True)
    return sam


@click.command("emulate")
@click.option(
    "--card-profile",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Serve an emulated card from this profile (config/cards/*.yaml).",
)
@click.option(
    "--sam-keys",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Serve the software SAM with this key file.",
)
@click.option("--vpcd-port", type=click.IntRange(1, 65535), required=True, help="vpcd slot port.")
@click.option("--vpcd-host", default="127.0.0.1", show_default=True, help="Where pcscd runs.")
@click.option(
    "--simulation",
    is_flag=True,
    help="Accept the CSIM1 simulation keys (also accepted when the key file says so).",
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.0),
    default=5.0,
    show_default=True,
    help="How long to wait for vpcd to listen.",
)
def emulate_command(
    card_profile: Path | None,
    sam_keys: Path | None,
    vpcd_port: int,
    vpcd_host: str,
    simulation: bool,
    connect_timeout: float,
) -> None:
    """Serve an emulated card or the software SAM in a vpcd reader of a running pcscd."""
    from readers.vpcd import VpcdCard

    if (card_profile is None) == (sam_keys is None):
        raise click.UsageError("give exactly one of --card-profile and --sam-keys")
    with exits_on(CONFIG_ERRORS):
        handler = _handler(card_profile, sam_keys, simulation)
    slot = VpcdCard(vpcd_port, vpcd_host)
    what = "card" if card_profile is not None else "SAM"
    try:
        while True:
            try:
                slot.insert(handler, timeout=connect_timeout)
            except ConnectionError as exc:
                click.echo(f"cannot reach vpcd: {exc}", err=True)
                sys.exit(EXIT_READER)
            click.echo(f"{what} inserted in vpcd {vpcd_host}:{vpcd_port}, ATR {slot.atr.hex()}")
            # vpcd drops the card when pcscd stops: insert it again once pcscd is back.
            while not slot.wait_removed(1.0):
                pass
            click.echo(f"{what} dropped by vpcd; inserting it again", err=True)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        slot.remove()


def register(group: click.Group) -> None:
    """Add the reader commands to the ``validator`` group."""
    group.add_command(readers_command)
    group.add_command(emulate_command)
