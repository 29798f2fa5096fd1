"""Hot water end to end: `vzdivert run` on the pigpiod emulator with a real Mosquitto, a
feeder posting what a house with this load would meter. Boost raises the duty while
importing and ends on time or on cancel; pause holds 0 under export; a tank temperature
above max_c published on MQTT stops the load under export and heating resumes below the
hysteresis; a deadline a few minutes ahead with a small energy goal starts the top-up at
the computed time and stops when it is met."""

from __future__ import annotations

import http.client
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import GPIO, duty
from syshelp import System, wait_for
from test_mqtt import Broker, Observer

from vzdivert import bus
from vzdivert.testing.pigpiod_emulator import PigpiodEmulator

RATING_W = 2000.0
TANK_TOPIC = "test/tank/temperature"


class Feeder:
    """Posts grid = base_w + what the load draws now, every 0.25 s, like a meter."""

    def __init__(self, system: System, emu: PigpiodEmulator, base_w: float):
        self.system, self.emu, self.base_w = system, emu, base_w
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.system.post(self.base_w + duty(self.emu) * RATING_W)
            except OSError:
                pass
            self.stop.wait(0.25)

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def broker(tmp_path: Path):
    b = Broker(tmp_path).start()  # as in test_mqtt (a fixture imported under pytest's
    yield b                       # name would shadow every parameter called broker)
    b.stop()
    b.log.close()


def start_system(tmp_path: Path, emu: PigpiodEmulator, broker: Broker, extra: str = "",
                 monkeypatch: pytest.MonkeyPatch | None = None) -> System:
    system = System(tmp_path, f'driver = "pigpio"\ngpio = {GPIO}\npigpio_port = {emu.port}',
                    "\n[rtworker]\npriority = 0\nlock_memory = false\n"
                    f"\n[mqtt]\nenabled = true\nport = {broker.port}\n"
                    f"publish_interval_s = 0.5\n{extra}")
    return system.start(60)


@pytest.fixture
def observer(broker: Broker):
    obs = Observer(broker.port, "vzdivert/#")
    yield obs
    obs.close()


