"""The security rules of the web UI, one place: who a request comes from, whether it may
view or change, CSRF and origin checks, login rate limiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bottle import request, response

from vzdivert.config import Config
from vzdivert.ratelimit import FailureLimiter
from vzdivert.webui.auth import USER, PasswordChecker, Session, Sessions, csrf_ok
from vzdivert.webui.jsonhttp import fail

COOKIE = "vzdivert_session"
CSRF_HEADER = "X-CSRF-Token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


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
        self.limiter = FailureLimiter(per_client=5, overall=30, window_s=300.0,
                                      known_for_s=self.sessions.lifetime_s)
        self.lock = threading.Lock()
        self.clock = clock

    @staticmethod
    def client() -> str:
        # X-Forwarded-For only through vzdivert.httpfront's trusted-proxy rule: spoofable
        return request.environ.get("REMOTE_ADDR", "?")

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

    def checked(self, verify: Callable[[], bool]) -> bool:
        """Run one password check from this client under the login limits: the attempt is
        counted before ``verify`` runs (parallel guesses cannot slip past the count); 429
        while this client, or everyone but clients known from a recent success, is over
        the limit."""
        client, now = self.client(), self.clock()
        wait_s = self.limiter.attempt(client, now)
        if wait_s > 0:
            raise fail(429, f"too many failed logins; try again in {wait_s:.0f} s",
                       headers={"Retry-After": str(int(wait_s) + 1)})
        ok = verify()
        if ok:
            self.limiter.succeeded(client, now)
        return ok

    def identify(self) -> Who | None:
        auth = request.auth  # (user, password) from an Authorization: Basic header
        if auth is not None and self.password:
            user, password = auth
            if not self.checked(lambda: user == USER and self.check_password(password)):
                raise fail(401, "wrong user or password")
            return Who(USER, "basic")
        with self.lock:
            session = self.sessions.get(request.get_cookie(COOKIE), self.clock())
        if session is not None:
            return Who(session.user, "session", session)
        if not self.password:
            return Who("local", "open")
        return None

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
        if self.password and not self.checked(lambda: self.check_password(password)):
            raise fail(401, "wrong password")
        with self.lock:
            return self.sessions.create(USER if self.password else "local", self.clock())

    def set_cookie(self, session: Session) -> None:
        secure = request.environ.get("wsgi.url_scheme") == "https"  # behind a TLS proxy
        response.set_cookie(COOKIE, session.token, path="/", httponly=True, samesite="strict",
                            secure=secure, max_age=int(self.sessions.lifetime_s))
