# SPDX-License-Identifier: Apache-2.0
"""Issue 15.12 through the real pcscd: a PC/SC SAM whose pcscd dies while ``run`` serves."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

from conftest import CONFIG

from lab.pcscd import SAM_READER, PrivatePcscd
from readers.vpcd import VpcdCard
from sam.software.dispatch import SoftwareSam
from validator.app.gate import NullGate
from validator.app.run import serve
from validator.app.settings import load_settings
from validator.app.station import open_sam
from validator.engine.tap import TapRecord

pytest_plugins = ["pcsc_fixtures"]


def software_sam() -> SoftwareSam:
    """A fresh software SAM with the simulation keys, to sit in the vpcd SAM reader."""
    return SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True)


class Watcher:
    """Counts taps and outages, and tells the test when each has happened."""

    def __init__(self) -> None:
        self.taps = 0
        self.outages: list[str] = []
        self.tapped = threading.Event()
        self.down = threading.Event()

    def on_idle(self) -> None:
        """Nothing."""

    def on_tap(self, record: TapRecord) -> None:
        """Count the tap."""
        self.taps += 1
        self.tapped.set()

    def on_state(self, in_service: bool, reason: str | None) -> None:
        """Keep the outage reasons."""
        if not in_service and reason is not None:
            self.outages.append(reason)
            self.down.set()


def test_pcscd_killed_while_serving(pcscd: PrivatePcscd, tmp_path: Path) -> None:
    """pcscd stopped under a running gate: out of service (no crash); back when pcscd is."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    settings = load_settings(config, environ={})
    slot = VpcdCard(pcscd.ports[SAM_READER])
    slot.insert(software_sam())
    watcher = Watcher()
    stop = threading.Event()
    failure: list[BaseException] = []

    def gate() -> None:
        try:
            serve(
                config,
                settings,
                NullGate(),
                card_spec="emulated",
                sam_spec=f"pcsc:{re.escape(SAM_READER)}",
                max_taps=None,
                stop=stop,
                interval_s=0.05,
                seed=3,
                observer=watcher,
            )
        except BaseException as exc:  # noqa: BLE001 - the test reports whatever escaped
            failure.append(exc)

    thread = threading.Thread(target=gate, daemon=True)
    thread.start()
    try:
        assert watcher.tapped.wait(20), failure
        pcscd.stop()
        assert watcher.down.wait(20), failure
        assert any(reason.startswith("SAM") for reason in watcher.outages), watcher.outages
        served = watcher.taps
        pcscd.start()
        slot = VpcdCard(pcscd.ports[SAM_READER])
        slot.insert(software_sam())
        watcher.tapped.clear()
        assert watcher.tapped.wait(30), (failure, watcher.outages)
        assert watcher.taps > served
    finally:
        stop.set()
        thread.join(20)
        slot.remove()
        if not pcscd.running:
            pcscd.start()
    assert not thread.is_alive() and failure == []


def test_serve_lets_go_of_the_pcsc_sam(pcscd: PrivatePcscd, tmp_path: Path) -> None:
    """Once ``serve`` returns, the SAM reader is free again (no sharing violation for the next)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    settings = load_settings(config, environ={})
    slot = VpcdCard(pcscd.ports[SAM_READER])
    slot.insert(software_sam())
    spec = f"pcsc:{re.escape(SAM_READER)}"
    try:
        served = serve(
            config,
            settings,
            NullGate(),
            card_spec="emulated",
            sam_spec=spec,
            max_taps=1,
            interval_s=0.05,
            seed=3,
        )
        assert served == 1
        sam = open_sam(spec, config, settings)  # RunError "Sharing violation" while held
        sam.close()
    finally:
        slot.remove()
