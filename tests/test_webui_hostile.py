"""The web UI under a hostile LAN (issue 16 items 3, 6, 8, 9), against a real `vzdivert
run` over loopback; other clients bind 127.0.0.x source addresses."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from syshelp import answer_before_body
from webui_help import PASSWORD, UISystem

from vzdivert.webui.auth import hash_password


def call(ui: UISystem, method: str, path: str, body: bytes | dict | None = None,
         source: str = "127.0.0.1", basic: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", ui.ui_port, timeout=10,
                                      source_address=(source, 0))
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if basic is not None:
        hdrs["Authorization"] = "Basic " + base64.b64encode(f"admin:{basic}".encode()).decode()
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def login(ui: UISystem, password: str, source: str = "127.0.0.1") -> int:
    return call(ui, "POST", "/api/login", {"password": password}, source)[0]


@pytest.fixture
def locked_ui(tmp_path) -> Iterator[UISystem]:
    system = UISystem(tmp_path, password=PASSWORD, webui=f'password = "{hash_password(PASSWORD)}"')
    try:
        yield system.start()
    finally:
        system.kill_all()


def test_other_addresses_cannot_lock_out_a_known_client(locked_ui: UISystem) -> None:
    """Item 3: 30 failed logins from 6 addresses used to lock everyone out for 5 minutes."""
    assert call(locked_ui, "GET", "/api/settings", basic=PASSWORD)[0] == 200  # known now
    for i in range(30):
        assert login(locked_ui, f"guess{i}", f"127.0.0.{10 + i % 6}") == 401
    assert login(locked_ui, "guess", "127.0.0.99") == 429  # the overall cap still holds
    assert login(locked_ui, PASSWORD) == 200  # but not for the known client
    assert call(locked_ui, "GET", "/api/settings", basic=PASSWORD)[0] == 200


def test_parallel_guesses_get_five_tries(locked_ui: UISystem) -> None:
    """Item 3: the attempt is recorded before the password is verified."""
    statuses: list[int] = []
    start = threading.Barrier(20)

    def guess(i: int) -> None:
        start.wait()
        statuses.append(login(locked_ui, f"wrong{i}", "127.0.0.50"))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses.count(401) == 5 and statuses.count(429) == 15


def test_malformed_input_gets_4xx_json_not_500(locked_ui: UISystem) -> None:
    """Item 6: deeply nested JSON and lone surrogates were 500s with a logged traceback;
    front-end errors were text/plain."""
    status, headers, data = call(locked_ui, "POST", "/api/login", b"[" * 50_000)
    assert status == 400 and json.loads(data)["errors"]
    surrogate = b'{"password": "\\ud800"}'
    for _ in range(5):
        status, _, data = call(locked_ui, "POST", "/api/login", surrogate, "127.0.0.60")
        assert status == 401 and json.loads(data)["errors"]
    assert call(locked_ui, "POST", "/api/login", surrogate, "127.0.0.60")[0] == 429  # counted
    for body in (b'{"target_w": 18446744073709551616}', b'{"target_w": "\\udc80"}'):
        status, _, data = call(locked_ui, "PUT", "/api/settings", body, basic=PASSWORD)
        assert status == 422, data
        assert json.loads(data)["fields"]["target_w"]
    status, headers, data = call(locked_ui, "GET", "/api/state", basic=PASSWORD,
                                 headers={"X-Filler": "a" * 20_000})
    assert status == 431 and headers["content-type"] == "application/json"
    assert headers["x-frame-options"] == "DENY" and json.loads(data)["errors"]
    # Refused on its head (> 1 MiB): the client still sending the body gets the 413, no reset.
    answer = answer_before_body(locked_ui.ui_port, "/api/settings", 2 << 20)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"X-Frame-Options: DENY" in answer
    assert "Traceback" not in locked_ui.logs()


def test_login_through_a_trusted_tls_proxy(tmp_path) -> None:
    """Item 8: behind a TLS-terminating proxy the browser's Origin is https://...; only the
    configured proxy's X-Forwarded-* are believed."""
    ui = UISystem(tmp_path, password=PASSWORD,
                  webui=f'password = "{PASSWORD}"\ntrusted_proxy = "127.0.0.1"')
    ui.start()
    try:
        forwarded = {"Origin": "https://pi.example", "X-Forwarded-Proto": "https",
                     "X-Forwarded-Host": "pi.example", "X-Forwarded-For": "192.0.2.9"}
        status, headers, _ = call(ui, "POST", "/api/login", {"password": PASSWORD},
                                  headers=forwarded)
        assert status == 200 and "secure" in headers["set-cookie"].lower()
        status, _, _ = call(ui, "POST", "/api/login", {"password": PASSWORD}, "127.0.0.2",
                            headers=forwarded)
        assert status == 403  # not the proxy: its headers are ignored, the Origin is foreign
        for i in range(5):  # the limiter sees the forwarded client address
            call(ui, "POST", "/api/login", {"password": f"x{i}"},
                 headers={**forwarded, "X-Forwarded-For": "192.0.2.10"})
        assert call(ui, "POST", "/api/login", {"password": "x"},
                    headers={**forwarded, "X-Forwarded-For": "192.0.2.10"})[0] == 429
        assert call(ui, "POST", "/api/login", {"password": PASSWORD},
                    headers={**forwarded, "X-Forwarded-For": "192.0.2.11"})[0] == 200
    finally:
        ui.kill_all()


def test_one_client_cannot_hog_streams_or_connections(tmp_path) -> None:
    """Item 9: with read_only_view one anonymous client could hold every live-stream slot,
    and ~98 idle connections stopped the UI answering."""
    ui = UISystem(tmp_path, password=PASSWORD,
                  webui=f'password = "{PASSWORD}"\nread_only_view = true\nthreads = 8')
    ui.start()
    streams: list[http.client.HTTPConnection] = []
    idle: list[socket.socket] = []
    try:
        statuses = []
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", ui.ui_port, timeout=5,
                                              source_address=("127.0.0.20", 0))
            conn.request("GET", "/api/events")
            resp = conn.getresponse()
            statuses.append(resp.status)
            if resp.status == 200:
                resp.fp.readline()  # the stream is flowing
                streams.append(conn)
            else:
                resp.read()
        assert statuses == [200, 200, 429]
        other = http.client.HTTPConnection("127.0.0.1", ui.ui_port, timeout=5,
                                           source_address=("127.0.0.21", 0))
        other.request("GET", "/api/events")
        assert other.getresponse().status == 200  # another address still gets one
        streams.append(other)
        for i in range(150):
            try:
                idle.append(socket.create_connection(
                    ("127.0.0.1", ui.ui_port), timeout=2,
                    source_address=(f"127.0.0.{30 + i % 10}", 0)))
            except OSError:
                pass
        for _ in range(5):
            assert call(ui, "GET", "/api/state", basic=PASSWORD)[0] == 200
    finally:
        for s in idle:
            s.close()
        for c in streams:
            c.close()
        ui.kill_all()
