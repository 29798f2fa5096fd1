"""Which points are the grid power: one series (measurement + field + tag match) or a sum
of several with sign/scale (import minus export, three phases). Also the freshness rules:
only the newest point per channel counts, old replays never reach the controller, and a
logger clock that is obviously wrong falls back to arrival time (and is reported); a
timestamp ahead of arrival is clamped to it, so control sees readings in arrival order."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vzdivert.ingest.lineproto import Point
from vzdivert.ingest.stats import IngestStats

log = logging.getLogger("vzdivert.ingest")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    measurement: str
    field: str
    tags: tuple[tuple[str, str], ...] = ()
    scale: float = 1.0

    def matches(self, point: Point) -> bool:
        return self.field in point.fields and all(point.tags.get(k) == v for k, v in self.tags)


def specs_from_config(cfg: Any) -> list[ChannelSpec]:
    """``[ingest] channels`` if given, else one channel from measurement/field/tags."""
    ing = cfg.ingest
    if not ing.channels:
        return [ChannelSpec("grid", ing.measurement, ing.field, tuple(sorted(ing.tags.items())))]
    specs = []
    for i, ch in enumerate(ing.channels):
        measurement = ch.get("measurement", ing.measurement)
        specs.append(ChannelSpec(ch.get("name", f"{measurement}#{i}"), measurement,
                                 ch.get("field", ing.field),
                                 tuple(sorted(ch.get("tags", {}).items())),
                                 float(ch.get("scale", 1.0))))
    return specs


class Channels:
    def __init__(self, specs: list[ChannelSpec], stale_after_s: float, clock_skew_s: float = 60,
                 clock_far_past_s: float = 86400, clock: Callable[[], float] = time.time):
        self.specs = specs
        self.by_measurement: dict[str, list[ChannelSpec]] = {}
        for spec in specs:
            self.by_measurement.setdefault(spec.measurement, []).append(spec)
        self.stale_after_s, self.clock_skew_s = stale_after_s, clock_skew_s
        self.clock_far_past_s, self.clock = clock_far_past_s, clock
        self.latest: dict[str, tuple[float, float]] = {}  # name -> (scaled value, ts)
        self.lock = threading.Lock()
        self._last_clock_warning = 0.0

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
            unmatched += not matched
        if unmatched:
            stats.count("unmatched", unmatched)
        if superseded:
            stats.count("superseded", superseded)

    def commit(self, batch: dict[str, Any], stats: IngestStats) -> list[dict[str, Any]]:
        fresh: dict[str, tuple[float, float, ChannelSpec]] = {}
        for name, (t_ns, value, spec) in batch["newest"].items():
            if isinstance(value, (bool, str)):
                stats.reject("not_numeric")
            elif not math.isfinite(value):
                stats.reject("not_finite")
            else:
                fresh[name] = (t_ns / 1e9, float(value), spec)
        return self._update(fresh, batch["rx"], stats)

    def _update(self, newest: dict[str, tuple[float, float, ChannelSpec]], rx: float,
                stats: IngestStats) -> list[dict[str, Any]]:
        updated = False
        with self.lock:
            for name, (ts, value, spec) in newest.items():
                if ts > rx + self.clock_skew_s or ts < rx - self.clock_far_past_s:
                    stats.count("clock_fallback")
                    self._warn_clock(name, ts, rx)
                    ts = rx
                elif ts > rx:
                    # Control orders readings by arrival: one point stamped ahead (within
                    # clock_skew_s) would otherwise make the worker drop every real reading
                    # as out of order until the wall clock caught up.
                    stats.count("clock_ahead")
                    ts = rx
                elif rx - ts > self.stale_after_s:
                    stats.reject("stale")
                    continue
                self.latest[name] = (value * spec.scale, ts)
                stats.reading(name, value)
                updated = True
            if not updated:
                return []
            parts = [self.latest.get(spec.name) for spec in self.specs]
            if any(p is None or rx - p[1] > self.stale_after_s for p in parts):
                return []  # a combined value needs every channel fresh
            ts = min(p[1] for p in parts)
            return [{"grid_w": sum(p[0] for p in parts), "ts": ts, "rx": rx}]

    def _warn_clock(self, name: str, ts: float, rx: float) -> None:
        if rx - self._last_clock_warning > 60:
            self._last_clock_warning = rx
            log.warning("ingest: channel %s timestamp is %+.0f s off the local clock; using "
                        "arrival time (check the logger's clock/NTP)", name, ts - rx)
