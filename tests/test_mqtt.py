"""The MQTT bridge against a real Mosquitto on loopback: Home Assistant discovery, state
topics, availability (LWT), reconnects, and settings round trips through the supervisor's
real command table (its validation and persistence)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import zmq
from syshelp import REPO, free_port, wait_for

from vzdivert import bus, mqtt
from vzdivert import config as configmod
from vzdivert.bus import CommandError
from vzdivert.supervisor.commands import HANDLERS
from vzdivert.supervisor.live_settings import LiveSettings


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    assert found, "mosquitto not installed (Debian: apt-get install mosquitto)"
    return found


class Broker:
    """A private Mosquitto on 127.0.0.1, no persistence (a restart loses retained topics)."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\nlog_dest stderr\n")
        self.log = open(tmp / "mosquitto.log", "ab")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

        def accepting() -> bool:
            assert self.proc.poll() is None, "mosquitto exited"
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        wait_for(accepting, 15, what="mosquitto accepting connections")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def broker(tmp_path: Path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()
    b.log.close()


class Observer:
    """A test client that records every message under the topics it subscribed to."""

    def __init__(self, port: int, *subscriptions: str):
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"observer-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(s, 1) for s in subscriptions])
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self.on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "observer could not subscribe"

    def on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def find(self, topic: str, where: Callable[[Any], bool] = lambda p: True,
             retained: bool | None = None) -> list[Any]:
        """Payloads (JSON-decoded when possible) on ``topic`` matching ``where``."""
        with self.lock:
            msgs = [m for m in self.messages if m.topic == topic
                    and (retained is None or m.retain == retained)]
        out = []
        for m in msgs:
            try:
                payload = json.loads(m.payload)
            except ValueError:
                payload = m.payload.decode()
            if where(payload):
                out.append(payload)
        return out

    def wait(self, topic: str, where: Callable[[Any], bool] = lambda p: True,
             timeout_s: float = 15, retained: bool | None = None) -> Any:
        found = wait_for(lambda: self.find(topic, where, retained), timeout_s,
                         what=f"a matching message on {topic}")
        return found[-1]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class StubArbiter:
    """What the commands need from the arbiter: the real live settings; the worker is 'not
    running' here."""

    def __init__(self, cfg: configmod.Config):
        self.settings = LiveSettings(cfg)

    def processes(self) -> dict[str, Any]:
        return {}

    def worker_call(self, cmd: str, **args: Any) -> Any:
        raise CommandError("no worker in this test")


STATE = {"ts": 0.0, "seq": 1, "grid_w": -512.25, "target_w": 0.0, "duty": 0.375,
         "fraction": 0.3, "power_w": 750.04, "energy_wh": 4321.0, "energy_today_wh": 3.5,
         "stale": False, "stale_reason": "", "saturated": False, "error": "",
         "reading_age_s": 0.4, "loop": {"samples": 0, "missed": 0, "dropped_old": 0}}


class FakeSystem:
    """The bus side of a running system in one thread: state (as the worker does) and
    health (as the supervisor does) on PUB, and the supervisor's REP served by the real
    command table over the real settings store."""

    def __init__(self, runtime_dir: Path, cfg: configmod.Config):
        self.runtime_dir, self.cfg = runtime_dir, cfg
        self.arbiter = StubArbiter(cfg)
        self.state = dict(STATE)
        self.publishing = threading.Event()
        self.publishing.set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        ctx = zmq.Context()
        state = bus.bind(ctx, self.runtime_dir, "state")
        health = bus.bind(ctx, self.runtime_dir, "health")
        rep = bus.bind(ctx, self.runtime_dir, "supervisor")
        next_health = 0.0
        try:
            while not self.stopping.is_set():
                if rep.poll(50):
                    bus.serve_one(rep, HANDLERS, self.arbiter)
                if self.publishing.is_set():
                    state.send(bus.encode("state", **{**self.state, "ts": time.time()}))
                if time.monotonic() >= next_health:
                    next_health = time.monotonic() + 0.5
                    health.send(bus.encode("health", ts=time.time(), processes={},
                                           settings=self.arbiter.settings.cfg.tunables()))
        finally:
            ctx.destroy(0)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)


