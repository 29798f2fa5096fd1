"""Test helpers for end-to-end tests: free ports, a whole `vzdivert run` in its own process
group, vzlogger-shaped writes, and polling with deadlines (never fixed sleeps)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import zmq

from vzdivert import bus

REPO = Path(__file__).resolve().parent.parent
CHILDREN = {"rtworker", "ingest", "webui"}


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """SIGSTOP a process (hung, but not dead) for the body; SIGCONT it after, if it lives."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def worker_pids(config: Path) -> set[int]:
    """Live rtworker processes of this system (from /proc, independent of the system)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if b"vzdivert.rtworker" in cmd and str(config).encode() in cmd and ") Z" not in stat:
            pids.add(int(entry))
    return pids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02,
             what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the system may still be starting
            last_exc = exc
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


def vzlogger_post(port: int, body: str | bytes, db: str = "vzlogger",
                  conn: http.client.HTTPConnection | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """POST exactly as vzlogger's influxdb api does (curl defaults: form content type)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    data = body.encode() if isinstance(body, str) else body
    conn.request("POST", f"/write?db={db}&precision=ms", body=data,
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "*/*",
                          **(headers or {})})
    resp = conn.getresponse()
    result = resp.status, resp.read()
    if own:
        conn.close()
    return result


def answer_before_body(port: int, path: str, body_bytes: int, head_extra: str = "") -> bytes:
    """The front end's answer to a request it refuses on its head, read to the end before
    the body is sent; then the body goes out whole, as http.client and curl send it without
    reading. If the front end closed instead of draining, that raises a connection reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                  f"{head_extra}Content-Length: {body_bytes}\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):  # to the front end's FIN: it has answered and shut
            answer += chunk
        s.sendall(b"x" * body_bytes)  # to a closed socket: reset, to a draining one: read
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b""  # a reset shows here if sendall still got through
    return answer


def reading(grid_w: float, measurement: str = "leistung", ts_ms: int | None = None) -> str:
    ts_ms = int(time.time() * 1000) if ts_ms is None else ts_ms
    return f"{measurement} value={grid_w:.6f} {ts_ms}\n"


def write_config(path: Path, state_dir: Path, ingest_port: int, ui_port: int,
                 output: str, extra: str = "") -> Path:
    path.write_text(f"""
[ingest]
listen = "127.0.0.1:{ingest_port}"

[output]
{output}

[watchdog]
stale_after_s = 2

[webui]
listen = "127.0.0.1:{ui_port}"

[state]
dir = "{state_dir}"
{extra}
""")
    return path


class System:
    """A running `vzdivert run` (supervisor + children) in its own process group."""

    def __init__(self, tmp: Path, output: str, extra: str = ""):
        self.tmp = tmp
        self.ingest_port, self.ui_port = free_port(), free_port()
        self.state_dir = tmp / "state"
        self.config = write_config(tmp / "vzdivert.toml", self.state_dir, self.ingest_port,
                                   self.ui_port, output, extra)
        self.log_path = tmp / "system.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30.0) -> System:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vzdivert.cli", "run", "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
            env={**os.environ, "VZDIVERT_LOG": "DEBUG"})
        try:
            wait_for(lambda: self.all_alive(), timeout_s, what="all processes alive")
        except BaseException:
            self.kill_all()  # a fixture that fails in set-up never reaches its finaliser
            raise
        return self

    def all_alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"supervisor exited {self.proc.returncode}:\n{self.logs()}")
        procs = self.state()["processes"]
        return set(procs) >= CHILDREN and all(p["alive"] for p in procs.values())

    def state(self) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.ui_port, timeout=3)
        try:
            conn.request("GET", "/api/state")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise AssertionError(f"/api/state -> {resp.status}: {body[:200]!r}")
            return json.loads(body)
        finally:
            conn.close()

    def post(self, grid_w: float, ts_ms: int | None = None) -> int:
        status, _ = vzlogger_post(self.ingest_port, reading(grid_w, ts_ms=ts_ms))
        return status

    def pid(self, name: str) -> int:
        return self.state()["processes"][name]["pid"]

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def terminate(self, timeout_s: float = 5.0) -> int:
        """SIGTERM the supervisor; returns its exit code (fails if it takes too long)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill_all(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(5)
        self.log.close()


class IngestProcess:
    """The ingest process alone, with a SUB on its readings (for ingest tests and bench)."""

    def __init__(self, tmp: Path, extra: str = "", max_body_bytes: int = 4096):
        self.port = free_port()
        self.runtime = tmp / "rt"
        self.runtime.mkdir(mode=0o700)
        cfg = tmp / "ingest.toml"
        cfg.write_text(f'[ingest]\nlisten = "127.0.0.1:{self.port}"\n'
                       f'max_body_bytes = {max_body_bytes}\n'
                       f'{extra}\n[state]\ndir = "{tmp}"\n')
        log_path = getattr(self, "log_path", None)  # a subclass may capture the log
        self.log = open(log_path, "ab") if log_path else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vzdivert.ingest", "--config", str(cfg), "--runtime-dir",
             str(self.runtime)], cwd=REPO, start_new_session=True, stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None)
        self.ctx = zmq.Context()
        self.sub = bus.subscribe(self.ctx, self.runtime, "readings")
        try:
            wait_for(self.ping, 20, what="ingest answering /ping")
            wait_for(self.subscribed, 10, what="subscription through (slow joiner)")
        except BaseException:
            self.close()
            raise

    def subscribed(self) -> bool:
        """Post until a reading arrives, then drain: PUB drops until SUB has joined."""
        headers = {"Authorization": "Token s3cret", "Content-Type": "text/plain"}
        self.request("POST", "/write?db=vzlogger&precision=ms&u=vz&p=pw",
                     f"leistung value=0 {int(time.time() * 1000)}\n".encode(), headers)
        if not self.sub.poll(50):
            return False
        while self.sub.poll(200):
            self.sub.recv()
        return True

    def ping(self) -> bool:
        return self.request("GET", "/ping")[0] == 204

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def write(self, body: str | bytes, db: str = "vzlogger", headers: dict | None = None,
              path: str = "/write") -> tuple[int, dict, bytes]:
        data = body.encode() if isinstance(body, str) else body
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        query = f"db={db}" if path == "/write" else f"bucket={db}&org=home"
        query += "&precision=ms"
        return self.request("POST", f"{path}?{query}", data, hdrs)

    def next_reading(self, timeout_s: float = 5.0) -> dict:
        assert self.sub.poll(int(timeout_s * 1000)), "no reading published"
        return bus.decode(self.sub.recv(), expect="reading")

    def no_reading(self, within_s: float = 0.3) -> bool:
        return not self.sub.poll(int(within_s * 1000))

    def log_text(self) -> str:
        return Path(self.log_path).read_text(errors="replace") if self.log else ""

    def close(self) -> None:
        if self.proc.poll() is None:  # a test may have stopped it already
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.ctx.destroy(0)
        if self.log:
            self.log.close()
