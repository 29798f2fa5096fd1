"""The web UI's JSON API against a real `vzdivert run`: the UI process talks to the real
supervisor, which validates, persists (``[state] dir``) and applies the settings."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from syshelp import wait_for
from webui_help import PASSWORD, UISystem, local_session

from vzdivert.webui.auth import hash_password

CONTRACT = ("grid_w", "duty", "power_w", "energy_wh", "stale", "target_w", "processes")


@pytest.fixture(scope="module")
def open_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UISystem]:
    """No password (loopback only); 4 server threads so 2 may stream."""
    system = UISystem(tmp_path_factory.mktemp("open"), webui="threads = 4")
    try:
        yield system.start()
    finally:
        system.kill_all()


@pytest.fixture(scope="module")
def locked_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UISystem]:
    system = UISystem(tmp_path_factory.mktemp("locked"), password=PASSWORD,
                      webui=f'password = "{hash_password(PASSWORD)}"')
    try:
        yield system.start()
    finally:
        system.kill_all()


# -- without a password (loopback) ----------------------------------------------------------
def test_state_has_the_contract_fields(open_ui: UISystem) -> None:
    state = requests.get(open_ui.url("/api/state"), timeout=3).json()
    for key in CONTRACT:
        assert key in state, key
    assert 0.0 <= state["duty"] <= 1.0
    assert isinstance(state["stale"], bool)
    assert state["target_w"] == 0.0
    wait_for(lambda: {"rtworker", "ingest", "webui"} <= set(
        requests.get(open_ui.url("/api/state"), timeout=3).json()["processes"]),
        what="health of every child")
    procs = requests.get(open_ui.url("/api/state"), timeout=3).json()["processes"]
    for p in procs.values():
        assert isinstance(p["alive"], bool) and isinstance(p["restarts"], int)
    assert procs["webui"]["alive"]


def test_page_and_static_files_are_served(open_ui: UISystem) -> None:
    page = requests.get(open_ui.url("/"), timeout=3)
    assert page.status_code == 200 and "vzdivert" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    js = requests.get(open_ui.url("/static/vendor/uPlot.iife.min.js"), timeout=3)
    assert js.status_code == 200 and "uPlot" in js.text
    assert requests.get(open_ui.url("/static/../app.py"), timeout=3).status_code in (403, 404)
    missing = requests.get(open_ui.url("/api/nothing"), timeout=3)
    assert missing.status_code == 404 and missing.json()["errors"]


def test_put_applies_persists_and_logs(open_ui: UISystem) -> None:
    s, csrf = local_session(open_ui)
    r = s.put(open_ui.url("/api/settings"), json={"target_w": -20},
              headers={"X-CSRF-Token": csrf}, timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["target_w"] == -20.0
    assert open_ui.saved_settings()["target_w"] == -20.0
    got = s.get(open_ui.url("/api/settings"), timeout=3).json()
    assert got["settings"]["target_w"] == -20.0 and got["overrides"] == {"target_w": -20.0}
    assert got["defaults"]["target_w"] == 0.0
    assert {"unit", "help", "min", "max"} <= set(got["schema"]["target_w"])
    last = got["changes"][-1]
    assert last["changes"] == {"target_w": [0.0, -20.0]}
    assert "web" in last["who"] and "127.0.0.1" in last["who"]
    wait_for(lambda: requests.get(open_ui.url("/api/state"), timeout=3).json()
             ["settings"]["target_w"] == -20.0, what="the supervisor's health carries it")


@pytest.mark.parametrize("body, field", [
    ({"target_w": 1e9}, "target_w"),
    ({"target_w": "x"}, "target_w"),
    ({"target_w": None}, "target_w"),
    ({"nonsense": 1}, "nonsense"),
    ({"listen": "0.0.0.0:1"}, "listen"),  # a key that exists in the config but is not live
    ({"target_w": -5, "deadband_w": -1}, "deadband_w"),  # one bad value: nothing is applied
])
def test_invalid_values_get_422_and_change_nothing(open_ui: UISystem, body: dict,
                                                    field: str) -> None:
    s, csrf = local_session(open_ui)
    before = s.get(open_ui.url("/api/settings"), timeout=3).json()["settings"]
    saved = (open_ui.state_dir / "settings.json").read_bytes() \
        if (open_ui.state_dir / "settings.json").exists() else None
    r = s.put(open_ui.url("/api/settings"), json=body, headers={"X-CSRF-Token": csrf},
              timeout=5)
    assert r.status_code == 422, r.text
    doc = r.json()
    assert any(e.startswith(f"{field}:") for e in doc["errors"]), doc
    assert field in doc["fields"]
    assert s.get(open_ui.url("/api/settings"), timeout=3).json()["settings"] == before
    if saved is not None:
        assert (open_ui.state_dir / "settings.json").read_bytes() == saved


@pytest.mark.parametrize("data, status", [(b"[1, 2]", 400), (b"not json", 400), (b"{}", 422),
                                          (b"x" * 70_000, 413)])
def test_malformed_bodies(open_ui: UISystem, data: bytes, status: int) -> None:
    s, csrf = local_session(open_ui)
    r = s.put(open_ui.url("/api/settings"), data=data,
              headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"}, timeout=5)
    assert r.status_code == status and r.json()["errors"]


def test_csrf_and_origin_checks(open_ui: UISystem) -> None:
    s, csrf = local_session(open_ui)
    url = open_ui.url("/api/settings")
    assert s.put(url, json={"target_w": -1}, timeout=3).status_code == 403  # cookie, no token
    assert s.put(url, json={"target_w": -1}, headers={"X-CSRF-Token": csrf + "x"},
                 timeout=3).status_code == 403
    assert s.post(open_ui.url("/api/settings/reset"), timeout=3).status_code == 403
    evil = {"Origin": "http://evil.example"}
    assert requests.put(url, json={"target_w": -1}, headers=evil, timeout=3).status_code == 403
    assert requests.put(url, json={"target_w": -1}, headers={"Sec-Fetch-Site": "cross-site"},
                        timeout=3).status_code == 403
    assert s.put(url, json={"target_w": -1}, headers={**evil, "X-CSRF-Token": csrf},
                 timeout=3).status_code == 403
    # DNS rebinding: a page on another name that resolves to 127.0.0.1
    r = requests.get(open_ui.url("/api/state"), headers={"Host": "evil.example"}, timeout=3)
    assert r.status_code == 403
    assert open_ui.saved_settings().get("target_w") != -1
    # a script on this machine (no cookie, no Origin) may change things without a password
    same = {"Origin": open_ui.base}
    r = requests.put(url, json={"target_w": -2}, headers=same, timeout=5)
    assert r.status_code == 200 and open_ui.saved_settings()["target_w"] == -2


def test_reset_to_config_defaults(open_ui: UISystem) -> None:
    s, csrf = local_session(open_ui)
    h = {"X-CSRF-Token": csrf}
    assert s.put(open_ui.url("/api/settings"), json={"deadband_w": 15, "target_w": 30},
                 headers=h, timeout=5).status_code == 200
    r = s.post(open_ui.url("/api/settings/reset"), headers=h, timeout=5)
    assert r.status_code == 200
    doc = r.json()
    assert doc["settings"] == doc["defaults"] and doc["overrides"] == {}
    assert open_ui.saved_settings() == {}
    assert doc["changes"][-1]["changes"]["target_w"] == [30.0, 0.0]


def test_history(open_ui: UISystem) -> None:
    doc = requests.get(open_ui.url("/api/history?minutes=15"), timeout=3).json()
    assert doc["step_s"] == 1.0
    assert set(doc) >= {"ts", "grid_w", "power_w", "duty", "target_w", "last_id"}
    assert len({len(doc[c]) for c in ("ts", "grid_w", "power_w", "duty", "target_w")}) == 1
    assert requests.get(open_ui.url("/api/history?minutes=1440"), timeout=3).json()[
        "step_s"] == 20.0
    for bad in ("0", "1441", "abc"):
        r = requests.get(open_ui.url(f"/api/history?minutes={bad}"), timeout=3)
        assert r.status_code == 400 and r.json()["errors"]


def open_stream(system: UISystem) -> socket.socket:
    """A raw SSE client; returns once the first state event arrived."""
    sock = socket.create_connection(("127.0.0.1", system.ui_port), timeout=5)
    sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{system.ui_port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    seen = b""
    while b"event: state" not in seen:
        chunk = sock.recv(65536)
        assert chunk, f"stream closed: {seen[:300]!r}"
        seen += chunk
    assert seen.startswith(b"HTTP/1.1 200") and b"text/event-stream" in seen
    return sock


def test_event_stream_is_bounded_and_never_starves_the_api(open_ui: UISystem) -> None:
    streams = [open_stream(open_ui), open_stream(open_ui)]  # threads = 4: 2 may stream
    try:
        refused = requests.get(open_ui.url("/api/events"), timeout=3, stream=True)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        for _ in range(20):  # the other threads keep answering
            assert requests.get(open_ui.url("/api/state"), timeout=3).status_code == 200
        streams.pop().close()
        wait_for(lambda: requests.get(open_ui.url("/api/events"), timeout=3,
                                      stream=True).status_code == 200,
                 what="the closed stream's slot to come back")
    finally:
        for s in streams:
            s.close()


def test_settings_survive_a_restart(open_ui: UISystem) -> None:
    s, csrf = local_session(open_ui)
    assert s.put(open_ui.url("/api/settings"), json={"target_w": -33, "curve": "pfc"},
                 headers={"X-CSRF-Token": csrf}, timeout=5).status_code == 200
    open_ui.restart()
    doc = requests.get(open_ui.url("/api/settings"), timeout=3).json()
    assert doc["settings"]["target_w"] == -33.0 and doc["settings"]["curve"] == "pfc"
    assert doc["changes"][-1]["changes"]["curve"][1] == "pfc"


# -- with a password ------------------------------------------------------------------------
def test_password_protects_everything_but_the_page(locked_ui: UISystem) -> None:
    for path in ("/api/state", "/api/settings", "/api/history", "/api/events", "/metrics"):
        r = requests.get(locked_ui.url(path), timeout=3)
        assert r.status_code == 401, path
        assert "WWW-Authenticate" not in r.headers  # no browser prompt: Basic stays explicit
    assert requests.put(locked_ui.url("/api/settings"), json={"target_w": 1},
                        timeout=3).status_code == 401
    assert requests.post(locked_ui.url("/api/settings/reset"), timeout=3).status_code == 401
    assert requests.get(locked_ui.url("/"), timeout=3).status_code == 200
    info = requests.get(locked_ui.url("/api/session"), timeout=3).json()
    assert info == {"user": None, "via": None, "can_edit": False, "can_view": False,
                    "password_set": True, "csrf": None}


def test_basic_auth_for_scripts_needs_no_csrf(locked_ui: UISystem) -> None:
    url = locked_ui.url("/api/settings")
    state = requests.get(locked_ui.url("/api/state"), auth=locked_ui.basic, timeout=3)
    assert state.status_code == 200 and "grid_w" in state.json()
    r = requests.put(url, json={"target_w": -15}, auth=locked_ui.basic, timeout=5)
    assert r.status_code == 200, r.text
    assert "api" in r.json()["changes"][-1]["who"]
    assert locked_ui.saved_settings()["target_w"] == -15.0
    bad = requests.put(url, json={"target_w": 1e9}, auth=locked_ui.basic, timeout=5)
    assert bad.status_code == 422
    assert requests.put(url, json={"target_w": 1}, auth=("admin", "wrong"),
                        timeout=3).status_code == 401
    assert requests.put(url, json={"target_w": 1}, auth=("root", PASSWORD),
                        timeout=3).status_code == 401
    assert requests.put(url, json={"target_w": 1}, auth=locked_ui.basic,
                        headers={"Origin": "http://evil.example"}, timeout=3).status_code == 403
    assert locked_ui.saved_settings()["target_w"] == -15.0


def test_login_session_cookie_and_csrf(locked_ui: UISystem) -> None:
    s = requests.Session()
    r = s.post(locked_ui.url("/api/login"), json={"password": PASSWORD}, timeout=5)
    assert r.status_code == 200, r.text
    cookie = r.headers["Set-Cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    csrf = r.json()["csrf"]
    assert s.get(locked_ui.url("/api/state"), timeout=3).status_code == 200
    info = s.get(locked_ui.url("/api/session"), timeout=3).json()
    assert info["can_edit"] and info["user"] == "admin" and info["csrf"] == csrf
    url = locked_ui.url("/api/settings")
    assert s.put(url, json={"target_w": -7}, timeout=3).status_code == 403
    r = s.put(url, json={"target_w": -7}, headers={"X-CSRF-Token": csrf}, timeout=5)
    assert r.status_code == 200 and locked_ui.saved_settings()["target_w"] == -7.0
    token = s.cookies.get("vzdivert_session")
    assert s.post(locked_ui.url("/api/logout"), timeout=3).status_code == 403  # CSRF too
    assert s.post(locked_ui.url("/api/logout"), headers={"X-CSRF-Token": csrf},
                  timeout=3).status_code == 200
    s.cookies.set("vzdivert_session", token)
    assert s.put(url, json={"target_w": -8}, headers={"X-CSRF-Token": csrf},
                 timeout=3).status_code == 401  # the old cookie is dead server-side


def test_login_attempts_are_rate_limited(locked_ui: UISystem) -> None:
    """Last in this module: it locks 127.0.0.1 out for the rest of the window."""
    login = locked_ui.url("/api/login")
    for _ in range(5):
        assert requests.post(login, json={"password": "guess"}, timeout=5).status_code == 401
    r = requests.post(login, json={"password": "guess"}, timeout=5)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "too many" in r.json()["errors"][0]
    # locked out: even the right password, by either way, waits
    assert requests.post(login, json={"password": PASSWORD}, timeout=5).status_code == 429
    assert requests.get(locked_ui.url("/api/state"), auth=locked_ui.basic,
                        timeout=5).status_code == 429


def test_read_only_view(tmp_path: Path) -> None:
    system = UISystem(tmp_path, password=PASSWORD,
                      webui=f'password = "{PASSWORD}"\nread_only_view = true')
    try:
        system.start()
        state = requests.get(system.url("/api/state"), timeout=3)
        assert state.status_code == 200 and "duty" in state.json()
        doc = requests.get(system.url("/api/settings"), timeout=3).json()
        assert doc["can_edit"] is False and "schema" in doc
        info = requests.get(system.url("/api/session"), timeout=3).json()
        assert info["can_view"] and not info["can_edit"]
        assert requests.put(system.url("/api/settings"), json={"target_w": 5},
                            timeout=3).status_code == 401
        assert requests.post(system.url("/api/settings/reset"), timeout=3).status_code == 401
        # plain-text password in the config works too
        r = requests.put(system.url("/api/settings"), json={"target_w": 5},
                         auth=system.basic, timeout=5)
        assert r.status_code == 200 and json.loads(
            (system.state_dir / "settings.json").read_text())["settings"]["target_w"] == 5.0
    finally:
        system.kill_all()