def write_config(path: Path, state_dir: Path, port: int, extra: str = "") -> Path:
    path.write_text(f"""
[output]
driver = "sim"

[mqtt]
enabled = true
port = {port}
client_id = "vzdivert-test"
publish_interval_s = 0.5
{extra}

[state]
dir = "{state_dir}"
""")
    return path


class BridgeProcess:
    def __init__(self, tmp: Path, config: Path, runtime_dir: Path):
        self.log_path = tmp / "bridge.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vzdivert.mqtt", "--config", str(config),
             "--runtime-dir", str(runtime_dir)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
            env={**os.environ, "VZDIVERT_LOG": "DEBUG"})

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def setup(tmp_path: Path, broker: Broker):
    """Broker, fake system, bridge process and an observer on everything."""
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir(mode=0o700)
    (tmp_path / "state").mkdir()
    config = write_config(tmp_path / "vzdivert.toml", tmp_path / "state", broker.port)
    system = FakeSystem(runtime_dir, configmod.load(config))
    observer = Observer(broker.port, "#")
    bridge = BridgeProcess(tmp_path, config, runtime_dir)
    try:
        yield broker, system, bridge, observer
    finally:
        bridge.kill()
        observer.close()
        system.stop()
        if os.environ.get("VZDIVERT_TEST_LOGS"):
            print(bridge.logs())


def online(observer: Observer) -> None:
    observer.wait("vzdivert/availability", lambda p: p == "online")


# -- pure parts ----------------------------------------------------------------------------
def test_throttle_interval_and_flag_changes() -> None:
    t = mqtt.Throttle(5.0)
    calm = {"stale": False, "saturated": False}
    assert t.due(calm, 100.0)
    assert not t.due(calm, 101.0)
    assert t.due({**calm, "stale": True}, 101.5)  # a flag changed: at once
    assert not t.due({**calm, "stale": True}, 102.0)
    assert t.due({**calm, "stale": True, "saturated": True}, 102.1)
    assert not t.due({**calm, "stale": True, "saturated": True}, 107.0)
    assert t.due({**calm, "stale": True, "saturated": True}, 107.1)
    t.force()
    assert t.due({**calm, "stale": True, "saturated": True}, 107.2)


def test_parse_command() -> None:
    assert mqtt.parse_command("p/set/target_w", b"-50", "p") == {"target_w": -50}
    assert mqtt.parse_command("p/set/curve", b"pfc", "p") == {"curve": "pfc"}
    assert mqtt.parse_command("p/set/curve", b'"linear"\n', "p") == {"curve": "linear"}
    assert mqtt.parse_command("p/set", b'{"deadband_w": 20, "target_w": 5}', "p") \
        == {"deadband_w": 20, "target_w": 5}
    for bad in (b"[1]", b"{}", b"nope"):
        with pytest.raises(ValueError):
            mqtt.parse_command("p/set", bad, "p")
    with pytest.raises(ValueError):
        mqtt.parse_command("p/set/curve", b"\xff", "p")


def test_state_payload_percent_and_rounding() -> None:
    out = mqtt.state_payload(STATE)
    assert out["duty_pct"] == 37.5
    assert out["power_w"] == 750.0
    assert out["grid_w"] == -512.2 or out["grid_w"] == -512.3
    assert out["stale"] is False and out["energy_wh"] == 4321.0
    assert "loop" not in out
    assert mqtt.state_payload({**STATE, "duty": None, "grid_w": None})["grid_w"] is None


def test_discovery_off_and_commands_off(tmp_path: Path) -> None:
    cfg = configmod.validate({"mqtt": {"discovery_prefix": ""}})
    assert mqtt.discovery_configs(cfg) == []
    cfg = configmod.validate({"mqtt": {"commands": False}})
    components = {topic.split("/")[1] for topic, _ in mqtt.discovery_configs(cfg)}
    assert components == {"sensor", "binary_sensor"}


def test_config_rejects_wildcard_prefixes() -> None:
    for bad in ("a/#", "+", "/x", "x/", ""):
        with pytest.raises(configmod.ConfigError, match="mqtt.topic_prefix"):
            configmod.validate({"mqtt": {"topic_prefix": bad}})


# -- against Mosquitto ---------------------------------------------------------------------
TEMPLATE_FIELD = re.compile(r"value_json\.(\w+)")


