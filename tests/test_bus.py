"""The message contract over real ZeroMQ sockets."""

from __future__ import annotations

import threading
from pathlib import Path

import msgpack
import pytest
import zmq

from vzdivert import bus


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(0)


def test_encode_decode_roundtrip_and_version() -> None:
    data = bus.encode("reading", grid_w=-500.0, ts=1.0, rx=2.0)
    msg = bus.decode(data, expect="reading")
    assert msg["grid_w"] == -500.0 and msg["t"] == "reading" and msg["v"] == bus.VERSION
    with pytest.raises(bus.MessageError, match="missing"):
        bus.encode("reading", grid_w=1.0)
    other = msgpack.packb({"t": "reading", "v": bus.VERSION + 1, "grid_w": 1})
    with pytest.raises(bus.MessageError, match="not a v1 message"):
        bus.decode(other)
    with pytest.raises(bus.MessageError, match="expected state"):
        bus.decode(data, expect="state")
    with pytest.raises(bus.MessageError):
        bus.decode(b"\xc1garbage")


def test_runtime_dir_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "rt"))
    path = bus.make_runtime_dir()
    assert path.stat().st_mode & 0o777 == 0o700
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    path = bus.make_runtime_dir()
    assert path.stat().st_mode & 0o777 == 0o700
    path.rmdir()


def test_pub_sub_conflate_keeps_newest(ctx: zmq.Context, tmp_path: Path) -> None:
    pub = bus.bind(ctx, tmp_path, "readings")
    sub = bus.subscribe(ctx, tmp_path, "readings", conflate=True)
    # slow joiner: publish until the subscription is through, then a burst
    for i in range(1000):
        pub.send(bus.encode("reading", grid_w=float(i), ts=0.0, rx=0.0))
        if sub.poll(5):
            break
    for i in range(10):
        pub.send(bus.encode("reading", grid_w=1000.0 + i, ts=0.0, rx=0.0))
    deadline = 2000
    last = None
    while sub.poll(deadline):
        last = bus.decode(sub.recv())["grid_w"]
        deadline = 50
    assert last == 1009.0


def test_requester_survives_dead_peer_and_errors(ctx: zmq.Context, tmp_path: Path) -> None:
    req = bus.Requester(ctx, tmp_path, "supervisor", timeout_s=0.2)
    with pytest.raises(bus.CommandError, match="no answer"):
        req.call("status")  # nobody bound: times out, socket rebuilt
    rep = bus.bind(ctx, tmp_path, "supervisor")

    def fail(**_: object) -> None:
        raise bus.CommandError("invalid settings", ["target_w: expected a number"])

    handlers = {"status": lambda: {"ok": 1}, "set_settings": fail}
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if rep.poll(20):
                bus.serve_one(rep, handlers)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert req.call("status") == {"ok": 1}  # the rebuilt socket works: no lockstep hang
        with pytest.raises(bus.CommandError) as info:
            req.call("set_settings")
        assert info.value.errors == ["target_w: expected a number"]
        with pytest.raises(bus.CommandError, match="unknown command 'nope'"):
            req.call("nope")
    finally:
        stop.set()
        thread.join()
        req.close()


def test_every_command_is_listed_in_endpoints(ctx: zmq.Context, tmp_path: Path) -> None:
    """bus.ENDPOINTS names every command of every REP endpoint: compared with the handler
    tables the processes really serve (a command added there and not here fails)."""
    from vzdivert import config as configmod
    from vzdivert.rtworker.loop import Worker
    from vzdivert.supervisor.commands import HANDLERS

    class Idle:  # the worker's output, never written here
        def set(self, duty: float) -> None: ...
        def off(self) -> None: ...
        def close(self) -> None: ...
        def describe(self) -> str:
            return "idle"

    cfg = configmod.validate({"output": {"driver": "sim"}, "state": {"dir": str(tmp_path)}})
    worker = Worker(cfg, tmp_path, Idle(), ctx)
    served = {"supervisor": set(HANDLERS), "rtworker": set(worker.handlers)}
    listed = {name: set(e.commands) for name, e in bus.ENDPOINTS.items() if e.kind == zmq.REP}
    assert listed == served
    assert all(not e.commands for e in bus.ENDPOINTS.values() if e.kind != zmq.REP)


def test_errors_cross_as_data(ctx: zmq.Context, tmp_path: Path) -> None:
    """A refusal arrives with its code and {key: problem}, whatever the sentences say."""
    rep = bus.bind(ctx, tmp_path, "supervisor")
    req = bus.Requester(ctx, tmp_path, "supervisor", timeout_s=2.0)
    problems = {"target_w": "expected a number", "bogus": "not a setting"}

    def invalid(**_: object) -> None:
        raise bus.CommandError.invalid(problems)

    def refused(**_: object) -> None:
        raise bus.CommandError("not now")

    def broken(**_: object) -> None:
        raise ZeroDivisionError("oops")

    handlers = {"set_settings": invalid, "reset_settings": refused, "status": broken}
    thread = threading.Thread(target=lambda: [bus.serve_one(rep, handlers) for _ in range(4)])
    thread.start()
    try:
        with pytest.raises(bus.CommandError) as info:
            req.call("set_settings")
        assert info.value.code == bus.INVALID and info.value.problems == problems
        assert info.value.errors == ["target_w: expected a number", "bogus: not a setting"]
        with pytest.raises(bus.CommandError) as info:
            req.call("reset_settings")
        assert (info.value.code, info.value.problems, info.value.errors) == (
            bus.REFUSED, {}, ["not now"])
        with pytest.raises(bus.CommandError) as info:
            req.call("status")
        assert info.value.code == bus.REFUSED and "ZeroDivisionError: oops" in str(info.value)
        with pytest.raises(bus.CommandError) as info:
            req.call("nope")
        assert info.value.code == bus.REFUSED
    finally:
        thread.join(5)
        req.close()
    req = bus.Requester(ctx, tmp_path / "nobody", "supervisor", timeout_s=0.1)
    with pytest.raises(bus.CommandError) as info:
        req.call("status")
    assert info.value.code == bus.NO_ANSWER
    req.close()
