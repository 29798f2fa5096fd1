"""Which values are the grid power, whatever their source: one series or a sum of several
with sign/scale (import minus export, three phases), plus the battery's power and state of
charge (ingest/battery.py). Also the freshness rules every source shares: only the newest
point per channel counts, old replays never reach the controller, a logger clock that is
obviously wrong falls back to arrival time (and is reported), a timestamp ahead of arrival
is clamped to it (control sees readings in arrival order), non-numbers are rejected."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from vzdivert.channel_spec import ChannelSpec, specs_from_config
from vzdivert.ingest.battery import BatteryPolicy, BatteryView
from vzdivert.ingest.lineproto import Point
from vzdivert.ingest.stats import IngestStats

__all__ = ["Channels", "ChannelSpec", "specs_from_config"]

log = logging.getLogger("vzdivert.ingest")
_MISSING = object()
WARN_EVERY_S = 60.0


class Channels:
    def __init__(self, specs: list[ChannelSpec], stale_after_s: float, clock_skew_s: float = 60,
                 clock_far_past_s: float = 86400, clock: Callable[[], float] = time.time,
                 battery: BatteryPolicy | None = None):
        self.specs = specs
        self.by_name = {spec.name: spec for spec in specs}
        self.by_measurement: dict[str, list[ChannelSpec]] = {}
        for spec in specs:
            if spec.source == "influx":
                self.by_measurement.setdefault(spec.measurement, []).append(spec)
        self.by_uuid = {s.uuid: s for s in specs if s.source == "volkszaehler"}
        self.grid = [s for s in specs if s.role == "grid"]
        self.battery_w = next((s for s in specs if s.role == "battery_w"), None)
        self.battery_soc = next((s for s in specs if s.role == "battery_soc"), None)
        self.view = BatteryView(battery or BatteryPolicy())
        self.stale_after_s, self.clock_skew_s = stale_after_s, clock_skew_s
        self.clock_far_past_s, self.clock = clock_far_past_s, clock
        self.latest: dict[str, tuple[float, float]] = {}  # name -> (scaled value, ts)
        self.lock = threading.Lock()
        self._warned: dict[str, float] = {}
        self.last_unmatched = ""  # a measurement nobody asked for, for the warning

    def accept(self, points: list[Point], stats: IngestStats) -> list[dict[str, Any]]:
        """Readings to publish for one write (at most one; none if nothing fresh matched)."""
        batch = self.begin()
        self.add(batch, points, stats)
        return self.commit(batch, stats)

    def begin(self) -> dict[str, Any]:
        """Start a write that arrives in slices (add() each, then commit()); the arrival
        time is taken here."""
        rx = self.clock()
        return {"rx": rx, "rx_ns": int(rx * 1e9), "newest": {}}

    def add(self, batch: dict[str, Any], points: list[Point], stats: IngestStats) -> None:
        """Keep the newest matching point per channel. Hot for 4500-line replays: one dict
        lookup per point, values checked for winners only (a bad newest value is rejected,
        never replaced by an older one)."""
        rx_ns = batch["rx_ns"]  # a point without a timestamp arrived now
        newest: dict[str, tuple[int, Any, ChannelSpec]] = batch["newest"]
        unmatched = superseded = 0
        by_measurement = self.by_measurement
        for point in points:
            specs = by_measurement.get(point.measurement)
            matched = False
            for spec in specs or ():
                value = point.fields.get(spec.field, _MISSING)
                if value is _MISSING or (spec.tags and not spec.matches(point)):
                    continue
                matched = True
                t_ns = rx_ns if point.time_ns is None else point.time_ns
                prev = newest.get(spec.name)
                if prev is not None:
                    superseded += 1
                    if t_ns < prev[0]:
                        continue
                newest[spec.name] = (t_ns, value, spec)
            if not matched:
                unmatched += 1
                self.last_unmatched = point.measurement
        if unmatched:
            stats.count("unmatched", unmatched)
            if unmatched == len(points):
                self._warn_unmatched(batch["rx"], unmatched, stats)
        if superseded:
            stats.count("superseded", superseded)

    def commit(self, batch: dict[str, Any], stats: IngestStats) -> list[dict[str, Any]]:
        fresh: dict[str, tuple[float, float, ChannelSpec]] = {}
        for name, (t_ns, value, spec) in batch["newest"].items():
            reason = _bad_value(value)
            if reason:
                stats.reject(reason)
                stats.channel_reject(name, reason)
            else:
                fresh[name] = (t_ns / 1e9, float(value), spec)
        return self._update(fresh, batch["rx"], stats)

    def offer(self, values: dict[str, tuple[Any, float | None]],
              stats: IngestStats) -> list[dict[str, Any]]:
        """The push and poll sources' entry: the newest (value, timestamp or None) of some
        channels, under the same rules as a write."""
        rx = self.clock()
        fresh: dict[str, tuple[float, float, ChannelSpec]] = {}
        for name, (value, ts) in values.items():
            reason = _bad_value(value)
            if reason:
                stats.reject(reason)
                stats.channel_reject(name, reason)
            else:
                fresh[name] = (rx if ts is None else ts, float(value), self.by_name[name])
        return self._update(fresh, rx, stats)

    def _update(self, newest: dict[str, tuple[float, float, ChannelSpec]], rx: float,
                stats: IngestStats) -> list[dict[str, Any]]:
        grid_updated = False
        with self.lock:
            for name, (ts, value, spec) in newest.items():
                if ts > rx + self.clock_skew_s or ts < rx - self.clock_far_past_s:
                    stats.count("clock_fallback")
                    self._warn("clock", rx, "ingest: channel %s timestamp is %+.0f s off the "
                               "local clock; using arrival time (check the logger's clock/NTP)",
                               name, ts - rx)
                    ts = rx
                elif ts > rx:
                    # Control orders readings by arrival: one point stamped ahead (within
                    # clock_skew_s) would otherwise make the worker drop every real reading
                    # as out of order until the wall clock caught up.
                    stats.count("clock_ahead")
                    ts = rx
                elif rx - ts > self.stale_after_s:
                    stats.reject("stale")
                    stats.channel_reject(name, "stale")
                    self._warn("stale", rx, "ingest: dropped a reading of channel %s that is "
                               "%.0f s old (stale_after_s %g): a replay after an outage, or the "
                               "logger's clock is behind", name, rx - ts, self.stale_after_s)
                    continue
                prev = self.latest.get(name)
                if prev is not None and ts < prev[1]:
                    stats.channel_reject(name, "older")  # out of order: keep the newer one
                    continue
                self.latest[name] = (value * spec.scale, ts)
                stats.reading(name, value)
                grid_updated = grid_updated or spec.role == "grid"
            if not grid_updated:
                return []
            parts = [self.latest.get(spec.name) for spec in self.grid]
            if any(p is None or rx - p[1] > self.stale_after_s for p in parts):
                return []  # a combined value needs every channel fresh
            ts = min(p[1] for p in parts)
            grid_w = sum(p[0] for p in parts)
            if self.battery_w is None:
                return [{"grid_w": grid_w, "ts": ts, "rx": rx}]
            battery_w = self._fresh(self.battery_w, rx)
            soc_pct = self._fresh(self.battery_soc, rx)
            control_w = self.view.control_grid_w(grid_w, battery_w, soc_pct)
            stats.battery_view(policy=self.view.policy.policy, battery_w=battery_w,
                               soc_pct=soc_pct, meter_grid_w=grid_w, control_grid_w=control_w,
                               heater_first=self.view.heater_first)
            return [{"grid_w": control_w, "ts": ts, "rx": rx, "meter_grid_w": grid_w,
                     "battery_w": battery_w, "heater_first": self.view.heater_first}]

    def _warn_unmatched(self, rx: float, n: int, stats: IngestStats) -> None:
        """A write where nothing matched is the likeliest misconfiguration (vzlogger's
        default measurement_name is `vzlogger`): say what came and what would fix it."""
        wanted = sorted(self.by_measurement)
        seen = self.last_unmatched
        hint = (f"{n} point(s) of measurement {seen!r} matched no channel (configured: "
                f"{', '.join(map(repr, wanted)) or 'none over influx'}); set vzlogger's "
                f"\"measurement_name\" to {wanted[0]!r} or [ingest] measurement = {seen!r}"
                if wanted else f"{n} point(s) of measurement {seen!r}: no influx channel")
        stats.hint(hint)
        self._warn("unmatched", rx, "ingest: %s", hint)

    def _fresh(self, spec: ChannelSpec | None, rx: float) -> float | None:
        part = self.latest.get(spec.name) if spec is not None else None
        return None if part is None or rx - part[1] > self.stale_after_s else part[0]

    def _warn(self, kind: str, now: float, fmt: str, *args: Any) -> None:
        """At most one warning a minute per kind: these come with every bad write."""
        if now - self._warned.get(kind, -math.inf) >= WARN_EVERY_S:
            self._warned[kind] = now
            log.warning(fmt, *args)


def _bad_value(value: Any) -> str:
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float)):
        return "not_numeric"
    if not math.isfinite(value):
        return "not_finite"
    return ""