def test_home_assistant_discovery_is_retained(setup) -> None:
    broker, system, bridge, observer = setup
    online(observer)
    # a client arriving later (Home Assistant after a restart) gets the configs retained
    late = Observer(broker.port, "homeassistant/#")
    try:
        base = "homeassistant/{}/vzdivert/{}/config"
        energy = late.wait(base.format("sensor", "energy"), retained=True)
        grid = late.wait(base.format("sensor", "grid_power"), retained=True)
        diverted = late.wait(base.format("sensor", "diverted_power"), retained=True)
        duty = late.wait(base.format("sensor", "duty"), retained=True)
        stale = late.wait(base.format("binary_sensor", "stale"), retained=True)
        saturated = late.wait(base.format("binary_sensor", "saturated"), retained=True)
        target = late.wait(base.format("number", "set_target_w"), retained=True)
        curve = late.wait(base.format("select", "set_curve"), retained=True)
    finally:
        late.close()
    assert (energy["device_class"], energy["unit_of_measurement"], energy["state_class"]) \
        == ("energy", "Wh", "total_increasing")
    for power in (grid, diverted):
        assert (power["device_class"], power["unit_of_measurement"]) == ("power", "W")
        assert power["state_class"] == "measurement"
    assert duty["unit_of_measurement"] == "%"
    assert stale["device_class"] == "problem" and stale["payload_on"] == "ON"
    assert saturated["payload_off"] == "OFF"
    sensors = [energy, grid, diverted, duty, stale, saturated]
    assert len({c["unique_id"] for c in [*sensors, target, curve]}) == 8
    for c in [*sensors, target, curve]:
        assert c["availability_topic"] == "vzdivert/availability"
        assert c["device"]["identifiers"] == ["vzdivert"]
    # every template reads a field the bridge really publishes
    state = observer.wait("vzdivert/state")
    for c in sensors:
        assert c["state_topic"] == "vzdivert/state"
        (field,) = TEMPLATE_FIELD.findall(c["value_template"])
        assert field in state, f"{c['name']}: {field} not in {sorted(state)}"
    assert state["grid_w"] == -512.2 or state["grid_w"] == -512.3
    assert state["duty_pct"] == 37.5 and state["energy_wh"] == 4321.0
    assert target["command_topic"] == "vzdivert/set/target_w"
    assert (target["min"], target["max"], target["unit_of_measurement"]) == (-100000, 100000, "W")
    assert curve["options"] == list(configmod.TUNABLES["curve"].choices)
    settings = observer.wait("vzdivert/settings")
    (field,) = TEMPLATE_FIELD.findall(target["value_template"])
    assert settings[field] == 0.0


def test_state_and_single_topics(setup) -> None:
    broker, system, bridge, observer = setup
    observer.wait("vzdivert/state", lambda p: p["power_w"] == 750.0)
    assert observer.wait("vzdivert/power_w") == 750.0
    assert observer.wait("vzdivert/stale") is False
    system.state = {**STATE, "stale": True, "stale_reason": "no fresh reading", "power_w": 0.0,
                    "duty": 0.0}
    observer.wait("vzdivert/state", lambda p: p["stale"] is True and p["duty_pct"] == 0)
    observer.wait("vzdivert/stale_reason", lambda p: p == "no fresh reading")


