"""The web UI app in-process under real waitress, fed by hand: the live stream's samples and
resume, and what the API says when the supervisor does not answer."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import waitress
import zmq

from vzdivert import bus
from vzdivert import config as configmod
from vzdivert.webui.app import SupervisorClient, make_app
from vzdivert.webui.feed import Feed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Feed]]:
    """The app on a free port; the supervisor endpoint has nobody behind it."""
    ctx = zmq.Context()
    cfg = configmod.validate({"webui": {"threads": 4}})
    feed = Feed(ctx, tmp_path)  # not started: the tests feed it
    supervisor = SupervisorClient(bus.Requester(ctx, tmp_path, "supervisor", timeout_s=0.3))
    server = waitress.create_server(make_app(cfg, feed, supervisor), host="127.0.0.1", port=0,
                                    threads=4)

    def run() -> None:
        with contextlib.suppress(OSError, ValueError):
            server.run()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", feed
    finally:
        feed.stop()
        server.close()
        thread.join(5)
        supervisor.requester.close()
        ctx.destroy(0)


def state_msg(ts: float, grid_w: float) -> dict:
    return {"t": "state", "v": 1, "ts": ts, "seq": 1, "grid_w": grid_w, "target_w": 0.0,
            "duty": 0.5, "power_w": 1000.0, "energy_wh": 10.0, "energy_today_wh": 1.0,
            "stale": False, "saturated": False, "error": ""}


def read_events(base: str, headers: dict[str, str], want: int) -> list[tuple[str, str, dict]]:
    """(id, event, data) of the first ``want`` events of /api/events (HTTP/1.0: no chunks)."""
    host, port = base.rsplit("/", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"GET /api/events HTTP/1.0\r\nHost: {host}:{port}\r\n{extra}\r\n".encode())
    buf, events = b"", []
    try:
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.0 200"), head
        while len(events) < want:
            if b"\n\n" not in buf:
                chunk = sock.recv(65536)
                assert chunk, buf[-500:]
                buf += chunk
                continue
            raw, buf = buf.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in raw.decode().splitlines()
                          if ": " in line)
            if "event" in fields:
                events.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
    finally:
        sock.close()
    return events


def test_stream_sends_state_and_new_samples_and_resumes(served: tuple[str, Feed]) -> None:
    base, feed = served
    t0 = time.time() - 10
    for i in range(5):
        feed.accept("state", state_msg(t0 + i, -100.0 * i))  # closes 1 s buckets 0..3
    events = read_events(base, {"Last-Event-ID": "1"}, want=3)
    kinds = [e[1] for e in events]
    assert kinds == ["state", "sample", "sample"]
    assert events[0][2]["grid_w"] == -400.0 and events[0][2]["badges"] == ["exporting"]
    assert [e[0] for e in events[1:]] == ["2", "3"]  # resumes after the last id it saw
    assert events[2][2]["grid_w"] == -300.0 and events[2][2]["duty"] == 0.5
    history = requests.get(base + "/api/history?minutes=15", timeout=3).json()
    assert history["grid_w"] == [0.0, -100.0, -200.0, -300.0] and history["last_id"] == 3


def test_stream_without_id_starts_at_now_and_follows(served: tuple[str, Feed]) -> None:
    base, feed = served
    t0 = time.time() - 10
    for i in range(3):
        feed.accept("state", state_msg(t0 + i, 1.0))
    result: list = []
    reader = threading.Thread(target=lambda: result.extend(read_events(base, {}, want=3)))
    reader.start()
    deadline = time.monotonic() + 10
    i = 3
    while reader.is_alive() and time.monotonic() < deadline:
        feed.accept("state", state_msg(t0 + i, 2.0))  # new buckets while it listens
        i += 1
        reader.join(0.05)
    assert not reader.is_alive()
    samples = [e for e in result if e[1] == "sample"]
    assert samples and all(int(e[0]) >= 2 for e in samples)  # nothing from before it came


def test_silent_supervisor_gives_503_not_a_hang(served: tuple[str, Feed]) -> None:
    base, _ = served
    r = requests.get(base + "/api/settings", timeout=5)
    assert r.status_code == 503 and "supervisor" in r.json()["errors"][0]
    s = requests.Session()
    csrf = s.get(base + "/api/session", timeout=3).json()["csrf"]
    r = s.put(base + "/api/settings", json={"target_w": 1}, headers={"X-CSRF-Token": csrf},
              timeout=5)
    assert r.status_code == 503
    assert requests.get(base + "/api/state", timeout=3).status_code == 200  # still serving


def test_state_before_any_message_and_metrics_hook(served: tuple[str, Feed]) -> None:
    base, feed = served
    state = requests.get(base + "/api/state", timeout=3).json()
    assert state["stale"] and state["grid_w"] is None and state["target_w"] == 0.0
    feed.accept("health", {"t": "health", "v": 1, "ts": 1.0, "settings": {"target_w": -5.0},
                           "processes": {"rtworker": {"alive": True, "pid": 1, "restarts": 2,
                                                      "last_exit": "killed by SIGKILL"}}})
    state = requests.get(base + "/api/state", timeout=3).json()
    assert state["processes"]["rtworker"]["restarts"] == 2 and state["target_w"] == -5.0
    assert feed.health["processes"]["rtworker"]["alive"] is True  # what /metrics reads
    r = requests.get(base + "/metrics", timeout=3)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
