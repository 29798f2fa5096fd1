"""The live data: the state document, the recent history and the event stream (SSE)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from bottle import Bottle, request, response

from vzdivert.webui.context import UI
from vzdivert.webui.history import COLUMNS, clean
from vzdivert.webui.jsonhttp import fail

SSE_LIFETIME_S = 300.0  # streams end now and then so threads recycle; browsers reconnect
SSE_MIN_INTERVAL_S = 0.25
SSE_PING_S = 15.0
STREAMS_PER_CLIENT = 2


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def sample_dict(row: tuple) -> dict[str, Any]:
    values = {c: clean(c, v) for c, v in zip(COLUMNS, row[2:], strict=True)}
    return {"id": row[0], "ts": row[1], **values}


def add_routes(app: Bottle, ui: UI) -> None:
    guard, feed = ui.guard, ui.feed
    sse_slots = threading.BoundedSemaphore(max(1, ui.cfg.webui.threads - 2))
    streams: dict[str, int] = {}  # open streams per client address: one client cannot
    streams_lock = threading.Lock()  # take every slot (read_only_view lets anyone in)

    @app.get("/api/state")
    def state() -> dict[str, Any]:
        guard.viewer()
        return ui.current_state()

    @app.get("/api/history")
    def history() -> dict[str, Any]:
        guard.viewer()
        try:
            minutes = float(request.query.get("minutes", "15"))
        except ValueError:
            minutes = -1
        if not 1 <= minutes <= 24 * 60:
            raise fail(400, "minutes: expected a number from 1 to 1440")
        out = feed.window(minutes)
        out["last_id"] = feed.history.fine.count - 1
        return out

    @app.get("/api/events")
    def events() -> Any:
        guard.viewer()
        try:
            after = int(request.get_header("Last-Event-ID") or request.query.get("after", ""))
        except ValueError:
            after = feed.history.fine.count - 1
        client = guard.client()
        with streams_lock:
            if not sse_slots.acquire(blocking=False):
                raise fail(503, "too many live streams open; poll /api/state instead",
                           headers={"Retry-After": "10"})
            if streams.get(client, 0) >= STREAMS_PER_CLIENT:
                sse_slots.release()
                raise fail(429, f"{STREAMS_PER_CLIENT} live streams from your address are open "
                           "already; close one or poll /api/state", headers={"Retry-After": "10"})
            streams[client] = streams.get(client, 0) + 1
        response.content_type = "text/event-stream"
        response.set_header("X-Accel-Buffering", "no")
        return stream(after, client)

    def stream(after: int, client: str) -> Iterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            version, last_sent = -1, 0.0
            end = time.monotonic() + SSE_LIFETIME_S
            while not feed.stopping.is_set() and time.monotonic() < end:
                new_version = feed.wait(version, SSE_PING_S)
                chunk = b""
                if new_version != version:
                    version = new_version
                    chunk += sse("state", ui.current_state())
                    for row in feed.samples_after(after):
                        chunk += sse("sample", sample_dict(row), row[0])
                        after = row[0]
                now = time.monotonic()
                if chunk or now - last_sent >= SSE_PING_S:
                    yield chunk or b": ping\n\n"
                    last_sent = now
                feed.stopping.wait(SSE_MIN_INTERVAL_S)  # coalesce bursts of messages
        finally:
            with streams_lock:
                streams[client] -= 1
                if not streams[client]:
                    del streams[client]
            sse_slots.release()