def test_settings_round_trip_through_the_supervisor_validation(setup, tmp_path) -> None:
    broker, system, bridge, observer = setup
    online(observer)
    observer.publish("vzdivert/set/target_w", "-50")
    result = observer.wait("vzdivert/set/result", lambda p: p["request"] == {"target_w": -50})
    assert result["ok"] is True and result["settings"]["target_w"] == -50.0
    assert result["applied"] is False  # no worker in this test; saved all the same
    observer.wait("vzdivert/settings", lambda p: p["target_w"] == -50.0)
    saved = json.loads((tmp_path / "state" / "settings.json").read_text())
    assert saved["settings"]["target_w"] == -50.0
    assert saved["changes"][-1]["who"] == "mqtt"

    observer.publish("vzdivert/set/target_w", "1e9")
    bad = observer.wait("vzdivert/set/result", lambda p: p["request"] == {"target_w": 1e9})
    assert bad["ok"] is False
    assert any("target_w" in e and "100000" in e for e in bad["errors"]), bad["errors"]
    assert system.arbiter.settings.cfg.control.target_w == -50.0  # unchanged by the refusal

    observer.publish("vzdivert/set/no_such_setting", "1")
    bad = observer.wait("vzdivert/set/result",
                        lambda p: p["request"] == {"no_such_setting": 1})
    assert bad["ok"] is False and "not a setting" in bad["errors"][0]

    observer.publish("vzdivert/set/curve", "pfc")  # a bare word, as HA's select sends it
    observer.wait("vzdivert/set/result", lambda p: p["ok"] and p["settings"]["curve"] == "pfc")
    observer.publish("vzdivert/set", '{"deadband_w": 25, "rating_w": 1500}')
    observer.wait("vzdivert/set/result",
                  lambda p: p["ok"] and p["settings"]["deadband_w"] == 25.0
                  and p["settings"]["rating_w"] == 1500.0)
    observer.publish("vzdivert/set", "not json")
    observer.wait("vzdivert/set/result", lambda p: p["ok"] is False and p["request"] is None)
    assert bridge.proc.poll() is None


def test_availability_follows_the_worker(setup) -> None:
    broker, system, bridge, observer = setup
    online(observer)
    system.publishing.clear()  # the worker went quiet
    observer.wait("vzdivert/availability", lambda p: p == "offline",
                  timeout_s=mqtt.STATE_TIMEOUT_S + 15)
    system.publishing.set()
    wait_for(lambda: observer.find("vzdivert/availability")[-1] == "online", 15,
             what="availability online again")


def test_last_will_marks_a_dead_bridge_offline(setup) -> None:
    broker, system, bridge, observer = setup
    online(observer)
    os.kill(bridge.proc.pid, signal.SIGKILL)
    observer.wait("vzdivert/availability", lambda p: p == "offline")


def test_clean_stop_says_offline(setup) -> None:
    broker, system, bridge, observer = setup
    online(observer)
    bridge.proc.send_signal(signal.SIGTERM)
    assert bridge.proc.wait(15) == 0
    observer.wait("vzdivert/availability", lambda p: p == "offline")


def test_reconnects_after_a_broker_restart(setup) -> None:
    broker, system, bridge, observer = setup
    online(observer)
    observer.close()
    broker.stop()  # no persistence: every retained topic is gone with it
    broker.start()
    late = Observer(broker.port, "vzdivert/availability", "homeassistant/#")
    try:
        # retained or live, depending on who of the two was back first
        late.wait("vzdivert/availability", lambda p: p == "online", timeout_s=90)
        late.wait("homeassistant/sensor/vzdivert/energy/config")
    finally:
        late.close()
    assert bridge.proc.poll() is None, bridge.logs()


def test_bridge_started_before_the_broker_connects_when_it_comes(tmp_path: Path) -> None:
    broker = Broker(tmp_path)  # port chosen, not started yet
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir(mode=0o700)
    (tmp_path / "state").mkdir()
    config = write_config(tmp_path / "vzdivert.toml", tmp_path / "state", broker.port)
    system = FakeSystem(runtime_dir, configmod.load(config))
    bridge = BridgeProcess(tmp_path, config, runtime_dir)
    observer = None
    try:
        wait_for(lambda: "bridging to" in bridge.logs(), 30, what="the bridge running")
        broker.start()
        observer = Observer(broker.port, "vzdivert/availability")
        observer.wait("vzdivert/availability", lambda p: p == "online", timeout_s=90)
    finally:
        bridge.kill()
        if observer is not None:
            observer.close()
        system.stop()
        broker.stop()
        broker.log.close()


