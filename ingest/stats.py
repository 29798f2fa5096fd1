"""Ingest counters, shared by the server and source threads and published on the bus once a
second: totals, and per channel its source, last value, age, rejects and current outage."""

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
        self.channel_info: dict[str, dict[str, Any]] = {}  # name -> source, role
        self.channel_rejects: dict[str, Counter[str]] = {}
        self.channel_counts: dict[str, Counter[str]] = {}
        self.channel_error: dict[str, str] = {}  # name -> why it has no data now
        self.battery: dict[str, Any] = {}  # the battery policy's newest view, if any
        self.problem = ""  # the newest misconfiguration hint, for the dashboard ...
        self.problem_mono = 0.0  # ... and when it was last seen

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

    def describe(self, channel: str, **info: Any) -> None:
        with self.lock:
            self.channel_info[channel] = info

    def channel_reject(self, channel: str, reason: str) -> None:
        with self.lock:
            self.channel_rejects.setdefault(channel, Counter())[reason] += 1

    def channel_count(self, channel: str, what: str) -> None:
        with self.lock:
            self.channel_counts.setdefault(channel, Counter())[what] += 1

    def channel_down(self, channel: str, cause: str) -> None:
        with self.lock:
            self.channel_error[channel] = cause

    def channel_up(self, channel: str) -> None:
        with self.lock:
            self.channel_error.pop(channel, None)

    def battery_view(self, **view: Any) -> None:
        with self.lock:
            self.battery = view

    def hint(self, text: str) -> None:
        with self.lock:
            self.problem, self.problem_mono = text, time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self.lock:
            ages = {c: round(now - t, 3) for c, t in self.last_reading_mono.items()}
            names = list(self.channel_info) + [c for c in ages if c not in self.channel_info]
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
                "channels": {c: {**self.channel_info.get(c, {}), "age_s": ages.get(c),
                                 "value": self.last_value.get(c),
                                 "rejects": dict(self.channel_rejects.get(c, {})),
                                 **dict(self.channel_counts.get(c, {})),
                                 "error": self.channel_error.get(c, "")}
                             for c in names},
                "last_reading_age_s": min(ages.values()) if ages else None,
                "battery": dict(self.battery),
                "problem": self.problem,
                "problem_age_s": round(now - self.problem_mono, 1) if self.problem else None,
            }
