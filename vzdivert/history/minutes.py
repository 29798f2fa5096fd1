"""Pure accumulation of the worker's ``state`` messages into 1-minute aggregates.

Each message's values hold until the next one (the worker publishes every sample and at
least every heartbeat), so energy is the exact integral of that step function, split at
minute boundaries. Time with stale or missing data counts toward nothing: no counter ever
runs on a last value. Per-load and tank figures (issues 11/12) are open-ended ``extras``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MINUTE_S = 60
MAX_HOLD_S = 5.0  # a longer silence means the worker (or we) were gone: not integrated


@dataclass
class Minute:
    """One minute of history: means over the time with data, energies in Wh.
    ``extras`` maps ``load.<name>.wh`` (summed) / ``tank.<name>.c`` (time-weighted mean)
    style keys to values; ``known_s`` is how much of the minute had data."""

    ts: int  # epoch seconds of the minute's start (UTC)
    grid_w: float | None = None
    power_w: float | None = None
    duty: float | None = None
    import_wh: float = 0.0
    export_wh: float = 0.0
    diverted_wh: float = 0.0
    topup_wh: float = 0.0
    known_s: float = 0.0
    extras: dict[str, float] = field(default_factory=dict)


def extras_of(msg: dict[str, Any]) -> dict[str, float]:
    """The open-ended figures in a state message, as rates: ``load.<n>.w`` for each load's
    power (``loads: {name: {"power_w": ..}}``, issue 12) and ``tank.<n>.c`` for tank
    temperatures (``tank_c`` or ``tanks: {name: c}``, issue 11). Unknown shapes are
    ignored, so the recorder runs before those land."""
    out: dict[str, float] = {}
    loads = msg.get("loads")
    if isinstance(loads, dict):
        for name, load in loads.items():
            p = load.get("power_w") if isinstance(load, dict) else None
            if isinstance(p, (int, float)) and math.isfinite(p):
                out[f"load.{name}.w"] = float(p)
    tanks = msg.get("tanks")
    if isinstance(tanks, dict):
        for name, c in tanks.items():
            if isinstance(c, (int, float)) and math.isfinite(c):
                out[f"tank.{name}.c"] = float(c)
    c = msg.get("tank_c")
    if isinstance(c, (int, float)) and math.isfinite(c):
        out["tank.main.c"] = float(c)
    return out


class _Sums:
    """Time-weighted sums of one open minute."""

    def __init__(self) -> None:
        self.grid = self.power = self.duty = 0.0
        self.grid_s = self.out_s = 0.0
        self.imp = self.exp = self.div = self.top = 0.0
        self.extra: dict[str, float] = {}
        self.extra_s: dict[str, float] = {}

    def add(self, held: _Held, dt_s: float) -> None:
        h = dt_s / 3600.0
        if held.grid_w is not None:
            self.grid += held.grid_w * dt_s
            self.grid_s += dt_s
            if held.grid_w > 0:
                self.imp += held.grid_w * h
            else:
                self.exp -= held.grid_w * h
        self.power += held.power_w * dt_s
        self.duty += held.duty * dt_s
        self.out_s += dt_s
        self.div += held.power_w * h
        self.top += held.topup_w * h
        for k, v in held.extras.items():
            self.extra[k] = self.extra.get(k, 0.0) + v * dt_s
            self.extra_s[k] = self.extra_s.get(k, 0.0) + dt_s

    def minute(self, ts: int) -> Minute:
        extras = {}
        for k, s in self.extra.items():
            if k.endswith(".w"):  # a power: its energy
                extras[k[:-2] + ".wh"] = s / 3600.0
            else:  # a level: its mean
                extras[k] = s / self.extra_s[k]
        return Minute(ts, self.grid / self.grid_s if self.grid_s else None,
                      self.power / self.out_s if self.out_s else None,
                      self.duty / self.out_s if self.out_s else None,
                      self.imp, self.exp, self.div, self.top, self.out_s, extras)


@dataclass
class _Held:
    ts: float
    grid_w: float | None
    power_w: float
    duty: float
    topup_w: float
    extras: dict[str, float]


def held_values(msg: dict[str, Any]) -> _Held:
    stale = bool(msg.get("stale"))
    grid = msg.get("grid_w")
    return _Held(float(msg["ts"]), None if stale or grid is None else float(grid),
                 0.0 if stale else float(msg.get("power_w") or 0.0),
                 0.0 if stale else float(msg.get("duty") or 0.0),
                 0.0 if stale else float(msg.get("topup_w") or 0.0),
                 {} if stale else extras_of(msg))


class Accumulator:
    """Feed state messages in time order; ``add`` returns the minutes they closed."""

    def __init__(self, max_hold_s: float = MAX_HOLD_S):
        self.max_hold_s = max_hold_s
        self.held: _Held | None = None
        self.minute_ts: int | None = None
        self.sums = _Sums()

    def add(self, msg: dict[str, Any]) -> list[Minute]:
        new = held_values(msg)
        closed: list[Minute] = []
        prev = self.held
        if prev is not None and new.ts < prev.ts:  # clock set back: drop the open minute
            self.minute_ts, self.sums = None, _Sums()
            prev = None
        if prev is not None and new.ts - prev.ts <= self.max_hold_s:
            t = prev.ts
            while t < new.ts:
                start = math.floor(t / MINUTE_S) * MINUTE_S
                closed += self._enter(start)
                end = min(new.ts, start + MINUTE_S)
                self.sums.add(prev, end - t)
                t = end
        closed += self._enter(math.floor(new.ts / MINUTE_S) * MINUTE_S)
        self.held = new
        return closed

    def flush_until(self, now: float) -> list[Minute]:
        """Close the open minute when the stream has gone quiet: once ``now`` is more than
        ``max_hold_s`` past its end, no message can add to it any more."""
        if self.minute_ts is None or now <= self.minute_ts + MINUTE_S + self.max_hold_s:
            return []
        if self.held is not None and now - self.held.ts <= self.max_hold_s:
            return []  # messages still arrive: they close it themselves
        return self._enter(math.floor(now / MINUTE_S) * MINUTE_S)

    def _enter(self, start: int) -> list[Minute]:
        if self.minute_ts == start:
            return []
        out = []
        if self.minute_ts is not None and self.sums.out_s + self.sums.grid_s > 0:
            out.append(self.sums.minute(self.minute_ts))
        self.minute_ts, self.sums = int(start), _Sums()
        return out
