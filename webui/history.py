"""The UI's chart memory: controller state averaged into fixed-step buckets in two ring
buffers, 1 s for the last hour and 20 s for the last 24 h (about 300 kB in all, so a Pi
can keep a day). Pure: timestamps come with the samples."""

from __future__ import annotations

import math
from array import array
from typing import Any

COLUMNS = ("grid_w", "power_w", "duty", "target_w", "tank_c")
NAN = float("nan")


class Ring:
    """Fixed-step buckets (mean of each column, NaN where nothing was known) in a ring."""

    def __init__(self, step_s: float, slots: int):
        self.step_s, self.slots = step_s, slots
        self.ts = array("d", [NAN]) * slots
        self.cols = {c: array("d", [NAN]) * slots for c in COLUMNS}
        self.count = 0  # buckets ever closed; the newest is at (count - 1) % slots
        self._bucket: int | None = None
        self._sum = [0.0] * len(COLUMNS)
        self._n = [0] * len(COLUMNS)

    def add(self, ts: float, values: tuple[float, ...]) -> tuple[float, tuple[float, ...]] | None:
        """Account one sample; returns the bucket it closed (start time, means), if any."""
        bucket = math.floor(ts / self.step_s)
        closed = None
        if self._bucket is None:
            self._bucket = bucket
        elif bucket < self._bucket:  # the clock was set back: the old times mean nothing
            self.clear()
            self._bucket = bucket
        elif bucket > self._bucket:
            closed = self._close()
            self._bucket = bucket
        for i, v in enumerate(values):
            if v == v:  # not NaN
                self._sum[i] += v
                self._n[i] += 1
        return closed

    def _close(self) -> tuple[float, tuple[float, ...]]:
        means = tuple(s / n if n else NAN for s, n in zip(self._sum, self._n, strict=True))
        start = self._bucket * self.step_s
        self.append(start, means)
        self._sum = [0.0] * len(COLUMNS)
        self._n = [0] * len(COLUMNS)
        return start, means

    def append(self, ts: float, means: tuple[float, ...]) -> None:
        i = self.count % self.slots
        self.ts[i] = ts
        for c, v in zip(COLUMNS, means, strict=True):
            self.cols[c][i] = v
        self.count += 1

    def clear(self) -> None:
        self.__init__(self.step_s, self.slots)

    def rows(self, since_ts: float = -math.inf, after_count: int = -1) -> list[tuple]:
        """Closed buckets, oldest first: (count id, ts, *means) newer than both limits."""
        first = max(0, self.count - self.slots, after_count + 1)
        out = []
        for n in range(first, self.count):
            i = n % self.slots
            if self.ts[i] >= since_ts:
                out.append((n, self.ts[i], *(self.cols[c][i] for c in COLUMNS)))
        return out


def clean(column: str, v: float) -> float | None:
    """A stored value for JSON: NaN becomes null, rounded to what a chart can show."""
    return None if v != v else round(v, 4 if column == "duty" else 1)


def columns(rows: list[tuple], step_s: float) -> dict[str, Any]:
    """Rows as uPlot-style columns; a gap of more than two steps gets a null point so the
    chart breaks the line instead of drawing across a time with no data."""
    out: dict[str, Any] = {"step_s": step_s, "ts": [], **{c: [] for c in COLUMNS}}
    prev = None
    for row in rows:
        ts = row[1]
        if prev is not None and ts - prev > 2 * step_s:
            out["ts"].append(prev + step_s)
            for c in COLUMNS:
                out[c].append(None)
        out["ts"].append(ts)
        for c, v in zip(COLUMNS, row[2:], strict=True):
            out[c].append(clean(c, v))
        prev = ts
    return out


class History:
    FINE_STEP_S, FINE_SLOTS = 1.0, 3600
    COARSE_STEP_S, COARSE_SLOTS = 20.0, 4320

    def __init__(self) -> None:
        self.fine = Ring(self.FINE_STEP_S, self.FINE_SLOTS)
        self.coarse = Ring(self.COARSE_STEP_S, self.COARSE_SLOTS)

    def add_state(self, state: dict[str, Any]) -> None:
        """One `state` message from the worker (grid_w is None before the first reading)."""
        values = tuple(NAN if state.get(c) is None else float(state[c]) for c in COLUMNS)
        closed = self.fine.add(float(state["ts"]), values)
        if closed is not None:  # the coarse ring averages the fine buckets
            self.coarse.add(*closed)

    def window(self, minutes: float, now: float) -> dict[str, Any]:
        ring = self.fine if minutes <= 60 else self.coarse
        return columns(ring.rows(since_ts=now - minutes * 60), ring.step_s)
