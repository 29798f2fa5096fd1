"""Web UI auth core: password hashes, sessions, CSRF tokens, login rate limiting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vzdivert import config as configmod
from vzdivert.config import ConfigError
from vzdivert.ratelimit import FailureLimiter
from vzdivert.webui.auth import (
    PasswordChecker,
    Sessions,
    check_stored,
    csrf_ok,
    hash_password,
    is_hash,
    verify_password,
)


def test_hash_roundtrip_and_format() -> None:
    h = hash_password("correct horse", iterations=1000)
    algo, iterations, salt, digest = h.split("$")
    assert (algo, iterations) == ("pbkdf2_sha256", "1000")
    assert salt and digest and is_hash(h) and check_stored(h) is None
    assert verify_password("correct horse", h)
    assert not verify_password("correct horse ", h)
    assert not verify_password("", h)
    assert hash_password("x", 1000) != hash_password("x", 1000)  # salted


def test_default_hash_is_slow_enough_and_verifies() -> None:
    h = hash_password("pw")
    assert int(h.split("$")[1]) >= 100_000
    assert verify_password("pw", h)


def test_known_vector() -> None:
    # PBKDF2-HMAC-SHA256(P="passwd", S="salt", c=1): first 32 bytes of RFC 7914 section 11
    h = "pbkdf2_sha256$1$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw"
    assert verify_password("passwd", h)
    assert not verify_password("Passwd", h)


def test_plain_text_password_and_empty() -> None:
    assert verify_password("s3cret", "s3cret")
    assert not verify_password("s3cret", "s3cre")
    assert not verify_password("", "")  # no password configured: nothing verifies


@pytest.mark.parametrize("bad", ["pbkdf2_sha256$", "pbkdf2_sha256$x$c2FsdA$AAAA",
                                 "pbkdf2_sha256$10$c2FsdA", "pbkdf2_sha256$10$!!$AAAA"])
def test_malformed_hash_never_verifies(bad: str) -> None:
    assert check_stored(bad)
    assert not verify_password(bad, bad)


def test_config_rejects_malformed_hash_and_accepts_good_one() -> None:
    with pytest.raises(ConfigError, match="webui.password: malformed hash"):
        configmod.validate({"webui": {"password": "pbkdf2_sha256$abc"}})
    cfg = configmod.validate({"webui": {"password": hash_password("pw", 1000),
                                        "listen": "0.0.0.0:8081"}})
    assert verify_password("pw", cfg.webui.password)


def test_checker_caches_only_successes() -> None:
    check = PasswordChecker(hash_password("pw", 1000))
    assert check("pw") and check("pw")
    assert not check("nope")
    assert len(check._ok) == 1


def test_sessions_expire_and_are_bounded() -> None:
    s = Sessions(lifetime_s=100, max_sessions=3)
    a = s.create("admin", now=0)
    assert s.get(a.token, 99) is a
    assert s.get(a.token, 100) is None  # expired and forgotten
    assert s.get("forged", 0) is None and s.get(None, 0) is None
    tokens = [s.create("admin", now=200).token for _ in range(4)]
    assert s.get(tokens[0], 201) is None  # the oldest made room
    assert all(s.get(t, 201) for t in tokens[1:])
    s.drop(tokens[1])
    assert s.get(tokens[1], 201) is None


def test_csrf_token_check() -> None:
    session = Sessions().create("admin", 0)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, session.csrf[:-1])
    assert session.csrf != session.token


def test_rate_limiter_per_client_and_overall() -> None:
    rl = FailureLimiter(per_client=3, overall=5, window_s=60)
    for t in range(3):
        assert rl.attempt("a", t) == 0  # counted as a failure until succeeded()
    assert rl.attempt("a", 3) == pytest.approx(57)
    assert rl.attempt("b", 3) == 0  # another client is not punished for a
    assert rl.attempt("c", 5) == 0
    assert rl.attempt("d", 6) == pytest.approx(54)  # 5 failures in all: strangers wait
    assert rl.attempt("a", 61.5) == 0  # a's first two failures left the window
    rl.succeeded("a", 61.5)
    assert rl.attempt("a", 200) == 0


def test_known_client_is_exempt_from_the_overall_cap() -> None:
    """Issue 16 item 3: 30 failures from 6 addresses locked everyone out, the owner and
    Basic-auth API clients included. A client with a recent success keeps its own limit."""
    rl = FailureLimiter(per_client=5, overall=30, window_s=300)
    assert rl.attempt("owner", 0) == 0
    rl.succeeded("owner", 0)
    for i in range(30):
        assert rl.attempt(f"attacker{i % 6}", 1 + i * 0.01) == 0
    assert rl.attempt("stranger", 2) > 0  # the overall cap still holds for unknown addresses
    assert rl.attempt("owner", 2) == 0  # the owner is not locked out
    rl.succeeded("owner", 2)
    assert rl.attempt("attacker0", 3) > 0  # and attackers keep their per-client limit


def test_hash_command_reads_stdin() -> None:
    out = subprocess.run([sys.executable, "-m", "vzdivert.webui.auth", "hash"], input="hunter2\n",
                         capture_output=True, text=True, check=True).stdout.strip()
    assert verify_password("hunter2", out)
    empty = subprocess.run([sys.executable, "-m", "vzdivert.webui.auth", "hash"], input="\n",
                           capture_output=True, text=True)
    assert empty.returncode != 0
