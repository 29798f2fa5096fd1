"""MQTT in the ingest: one broker connection (the `[mqtt]` broker) shared by every topic a
part of the ingest wants, each with its own callback, resubscribed after every reconnect.
Meter channels use it here; other readers (the tank temperature) can add topics the same
way. paho's network thread calls the callbacks, so they must be quick and thread-safe."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho

from vzdivert.channel_spec import ChannelSpec
from vzdivert.ingest.sources.sink import Outage, Sink
from vzdivert.ingest.sources.values import PayloadError, extract

log = logging.getLogger("vzdivert.ingest")
KEEPALIVE_S = 15  # a dead broker is noticed within 1.5 x this
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
Callback = Callable[[bytes, bool], None]  # (payload, retained)


class MqttSubscriber:
    def __init__(self, m: Any, outage: Outage, client_id: str = ""):
        self.m, self.outage = m, outage
        self.topics: dict[str, Callback] = {}
        self.stopping = False
        client_id = client_id or f"{m.client_id or 'vzdivert-' + socket.gethostname()}-ingest"
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        if m.username:
            self.client.username_pw_set(m.username, m.password or None)
        if m.tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail

    def subscribe(self, topic: str, callback: Callback) -> None:
        """Call ``callback(payload, retained)`` for every message on ``topic`` (wildcards
        allowed). Topics added after start() are subscribed at once."""
        self.topics[topic] = callback
        self.client.message_callback_add(
            topic, lambda c, u, msg, cb=callback: cb(msg.payload, bool(msg.retain)))
        if self.client.is_connected():
            self.client.subscribe(topic, qos=0)

    def start(self) -> MqttSubscriber:
        self.client.connect_async(self.m.host, self.m.port, KEEPALIVE_S)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.stopping = True  # our own disconnect is no outage
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho's network thread ------------------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self.outage.failed(f"broker {self.m.host}:{self.m.port} refused: {reason}")
            return
        if self.topics:
            client.subscribe([(t, 0) for t in list(self.topics)])
        self.outage.ok()
        log.info("ingest: subscribed to %d topic(s) on %s:%d", len(self.topics), self.m.host,
                 self.m.port)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if not self.stopping:
            self.outage.failed(f"lost broker {self.m.host}:{self.m.port} ({reason})")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self.outage.failed(f"cannot connect to broker {self.m.host}:{self.m.port}")


class MqttChannel:
    """A meter channel on a topic: plain number or JSON at ``json_path``; a retained message
    without a timestamp is skipped (it may be hours old and nothing says so)."""

    def __init__(self, spec: ChannelSpec, sink: Sink):
        self.spec, self.sink = spec, sink

    def __call__(self, payload: bytes, retained: bool) -> None:
        spec = self.spec
        try:
            value, ts = extract(payload, spec.json_path, spec.time_path)
        except PayloadError as exc:
            self.sink.reject(spec.name, exc.reason, f"{spec.topic}: {exc}")
            return
        if retained and ts is None:
            self.sink.stats.channel_count(spec.name, "retained_skipped")
            return
        self.sink.offer(spec.name, value, ts)
