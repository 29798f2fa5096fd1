"""Loop statistics without per-sample allocation: a fixed ring of latencies (arrival at the
ingest to output written) and of step times, summarised on demand, and cumulative latency
buckets since start for the `/metrics` histogram (a ring cannot give a Prometheus
histogram: its counts must only ever grow)."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import Any

RING = 256
# Bucket bounds of the latency histogram (upper, inclusive, in ms): the 2 ms target of the
# latency bench sits between 1 and 2.5; 10 ms is the deadline.
HIST_LE_MS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0, 1000.0)
_HIST_LE_S = tuple(b / 1000.0 for b in HIST_LE_MS)


class LoopStats:
    def __init__(self, deadline_s: float = 0.010):
        self.deadline_s = deadline_s
        self.latency_s = array("d", bytes(8 * RING))
        self.step_ns = array("q", bytes(8 * RING))
        self.n = 0
        self.missed = 0
        self.dropped_old = 0
        self.hist = array("q", bytes(8 * (len(HIST_LE_MS) + 1)))  # the last: above them all
        self.hist_sum_s = 0.0
        self._summary: dict[str, Any] = {}
        self._summary_at = 0.0

    def record(self, rx_wall: float, done_wall: float, step_ns: int) -> None:
        latency = done_wall - rx_wall
        i = self.n % RING
        self.latency_s[i] = latency
        self.step_ns[i] = step_ns
        self.n += 1
        self.hist[bisect_left(_HIST_LE_S, latency)] += 1
        self.hist_sum_s += latency
        if latency > self.deadline_s:
            self.missed += 1

    def summary(self, now: float) -> dict[str, Any]:
        """The figures, recomputed at most once a second (sorting is not per-sample work)."""
        if now - self._summary_at >= 1.0 or not self._summary:
            self._summary_at, self._summary = now, self._compute()
        return self._summary

    def _compute(self) -> dict[str, Any]:
        k = min(self.n, RING)
        hist = {"le_ms": list(HIST_LE_MS), "counts": self.hist.tolist(),
                "sum_s": self.hist_sum_s}
        if not k:
            return {"samples": 0, "missed": self.missed, "dropped_old": self.dropped_old,
                    "latency_hist": hist}
        lat = sorted(self.latency_s[:k])
        steps = sorted(self.step_ns[:k])
        return {
            "samples": self.n, "missed": self.missed, "dropped_old": self.dropped_old,
            "latency_hist": hist,
            "latency_p50_ms": lat[k // 2] * 1e3, "latency_p99_ms": lat[(k * 99) // 100] * 1e3,
            "latency_max_ms": lat[-1] * 1e3, "jitter_ms": (lat[-1] - lat[0]) * 1e3,
            "step_p50_us": steps[k // 2] / 1e3, "step_max_us": steps[-1] / 1e3,
        }
