"""The web UI's Bottle app: the dashboard page, the JSON API (state, history, settings,
login) and the live event stream. Routes stay thin: auth rules are in ``Guard``, documents
in ``webui.payload``, settings are validated and stored by the supervisor (REQ/REP)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bottle import Bottle, HTTPError, HTTPResponse, request, response, static_file

from vzdivert import bus
from vzdivert.config import Config
from vzdivert.webui.auth import USER, PasswordChecker, RateLimiter, Session, Sessions, csrf_ok
from vzdivert.webui.feed import Feed
from vzdivert.webui.history import COLUMNS, clean
from vzdivert.webui.payload import field_errors, state_payload

STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "vzdivert_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_BODY_BYTES = 64 * 1024
SSE_LIFETIME_S = 300.0  # streams end now and then so threads recycle; browsers reconnect
SSE_MIN_INTERVAL_S = 0.25
SSE_PING_S = 15.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
}


class SupervisorClient:
    """The supervisor's command socket shared by the server threads (REQ is lockstep, so
    one call at a time)."""

    def __init__(self, requester: bus.Requester):
        self.requester = requester
        self.lock = threading.Lock()

    def call(self, cmd: str, **args: Any) -> Any:
        with self.lock:
            return self.requester.call(cmd, **args)


def fail(status: int, *errors: str, headers: dict[str, str] | None = None,
         **extra: Any) -> HTTPResponse:
    body = json.dumps({"errors": list(errors), **extra})
    return HTTPResponse(body, status, {"Content-Type": "application/json",
                                       "Cache-Control": "no-store", **(headers or {})})


class Who:
    """Who is asking: ``via`` is "session" (cookie), "basic" (HTTP Basic) or "open" (no
    password configured, loopback only)."""

    def __init__(self, user: str, via: str, session: Session | None = None):
        self.user, self.via, self.session = user, via, session


class Guard:
    """The security rules of the UI, one place: who a request comes from, whether it may
    view or change, CSRF and origin checks, login rate limiting."""

    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time):
        self.password = cfg.webui.password
        self.read_only_view = cfg.webui.read_only_view
        self.check_password = PasswordChecker(self.password)
        self.sessions = Sessions()
        self.limiter = RateLimiter()
        self.lock = threading.Lock()
        self.clock = clock

    @staticmethod
    def client() -> str:
        return request.environ.get("REMOTE_ADDR", "?")  # never X-Forwarded-For: spoofable

    def check_host(self) -> None:
        """Without a password the UI trusts whoever reaches it, which must then be this
        machine: a foreign Host header means DNS rebinding from some web page."""
        if self.password:
            return
        host = request.environ.get("HTTP_HOST", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.strip("[]") not in LOOPBACK_HOSTS:
            raise fail(403, f"host {host!r} refused: without a password the UI only "
                            "answers on a loopback address")

    def attempt(self, ok: bool) -> bool:
        """Count a password attempt from this client (after ``rate_check``)."""
        with self.lock:
            if ok:
                self.limiter.succeeded(self.client())
            else:
                self.limiter.failed(self.client(), self.clock())
        return ok

    def identify(self) -> Who | None:
        auth = request.auth  # (user, password) from an Authorization: Basic header
        if auth is not None and self.password:
            user, password = auth
            self.rate_check()
            if not self.attempt(user == USER and self.check_password(password)):
                raise fail(401, "wrong user or password")
            return Who(USER, "basic")
        with self.lock:
            session = self.sessions.get(request.get_cookie(COOKIE), self.clock())
        if session is not None:
            return Who(session.user, "session", session)
        if not self.password:
            return Who("local", "open")
        return None

    def rate_check(self) -> None:
        """429 while this client (or everyone) has had too many failed logins lately."""
        with self.lock:
            wait_s = self.limiter.retry_after_s(self.client(), self.clock())
        if wait_s > 0:
            raise fail(429, f"too many failed logins; try again in {wait_s:.0f} s",
                       headers={"Retry-After": str(int(wait_s) + 1)})

    def viewer(self) -> Who | None:
        who = self.identify()
        if who is None and not self.read_only_view:
            raise fail(401, "login required")
        return who

    def same_origin(self) -> None:
        """Browsers send Origin with every cross-site POST/PUT: refuse a foreign one."""
        env = request.environ
        origin = env.get("HTTP_ORIGIN")
        own = f"{env.get('wsgi.url_scheme', 'http')}://{env.get('HTTP_HOST', '')}"
        if env.get("HTTP_SEC_FETCH_SITE") == "cross-site" or (origin and origin != own):
            raise fail(403, "cross-site request refused")

    def changer(self) -> Who:
        """The identity of a request that changes something, after the CSRF checks."""
        who = self.identify()
        if who is None:
            raise fail(401, "login required to change settings")
        self.same_origin()
        if who.via == "session" and not csrf_ok(who.session, request.get_header(CSRF_HEADER)):
            raise fail(403, f"missing or wrong {CSRF_HEADER} header (GET /api/session)")
        return who

    def label(self, who: Who) -> str:
        """For the change log: who, by which way, from where."""
        way = "api" if who.via == "basic" else "web"
        return f"{who.user} ({way}, {self.client()})"

    def login(self, password: str) -> Session:
        self.same_origin()
        self.rate_check()
        ok = not self.password or self.check_password(password)
        if not self.attempt(ok):
            raise fail(401, "wrong password")
        with self.lock:
            return self.sessions.create(USER if self.password else "local", self.clock())

    def set_cookie(self, session: Session) -> None:
        response.set_cookie(COOKIE, session.token, path="/", httponly=True, samesite="strict",
                            max_age=int(self.sessions.lifetime_s))


def read_json_object() -> dict[str, Any]:
    raw = request.body.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise fail(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise fail(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise fail(400, "body must be a JSON object of setting name: value")
    return body


def supervisor_call(supervisor: SupervisorClient, cmd: str, names: set[str] | None = None,
                    **args: Any) -> Any:
    """A supervisor command; its refusal becomes 422 with the reasons, silence 503."""
    try:
        return supervisor.call(cmd, **args)
    except bus.CommandError as exc:
        if "no answer" in str(exc) and exc.errors == [str(exc)]:
            raise fail(503, f"supervisor unavailable: {exc}") from exc
        raise fail(422, *exc.errors, fields=field_errors(exc.errors, names or set())) from exc


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def sample_dict(row: tuple) -> dict[str, Any]:
    values = {c: clean(c, v) for c, v in zip(COLUMNS, row[2:], strict=True)}
    return {"id": row[0], "ts": row[1], **values}


def make_app(cfg: Config, feed: Feed, supervisor: SupervisorClient,
             clock: Callable[[], float] = time.time) -> Bottle:
    app = Bottle()
    guard = Guard(cfg, clock)
    app.config["vzdivert.guard"] = guard
    silent_after_s = max(3.0, 2 * cfg.supervisor.hang_after_s)
    start_settings = cfg.tunables()
    sse_slots = threading.BoundedSemaphore(max(1, cfg.webui.threads - 2))

    def current_state() -> dict[str, Any]:
        ages = {name: feed.age_s(name) for name in ("state", "health", "ingest_stats")}
        return state_payload(feed.state, feed.health, feed.ingest_stats, ages, silent_after_s,
                             start_settings)

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

    # -- page and static files -------------------------------------------------------------
    @app.get("/")
    def index() -> Any:
        return static_file("index.html", root=STATIC_DIR)

    @app.get("/static/<path:path>")
    def static(path: str) -> Any:
        return static_file(path, root=STATIC_DIR)

    # -- session ---------------------------------------------------------------------------
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
            guard.rate_check()
            guard.attempt(False)
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

    # -- data ------------------------------------------------------------------------------
    @app.get("/api/state")
    def state() -> dict[str, Any]:
        guard.viewer()
        return current_state()

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
        if not sse_slots.acquire(blocking=False):
            raise fail(503, "too many live streams open; poll /api/state instead",
                       headers={"Retry-After": "10"})
        response.content_type = "text/event-stream"
        response.set_header("X-Accel-Buffering", "no")
        return stream(after)

    def stream(after: int) -> Iterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            version, last_sent = -1, 0.0
            end = time.monotonic() + SSE_LIFETIME_S
            while not feed.stopping.is_set() and time.monotonic() < end:
                new_version = feed.wait(version, SSE_PING_S)
                chunk = b""
                if new_version != version:
                    version = new_version
                    chunk += sse("state", current_state())
                    for row in feed.samples_after(after):
                        chunk += sse("sample", sample_dict(row), row[0])
                        after = row[0]
                now = time.monotonic()
                if chunk or now - last_sent >= SSE_PING_S:
                    yield chunk or b": ping\n\n"
                    last_sent = now
                feed.stopping.wait(SSE_MIN_INTERVAL_S)  # coalesce bursts of messages
        finally:
            sse_slots.release()

    # -- settings --------------------------------------------------------------------------
    @app.get("/api/settings")
    def get_settings() -> dict[str, Any]:
        who = guard.viewer()
        return {**supervisor_call(supervisor, "get_settings"), "can_edit": who is not None}

    @app.put("/api/settings")
    def put_settings() -> dict[str, Any]:
        who = guard.changer()
        body = read_json_object()
        if not body:
            raise fail(422, "no settings given")
        return supervisor_call(supervisor, "set_settings", set(body), settings=body,
                               who=guard.label(who))

    @app.post("/api/settings/reset")
    def reset_settings() -> dict[str, Any]:
        who = guard.changer()
        return supervisor_call(supervisor, "reset_settings", who=guard.label(who))

    # -- Prometheus ------------------------------------------------------------------------
    @app.get("/metrics")
    def metrics() -> Any:
        guard.viewer()
        try:
            from vzdivert.webui.metrics import render_metrics
        except ModuleNotFoundError as exc:
            if exc.name != "vzdivert.webui.metrics":
                raise
            raise fail(404, "metrics are not available in this build") from exc
        body, content_type = render_metrics(feed)
        return HTTPResponse(body, 200, {"Content-Type": content_type})

    return app
