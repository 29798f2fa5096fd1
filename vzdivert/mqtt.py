"""The optional MQTT bridge: the worker's state to topics, Home Assistant discovery, and
settings commands from `<prefix>/set/<name>` through the supervisor's own validation.
Run by the supervisor when [mqtt] enabled = true (``python -m vzdivert.mqtt``)."""

from __future__ import annotations

import json
import queue
import signal
import socket
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import zmq

from vzdivert import __version__, bus, process
from vzdivert.config import TUNABLES, Config
from vzdivert.output import load_names

KEEPALIVE_S = 30  # a hung bridge is declared offline (LWT) after 1.5 x this
STATE_TIMEOUT_S = 5.0  # no state from the worker for this long: availability offline
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
ONLINE, OFFLINE = "online", "offline"

# state fields published to <prefix>/state (JSON) and each to <prefix>/<field>
STATE_FIELDS = ("grid_w", "power_w", "target_w", "duty_pct", "energy_wh", "energy_today_wh",
                "stale", "stale_reason", "saturated", "error", "mode", "mode_until", "tank_c",
                "hold_reason")
HOTWATER_FIELDS = ("mode_until", "tank_c", "tank_error")  # from the hot-water process
BOOST_MINUTES, PAUSE_MINUTES = 30, 60  # what the Home Assistant buttons and switches ask for

# object id -> (component, name, state field, extra discovery keys)
ENTITIES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "grid_power": ("sensor", "Grid power", "grid_w",
                   {"device_class": "power", "unit_of_measurement": "W",
                    "state_class": "measurement"}),
    "diverted_power": ("sensor", "Diverted power", "power_w",
                       {"device_class": "power", "unit_of_measurement": "W",
                        "state_class": "measurement"}),
    "target_power": ("sensor", "Target grid power", "target_w",
                     {"device_class": "power", "unit_of_measurement": "W",
                      "entity_category": "diagnostic"}),
    "energy": ("sensor", "Diverted energy", "energy_wh",
               {"device_class": "energy", "unit_of_measurement": "Wh",
                "state_class": "total_increasing"}),
    "duty": ("sensor", "Output duty", "duty_pct",
             {"unit_of_measurement": "%", "state_class": "measurement",
              "icon": "mdi:sine-wave"}),
    "stale": ("binary_sensor", "Meter data stale", "stale", {"device_class": "problem"}),
    "saturated": ("binary_sensor", "Load saturated", "saturated",
                  {"icon": "mdi:water-boiler-alert"}),
    "tank_temperature": ("sensor", "Tank temperature", "tank_c",
                         {"device_class": "temperature", "unit_of_measurement": "°C",
                          "state_class": "measurement"}),
    "mode": ("sensor", "Mode", "mode", {"icon": "mdi:water-boiler"}),
    "hold_reason": ("sensor", "Heating held", "hold_reason",
                    {"icon": "mdi:thermometer-alert", "entity_category": "diagnostic"}),
}

# object id -> (component, name, command, extra discovery keys): boost and pause controls
CONTROLS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "boost": ("switch", "Boost", "boost",
              {"payload_on": str(BOOST_MINUTES), "payload_off": "0", "icon": "mdi:fire"}),
    "pause": ("switch", "Pause", "pause",
              {"payload_on": str(PAUSE_MINUTES), "payload_off": "0", "icon": "mdi:pause"}),
    "boost_30": ("button", f"Boost {BOOST_MINUTES} min", "boost",
                 {"payload_press": str(BOOST_MINUTES), "icon": "mdi:fire"}),
    "pause_60": ("button", f"Pause {PAUSE_MINUTES} min", "pause",
                 {"payload_press": str(PAUSE_MINUTES), "icon": "mdi:pause"}),
}


def topics(prefix: str) -> dict[str, str]:
    return {"state": f"{prefix}/state", "availability": f"{prefix}/availability",
            "settings": f"{prefix}/settings", "set": f"{prefix}/set",
            "result": f"{prefix}/set/result", "boost": f"{prefix}/boost",
            "pause": f"{prefix}/pause"}


