"""Polled HTTP meters (Shelly, Tasmota, HomeWizard, vzlogger's local server): one thread per
channel, so a slow meter never delays another; a keep-alive connection, a timeout shorter
than the interval, and exponential backoff while the meter is down."""

from __future__ import annotations

import base64
import http.client
import threading
import time
from urllib.parse import urlsplit

from vzdivert.channel_spec import ChannelSpec
from vzdivert.ingest.sources.sink import Outage, Sink
from vzdivert.ingest.sources.values import PayloadError, extract

MAX_BACKOFF_S = 30.0
MAX_BODY_BYTES = 1_000_000  # a meter's status page is a few kB


class PollError(Exception):
    pass


class HttpPoller:
    def __init__(self, spec: ChannelSpec, sink: Sink, outage: Outage):
        self.spec, self.sink, self.outage = spec, sink, outage
        parts = urlsplit(spec.url)
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname or "", parts.port
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {"Accept": "application/json", "User-Agent": "vzdivert"}
        if parts.username:
            cred = f"{parts.username}:{parts.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        self.conn: http.client.HTTPConnection | None = None
        self.last_ts: float | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"poll {spec.name}", daemon=True)

    def start(self) -> HttpPoller:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        interval_s, failures = self.spec.interval_s, 0
        next_t = time.monotonic()
        while not self.stopping.wait(max(0.0, next_t - time.monotonic())):
            started = time.monotonic()
            try:
                self.poll_once()
            except PollError as exc:
                failures += 1
                self.outage.failed(str(exc))
                next_t = started + min(interval_s * 2 ** (failures - 1),
                                       max(MAX_BACKOFF_S, interval_s))
                continue
            failures = 0
            next_t = max(next_t + interval_s, time.monotonic())  # skip missed slots
        self.close()

    def poll_once(self) -> None:
        """One request; a reading to the sink, or PollError saying why there is none."""
        spec = self.spec
        try:
            body = self.fetch()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()  # (ValueError: http.client on a malformed status line or header)
            raise PollError(f"{spec.url}: {exc or type(exc).__name__}") from exc
        try:
            value, ts = extract(body, spec.json_path, spec.time_path)
        except PayloadError as exc:
            self.sink.reject(spec.name, exc.reason, f"{spec.url}: {exc}")
            raise PollError(f"{spec.url} answered garbage: {exc}") from exc
        self.outage.ok()
        if ts is not None and ts == self.last_ts:
            self.sink.stats.channel_count(spec.name, "unchanged")
            return  # the meter has nothing new yet
        self.last_ts = ts
        self.sink.offer(spec.name, value, ts)

    def fetch(self) -> bytes:
        if self.conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = cls(self.host, self.port, timeout=self.spec.timeout_s)
        self.conn.request("GET", self.target, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read(MAX_BODY_BYTES + 1)
        if resp.will_close or len(body) > MAX_BODY_BYTES:
            self.close()
        if resp.status != 200:
            raise http.client.HTTPException(f"HTTP {resp.status} {resp.reason}")
        if len(body) > MAX_BODY_BYTES:
            raise http.client.HTTPException(f"answer larger than {MAX_BODY_BYTES} bytes")
        return body

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
