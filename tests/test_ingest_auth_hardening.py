"""Ingest credentials that cannot be left silently open, and throttled guessing (issue 16
item 4)."""

from __future__ import annotations

import base64
import io
import threading

import pytest

from vzdivert.config import ConfigError, validate
from vzdivert.ingest.auth import Auth, open_listener_warning
from vzdivert.ingest.channels import Channels, ChannelSpec
from vzdivert.ingest.server import WriteApp
from vzdivert.ingest.stats import IngestStats


@pytest.mark.parametrize("ingest, problem", [
    ({"password": "pw"}, "ingest.password: set ingest.username too"),
    ({"username": "vz"}, "ingest.username: set ingest.password too"),
    ({"forward_url": "http://127.0.0.1:8086/write?db=x", "forward_password": "pw"},
     "ingest.forward_password: set ingest.forward_username too"),
    ({"forward_url": "http://127.0.0.1:8086/write?db=x", "forward_username": "vz"},
     "ingest.forward_username: set ingest.forward_password too"),
])
def test_half_credentials_are_refused(ingest: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        validate({"ingest": ingest})


def test_open_non_loopback_listener_is_warned_about() -> None:
    assert open_listener_warning(validate({}).ingest)  # default 0.0.0.0 without credentials
    assert open_listener_warning(validate({"ingest": {"listen": "127.0.0.1:8080"}}).ingest) is None
    assert open_listener_warning(validate({"ingest": {"listen": "[::1]:8080"}}).ingest) is None
    assert open_listener_warning(validate({"ingest": {"token": "t"}}).ingest) is None
    with_user = validate({"ingest": {"username": "vz", "password": "pw"}}).ingest
    assert open_listener_warning(with_user) is None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(app: WriteApp, addr: str, authorization: str) -> tuple[int, dict]:
    body = b"leistung value=1\n"
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/write", "REMOTE_ADDR": addr,
               "QUERY_STRING": "db=vzlogger", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), "HTTP_AUTHORIZATION": authorization}
    got: dict = {}

    def start_response(status: str, headers: list) -> None:
        got["status"], got["headers"] = int(status.split()[0]), dict(headers)

    b"".join(app(environ, start_response))
    return got["status"], got["headers"]


def make_app() -> tuple[WriteApp, IngestStats]:
    stats = IngestStats()
    channels = Channels([ChannelSpec("grid", "leistung", "value")], stale_after_s=10)
    return WriteApp(["vzlogger"], channels, Auth("vz", "right"), stats, lambda r: None), stats


def test_failed_guesses_are_throttled_per_client() -> None:
    app, stats = make_app()
    statuses = [post(app, "192.0.2.7", basic("vz", f"guess{i}"))[0] for i in range(30)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    status, headers = post(app, "192.0.2.7", basic("vz", "right"))
    assert status == 429 and int(headers["Retry-After"]) > 0  # even the right one waits
    assert post(app, "127.0.0.1", basic("vz", "right"))[0] == 204  # the logger is unaffected
    assert stats.counts["auth_throttled"] == 21


def test_parallel_guesses_cannot_exceed_the_limit() -> None:
    """Each attempt is counted before the password is checked."""
    app, _ = make_app()
    statuses: list[int] = []
    start = threading.Barrier(40)

    def guess(i: int) -> None:
        start.wait()
        statuses.append(post(app, "192.0.2.8", basic("vz", f"g{i}"))[0])

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert statuses.count(401) == 10 and statuses.count(429) == 30
