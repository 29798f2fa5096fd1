"""sd_notify on a real unix datagram socket: the Notifier alone, then the whole system as
systemd would see it — READY=1 once the loop runs, WATCHDOG=1 while healthy, no pings while
the worker is down, pings again after it recovered, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from syshelp import REPO, free_port, wait_for, write_config

from vzdivert import bus
from vzdivert.supervisor.sdnotify import Notifier


class NotifySocket:
    """What systemd listens on: a bound datagram socket collecting every message."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        """Every datagram that has arrived so far (non-blocking), also kept in messages."""
        new = []
        while True:
            try:
                data = self.sock.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            new.append(data.decode())
        self.messages.extend(new)
        return new

    def wait(self, message: str, timeout_s: float, count: int = 1) -> None:
        """Until ``message`` has arrived ``count`` more times from now."""
        seen = 0

        def arrived() -> bool:
            nonlocal seen
            seen += sum(m == message for m in self.drain())
            return seen >= count

        wait_for(arrived, timeout_s, what=f"{count} x {message!r} on NOTIFY_SOCKET "
                                          f"(got {self.messages[-10:]})")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path):
    ns = NotifySocket(str(tmp_path / "notify.sock"))
    yield ns
    ns.close()


# -- the Notifier alone --------------------------------------------------------------------
def test_notifier_sends_each_state_as_one_datagram(notify_socket: NotifySocket,
                                                   tmp_path: Path) -> None:
    notify = Notifier(str(tmp_path / "notify.sock"))
    notify("READY=1")
    notify("WATCHDOG=1")
    notify("STATUS=running\nWATCHDOG=1")
    notify_socket.wait("STATUS=running\nWATCHDOG=1", 5)
    assert notify_socket.messages == ["READY=1", "WATCHDOG=1", "STATUS=running\nWATCHDOG=1"]


def test_notifier_reads_notify_socket_from_the_environment(
        notify_socket: NotifySocket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    Notifier()("READY=1")
    notify_socket.wait("READY=1", 5)


def test_notifier_abstract_socket() -> None:
    name = f"vzdivert-test-{os.getpid()}-{time.monotonic_ns()}"
    ns = NotifySocket("\0" + name)
    try:
        Notifier("@" + name)("WATCHDOG=1")
        ns.wait("WATCHDOG=1", 5)
    finally:
        ns.close()


def test_notifier_is_a_no_op_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notify = Notifier()
    assert notify.sock is None
    notify("READY=1")  # nothing to send to, nothing raised


def test_notifier_survives_a_vanished_listener(tmp_path: Path) -> None:
    notify = Notifier(str(tmp_path / "gone.sock"))
    notify("WATCHDOG=1")  # no listener: systemd gone; the supervisor must carry on


# -- the whole system ----------------------------------------------------------------------
@pytest.fixture
def system(tmp_path: Path, notify_socket: NotifySocket):
    """`vzdivert run` with a sim output, NOTIFY_SOCKET and a known runtime directory (as
    under systemd), in its own process group; killed whatever happens."""
    runtime_dir = tmp_path / "run"
    config = write_config(tmp_path / "vzdivert.toml", tmp_path / "state", free_port(),
                          free_port(), 'driver = "sim"',
                          "\n[rtworker]\npriority = 0\nlock_memory = false\n")
    log = open(tmp_path / "system.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vzdivert.cli", "run", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
        env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
             "RUNTIME_DIRECTORY": str(runtime_dir), "VZDIVERT_LOG": "DEBUG"})
    ctx = zmq.Context()
    try:
        yield proc, config, runtime_dir, ctx
    finally:
        ctx.destroy(0)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        log.close()
        if os.environ.get("VZDIVERT_TEST_LOGS"):
            print((tmp_path / "system.log").read_text(errors="replace")[-6000:])


def health_messages(sub: zmq.Socket, count: int, timeout_s: float) -> list[dict]:
    out: list[dict] = []

    def got() -> bool:
        while sub.poll(0):
            out.append(bus.decode(sub.recv(), expect="health"))
        return len(out) >= count

    wait_for(got, timeout_s, what=f"{count} health messages")
    return out


def test_ready_then_watchdog_pings_stop_while_the_worker_is_down(system, notify_socket):
    proc, config, runtime_dir, ctx = system
    notify_socket.wait("READY=1", 60)
    notify_socket.wait("WATCHDOG=1", 10, count=2)
    assert notify_socket.messages.count("READY=1") == 1

    health = bus.subscribe(ctx, runtime_dir, "health")
    health_messages(health, 1, 10)
    status = bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=5)
    worker_pid = status.call("status")["processes"]["rtworker"]["pid"]

    # hang the worker, and make its restarts fail (bad config) so it stays down
    good = config.read_text()
    config.write_text("this is [not toml\n")
    os.kill(worker_pid, signal.SIGSTOP)

    def worker_gone() -> bool:
        worker = health_messages(health, 1, 10)[-1]["processes"]["rtworker"]
        return worker["pid"] != worker_pid
    wait_for(worker_gone, 30, what="the supervisor killing the hung worker")
    notify_socket.drain()  # pings sent before the kill
    # health messages come every second, from the same loop that pings while healthy:
    # three of them without a ping means the pings stopped
    health_messages(health, 3, 15)
    assert "WATCHDOG=1" not in notify_socket.drain(), "pinged with the worker down"
    assert proc.poll() is None

    config.write_text(good)  # the next restart succeeds (after the supervisor's backoff)
    notify_socket.wait("WATCHDOG=1", 60, count=2)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    notify_socket.drain()
    assert "STOPPING=1" in notify_socket.messages
