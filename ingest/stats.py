"""Ingest counters, shared by the server threads and published on the bus once a second."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any


class IngestStats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.last_reading_mono: dict[str, float] = {}  # channel -> monotonic arrival
        self.last_value: dict[str, float] = {}

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def reject(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.rejects[reason] += n

    def reading(self, channel: str, value: float) -> None:
        with self.lock:
            self.last_reading_mono[channel] = time.monotonic()
            self.last_value[channel] = value

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self.lock:
            ages = {c: round(now - t, 3) for c, t in self.last_reading_mono.items()}
            return {
                "requests": self.counts["requests"],
                "lines": self.counts["lines"],
                "points": self.counts["points"],
                "unmatched": self.counts["unmatched"],
                "superseded": self.counts["superseded"],
                "clock_fallback": self.counts["clock_fallback"],
                "clock_ahead": self.counts["clock_ahead"],
                "connection_limit": self.counts["connection_limit"],
                "header_timeout": self.counts["header_timeout"],
                "body_timeout": self.counts["body_timeout"],
                "auth_throttled": self.counts["auth_throttled"],
                "forwarded": self.counts["forwarded"],
                "forward_dropped": self.counts["forward_dropped"],
                "forward_failed": self.counts["forward_failed"],
                "rejects": dict(self.rejects),
                "channels": {c: {"age_s": a, "value": self.last_value.get(c)}
                             for c, a in ages.items()},
                "last_reading_age_s": min(ages.values()) if ages else None,
            }