def node_id(prefix: str) -> str:
    """Discovery node id and unique-id stem: the prefix with only [a-zA-Z0-9_-]."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in prefix)


def state_payload(state: dict[str, Any]) -> dict[str, Any]:
    """The published view of a worker state message (duty in percent, rounded)."""
    out = {k: state.get(k) for k in STATE_FIELDS if k in state}
    duty = state.get("duty")
    out["duty_pct"] = None if duty is None else round(duty * 100.0, 2)
    for key in ("grid_w", "power_w", "target_w"):
        if isinstance(out.get(key), float):
            out[key] = round(out[key], 1)
    for key in ("energy_wh", "energy_today_wh"):
        if isinstance(out.get(key), float):
            out[key] = round(out[key], 3)
    if state.get("loads"):  # several loads: one object each, by name
        out["loads"] = {load["name"]: {
            "kind": load.get("kind"), "on": bool(load.get("on")),
            "duty_pct": round(float(load.get("duty") or 0.0) * 100.0, 2),
            "power_w": round(float(load.get("power_w") or 0.0), 1),
            "energy_today_wh": round(float(load.get("energy_today_wh") or 0.0), 3),
            "held": load.get("held", "")} for load in state["loads"]}
    out["ts"] = state.get("ts")
    return out


def load_entities(cfg: Config) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(object id, component, name, value template, extra keys) per load: its power, its
    energy today and whether it is on, for every load the config has."""
    out = []
    for name, kind in load_names(cfg):
        slug = node_id(name).lower()
        ref = f"value_json.loads[{json.dumps(name)}]"
        out += [
            (f"load_{slug}_power", "sensor", f"{name} power", f"{{{{ {ref}.power_w }}}}",
             {"device_class": "power", "unit_of_measurement": "W",
              "state_class": "measurement"}),
            (f"load_{slug}_energy_today", "sensor", f"{name} energy today",
             f"{{{{ {ref}.energy_today_wh }}}}",
             {"device_class": "energy", "unit_of_measurement": "Wh",
              "state_class": "total_increasing"}),
            (f"load_{slug}_on", "binary_sensor", f"{name} on",
             f"{{{{ 'ON' if {ref}.on else 'OFF' }}}}",
             {"payload_on": "ON", "payload_off": "OFF", "device_class": "running",
              "icon": "mdi:water-boiler" if kind != "relay" else "mdi:electric-switch"}),
        ]
    return out


