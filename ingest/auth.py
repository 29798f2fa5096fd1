"""Write authentication as InfluxDB does it: v1 Basic auth or `u`/`p` query parameters,
v2 `Authorization: Token ...`. With nothing configured every write is allowed."""

from __future__ import annotations

import base64
import hmac
from typing import Any

from vzdivert.httpfront import is_loopback


class Auth:
    def __init__(self, username: str = "", password: str = "", token: str = ""):
        self.username, self.password, self.token = username, password, token

    @property
    def required(self) -> bool:
        return bool(self.username or self.token)

    def allows(self, environ: dict[str, Any], query: dict[str, str]) -> bool:
        if not self.required:
            return True
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        if self.token and scheme in ("token", "bearer"):
            return _same(credentials.strip(), self.token)
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(credentials).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return self._user_ok(user, password)
        if "u" in query or "p" in query:
            return self._user_ok(query.get("u", ""), query.get("p", ""))
        return False

    def _user_ok(self, user: str, password: str) -> bool:
        if self.username:
            return _same(user, self.username) & _same(password, self.password)
        return _same(password, self.token)  # Influx 2's v1 compatibility: any user, token


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def open_listener_warning(ing: Any) -> str | None:
    """What to tell the user when the write endpoint takes anyone's writes, or None."""
    host, _, port = ing.listen.rpartition(":")
    if is_loopback(host.strip("[]")) or ing.username or ing.token:
        return None
    return (f"the write endpoint on {ing.listen} takes writes from anyone on the network: set "
            f'[ingest] listen = "127.0.0.1:{port}" when vzlogger runs on this machine, else '
            "[ingest] username/password or token")
