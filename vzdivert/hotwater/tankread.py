"""Where the tank temperature comes from, behind one small interface: a thread that reads
the 1-Wire sensor every few seconds (a conversion blocks ~750 ms), or a subscription on
the [mqtt] broker. ``latest()`` -> (°C or None, monotonic time of the reading, error)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from vzdivert.config import Config
from vzdivert.tanksensor import SensorError, parse_mqtt, parse_sensor, read_w1

log = logging.getLogger("vzdivert.hotwater")


class TankReader:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tank_c: float | None = None
        self.at = 0.0
        self.error = ""

    def put(self, tank_c: float | None, error: str = "") -> None:
        with self.lock:
            if tank_c is not None:
                self.tank_c, self.at = tank_c, time.monotonic()
            if error and error != self.error:
                log.warning("tank sensor: %s", error)
            self.error = error

    def latest(self) -> tuple[float | None, float, str]:
        with self.lock:
            return self.tank_c, self.at, self.error

    def start(self) -> None:
        """Nothing to do for no sensor."""

    def stop(self) -> None:
        """Nothing to do for no sensor."""


class W1Reader(TankReader):
    def __init__(self, device: str, root: str, every_s: float):
        super().__init__()
        self.device, self.root, self.every_s = device, root, every_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="w1", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.put(read_w1(self.device, self.root))
            except SensorError as exc:
                self.put(None, str(exc))
            self.stopping.wait(self.every_s)

    def stop(self) -> None:
        self.stopping.set()


class MqttReader(TankReader):
    def __init__(self, cfg: Config, topic: str):
        super().__init__()
        import paho.mqtt.client as paho  # only when a tank sensor is on MQTT

        m = cfg.mqtt
        self.topic, self.json_path, self.m = topic, cfg.tank.json_path, m
        client_id = f"{m.client_id or 'vzdivert-' + socket.gethostname()}-tank"
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if m.username:
            self.client.username_pw_set(m.username, m.password or None)
        if m.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(1, 60)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_message

    def on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if reason.is_failure:
            self.put(None, f"MQTT broker refused the connection: {reason}")
            return
        client.subscribe(self.topic, qos=0)

    def on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self.put(parse_mqtt(msg.payload, self.json_path))
        except SensorError as exc:
            self.put(None, f"{msg.topic}: {exc}")

    def start(self) -> None:
        self.client.connect_async(self.m.host, self.m.port, 30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_reader(cfg: Config) -> TankReader:
    kind, where = parse_sensor(cfg.tank.sensor)
    if kind == "w1":
        return W1Reader(where, cfg.tank.w1_root, cfg.tank.read_every_s)
    if kind == "mqtt":
        return MqttReader(cfg, where)
    return TankReader()