def discovery_configs(cfg: Config) -> list[tuple[str, dict[str, Any]]]:
    """(topic, payload) of every Home Assistant discovery config: the sensors, and a
    number/select per live setting when commands are enabled."""
    m = cfg.mqtt
    if not m.discovery_prefix:
        return []
    t, node = topics(m.topic_prefix), node_id(m.topic_prefix)
    device = {"identifiers": [node], "name": "vzdivert", "manufacturer": "vzdivert",
              "model": "solar-surplus diverter", "sw_version": __version__}
    common = {"availability_topic": t["availability"], "payload_available": ONLINE,
              "payload_not_available": OFFLINE, "device": device}
    out = []
    for object_id, (component, name, field, extra) in ENTITIES.items():
        payload = {"name": name, "unique_id": f"{node}_{object_id}",
                   "state_topic": t["state"], **common, **extra}
        if component == "binary_sensor":
            payload.update(value_template=f"{{{{ 'ON' if value_json.{field} else 'OFF' }}}}",
                           payload_on="ON", payload_off="OFF")
        else:
            payload["value_template"] = f"{{{{ value_json.{field} }}}}"
        out.append((f"{m.discovery_prefix}/{component}/{node}/{object_id}/config", payload))
    if len(load_names(cfg)) > 1:  # several loads: each its own entities
        for object_id, component, name, template, extra in load_entities(cfg):
            payload = {"name": name, "unique_id": f"{node}_{object_id}",
                       "state_topic": t["state"], "value_template": template, **common,
                       **extra}
            out.append((f"{m.discovery_prefix}/{component}/{node}/{object_id}/config",
                        payload))
    if m.commands:
        for name, key in TUNABLES.items():
            payload = {"name": f"Setting {name}", "unique_id": f"{node}_set_{name}",
                       "state_topic": t["settings"],
                       "value_template": f"{{{{ value_json.{name} }}}}",
                       "command_topic": f"{t['set']}/{name}", "entity_category": "config",
                       **common}
            if key.choices is not None:
                component = "select"
                payload["options"] = [str(c) for c in key.choices]
            elif key.type in (int, float):
                component = "number"
                payload.update(min=key.min, max=key.max, mode="box",
                               step=1 if key.type is int else 0.01)
                if key.unit:
                    payload["unit_of_measurement"] = key.unit
            else:
                continue
            out.append((f"{m.discovery_prefix}/{component}/{node}/set_{name}/config", payload))
        for object_id, (component, name, command, extra) in CONTROLS.items():
            payload = {"name": name, "unique_id": f"{node}_{object_id}",
                       "command_topic": t[command], **common, **extra}
            if component == "switch":
                payload.update(state_topic=t["state"], state_on="ON", state_off="OFF",
                               value_template=f"{{{{ 'ON' if value_json.mode == '{command}' "
                                              f"else 'OFF' }}}}")
            out.append((f"{m.discovery_prefix}/{component}/{node}/{object_id}/config", payload))
    return out


def parse_hotwater(payload: bytes) -> dict[str, Any]:
    """`<prefix>/boost` or `/pause`: minutes (`30`, 0 cancels), or JSON {"minutes": 30,
    "power_w": 1000} (boost). Raises ValueError."""
    text = payload.decode("utf-8", errors="strict").strip()
    value = json.loads(text)
    if isinstance(value, dict):
        if not set(value) <= {"minutes", "power_w"} or "minutes" not in value:
            raise ValueError('expected minutes, or {"minutes": M, "power_w": W}')
        return value
    return {"minutes": value}


def parse_command(topic: str, payload: bytes, prefix: str) -> dict[str, Any]:
    """Settings from a command message: `<prefix>/set/<name>` with a JSON value or a bare
    string (`pfc`), or `<prefix>/set` with a JSON object of several. Raises ValueError."""
    set_topic = topics(prefix)["set"]
    text = payload.decode("utf-8", errors="strict").strip()
    try:
        if topic == set_topic:
            settings = json.loads(text)
            if not isinstance(settings, dict) or not settings:
                raise ValueError(f"{set_topic}: expected a JSON object of name: value")
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text  # a bare word, e.g. a choice
            settings = {topic[len(set_topic) + 1:]: value}
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    problems = bus.unsendable(settings)
    if problems:
        raise ValueError("; ".join(f"{k!r}: {p}" for k, p in problems.items()))
    return settings


