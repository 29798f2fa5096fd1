"""The InfluxDB-compatible HTTP app: plain WSGI answering as InfluxDB 1.x/2.x does (served
by vzdivert.httpfront). It parses writes, hands the points to the channel logic and publishes
readings."""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from vzdivert.ingest.auth import Auth
from vzdivert.ingest.channels import Channels
from vzdivert.ingest.lineproto import PRECISIONS, LineError, Point, parse_batches
from vzdivert.ingest.sources import volkszaehler
from vzdivert.ingest.stats import IngestStats
from vzdivert.ratelimit import FailureLimiter

log = logging.getLogger("vzdivert.ingest")

WARN_EVERY_S = 60.0
INFLUX_VERSION = "1.8.10"  # what /ping reports; clients only check that it is there
StartResponse = Callable[..., Any]


class WriteApp:
    """WSGI callable. ``publish`` receives each batch's readings (already freshness-checked);
    it is called with the stats lock released and must be thread-safe itself."""

    def __init__(self, databases: Iterable[str], channels: Channels, auth: Auth,
                 stats: IngestStats, publish: Callable[[list[dict[str, Any]]], None],
                 max_body_bytes: int = 1_000_000,
                 forward: Callable[[bytes, str], None] | None = None,
                 limiter: FailureLimiter | None = None):
        self.databases = set(databases)
        self.limiter = limiter or FailureLimiter(per_client=10, window_s=60.0)
        self.channels, self.auth, self.stats, self.publish = channels, auth, stats, publish
        self.max_body_bytes, self.forward = max_body_bytes, forward
        self.vz = volkszaehler.VolkszaehlerApi(channels, stats, publish)
        self._warned_mono = -WARN_EVERY_S
        self._unwarned = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            if path == "/ping" and method in ("GET", "HEAD"):
                return _respond(start_response, 204)
            if path == "/write" and method == "POST":
                return self.write(environ, start_response, query, query.get("db", ""))
            if path == "/api/v2/write" and method == "POST":
                return self.write(environ, start_response, query, query.get("bucket", ""))
            if path == "/query" and method in ("GET", "POST"):
                return self.query(environ, start_response, query)
            if path == "/health" and method == "GET":
                return _respond(start_response, 200, {"name": "vzdivert-ingest", "status": "pass"})
            kind = volkszaehler.route(method, path)
            if kind is not None:
                return self.volkszaehler(environ, start_response, query, kind, path)
            if method == "POST":
                self.stats.reject("not_found")
                self.warn_rejects(f"POST {path}: no such endpoint (vzlogger's api \"influxdb\" "
                                  "posts to /write; its api \"volkszaehler\" needs the "
                                  "middleware URL http://<this host>:<port>/middleware.php)")
            return _respond(start_response, 404, {"error": "not found"})
        except Exception:  # answer something even on a bug, and keep serving
            log.exception("ingest: internal error on %s %s", method, path)
            return _respond(start_response, 500, {"error": "internal error"})

    def write(self, environ: dict[str, Any], start_response: StartResponse,
              query: dict[str, str], database: str) -> list[bytes]:
        self.stats.count("requests")
        refused = self.authorize(environ, query, start_response)
        if refused is not None:
            return refused
        if not database:
            self.stats.reject("no_database")
            return _respond(start_response, 400, {"error": "database is required"})
        if database not in self.databases:
            self.stats.reject("unknown_database")
            self.warn_rejects(f"database {database!r} is not {sorted(self.databases)}")
            return _respond(start_response, 404, {"error": f'database not found: "{database}"'})
        precision = query.get("precision") or "ns"
        if precision not in PRECISIONS:
            self.stats.reject("bad_precision")
            return _respond(start_response, 400, {"error": f"invalid precision {precision!r} "
                                                  f"(allowed: {', '.join(PRECISIONS)})"})
        body, problem = self.read_body(environ)
        if problem is not None:
            status, reason = problem
            self.stats.reject(reason)
            return _respond(start_response, status, {"error": reason.replace("_", " ")})
        batch = self.channels.begin()
        n_points = n_errors = 0
        errors: list[LineError] = []
        for points, batch_errors in parse_batches(body, precision):  # never all points at once
            self.channels.add(batch, points, self.stats)
            n_points += len(points)
            n_errors += len(batch_errors)
            errors += batch_errors[:MAX_ERRORS_SHOWN - len(errors)]
        readings = self.channels.commit(batch, self.stats)
        if readings:
            self.publish(readings)
        if self.forward is not None and n_points:
            self.forward(body, precision)  # upstream keeps the good lines of a partial write
        self.stats.count("lines", n_points + n_errors)
        self.stats.count("points", n_points)
        if errors:
            self.stats.reject("parse_error", n_errors)
            self.warn_rejects(f"{n_errors} bad line(s), first: {errors[0].text[:80]!r}: "
                              f"{errors[0].reason}")
            return _respond(start_response, 400,
                            {"error": write_error(n_points, errors, n_errors)})
        return _respond(start_response, 204)

    def volkszaehler(self, environ: dict[str, Any], start_response: StartResponse,
                     query: dict[str, str], kind: str, path: str) -> list[bytes]:
        """vzlogger's middleware and push formats (ingest/sources/volkszaehler.py)."""
        refused = self.authorize(environ, query, start_response, " (volkszaehler api)",
                                 lambda msg: volkszaehler.exception(msg, "AuthenticationException"))
        if refused is not None:
            return refused
        body, problem = self.read_body(environ)
        if problem is not None:
            status, reason = problem
            self.stats.reject(reason)
            return _respond(start_response, status,
                            volkszaehler.exception(reason.replace("_", " ")))
        return _respond(start_response, *self.vz.handle(kind, path, body))

    def authorize(self, environ: dict[str, Any], query: dict[str, str],
                  start_response: StartResponse, api: str = "",
                  answer: Callable[[str], Any] = lambda msg: {"error": msg}
                  ) -> list[bytes] | None:
        """None if the request may go on, else the 401/429 answer. Failed guesses are
        throttled per client address (counted before the check, so parallel ones count)."""
        if not self.auth.required:
            return None
        client, now = environ.get("REMOTE_ADDR", "?"), time.monotonic()
        wait_s = self.limiter.attempt(client, now)
        if wait_s:
            self.stats.count("auth_throttled")
            return _respond(start_response, 429, answer("too many failed authentications; "
                                                        f"retry in {wait_s:.0f} s"),
                            [("Retry-After", str(max(1, round(wait_s))))])
        if self.auth.allows(environ, query):
            self.limiter.succeeded(client, now)
            return None
        self.stats.reject("unauthorized")
        self.warn_rejects(f"bad or missing credentials{api}")
        return _respond(start_response, 401, answer("authorization failed"))

    def warn_rejects(self, what: str) -> None:
        """At most one warning a minute for rejected writes, with the count in between."""
        now = time.monotonic()
        if now - self._warned_mono < WARN_EVERY_S:
            self._unwarned += 1
            return
        self.stats.hint(what)
        more = f" ({self._unwarned} more rejected writes since the last warning)" \
            if self._unwarned else ""
        self._warned_mono, self._unwarned = now, 0
        log.warning("ingest: rejected a write: %s%s", what, more)

    def read_body(self, environ: dict[str, Any]) -> tuple[bytes, tuple[int, str] | None]:
        """The raw body whatever the Content-Type (vzlogger sends a form type); gunzipped
        with the same size limit, so a small bomb cannot inflate past it."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return b"", (400, "bad_content_length")
        if length > self.max_body_bytes:
            return b"", (413, "body_too_large")
        body = environ["wsgi.input"].read(length) if length else b""
        encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding == "gzip":
            try:
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                body = inflater.decompress(body, self.max_body_bytes + 1)
            except zlib.error:
                return b"", (400, "bad_gzip")
            if len(body) > self.max_body_bytes or inflater.unconsumed_tail:
                return b"", (413, "body_too_large")
        elif encoding not in ("", "identity"):
            return b"", (415, "unsupported_encoding")
        return body, None

    def query(self, environ: dict[str, Any], start_response: StartResponse,
              query: dict[str, str]) -> list[bytes]:
        """Just enough of /query for clients that probe at start (Telegraf, influxdb-python)."""
        refused = self.authorize(environ, query, start_response)
        if refused is not None:
            return refused
        q = query.get("q", "")
        if environ["REQUEST_METHOD"] == "POST" and not q:
            form = parse_qs(environ["wsgi.input"].read(
                min(int(environ.get("CONTENT_LENGTH") or 0), 65536)).decode("utf-8", "replace"))
            q = form.get("q", [""])[-1]
        words = q.strip().upper().split()
        if words[:2] == ["SHOW", "DATABASES"]:
            series = [{"name": "databases", "columns": ["name"],
                       "values": [[d] for d in sorted(self.databases)]}]
            return _respond(start_response, 200,
                            {"results": [{"statement_id": 0, "series": series}]})
        return _respond(start_response, 200, {"results": [{"statement_id": 0}]})


MAX_ERRORS_SHOWN = 1000  # a body of bad lines must not cost a LineError per line
SHARD_REASONS = ("invalid tag key", "invalid field name")  # refused after parsing, as a point


def write_error(stored: int | list[Point], errors: list[LineError],
                n_errors: int | None = None) -> str:
    """InfluxDB 1.x's error text for a write with bad lines (checked against a real influxd
    by the differential test): the bad lines (at most MAX_ERRORS_SHOWN of ``n_errors``), and
    the partial-write note when some points were stored."""
    n_errors = len(errors) if n_errors is None else n_errors
    if errors[0].reason == "field type conflict":
        return "field type conflict"
    if errors[0].reason.startswith(SHARD_REASONS):
        return f"partial write: {errors[0].reason} dropped={n_errors}"
    message = "\n".join(f"unable to parse '{e.text}': {e.reason}" for e in errors)
    if n_errors > len(errors):
        message += f"\n({n_errors - len(errors)} more bad lines)"
    return f"partial write: {message} dropped=0" if stored else message


def _respond(start_response: StartResponse, status: int, body: dict | None = None,
             extra_headers: list[tuple[str, str]] = ()) -> list[bytes]:
    reason = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
              404: "Not Found", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
              429: "Too Many Requests", 500: "Internal Server Error"}[status]
    headers = [("X-Influxdb-Version", INFLUX_VERSION), ("X-Influxdb-Build", "OSS"),
               *extra_headers]
    if body is None:
        start_response(f"{status} {reason}", headers)
        return []
    data = json.dumps(body).encode()
    if status >= 400:  # a header holds one line of latin-1; the body has the whole text
        first = "".join(c if c.isprintable() else "?"
                        for c in (body.get("error", "").splitlines() or [""])[0][:200])
        headers.append(("X-Influxdb-Error", first.encode("latin-1", "replace").decode("latin-1")))
    headers += [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    start_response(f"{status} {reason}", headers)
    return [data]

