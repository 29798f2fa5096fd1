"""The dashboard page and its static files (uPlot, the script, the styles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bottle import Bottle, static_file

from vzdivert.webui.context import UI

STATIC_DIR = Path(__file__).parent.parent / "static"


def add_routes(app: Bottle, ui: UI) -> None:
    @app.get("/")
    def index() -> Any:
        return static_file("index.html", root=STATIC_DIR)

    @app.get("/static/<path:path>")
    def static(path: str) -> Any:
        return static_file(path, root=STATIC_DIR)