# -- with the real system ------------------------------------------------------------------
def test_settings_round_trip_with_the_real_system(tmp_path: Path, broker: Broker,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`vzdivert run` (sim output) and the bridge on its bus: a setting sent over MQTT is
    validated and saved by the supervisor, applied by the worker, and shows in the state."""
    from syshelp import System

    runtime_dir = tmp_path / "run"
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(runtime_dir))  # where the sockets will be
    system = System(tmp_path, 'driver = "sim"',
                    "\n[rtworker]\npriority = 0\nlock_memory = false\n")
    bridge = observer = None
    try:
        system.start(60)
        # the bridge with its own config: the system's, plus [mqtt] (the system itself
        # runs without, so this test does not depend on who starts the bridge)
        bridge_config = tmp_path / "bridge.toml"
        bridge_config.write_text(system.config.read_text()
                                 + f"\n[mqtt]\nenabled = true\nport = {broker.port}\n"
                                   "publish_interval_s = 0.5\n")
        observer = Observer(broker.port, "vzdivert/#")
        bridge = BridgeProcess(tmp_path, bridge_config, runtime_dir)
        online(observer)
        observer.wait("vzdivert/state", lambda p: p["target_w"] == 0.0)

        observer.publish("vzdivert/set/target_w", "-75")
        result = observer.wait("vzdivert/set/result",
                               lambda p: p["request"] == {"target_w": -75})
        assert result["ok"] is True and result["applied"] is True, result
        observer.wait("vzdivert/state", lambda p: p["target_w"] == -75.0)
        wait_for(lambda: system.state()["target_w"] == -75.0, 10, what="the UI seeing it")

        observer.publish("vzdivert/set/rating_w", "0")
        bad = observer.wait("vzdivert/set/result", lambda p: p["request"] == {"rating_w": 0})
        assert bad["ok"] is False and any("rating_w" in e for e in bad["errors"])
    finally:
        if bridge is not None:
            bridge.kill()
        if observer is not None:
            observer.close()
        system.kill_all()


def test_supervisor_runs_the_bridge_when_enabled(tmp_path: Path, broker: Broker) -> None:
    """[mqtt] enabled = true: `vzdivert run` starts and supervises the bridge itself."""
    from syshelp import System

    system = System(tmp_path, 'driver = "sim"',
                    "\n[rtworker]\npriority = 0\nlock_memory = false\n"
                    f"\n[mqtt]\nenabled = true\nport = {broker.port}\n")
    observer = None
    try:
        system.start(60)
        observer = Observer(broker.port, "vzdivert/availability")
        observer.wait("vzdivert/availability", lambda p: p == "online", timeout_s=30)
        assert system.state()["processes"]["mqtt"]["alive"] is True
    finally:
        if observer is not None:
            observer.close()
        system.kill_all()


def test_retained_commands_are_ignored(tmp_path: Path, broker: Broker) -> None:
    """A retained command would be re-applied at every reconnect: the bridge skips it."""
    sender = Observer(broker.port, "vzdivert/set/result")
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir(mode=0o700)
    (tmp_path / "state").mkdir()
    config = write_config(tmp_path / "vzdivert.toml", tmp_path / "state", broker.port)
    system = FakeSystem(runtime_dir, configmod.load(config))
    bridge = None
    try:
        sender.client.publish("vzdivert/set/target_w", "-20", qos=1,
                              retain=True).wait_for_publish(5)
        bridge = BridgeProcess(tmp_path, config, runtime_dir)
        wait_for(lambda: "ignoring retained MQTT command" in bridge.logs(), 30,
                 what="the bridge skipping the retained command")
        sender.publish("vzdivert/set/target_w", "-30")
        sender.wait("vzdivert/set/result", lambda p: p["request"] == {"target_w": -30})
        # results come in command order: the retained one would have come first
        assert [r["request"] for r in sender.find("vzdivert/set/result")] \
            == [{"target_w": -30}]
        assert system.arbiter.settings.cfg.control.target_w == -30.0
    finally:
        if bridge is not None:
            bridge.kill()
        sender.close()
        system.stop()


def test_commands_the_bus_cannot_carry_are_refused() -> None:
    """Issue 16 item 6: integers beyond 64 bits, lone surrogates and deep nesting were
    exceptions in the bridge; now they are invalid commands."""
    for payload in (b'{"target_w": 18446744073709551616}', b'{"target_w": "\\ud800"}',
                    b'{"target_w": ' + b"[" * 50_000 + b"}"):
        with pytest.raises(ValueError):
            mqtt.parse_command("p/set", payload, "p")
    with pytest.raises(ValueError, match="out of range"):
        mqtt.parse_command("p/set/target_w", b"18446744073709551616", "p")
