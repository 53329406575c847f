# SPDX-License-Identifier: Apache-2.0
"""sd_notify and the watchdog: pings while idle and serving, none while a transmit hangs."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CONFIG, DEMO_AID, make_card

from readers.channel import ApduChannel
from readers.emulated import EmulatedReader
from sam.client import LegacySam
from sam.software.dispatch import SoftwareSam
from validator.app.gate import NullGate
from validator.app.loop import run_loop
from validator.app.run import serve
from validator.app.settings import load_settings
from validator.app.systemd import Notifier, SystemdObserver, watchdog_interval
from validator.engine.fares.decide import FareRules
from validator.engine.tap import TapProcessor, TapRecord
from yamlconfig import load_model


class Manager:
    """A stand-in for systemd's notify socket: collects the datagrams in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            with self.lock:
                self.messages.append(data.decode())

    def count(self, line: str) -> int:
        """How many datagrams carried this line."""
        with self.lock:
            return sum(line in message.splitlines() for message in self.messages)

    def lines(self, prefix: str) -> list[str]:
        """Every line starting with ``prefix``, in order."""
        with self.lock:
            return [
                line for m in self.messages for line in m.splitlines() if line.startswith(prefix)
            ]

    def close(self) -> None:
        """Stop listening."""
        self.stop.set()
        self.thread.join(1)
        self.sock.close()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    """A notify socket in the test's folder."""
    listener = Manager(tmp_path / "notify.sock")
    yield listener
    listener.close()


