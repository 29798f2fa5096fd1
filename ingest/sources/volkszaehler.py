"""vzlogger without InfluxDB, on the ingest's listener: the volkszaehler middleware's data
API as vzlogger's default ``"api": "volkszaehler"`` calls it (POST
``<middleware>/data/<uuid>.json``, a JSON array of ``[ms, value]``) and its ``push`` format
(POST ``{"data": [{"uuid": …, "tuples": [[ms, value], …]}]}``). Answers as the middleware
does: only 200 counts as success for vzlogger, and a refused chunk would be retried forever,
so old chunks and uuids nobody configured get 200 too (counted, and warned about)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from vzdivert.ingest.channels import Channels
from vzdivert.ingest.sources.values import PayloadError, number
from vzdivert.ingest.stats import IngestStats

log = logging.getLogger("vzdivert.ingest")
DATA_PATH = re.compile(r"(?:/.*)?/data/([0-9A-Za-z-]{1,64})\.json")
PUSH_PATHS = ("/push", "/")
MIDDLEWARE_VERSION = "0.3"
WARN_EVERY_S = 60.0
Tuples = list[tuple[float, Any]]


def route(method: str, path: str) -> str | None:
    """'data' or 'push' when a request is for this API, else None."""
    if method != "POST":
        return None
    if DATA_PATH.fullmatch(path):
        return "data"
    return "push" if path in PUSH_PATHS else None


def parse_tuples(doc: Any) -> Tuples:
    """``[[ms, value], …]`` -> [(seconds, value)]; values are checked later, per channel."""
    if not isinstance(doc, list):
        raise PayloadError("bad_json", "expected an array of [timestamp, value] tuples")
    out = []
    for t in doc:
        if not isinstance(t, list) or len(t) < 2:
            raise PayloadError("bad_json", f"not a [timestamp, value] tuple: {str(t)[:40]}")
        out.append((number(t[0], "timestamp") / 1000.0, t[1]))
    return out


def parse_push(doc: Any) -> dict[str, Tuples]:
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise PayloadError("bad_json", 'expected {"data": [{"uuid": ..., "tuples": [...]}]}')
    out: dict[str, Tuples] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("uuid"), str):
            raise PayloadError("bad_json", "a data entry without a uuid")
        out.setdefault(entry["uuid"].lower(), []).extend(parse_tuples(entry.get("tuples", [])))
    return out


def exception(message: str, kind: str = "Exception") -> dict[str, Any]:
    """The middleware's error body, which vzlogger logs."""
    return {"version": MIDDLEWARE_VERSION, "exception": {"type": kind, "message": message}}


class VolkszaehlerApi:
    def __init__(self, channels: Channels, stats: IngestStats,
                 publish: Callable[[list[dict[str, Any]]], None]):
        self.channels, self.stats, self.publish = channels, stats, publish
        self._warned_mono = -WARN_EVERY_S

    def handle(self, kind: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        self.stats.count("requests")
        try:
            doc = json.loads(body)
            if kind == "data":
                uuid = DATA_PATH.fullmatch(path).group(1).lower()
                by_uuid = {uuid: parse_tuples(doc)}
            else:
                by_uuid = parse_push(doc)
        except (ValueError, PayloadError) as exc:
            reason = getattr(exc, "reason", "bad_json")
            self.stats.reject(reason)
            self.warn(f"a volkszaehler {kind} request that is not vzlogger's format: {exc}")
            return 400, exception(f"invalid request: {exc}", "InvalidArgumentException")
        rows = sum(len(t) for t in by_uuid.values())
        newest: dict[str, tuple[Any, float]] = {}
        for uuid, tuples in by_uuid.items():
            spec = self.channels.by_uuid.get(uuid)
            if spec is None:
                self.stats.count("unmatched", len(tuples))
                self.warn(f"vzlogger posted uuid {uuid}, which no channel uses: add "
                          f'[[ingest.channels]] source = "volkszaehler", uuid = "{uuid}" '
                          "(ignored; answered 200 so vzlogger does not pile it up)")
                continue
            if tuples:
                self.stats.count("superseded", len(tuples) - 1)
                ts, value = max(tuples, key=lambda t: t[0])
                newest[spec.name] = (value, ts)
                self.stats.channel_count(spec.name, "received")
        self.stats.count("points", rows)
        if newest:
            readings = self.channels.offer(newest, self.stats)
            if readings:
                self.publish(readings)
        return 200, {"version": MIDDLEWARE_VERSION, "rows": rows}

    def warn(self, what: str) -> None:
        self.stats.hint(what)
        now = time.monotonic()
        if now - self._warned_mono >= WARN_EVERY_S:
            self._warned_mono = now
            log.warning("ingest: %s", what)
