"""The UI's window on the bus: one thread SUBscribes to the state, health and ingest_stats
streams and keeps the newest of each plus the chart history. The UI only listens here;
nothing it does can block a publisher (PUB drops for slow subscribers)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from vzdivert import bus
from vzdivert.webui.history import History

log = logging.getLogger("vzdivert.webui")

STREAMS = ("state", "health", "ingest_stats", "hotwater_state")


class Feed:
    """Newest message per stream as plain dicts (``feed.state``, ``feed.health``,
    ``feed.ingest_stats``; empty until the first arrives) and ``feed.history``. Readers in
    other threads see each dict replaced whole, never half-updated; ``wait`` lets them
    block until something new arrived."""

    def __init__(self, ctx: zmq.Context, runtime_dir: str | Path):
        self.ctx, self.runtime_dir = ctx, runtime_dir
        self.state: dict[str, Any] = {}
        self.health: dict[str, Any] = {}
        self.ingest_stats: dict[str, Any] = {}
        self.hotwater_state: dict[str, Any] = {}
        self.received_mono: dict[str, float] = {}  # stream -> monotonic time of the newest
        self.history = History()
        self.history_lock = threading.Lock()
        self.version = 0
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> Feed:
        self.thread = threading.Thread(target=self.run, name="feed", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.changed:
            self.changed.notify_all()
        if self.thread is not None:
            self.thread.join(2.0)

    def run(self) -> None:
        socks = {bus.subscribe(self.ctx, self.runtime_dir, name): name for name in STREAMS}
        poller = zmq.Poller()
        for sock in socks:
            poller.register(sock, zmq.POLLIN)
        try:
            while not self.stopping.is_set():
                for sock, _ in poller.poll(200):
                    name = socks[sock]
                    try:
                        self.accept(name, bus.decode(sock.recv(), expect=name))
                    except bus.MessageError as exc:
                        log.warning("ignored a bad %s message: %s", name, exc)
        finally:
            for sock in socks:
                sock.close(0)

    def accept(self, name: str, msg: dict[str, Any]) -> None:
        """Take one decoded message (the bus thread calls this; tests may too)."""
        if name == "state":
            with self.history_lock:
                self.history.add_state(msg)
        setattr(self, name, msg)
        self.received_mono[name] = time.monotonic()
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def age_s(self, name: str) -> float | None:
        """Seconds since the newest message of a stream arrived here, None if none yet."""
        t = self.received_mono.get(name)
        return None if t is None else time.monotonic() - t

    def window(self, minutes: float) -> dict[str, Any]:
        """The chart data of the last ``minutes`` (see History.window)."""
        with self.history_lock:
            return self.history.window(minutes, time.time())

    def samples_after(self, count: int) -> list[tuple]:
        """1 s buckets closed after bucket id ``count``: (id, ts, grid_w, power_w, duty,
        target_w) rows, for the live stream."""
        with self.history_lock:
            return self.history.fine.rows(after_count=count)

    def wait(self, version: int, timeout_s: float) -> int:
        """Block until the version moves past ``version`` (or timeout/stop); the new one."""
        with self.changed:
            if self.version == version and not self.stopping.is_set():
                self.changed.wait(timeout_s)
            return self.version
