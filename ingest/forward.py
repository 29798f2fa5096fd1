"""Optional tee of accepted writes to an upstream InfluxDB (v1 or v2), so users keep their
Grafana history. A bounded queue and one sender thread: a slow or dead upstream costs
dropped (counted) forwards, never a delayed reading."""

from __future__ import annotations

import base64
import http.client
import logging
import queue
import threading
import time
from urllib.parse import unquote, urlsplit

from vzdivert.ingest.stats import IngestStats
from vzdivert.redact import mask_url

log = logging.getLogger("vzdivert.ingest")
MAX_QUEUE_BYTES = 16_000_000  # forward_queue maximum-size writes would be gigabytes


class Forwarder:
    def __init__(self, url: str, stats: IngestStats, token: str = "", username: str = "",
                 password: str = "", max_queue: int = 1000, timeout_s: float = 10.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"ingest.forward_url: expected http(s)://host:port/write?db=..., "
                             f"got {mask_url(url)!r}")
        self.parts, self.stats, self.timeout_s = parts, stats, timeout_s
        self.shown = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        self.headers = {"Content-Type": "text/plain; charset=utf-8"}
        if parts.username is not None and not (token or username):
            # http://user:pass@host/... : use them as Basic auth (never sent as a host name)
            username, password = unquote(parts.username), unquote(parts.password or "")
        if token:
            self.headers["Authorization"] = f"Token {token}"
        elif username:
            cred = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {cred}"
        self.queue: queue.Queue[tuple[bytes, str]] = queue.Queue(max_queue)
        self.queued_bytes, self.bytes_lock = 0, threading.Lock()
        self.conn: http.client.HTTPConnection | None = None
        self._last_warning = 0.0
        threading.Thread(target=self._run, name="forward", daemon=True).start()

    def submit(self, body: bytes, precision: str) -> None:
        """Never blocks: a full queue (by count, or MAX_QUEUE_BYTES) drops the write and
        counts it."""
        with self.bytes_lock:
            if self.queued_bytes + len(body) > MAX_QUEUE_BYTES:
                self.stats.count("forward_dropped")
                return
            try:
                self.queue.put_nowait((body, precision))
            except queue.Full:
                self.stats.count("forward_dropped")
                return
            self.queued_bytes += len(body)

    def _run(self) -> None:
        while True:
            body, precision = self.queue.get()
            with self.bytes_lock:
                self.queued_bytes -= len(body)
            try:
                status = self._send(body, precision)
                if status >= 300:
                    raise OSError(f"upstream answered {status}")
                self.stats.count("forwarded")
            except (OSError, http.client.HTTPException) as exc:
                self.stats.count("forward_failed")
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                now = time.monotonic()
                if now - self._last_warning > 60:
                    self._last_warning = now
                    log.warning("forwarding to %s failed: %s", self.shown, exc)

    def _send(self, body: bytes, precision: str) -> int:
        if self.conn is None:
            cls = (http.client.HTTPSConnection if self.parts.scheme == "https"
                   else http.client.HTTPConnection)
            self.conn = cls(self.parts.hostname, self.parts.port, timeout=self.timeout_s)
        query = self.parts.query + ("&" if self.parts.query else "") + f"precision={precision}"
        self.conn.request("POST", f"{self.parts.path or '/write'}?{query}", body=body,
                          headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        return response.status
