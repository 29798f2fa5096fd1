"""Prometheus `/metrics`: the latest state, health and ingest_stats bus messages rendered in
the text exposition format by prometheus_client, through a private registry (no process
globals, nothing collected between scrapes)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from vzdivert import bus

# per-load gauges: metric name, help, key of the load's entry in the state
_LOAD_GAUGES = (
    ("vzdivert_load_power_watts", "Power a load is estimated to draw", "power_w"),
    ("vzdivert_load_on", "1 while a load is switched on", "on"),
    ("vzdivert_load_duty_ratio",
     "Duty (PWM) or level (relay, bypass) of a load's output (0..1)", "duty"),
    ("vzdivert_load_energy_today_wh",
     "Energy diverted into a load today, in Wh (resets at midnight)", "energy_today_wh"),
    ("vzdivert_load_rating_learned_watts",
     "What a load was learned to draw at full output, in W", "rating_learned_w"),
    ("vzdivert_load_rating_confidence", "Confidence in a load's learned rating (0..1)",
     "rating_confidence"),
)


class Feed(Protocol):
    """The newest bus message of each stream ({} until the first one arrived)."""

    state: dict[str, Any]
    health: dict[str, Any]
    ingest_stats: dict[str, Any]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _gauge(name: str, doc: str, value: Any) -> Iterator[Metric]:
    value = _number(value)
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: Any) -> Iterator[Metric]:
    value = _number(value)
    if value is not None:
        yield CounterMetricFamily(name, doc, value=value)


class FeedCollector:
    """A prometheus_client custom collector over one snapshot of the feed."""

    def __init__(self, feed: Feed, now: float | None = None):
        self.state = dict(getattr(feed, "state", None) or {})
        self.health = dict(getattr(feed, "health", None) or {})
        self.ingest = dict(getattr(feed, "ingest_stats", None) or {})
        self.hotwater = dict(getattr(feed, "hotwater_state", None) or {})
        self.now = time.time() if now is None else now

    def collect(self) -> Iterator[Metric]:
        yield from self.controller()
        yield from self.loads()
        yield from self.loop()
        yield from self.processes()
        yield from self.ingest_metrics()

    def controller(self) -> Iterator[Metric]:
        s = self.state
        if not s:
            return
        yield from _gauge("vzdivert_grid_power_watts",
                          "Grid power from the meter (negative = export)", s.get("grid_w"))
        yield from _gauge("vzdivert_diverted_power_watts",
                          "Power the load is estimated to draw", s.get("power_w"))
        yield from _gauge("vzdivert_target_power_watts", "Grid power setpoint",
                          s.get("target_w"))
        yield from _gauge("vzdivert_duty_ratio", "PWM duty of the output (0..1)", s.get("duty"))
        yield from _counter("vzdivert_diverted_energy_wh",
                            "Energy diverted into the load since installation, in Wh",
                            s.get("energy_wh"))
        yield from _gauge("vzdivert_stale", "1 while the output is off for lack of fresh data",
                          s.get("stale"))
        yield from _gauge("vzdivert_saturated",
                          "1 while more duty would change nothing (load off or at full)",
                          s.get("saturated"))
        yield from _gauge("vzdivert_rating_learned_watts",
                          "What the load is learned to draw at full output",
                          s.get("rating_learned_w"))
        yield from _gauge("vzdivert_rating_confidence",
                          "Confidence in the learned rating (0..1)", s.get("rating_confidence"))
        yield from _gauge("vzdivert_reading_age_seconds",
                          "Time since the last reading reached the controller",
                          s.get("reading_age_s"))
        yield from _gauge("vzdivert_tank_hold",
                          "1 while the tank limit holds heating off (max_c or no temperature)",
                          bool(s.get("hold_reason")))
        tank_c = self.hotwater.get("tank_c", s.get("tank_c"))
        yield from _gauge("vzdivert_tank_temperature_celsius", "Tank temperature", tank_c)
        if self.hotwater.get("tank_age_s") is not None:
            yield from _gauge("vzdivert_tank_temperature_age_seconds",
                              "Time since the tank temperature was measured",
                              self.hotwater["tank_age_s"])
        mode = GaugeMetricFamily("vzdivert_mode", "1 for the mode the load is in",
                                 labels=["mode"])
        for name in bus.STATE_MODES:
            mode.add_metric([name], 1.0 if s.get("mode") == name else 0.0)
        yield mode
        ts = _number(s.get("ts"))
        if ts is not None:
            yield from _gauge("vzdivert_state_age_seconds",
                              "Time since the worker last published its state",
                              max(0.0, self.now - ts))

    def loads(self) -> Iterator[Metric]:
        """One series per load (the PWM load, its bypass, each relay stage)."""
        loads = [load for load in self.state.get("loads") or [] if isinstance(load, dict)]
        if not loads:
            return
        families = [(GaugeMetricFamily(name, text, labels=["load", "kind"]), key)
                    for name, text, key in _LOAD_GAUGES]
        for family, key in families:
            for load in loads:
                value = _number(load.get(key))
                if value is not None:
                    family.add_metric([str(load.get("name")), str(load.get("kind"))], value)
            yield family

    def loop(self) -> Iterator[Metric]:
        loop = self.state.get("loop") or {}
        if not loop:
            return
        yield from _counter("vzdivert_loop_samples", "Readings the control loop acted on",
                            loop.get("samples"))
        yield from _counter("vzdivert_loop_deadline_missed",
                            "Readings whose arrival-to-output latency exceeded the deadline",
                            loop.get("missed"))
        yield from _counter("vzdivert_loop_dropped_old",
                            "Readings dropped as too old or out of order", loop.get("dropped_old"))
        hist = loop.get("latency_hist")
        if hist:
            yield from self.latency_histogram(hist)
        yield from self.latency_quantiles(loop)  # recent quantiles beside the histogram

    @staticmethod
    def latency_histogram(hist: dict[str, Any]) -> Iterator[Metric]:
        """From {"le_ms": bounds, "counts": per-bucket counts (one more than bounds, the
        last for > the largest bound), "sum_s": total latency}."""
        bounds, counts = hist.get("le_ms") or [], hist.get("counts") or []
        if len(counts) != len(bounds) + 1:
            return
        buckets, total = [], 0
        for bound_ms, count in zip([*bounds, math.inf], counts, strict=True):
            total += count
            le = "+Inf" if bound_ms == math.inf else repr(bound_ms / 1000.0)
            buckets.append((le, total))
        yield HistogramMetricFamily(
            "vzdivert_loop_latency_seconds",
            "Time from a reading's arrival at the ingest to the output written",
            buckets=buckets, sum_value=float(hist.get("sum_s", 0.0)))

    @staticmethod
    def latency_quantiles(loop: dict[str, Any]) -> Iterator[Metric]:
        """Quantiles of the worker's ring of recent samples (the histogram counts since
        start), and its longest recent step."""
        quantiles = [(q, loop.get(key)) for q, key in (("0.5", "latency_p50_ms"),
                                                       ("0.99", "latency_p99_ms"),
                                                       ("1", "latency_max_ms"))]
        quantiles = [(q, _number(v)) for q, v in quantiles if _number(v) is not None]
        if quantiles:
            # not vzdivert_loop_latency_seconds: that name is the histogram's
            g = GaugeMetricFamily("vzdivert_loop_latency_recent_seconds",
                                  "Time from a reading's arrival at the ingest to the output "
                                  "written, quantiles over the last 256 readings",
                                  labels=["quantile"])
            for q, ms in quantiles:
                g.add_metric([q], ms / 1000.0)
            yield g
        step_max = _number(loop.get("step_max_us"))
        if step_max is not None:
            yield GaugeMetricFamily("vzdivert_loop_step_max_seconds",
                                    "Longest recent control step (computation only)",
                                    value=step_max / 1e6)

    def processes(self) -> Iterator[Metric]:
        procs = self.health.get("processes") or {}
        if procs:
            up = GaugeMetricFamily("vzdivert_process_up", "1 while the process is running",
                                   labels=["process"])
            restarts = CounterMetricFamily("vzdivert_process_restarts",
                                           "Restarts by the supervisor since it started",
                                           labels=["process"])
            for name, p in sorted(procs.items()):
                up.add_metric([name], float(bool(p.get("alive"))))
                restarts.add_metric([name], float(p.get("restarts") or 0))
            yield up
            yield restarts
        settings = self.health.get("settings") or {}
        numeric = {k: _number(v) for k, v in settings.items() if not isinstance(v, bool)}
        numeric = {k: v for k, v in numeric.items() if v is not None}
        if numeric:
            g = GaugeMetricFamily("vzdivert_setting", "Current value of a numeric live setting",
                                  labels=["name"])
            for name, value in sorted(numeric.items()):
                g.add_metric([name], value)
            yield g

    def ingest_metrics(self) -> Iterator[Metric]:
        st = self.ingest
        if not st:
            return
        for key, doc in (("requests", "Write requests received"),
                         ("lines", "Line-protocol lines received"),
                         ("points", "Points that matched a configured channel"),
                         ("connection_limit", "Connections refused or evicted by the caps"),
                         ("header_timeout", "Connections cut for a request head too slow"),
                         ("auth_throttled", "Write attempts refused after failed auth")):
            yield from _counter(f"vzdivert_ingest_{key}", doc, st.get(key))
        rejects = st.get("rejects") or {}
        c = CounterMetricFamily("vzdivert_ingest_rejects", "Rejected writes or lines, by reason",
                                labels=["reason"])
        for reason, n in sorted(rejects.items()):
            c.add_metric([str(reason)], float(n))
        yield c
        yield from _gauge("vzdivert_ingest_last_reading_age_seconds",
                          "Time since the ingest accepted the newest reading",
                          st.get("last_reading_age_s"))
        yield from channel_metrics(st.get("channels") or {})


def channel_metrics(channels: dict[str, Any]) -> Iterator[Metric]:
    """Per meter channel (docs/sources.md): age of its newest value, failures, rejects."""
    labels = ["channel", "source"]
    age = GaugeMetricFamily("vzdivert_ingest_channel_age_seconds",
                            "Time since the channel's newest accepted value", labels=labels)
    down = GaugeMetricFamily("vzdivert_ingest_channel_down",
                             "1 while the channel's source is failing", labels=labels)
    errors = CounterMetricFamily("vzdivert_ingest_channel_errors",
                                 "Failed polls or connections of the channel's source",
                                 labels=labels)
    rejects = CounterMetricFamily("vzdivert_ingest_channel_rejects",
                                  "Values of the channel rejected, by reason",
                                  labels=[*labels, "reason"])
    for name, ch in sorted(channels.items()):
        key = [str(name), str(ch.get("source", "influx"))]
        if _number(ch.get("age_s")) is not None:
            age.add_metric(key, float(ch["age_s"]))
        down.add_metric(key, 1.0 if ch.get("error") else 0.0)
        errors.add_metric(key, float(_number(ch.get("errors")) or 0.0))
        for reason, n in sorted((ch.get("rejects") or {}).items()):
            rejects.add_metric([*key, str(reason)], float(n))
    yield from (age, down, errors, rejects)


def render_metrics(feed: Feed, now: float | None = None) -> tuple[bytes, str]:
    """The body and Content-Type of a `/metrics` answer."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FeedCollector(feed, now))
    return generate_latest(registry), CONTENT_TYPE_LATEST