def processor() -> TapProcessor:
    """A processor on the shipped rules with the software SAM."""
    sam_reader = EmulatedReader("sam")
    sam_reader.insert(SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
    channel = ApduChannel(sam_reader.connect(), label="sam")
    rules = load_model(CONFIG / "fares.yaml", FareRules)
    return TapProcessor(LegacySam(channel), rules, [DEMO_AID], "test")


class HangingCard:
    """A card whose chip stops answering (a transmit that never returns) until released."""

    def __init__(self) -> None:
        self.inner = make_card("multi_trip")
        self.entered = threading.Event()
        self.release = threading.Event()

    def power_on(self) -> bytes:
        """The real card's ATR."""
        return self.inner.power_on()

    def power_off(self) -> None:
        """Power off the real card."""
        self.inner.power_off()

    def process(self, apdu: bytes) -> bytes:
        """Block until released, then answer like a mute card would be given up on."""
        self.entered.set()
        self.release.wait(10)
        return bytes.fromhex("6F00")


def wait_until(condition: object, timeout: float = 5.0) -> None:
    """Poll ``condition()`` until true."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class TestNotifier:
    """The sd_notify datagrams."""

    def test_messages(self, manager: Manager) -> None:
        """READY, STATUS, WATCHDOG and STOPPING reach the socket as KEY=value lines."""
        notifier = Notifier(str(manager.path))
        assert notifier.ready("starting") and notifier.watchdog()
        assert notifier.status("in service\nx") and notifier.stopping()
        wait_until(lambda: manager.count("STOPPING=1") == 1)
        assert manager.count("READY=1") == 1 and manager.count("WATCHDOG=1") == 1
        assert manager.lines("STATUS=") == ["STATUS=starting", "STATUS=in service x"]
        notifier.close()

    def test_disabled_without_socket(self) -> None:
        """Outside systemd nothing is sent and nothing fails."""
        notifier = Notifier(environ={})
        assert not notifier.enabled and not notifier.watchdog()

    def test_watchdog_interval(self) -> None:
        """WATCHDOG_USEC counts for this process only."""
        import os

        assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
        mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
        assert watchdog_interval(mine) == 2.0
        assert watchdog_interval({"WATCHDOG_USEC": "1", "WATCHDOG_PID": "1"}) is None
        assert watchdog_interval({}) is None


class TestWatchdog:
    """The loop pings while it is alive, and stops when a transmit hangs."""

    def test_pings_idle_serving_and_not_when_hung(self, manager: Manager) -> None:
        """Idle: pings; a card left on the reader: pings; a hung transmit: no ping at all."""
        observer = SystemdObserver(Notifier(str(manager.path)), min_ping_s=0.0)
        reader = EmulatedReader("card")
        gate = NullGate()
        stop = threading.Event()
        slow = processor()
        slow.budget_s = 60.0  # the tap deadline would cut the hung card at 0.5 s otherwise
        loop = threading.Thread(
            target=run_loop,
            args=(reader, slow, gate),
            kwargs={"station": 101, "stop": stop, "poll_s": 0.02, "observer": observer},
            daemon=True,
        )
        loop.start()
        wait_until(lambda: manager.count("WATCHDOG=1") >= 5)  # idle, no card
        reader.insert(make_card("season_pass"))
        wait_until(lambda: len(gate.records) == 1)
        served = manager.count("WATCHDOG=1")
        wait_until(lambda: manager.count("WATCHDOG=1") >= served + 5)  # card still on the reader
        assert any("granted" in line for line in manager.lines("STATUS="))
        hanging = HangingCard()
        reader.insert(hanging)  # the first card leaves, a card that never answers comes
        assert hanging.entered.wait(5)
        time.sleep(0.1)  # let a datagram already in flight land
        frozen = manager.count("WATCHDOG=1")
        time.sleep(0.5)  # 25 poll periods
        assert manager.count("WATCHDOG=1") == frozen, "pinged during a hung transmit"
        hanging.release.set()
        wait_until(lambda: manager.count("WATCHDOG=1") > frozen)  # alive again
        stop.set()
        reader.remove()
        loop.join(5)
        assert not loop.is_alive()

    def test_pings_while_out_of_service(self, manager: Manager) -> None:
        """No SAM: the gate is out of service but the loop is alive, so it still pings."""
        observer = SystemdObserver(Notifier(str(manager.path)), min_ping_s=0.0)
        sam_reader = EmulatedReader("sam")
        sam_reader.insert(SoftwareSam.from_keys(CONFIG / "keys.sim.yaml", allow_simulation=True))
        channel = ApduChannel(sam_reader.connect(), label="sam")
        rules = load_model(CONFIG / "fares.yaml", FareRules)
        broken = TapProcessor(LegacySam(channel), rules, [DEMO_AID], "test")
        sam_reader.remove()
        stop = threading.Event()
        thread = threading.Thread(
            target=run_loop,
            args=(EmulatedReader("card"), broken, NullGate()),
            kwargs={"station": 101, "stop": stop, "backoff_s": 0.02, "observer": observer},
            daemon=True,
        )
        thread.start()
        wait_until(lambda: manager.count("WATCHDOG=1") >= 5)
        stop.set()
        thread.join(5)
        assert manager.lines("STATUS=")[0].startswith("STATUS=OUT OF SERVICE (SAM:")

    def test_throttled(self, manager: Manager) -> None:
        """Pings are spaced by min_ping_s whatever the poll rate."""
        now = [0.0]
        observer = SystemdObserver(
            Notifier(str(manager.path)), min_ping_s=10.0, clock=lambda: now[0]
        )
        for _ in range(5):
            observer.on_idle()
        now[0] = 11.0
        observer.on_idle()
        assert observer.pings == 2


def test_serve_under_systemd(
    manager: Manager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve() with $NOTIFY_SOCKET: READY=1, watchdog pings, a status line per tap, STOPPING=1."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    monkeypatch.setenv("NOTIFY_SOCKET", str(manager.path))
    monkeypatch.setenv("CALYPSO_VALIDATOR_JOURNAL_DIR", str(tmp_path / "journal"))
    settings = load_settings(config)
    served = serve(
        config,
        settings,
        NullGate(),
        card_spec="emulated",
        sam_spec="software",
        max_taps=3,
        interval_s=0.0,
        seed=3,
    )
    assert served == 3
    wait_until(lambda: manager.count("STOPPING=1") == 1)
    assert manager.count("READY=1") == 1 and manager.count("WATCHDOG=1") >= 1
    taps = [line for line in manager.lines("STATUS=") if "last tap #" in line]
    assert [line.split("#")[1].split()[0] for line in taps] == ["1", "2", "3"]


def test_sigterm_stops_after_the_tap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM mid-run: serve() returns, every served tap journaled, the handler restored."""
    import os
    import signal

    from validator.journal.verify import verify_journal

    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    monkeypatch.setenv("CALYPSO_VALIDATOR_JOURNAL_DIR", str(tmp_path / "journal"))
    settings = load_settings(config)
    before = signal.getsignal(signal.SIGTERM)

    class Terminator:
        """Sends SIGTERM to this process after the second tap."""

        def on_idle(self) -> None:
            """Nothing."""

        def on_state(self, in_service: bool, reason: str | None) -> None:
            """Nothing."""

        def on_tap(self, record: TapRecord) -> None:
            """systemctl stop, in effect."""
            if record.index == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    served = serve(
        config,
        settings,
        NullGate(),
        card_spec="emulated",
        sam_spec="software",
        max_taps=None,
        interval_s=0.0,
        seed=4,
        observer=Terminator(),
    )
    assert served == 2
    assert verify_journal(tmp_path / "journal").entries == 2
    assert signal.getsignal(signal.SIGTERM) == before
