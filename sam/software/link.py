# SPDX-License-Identifier: Apache-2.0
"""The software SAM as the validator reaches it: in an emulated reader, through an ApduChannel.

The embedded default, the demo, replay's MAC checks, the benchmarks and the reliability lab all
wire an in-process SAM the same way; this is that one wiring. The tap engine reads the SAM's
exchanges through the Sam protocol; whoever needs the transport itself has ``sam.channel``.
"""

from __future__ import annotations

from pathlib import Path

from readers.base import ApduHandler
from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from sam.software.state import Rng

__all__ = ["in_process_sam", "software_sam"]


def in_process_sam(handler: ApduHandler, *, name: str = "software SAM") -> LegacySam:
    """A LegacySam over an in-process SAM (the software SAM, or a lab's wrapper around it)."""
    reader = EmulatedReader(name)
    reader.insert(handler)
    channel = ApduChannel(reader.connect(), label="sam")
    return LegacySam(channel)


def software_sam(keys: Path, *, allow_simulation: bool, rng: Rng | None = None) -> LegacySam:
    """The software SAM of the key file ``keys`` (simulation keys need ``allow_simulation``)."""
    return in_process_sam(SoftwareSam.from_keys(keys, rng, allow_simulation=allow_simulation))
