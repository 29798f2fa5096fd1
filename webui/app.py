"""The web UI's Bottle app: one app object assembled from the route groups in
webui/routes/, with what every route shares (host check, security headers, JSON errors).
Auth rules are in webui.guard, documents in webui.payload; settings are validated and
stored by the supervisor (REQ/REP)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from bottle import Bottle, HTTPError, request, response

from vzdivert.config import Config
from vzdivert.webui.context import UI, SupervisorClient
from vzdivert.webui.feed import Feed
from vzdivert.webui.guard import Guard
from vzdivert.webui.routes import GROUPS

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
}


def make_app(cfg: Config, feed: Feed, supervisor: SupervisorClient,
             clock: Callable[[], float] = time.time) -> Bottle:
    app = Bottle()
    guard = Guard(cfg, clock)
    ui = UI(cfg, feed, supervisor, guard, clock)

    @app.hook("before_request")
    def _before() -> None:
        guard.check_host()

    @app.hook("after_request")
    def _headers() -> None:
        for name, value in SECURITY_HEADERS.items():
            response.set_header(name, value)
        if request.path.startswith("/api/"):
            response.set_header("Cache-Control", "no-store")

    def _error(err: HTTPError) -> str:
        err.content_type = "application/json"
        return json.dumps({"errors": [str(err.body or err.status_line)]})

    app.default_error_handler = _error
    for group in GROUPS:
        group.add_routes(app, ui)
    return app
