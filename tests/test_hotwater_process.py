"""The hot-water process's loop without the rest of the system: boost and pause commands
(checks, cancel, expiry, max_c), what it tells the worker, persistence across a restart.
Real ZeroMQ sockets; a stand-in worker answers `hold` and `tank` on the real endpoint."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zmq

from vzdivert import bus
from vzdivert.config import validate
from vzdivert.hotwater.process import HotWater
from vzdivert.hotwater.tankread import TankReader


class WorkerStandIn(threading.Thread):
    """Answers the worker's endpoint and records what the hot-water process sends."""

    def __init__(self, ctx: zmq.Context, runtime_dir: Path):
        super().__init__(daemon=True)
        self.sock = bus.bind(ctx, runtime_dir, "rtworker")
        self.calls: list[tuple[str, dict]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        def record(cmd: str):
            return lambda **args: self.calls.append((cmd, args)) or {}
        handlers = {"hold": record("hold"), "tank": record("tank")}
        while not self.stop.is_set():
            if self.sock.poll(50):
                bus.serve_one(self.sock, handlers)
        self.sock.close(0)

    def last(self, cmd: str) -> dict:
        return [a for c, a in self.calls if c == cmd][-1]


@pytest.fixture
def rig(tmp_path: Path):
    ctx = zmq.Context()
    runtime = tmp_path / "run"
    runtime.mkdir()
    cfg = validate({"state": {"dir": str(tmp_path)}, "load": {"rating_w": 2000},
                    "tank": {"sensor": "mqtt:tank/t", "max_c": 60}})
    worker = WorkerStandIn(ctx, runtime)
    worker.start()
    made: list[HotWater] = []

    def make() -> HotWater:
        reader = TankReader()
        hw = HotWater(cfg, runtime, ctx, reader, tz=UTC)
        made.append(hw)
        return hw

    yield make, worker
    worker.stop.set()
    worker.join(2)
    for hw in made:
        hw.worker.close()
        for sock in (hw.rep, hw.pub, hw.state_sub, hw.health_sub):
            sock.close(0)
    ctx.term()


def test_boost_and_pause_are_checked(rig) -> None:
    make, _ = rig
    hw = make()
    for args in ({"minutes": -1}, {"minutes": 1441}, {"minutes": True}, {"minutes": "5"},
                 {"minutes": 5, "power_w": 0}, {"minutes": 5, "power_w": 2500}):
        with pytest.raises(bus.CommandError):
            hw.boost(**args)
    with pytest.raises(bus.CommandError):
        hw.pause(minutes=-2)
    assert hw.mode == "auto"


def test_boost_is_sent_to_the_worker_refreshed_and_ends(rig) -> None:
    make, worker = rig
    hw = make()
    hw.reader.put(45.0)
    status = hw.boost(minutes=30, power_w=1000)
    assert status["mode"] == "boost" and status["mode_until"] == pytest.approx(
        time.time() + 1800, abs=2)
    hw.tick(time.monotonic(), time.time())
    assert worker.last("hold") == {"mode": "boost", "power_w": 1000.0, "hold_s": 10.0}
    assert worker.last("tank")["tank_c"] == 45.0
    hw.pause(minutes=0)  # cancelling a pause does not end a boost
    assert hw.mode == "boost"
    hw.tick(time.monotonic(), time.time() + 1801)  # time up
    assert hw.mode == "auto" and worker.last("hold")["mode"] == "auto"


def test_boost_ends_at_max_c_and_pause_beats_the_guarantee(rig) -> None:
    make, worker = rig
    hw = make()
    hw.reader.put(55.0)
    hw.boost(minutes=30)
    hw.tick(time.monotonic(), time.time())
    assert worker.last("hold") == {"mode": "boost", "power_w": 0.0, "hold_s": 10.0}
    hw.reader.put(60.2)
    hw.tick(time.monotonic(), time.time())
    assert hw.mode == "auto"
    hw.pause(minutes=60)
    assert hw.effective() == ("pause", 0.0)


def test_mode_and_progress_survive_a_restart(rig) -> None:
    make, _ = rig
    hw = make()
    hw.pause(minutes=60)
    until = hw.mode_until
    hw.progress.last_legionella = 1234.0
    hw.save()
    hw.rep.close(0)
    hw.pub.close(0)
    again = make()
    assert again.mode == "pause" and again.mode_until == until
    assert again.progress.last_legionella == 1234.0


class Recorder:
    """Stands in for the status publisher and the worker's requester: records, in order,
    what the UI and the worker are told."""

    def __init__(self, events: list[tuple[str, str]], real: object):
        self.events, self.real = events, real

    def send(self, data: bytes) -> None:
        self.events.append(("ui", bus.decode(data)["effective_mode"]))

    def call(self, cmd: str, **args: object) -> dict:
        self.events.append(("worker", args.get("mode", "")))
        return {}

    def close(self, *args: object) -> None:
        self.real.close(*args)


def test_a_planned_top_up_reaches_the_ui_at_once_and_before_the_worker(rig) -> None:
    """The planner's decision goes out in the tick that makes it, to the UI first: were it
    sent to the worker first (or only there), the load ran at full power while the UI and
    MQTT still said `auto` for up to a second (the flaky system test)."""
    make, _ = rig
    hw = make()
    hw.cfg = validate({"state": {"dir": str(hw.path.parent)}, "load": {"rating_w": 2000},
                       "guarantee": {"by": "12:00", "min_energy_wh": 20}})
    deadline = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()
    events: list[tuple[str, str]] = []
    real_pub, real_worker = hw.pub, hw.worker
    hw.pub, hw.worker = Recorder(events, real_pub), Recorder(events, real_worker)
    hw.worker_state = {"tank_energy_wh": 0.0, "saturated": False, "mode": "auto",
                       "stale": False}
    try:
        hw.tick(100.0, deadline - 200)        # plans: 20 Wh from deadline - 96 s
        assert hw.plan is not None and hw.plan.start_at == pytest.approx(deadline - 96)
        hw.tick(109.9, deadline - 190)        # the worker and the UI were told just now ...
        assert events[-2:] == [("ui", "auto"), ("worker", "auto")]
        events.clear()
        hw.tick(110.0, deadline - 95)         # ... and the next plan starts the top-up
        assert hw.effective() == ("topup", 0.0)
        assert events == [("ui", "topup"), ("worker", "topup")]
        events.clear()
        hw.tick(110.1, deadline - 95)         # nothing new: the usual cadence again
        assert events == []
    finally:
        hw.pub, hw.worker = real_pub, real_worker