@pytest.fixture
def run_system(tmp_path: Path, emulator: PigpiodEmulator, broker: Broker,
               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    monkeypatch.setenv("TZ", "UTC")
    started: list[System] = []

    def start(extra: str = "") -> System:
        started.append(start_system(tmp_path, emulator, broker, extra))
        return started[-1]

    yield start
    for system in started:
        system.kill_all()


def hotwater_call(tmp_path: Path, cmd: str, **args: object) -> dict:
    import zmq
    ctx = zmq.Context()
    req = bus.Requester(ctx, tmp_path / "run", "hotwater", timeout_s=5.0)
    try:
        return req.call(cmd, **args)
    finally:
        req.close()
        ctx.term()


def bridge_online(observer: Observer) -> None:
    observer.wait("vzdivert/availability", lambda p: p == "online", timeout_s=30)


def test_boost_runs_while_importing_and_ends_on_time_or_cancel(
        run_system, emulator, observer) -> None:
    system = run_system()
    bridge_online(observer)
    with Feeder(system, emulator, base_w=400.0):
        wait_for(lambda: system.state()["stale"] is False, 15, what="fresh data")
        assert duty(emulator) == 0.0  # importing: nothing to divert
        observer.publish("vzdivert/boost", '{"minutes": 0.15}')  # 9 s
        result = observer.wait("vzdivert/set/result", lambda p: "boost" in p["request"])
        assert result["ok"] is True and result["hotwater"]["mode"] == "boost", result
        started = time.monotonic()
        wait_for(lambda: duty(emulator) > 0.99, 10, what="boost at full power")
        assert system.state()["mode"] == "boost"
        wait_for(lambda: duty(emulator) == 0.0, 20, what="boost over")
        assert 8.0 <= time.monotonic() - started <= 20.0
        wait_for(lambda: system.state()["mode"] == "auto", 10, what="back to auto")

        observer.publish("vzdivert/boost", "30")
        wait_for(lambda: duty(emulator) > 0.99, 10, what="boost again")
        observer.publish("vzdivert/boost", "0")
        wait_for(lambda: duty(emulator) == 0.0, 10, what="cancelled")
        assert hotwater_call(system.tmp, "status")["mode"] == "auto"


def api_post(system: System, path: str, body: object) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", system.ui_port, timeout=5)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_pause_holds_zero_under_export_from_the_api(run_system, emulator) -> None:
    system = run_system()
    with Feeder(system, emulator, base_w=-1500.0):
        wait_for(lambda: duty(emulator) > 0.5, 15, what="diverting the export")
        status, state = api_post(system, "/api/pause", {"minutes": 0.1})  # 6 s
        assert status == 200 and state["mode"] == "pause", state
        assert state["mode_until"] == pytest.approx(time.time() + 6, abs=2)
        wait_for(lambda: duty(emulator) == 0.0, 10, what="paused")
        paused = time.monotonic()
        wait_for(lambda: duty(emulator) > 0.5, 20, what="diverting again")
        assert time.monotonic() - paused >= 4.0
        wait_for(lambda: system.state()["mode"] == "auto", 5, what="the UI back in auto")
        assert system.state()["mode_until"] is None

        status, state = api_post(system, "/api/pause", {"minutes": 60})
        assert status == 200 and state["mode"] == "pause"
        wait_for(lambda: duty(emulator) == 0.0, 10, what="paused again")
        time.sleep(3)  # a refresh or two later, still 0 under export
        assert duty(emulator) == 0.0
        status, state = api_post(system, "/api/pause", {"minutes": 0})
        assert status == 200 and state["mode"] == "auto"
        wait_for(lambda: duty(emulator) > 0.5, 15, what="pause cancelled")

        for body in ({"minutes": -1}, {"minutes": "ten"}, {}, {"minutes": 5, "power_w": 9}):
            status, doc = api_post(system, "/api/pause", body)
            assert status == 422 and doc["errors"], (body, doc)
        status, doc = api_post(system, "/api/boost", {"minutes": 5, "power_w": 5000})
        assert status == 422 and "power_w" in doc["errors"][0]


def test_tank_above_max_c_on_mqtt_stops_the_load_and_hysteresis_resumes(
        run_system, emulator, observer) -> None:
    system = run_system(f'\n[tank]\nsensor = "mqtt:{TANK_TOPIC}"\n'
                        'json_path = "DS18B20.Temperature"\nmax_c = 60\nhysteresis_c = 3\n')

    def tank(c: float) -> None:
        observer.publish(TANK_TOPIC, f'{{"DS18B20": {{"Temperature": {c}}}}}')

    with Feeder(system, emulator, base_w=-1500.0):
        wait_for(lambda: system.state()["stale"] is False, 15, what="fresh data")
        assert duty(emulator) == 0.0  # no temperature yet: held
        assert "no tank temperature" in system.state()["hold_reason"]
        tank(50.0)
        wait_for(lambda: duty(emulator) > 0.5, 15, what="heating with a temperature")
        tank(60.5)
        wait_for(lambda: duty(emulator) == 0.0, 10, what="max_c stops the load")
        # the pins first, the worker's state (the UI's hold reason) a moment after
        wait_for(lambda: "max_c" in system.state()["hold_reason"], 2, what="max_c shown")
        tank(58.0)  # inside the hysteresis band
        time.sleep(3)
        assert duty(emulator) == 0.0
        tank(56.5)
        wait_for(lambda: duty(emulator) > 0.5, 15, what="heating again below the band")
        observer.wait("vzdivert/state", lambda p: p.get("tank_c") == 56.5)


def test_deadline_tops_up_at_the_computed_time_and_stops_when_met(
        run_system, emulator, observer) -> None:
    now = time.time()
    deadline = (int(now // 60) + 3) * 60  # 2-3 minutes ahead, on the minute
    by = datetime.fromtimestamp(deadline, UTC).strftime("%H:%M")
    # 20 Wh at 2 kW: 36 s, plus the one-minute margin -> start 96 s before the deadline
    system = run_system(f'\n[guarantee]\nby = "{by}"\nmin_energy_wh = 20\n')
    expected_start = deadline - 96
    with Feeder(system, emulator, base_w=300.0):
        wait_for(lambda: system.state()["stale"] is False, 15, what="fresh data")
        status = hotwater_call(system.tmp, "status")
        wait_for(lambda: (hotwater_call(system.tmp, "status")["guarantee"] or {})
                 .get("start_at") is not None, 20, what="a plan")
        g = hotwater_call(system.tmp, "status")["guarantee"]
        assert g["deadline"] == deadline and g["start_at"] == pytest.approx(expected_start, 1)
        assert duty(emulator) == 0.0
        wait_for(lambda: duty(emulator) > 0.99, deadline - time.time(), 0.1,
                 what="the top-up")
        began = time.time()
        assert expected_start - 1 <= began <= expected_start + 15, (began, expected_start)
        assert system.state()["mode"] == "topup"
        wait_for(lambda: duty(emulator) == 0.0, 60, 0.1, what="the top-up ending")
        ended = time.time()
        assert ended < deadline
        assert 30 <= ended - began <= 60, ended - began  # 20 Wh at 2 kW, checked every 10 s
        status = hotwater_call(system.tmp, "status")
        assert status["guarantee"]["reason"] == "met" and status["mode"] == "auto"
