"""The live settings: read, change, reset. The supervisor validates and stores them; a
refusal comes back as data ({setting: problem}) and is shown next to each field."""

from __future__ import annotations

from typing import Any

from bottle import Bottle

from vzdivert import bus
from vzdivert.webui.context import UI
from vzdivert.webui.jsonhttp import fail, read_json_object


def add_routes(app: Bottle, ui: UI) -> None:
    guard = ui.guard

    @app.get("/api/settings")
    def get_settings() -> dict[str, Any]:
        who = guard.viewer()
        return {**ui.call_supervisor("get_settings"), "can_edit": who is not None}

    @app.put("/api/settings")
    def put_settings() -> dict[str, Any]:
        who = guard.changer()
        body = read_json_object()
        if not body:
            raise fail(422, "no settings given")
        problems = bus.unsendable(body)
        if problems:
            raise fail(422, *(f"{k!r}: {p}" for k, p in problems.items()), code=bus.INVALID,
                       fields={k.encode("utf-8", "replace").decode(): p
                               for k, p in problems.items()})
        return ui.call_supervisor("set_settings", settings=body, who=guard.label(who))

    @app.post("/api/settings/reset")
    def reset_settings() -> dict[str, Any]:
        who = guard.changer()
        return ui.call_supervisor("reset_settings", who=guard.label(who))
