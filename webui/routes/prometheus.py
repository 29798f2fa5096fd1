"""`/metrics` for Prometheus (the text format, from the live feed)."""

from __future__ import annotations

from typing import Any

from bottle import Bottle, HTTPResponse

from vzdivert.webui.context import UI


def add_routes(app: Bottle, ui: UI) -> None:
    @app.get("/metrics")
    def metrics() -> Any:
        ui.guard.viewer()
        from vzdivert.webui.metrics import render_metrics  # on the first scrape: most never do

        body, content_type = render_metrics(ui.feed)
        return HTTPResponse(body, 200, {"Content-Type": content_type})
