"""Meter sources besides the InfluxDB write endpoint: MQTT subscriptions, polled HTTP
meters, SMA Energy Meter datagrams (threads here) and vzlogger's middleware and push formats
(routes on the write app). All of them end in the same channel rules (ingest/channels.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the channel spec imports the presets from this package
    from vzdivert.ingest.channels import Channels
    from vzdivert.ingest.stats import IngestStats


class Sources:
    """The running source threads of one ingest, and its one MQTT broker connection, which
    other readers in the ingest (e.g. a tank temperature) share through ``broker()``."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.mqtt: Any = None

    def broker(self, cfg: Any, stats: IngestStats, channels: list[str] = ()) -> Any:
        """The shared MqttSubscriber (started on first use): ``.subscribe(topic, callback)``
        with ``callback(payload: bytes, retained: bool)``; ``channels`` are the names whose
        dashboard entries show a broker outage."""
        if self.mqtt is None:
            from vzdivert.ingest.sources.mqtt import MqttSubscriber
            from vzdivert.ingest.sources.sink import Outage

            m = cfg.mqtt
            self.mqtt = MqttSubscriber(m, Outage(f"MQTT broker {m.host}:{m.port}",
                                                 list(channels), stats)).start()
            self.parts.append(self.mqtt)
        return self.mqtt

    def stop(self) -> None:
        for part in self.parts:
            part.stop()


def start_sources(cfg: Any, channels: Channels, stats: IngestStats,
                  publish: Callable[[list[dict[str, Any]]], None]) -> Sources:
    from vzdivert.ingest.sources.http_poll import HttpPoller
    from vzdivert.ingest.sources.mqtt import MqttChannel
    from vzdivert.ingest.sources.sink import Outage, Sink
    from vzdivert.ingest.sources.sma_em import SmaListener

    sink, sources = Sink(channels, stats, publish), Sources()
    for spec in channels.specs:
        stats.describe(spec.name, source=spec.source, role=spec.role)
    mqtt = [s for s in channels.specs if s.source == "mqtt"]
    if mqtt:
        broker = sources.broker(cfg, stats, [s.name for s in mqtt])
        for spec in mqtt:
            broker.subscribe(spec.topic, MqttChannel(spec, sink))
    for spec in channels.specs:
        if spec.source == "http":
            outage = Outage(f"polling {spec.url} (channel {spec.name})", [spec.name], stats)
            sources.parts.append(HttpPoller(spec, sink, outage).start())
    sma = [s for s in channels.specs if s.source == "sma-em"]
    if sma:
        ing = cfg.ingest
        outage = Outage(f"SMA energy meter on {ing.sma_listen}", [s.name for s in sma], stats)
        sources.parts.append(SmaListener(sma, sink, outage, ing.sma_listen,
                                         ing.sma_group).start())
    return sources
