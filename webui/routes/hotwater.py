"""Boost and pause, one click each: the hot-water process keeps the timeout, the worker
gets it as a self-expiring command. Same auth rules as settings; both answer with the
state document."""

from __future__ import annotations

from typing import Any

from bottle import Bottle

from vzdivert.webui.context import UI
from vzdivert.webui.jsonhttp import fail, read_json_object

ARGS = {"boost": {"minutes", "power_w"}, "pause": {"minutes"}}


def add_routes(app: Bottle, ui: UI) -> None:
    guard = ui.guard

    def command(cmd: str) -> dict[str, Any]:
        guard.changer()
        body = read_json_object()
        unknown = sorted(set(body) - ARGS[cmd])
        if unknown or "minutes" not in body:
            raise fail(422, f"{cmd}: expected {{\"minutes\": M}}"
                       + (' (and optionally "power_w")' if cmd == "boost" else "")
                       + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        result = ui.call_hotwater(cmd, **body)
        ui.feed.accept("hotwater_state", result)  # as the stream would: shown at once
        return ui.current_state()

    @app.post("/api/boost")
    def boost() -> dict[str, Any]:
        return command("boost")

    @app.post("/api/pause")
    def pause() -> dict[str, Any]:
        return command("pause")