class Throttle:
    """Publish the state at most every ``interval_s``, but at once when stale, saturated,
    the mode or the tank hold change (the flags people alert on should not wait)."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.next_due = 0.0
        self.flags: tuple[Any, ...] | None = None

    def due(self, state: dict[str, Any], now: float) -> bool:
        flags = (state.get("stale"), state.get("saturated"), state.get("mode"),
                 bool(state.get("hold_reason")))
        if now >= self.next_due or flags != self.flags:
            self.next_due, self.flags = now + self.interval_s, flags
            return True
        return False

    def force(self) -> None:
        self.next_due = 0.0


class Bridge:
    def __init__(self, cfg: Config, runtime_dir: Path, ctx: zmq.Context, log: Any):
        self.cfg, self.log, self.m = cfg, log, cfg.mqtt
        self.t = topics(self.m.topic_prefix)
        self.state_sub = bus.subscribe(ctx, runtime_dir, "state", conflate=True)
        self.health_sub = bus.subscribe(ctx, runtime_dir, "health", conflate=True)
        self.supervisor = bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=5.0)
        self.hotwater_sub = bus.subscribe(ctx, runtime_dir, "hotwater_state", conflate=True)
        self.hotwater = bus.Requester(ctx, runtime_dir, "hotwater", timeout_s=5.0)
        self.hotwater_state: dict[str, Any] = {}
        self.poller = zmq.Poller()
        self.poller.register(self.state_sub, zmq.POLLIN)
        self.poller.register(self.health_sub, zmq.POLLIN)
        self.poller.register(self.hotwater_sub, zmq.POLLIN)
        self.throttle = Throttle(self.m.publish_interval_s)
        self.commands: queue.Queue[paho.MQTTMessage] = queue.Queue(maxsize=100)
        self.connected: queue.Queue[bool] = queue.Queue()  # paho thread -> loop: republish
        self.running = True
        self.state: dict[str, Any] = {}
        self.state_mono = 0.0
        self.settings: dict[str, Any] | None = None
        self.available: str | None = None
        self.client = self.make_client()

    def make_client(self) -> paho.Client:
        client_id = self.m.client_id or f"vzdivert-{socket.gethostname()}"
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if self.m.username:
            client.username_pw_set(self.m.username, self.m.password or None)
        if self.m.tls:
            client.tls_set()
        client.will_set(self.t["availability"], OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_message = self.on_message
        return client

    # -- paho's network thread ------------------------------------------------------------
    def on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if reason.is_failure:
            self.log.warning("MQTT broker %s:%d refused the connection: %s", self.m.host,
                             self.m.port, reason)
            return
        self.log.info("connected to MQTT broker %s:%d", self.m.host, self.m.port)
        for topic, payload in discovery_configs(self.cfg):
            client.publish(topic, json.dumps(payload), qos=1, retain=True)
        if self.m.commands:
            client.subscribe([(self.t["set"], 1), (self.t["set"] + "/+", 1),
                              (self.t["boost"], 1), (self.t["pause"], 1)])
        self.connected.put(True)

    def on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                      properties: Any) -> None:
        if self.running:
            self.log.warning("lost the MQTT broker (%s): reconnecting", reason)

    def on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == self.t["result"]:
            return  # our own answers, under the same wildcard
        if msg.retain:
            # a retained command would be applied again at every reconnect, long after
            # whoever sent it has forgotten about it
            self.log.warning("ignoring retained MQTT command on %s (publish commands "
                             "without the retain flag)", msg.topic)
            return
        try:
            self.commands.put_nowait(msg)
        except queue.Full:
            self.log.warning("MQTT command dropped (too many queued): %s", msg.topic)

    # -- the loop (main thread: owns every zmq socket) ------------------------------------
    def run(self) -> None:
        self.client.connect_async(self.m.host, self.m.port, KEEPALIVE_S)
        self.client.loop_start()
        try:
            while self.running:
                events = dict(self.poller.poll(100))
                now = time.monotonic()
                if self.health_sub in events:
                    self.on_health(bus.decode(self.health_sub.recv(), expect="health"))
                if self.state_sub in events:
                    self.state = bus.decode(self.state_sub.recv(), expect="state")
                    self.state_mono = now
                if self.hotwater_sub in events:
                    self.hotwater_state = bus.decode(self.hotwater_sub.recv(),
                                                     expect="hotwater_state")
                while not self.connected.empty():
                    self.connected.get_nowait()
                    self.available = None  # retained topics may be gone: send all again
                    self.throttle.force()
                    self.publish_settings()
                while not self.commands.empty():
                    self.on_command(self.commands.get_nowait())
                self.publish_availability(now)
                if self.state and now - self.state_mono < STATE_TIMEOUT_S \
                        and self.throttle.due(self.state, now):
                    self.publish_state()
        finally:
            self.publish(self.t["availability"], OFFLINE, retain=True)
            self.client.disconnect()
            self.client.loop_stop()
            self.supervisor.close()
            self.hotwater.close()

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        if self.client.is_connected():
            self.client.publish(topic, payload, qos=0 if not retain else 1, retain=retain)

    def publish_availability(self, now: float) -> None:
        available = ONLINE if self.state and now - self.state_mono < STATE_TIMEOUT_S \
            else OFFLINE
        if available != self.available and self.client.is_connected():
            self.available = available
            self.publish(self.t["availability"], available, retain=True)
            self.log.info("availability: %s", available)

    def publish_state(self) -> None:
        payload = state_payload({**self.state, **{k: self.hotwater_state.get(k)
                                                  for k in HOTWATER_FIELDS}})
        self.publish(self.t["state"], json.dumps(payload), retain=True)
        prefix = self.m.topic_prefix
        for key in STATE_FIELDS:
            if key in payload:
                self.publish(f"{prefix}/{key}", json.dumps(payload[key]), retain=True)
        for name, load in payload.get("loads", {}).items():
            self.publish(f"{prefix}/loads/{node_id(name).lower()}", json.dumps(load),
                         retain=True)

    def on_health(self, health: dict[str, Any]) -> None:
        if health["settings"] != self.settings:
            self.settings = health["settings"]
            self.publish_settings()

    def publish_settings(self) -> None:
        if self.settings is not None:
            self.publish(self.t["settings"], json.dumps(self.settings), retain=True)

    def on_command(self, msg: paho.MQTTMessage) -> None:
        if msg.topic in (self.t["boost"], self.t["pause"]):
            self.on_hotwater(msg)
            return
        try:
            settings = parse_command(msg.topic, msg.payload, self.m.topic_prefix)
        except ValueError as exc:  # includes bad UTF-8 and bad JSON
            self.answer({"ok": False, "request": None, "errors": [f"{msg.topic}: {exc}"],
                         "code": "invalid", "fields": {}})
            return
        try:
            result = self.supervisor.call("set_settings", settings=settings, who="mqtt")
        except bus.CommandError as exc:
            self.log.warning("MQTT settings change refused: %s", "; ".join(exc.errors))
            self.answer({"ok": False, "request": settings, "errors": exc.errors,
                         "code": exc.code, "fields": exc.problems})
            return
        self.settings = result["settings"]
        self.publish_settings()
        self.answer({"ok": True, "request": settings, "errors": [],
                     "applied": result.get("applied"), "settings": result["settings"]})

    def on_hotwater(self, msg: paho.MQTTMessage) -> None:
        cmd = msg.topic.rpartition("/")[2]
        try:
            args = parse_hotwater(msg.payload)
            result = self.hotwater.call(cmd, **args)
        except (ValueError, bus.CommandError) as exc:
            errors = exc.errors if isinstance(exc, bus.CommandError) else [str(exc)]
            self.log.warning("MQTT %s refused: %s", cmd, "; ".join(errors))
            self.answer({"ok": False, "request": {cmd: msg.payload.decode(errors="replace")},
                         "errors": errors})
            return
        self.hotwater_state = {**self.hotwater_state, **result}
        self.state = {**self.state, "mode": result["effective_mode"]}
        self.throttle.force()
        self.answer({"ok": True, "request": {cmd: args}, "errors": [], "hotwater": result})

    def answer(self, body: dict[str, Any]) -> None:
        self.publish(self.t["result"], json.dumps(body))


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("mqtt", argv)
    ctx = zmq.Context()
    bridge = Bridge(cfg, runtime_dir, ctx, log)

    def stop(signum: int, frame: object) -> None:
        bridge.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("bridging to mqtt%s://%s:%d under %s/", "s" if cfg.mqtt.tls else "",
             cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.topic_prefix)
    try:
        bridge.run()
    finally:
        ctx.destroy(0)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
