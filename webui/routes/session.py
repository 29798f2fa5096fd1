"""Login, logout and who the browser is (with its CSRF token)."""

from __future__ import annotations

from typing import Any

from bottle import Bottle, response

from vzdivert.webui.auth import USER
from vzdivert.webui.context import UI
from vzdivert.webui.guard import COOKIE, Who
from vzdivert.webui.jsonhttp import fail, read_json_object


def add_routes(app: Bottle, ui: UI) -> None:
    guard = ui.guard

    @app.get("/api/session")
    def session_info() -> dict[str, Any]:
        who = guard.identify()
        if who is not None and who.via == "open":  # a CSRF token for the local browser
            session = guard.login("")
            guard.set_cookie(session)
            who = Who(session.user, "session", session)
        return {"user": who.user if who else None,
                "via": who.via if who else None,
                "can_edit": who is not None,
                "can_view": who is not None or guard.read_only_view,
                "password_set": bool(guard.password),
                "csrf": who.session.csrf if who and who.session else None}

    @app.post("/api/login")
    def login() -> dict[str, Any]:
        body = read_json_object()
        password = body.get("password", "")
        if body.get("user", USER) != USER or not isinstance(password, str):
            guard.checked(lambda: False)  # counted like any wrong password
            raise fail(401, "wrong user or password")
        session = guard.login(password)
        guard.set_cookie(session)
        return {"user": session.user, "csrf": session.csrf}

    @app.post("/api/logout")
    def logout() -> dict[str, Any]:
        who = guard.changer()
        if who.session is not None:
            with guard.lock:
                guard.sessions.drop(who.session.token)
        response.delete_cookie(COOKIE, path="/")
        return {"user": None}
