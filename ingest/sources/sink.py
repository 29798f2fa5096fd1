"""Where every push and poll source delivers: the shared channel rules, the reading stream,
and the accounting of failures (logged once per outage with the cause, counted always)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from vzdivert.ingest.channels import Channels
from vzdivert.ingest.stats import IngestStats

log = logging.getLogger("vzdivert.ingest")
WARN_EVERY_S = 60.0


class Sink:
    def __init__(self, channels: Channels, stats: IngestStats,
                 publish: Callable[[list[dict[str, Any]]], None]):
        self.channels, self.stats, self.publish = channels, stats, publish
        self._warned: dict[str, float] = {}
        self._lock = threading.Lock()

    def offer(self, name: str, value: float, ts: float | None) -> None:
        self.stats.channel_count(name, "received")
        readings = self.channels.offer({name: (value, ts)}, self.stats)
        if readings:
            self.publish(readings)

    def reject(self, name: str, reason: str, detail: str) -> None:
        """Garbage from a meter: counted per reason, warned about at most once a minute."""
        self.stats.reject(reason)
        self.stats.channel_reject(name, reason)
        now = time.monotonic()
        with self._lock:
            if now - self._warned.get(name, -WARN_EVERY_S) < WARN_EVERY_S:
                return
            self._warned[name] = now
        log.warning("ingest: channel %s: rejected a reading (%s): %s", name, reason, detail)


class Outage:
    """One source's health: the first failure of an outage is logged with its cause, the
    rest only counted; the recovery is logged with the outage's length."""

    def __init__(self, what: str, channels: list[str], stats: IngestStats):
        self.what, self.channels, self.stats = what, channels, stats
        self.since: float | None = None
        self.failures = 0
        self.lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, cause: str) -> None:
        with self.lock:
            self.failures += 1
            first = self.since is None
            if first:
                self.since = time.monotonic()
        for name in self.channels:
            self.stats.channel_count(name, "errors")
            self.stats.channel_down(name, cause)
        if first:
            log.warning("ingest: %s failed: %s (retrying with backoff; logged once per outage)",
                        self.what, cause)

    def ok(self) -> None:
        with self.lock:
            since, failures = self.since, self.failures
            self.since, self.failures = None, 0
        if since is not None:
            for name in self.channels:
                self.stats.channel_up(name)
            log.info("ingest: %s is back after %.1f s (%d failed attempts)", self.what,
                     time.monotonic() - since, failures)
