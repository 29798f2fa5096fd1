"""Web UI authentication: password hashing (``pbkdf2_sha256$...``), cookie sessions with a
CSRF token each (login limits: vzdivert.ratelimit). No sockets or clocks of its own: times
are passed in, so tests drive it directly. ``python -m vzdivert.webui.auth hash`` prints a
hash for the config."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
from collections import OrderedDict
from dataclasses import dataclass

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 200_000  # ~0.3 s on a Pi 4; verified once per login, Basic results are cached
USER = "admin"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(plain: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (base64): what `[webui] password` may hold
    instead of the plain text."""
    if not plain:
        raise ValueError("empty password")
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", plain.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def is_hash(stored: str) -> bool:
    return stored.startswith(ALGORITHM + "$")


def check_stored(stored: str) -> str | None:
    """Why a configured password that looks like a hash is malformed, or None."""
    if not is_hash(stored):
        return None
    parts = stored.split("$")
    try:
        if len(parts) != 4 or int(parts[1]) < 1:
            raise ValueError
        for part in parts[2:]:
            _unb64(part)
    except ValueError:
        return f"malformed {ALGORITHM} hash (expected {ALGORITHM}$ITERATIONS$SALT$HASH)"
    return None


def verify_password(plain: str, stored: str) -> bool:
    """Constant-time check of ``plain`` against the configured value (a hash or plain text)."""
    if not stored:
        return False
    if not is_hash(stored):
        return hmac.compare_digest(plain.encode(), stored.encode())
    if check_stored(stored):
        return False
    _, iterations, salt, digest = stored.split("$")
    got = hashlib.pbkdf2_hmac("sha256", plain.encode(), _unb64(salt), int(iterations))
    return hmac.compare_digest(got, _unb64(digest))


class PasswordChecker:
    """verify_password with a small cache of accepted passwords, so HTTP Basic clients
    polling the API do not pay the hashing cost on every request."""

    def __init__(self, stored: str):
        self.stored = stored
        self._ok: set[bytes] = set()
        self._pepper = secrets.token_bytes(16)

    def __call__(self, plain: str) -> bool:
        try:
            encoded = plain.encode()
        except UnicodeEncodeError:  # a lone surrogate: never the configured (UTF-8) password
            return False
        key = hashlib.sha256(self._pepper + encoded).digest()
        if key in self._ok:
            return True
        if verify_password(plain, self.stored):
            if len(self._ok) < 8:
                self._ok.add(key)
            return True
        return False


@dataclass
class Session:
    token: str
    user: str
    csrf: str
    expires: float


class Sessions:
    """In-memory sessions (a restart of the UI process logs everyone out)."""

    def __init__(self, lifetime_s: float = 7 * 86400, max_sessions: int = 64):
        self.lifetime_s, self.max_sessions = lifetime_s, max_sessions
        self._by_token: OrderedDict[str, Session] = OrderedDict()

    def create(self, user: str, now: float) -> Session:
        while len(self._by_token) >= self.max_sessions:
            self._by_token.popitem(last=False)
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32),
                    now + self.lifetime_s)
        self._by_token[s.token] = s
        return s

    def get(self, token: str | None, now: float) -> Session | None:
        if not token:
            return None
        s = self._by_token.get(token)
        if s is None:
            return None
        if now >= s.expires:
            del self._by_token[token]
            return None
        return s

    def drop(self, token: str) -> None:
        self._by_token.pop(token, None)


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), presented.encode())


def main(argv: list[str] | None = None) -> int:
    """``python -m vzdivert.webui.auth hash``: read a password (twice on a terminal), print its
    hash."""
    import argparse
    import getpass

    parser = argparse.ArgumentParser(prog="python -m vzdivert.webui.auth")
    parser.add_argument("command", choices=["hash"])
    parser.parse_args(argv)
    if sys.stdin.isatty():
        plain = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != plain:
            print("passwords differ", file=sys.stderr)
            return 1
    else:
        plain = sys.stdin.readline().rstrip("\r\n")
    if not plain:
        print("empty password", file=sys.stderr)
        return 1
    print(hash_password(plain))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
