"""The message contract: every ZeroMQ endpoint and every message type, in one place.

Streams are PUB/SUB carrying latest-value state (a late subscriber loses nothing that the
next message does not repeat); commands are REQ/REP. Messages are msgpack maps with a type
``t`` and a schema version ``v``; a message of another version is rejected, not guessed at.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import msgpack
import zmq

VERSION = 1

# name -> (socket type of the side that binds, who binds, what it carries)
ENDPOINTS: dict[str, tuple[int, str, str]] = {
    "readings": (zmq.PUB, "ingest", "reading: the newest grid power per accepted write"),
    "ingest_stats": (zmq.PUB, "ingest", "ingest_stats: request/line/reject counters, 1 Hz"),
    "state": (zmq.PUB, "rtworker", "state: controller state per sample, and a heartbeat"),
    "health": (zmq.PUB, "supervisor", "health: per-process state and current settings, 1 Hz"),
    "supervisor": (zmq.REP, "supervisor", "commands: status, get/set/reset settings"),
    "rtworker": (zmq.REP, "rtworker", "commands: ping, status, apply_settings, manual, "
                 "hold, tank"),
    "hotwater_state": (zmq.PUB, "hotwater", "hotwater: mode, tank temperature, guarantee, 1 Hz"),
    "hotwater": (zmq.REP, "hotwater", "commands: status, boost, pause"),
}

# message type -> fields every message of that type carries (more may follow)
MESSAGES: dict[str, tuple[str, ...]] = {
    "reading": ("grid_w", "ts", "rx"),  # ts: meter time, rx: arrival time (epoch seconds)
    "ingest_stats": ("requests", "lines", "points", "rejects", "last_reading_age_s"),
    "state": ("ts", "seq", "grid_w", "target_w", "duty", "power_w", "energy_wh", "stale"),
    "health": ("ts", "processes", "settings"),
    "hotwater": ("ts", "mode", "mode_until", "tank_c", "tank_age_s", "guarantee"),
    "request": ("cmd", "args"),
    "reply": ("ok",),  # plus "result" when ok, "error" (and maybe "errors") when not
}


class MessageError(ValueError):
    """A message that does not follow this contract."""


def make_runtime_dir(base: str | None = None) -> Path:
    """A private (0700) directory for the ipc sockets: $RUNTIME_DIRECTORY under systemd."""
    base = base or os.environ.get("RUNTIME_DIRECTORY")
    if base:
        path = Path(base)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        return path
    return Path(tempfile.mkdtemp(prefix="vzdivert-"))


RUNTIME_POINTER = "runtime-dir"  # in [state] dir: where a running system's sockets are


def publish_runtime_dir(state_dir: str | Path, runtime_dir: Path) -> None:
    """Let command-line tools (calibrate, safe-off) find the running system."""
    (Path(state_dir) / RUNTIME_POINTER).write_text(str(runtime_dir))


def find_runtime_dir(state_dir: str | Path) -> Path | None:
    try:
        path = Path((Path(state_dir) / RUNTIME_POINTER).read_text().strip())
    except FileNotFoundError:
        return None
    return path if (path / "supervisor.sock").exists() else None


def address(runtime_dir: str | Path, name: str) -> str:
    if name not in ENDPOINTS:
        raise KeyError(f"unknown endpoint {name!r}")
    return f"ipc://{Path(runtime_dir) / name}.sock"


def encode(mtype: str, **fields: Any) -> bytes:
    missing = [f for f in MESSAGES[mtype] if f not in fields]
    if missing:
        raise MessageError(f"{mtype}: missing {', '.join(missing)}")
    fields["t"] = mtype
    fields["v"] = VERSION
    return msgpack.packb(fields, use_bin_type=True)


def decode(data: bytes, expect: str | None = None) -> dict[str, Any]:
    try:
        msg = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise MessageError(f"not msgpack: {exc}") from exc
    if not isinstance(msg, dict) or msg.get("v") != VERSION or msg.get("t") not in MESSAGES:
        raise MessageError(f"not a v{VERSION} message: {str(msg)[:80]}")
    if expect is not None and msg["t"] != expect:
        raise MessageError(f"expected {expect}, got {msg['t']}")
    return msg


def _socket(ctx: zmq.Context, kind: int) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    return sock


def bind(ctx: zmq.Context, runtime_dir: str | Path, name: str) -> zmq.Socket:
    """Bind the owning side of an endpoint. A stale socket file from a dead owner is removed
    first; a live second owner is a bug that ipc:// would hide, so the owner is unique by
    construction (only the supervisor's children bind, one each)."""
    kind = ENDPOINTS[name][0]
    sock = _socket(ctx, kind)
    if kind == zmq.PUB:
        sock.setsockopt(zmq.SNDHWM, 1000)
    path = Path(runtime_dir) / f"{name}.sock"
    path.unlink(missing_ok=True)
    sock.bind(address(runtime_dir, name))
    return sock


def subscribe(ctx: zmq.Context, runtime_dir: str | Path, name: str,
              conflate: bool = False) -> zmq.Socket:
    """SUB to a stream. ``conflate`` keeps only the newest message (one type per endpoint)."""
    if ENDPOINTS[name][0] != zmq.PUB:
        raise KeyError(f"{name} is not a stream")
    sock = _socket(ctx, zmq.SUB)
    if conflate:
        sock.setsockopt(zmq.CONFLATE, 1)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(address(runtime_dir, name))
    return sock


class CommandError(RuntimeError):
    """A command failed: the peer said no (``errors`` lists why) or did not answer."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or [message]


class Requester:
    """REQ client that survives a dead peer: after a timeout the lockstep REQ socket is
    closed and rebuilt (the 'lazy pirate' pattern), so the next call works."""

    def __init__(self, ctx: zmq.Context, runtime_dir: str | Path, name: str,
                 timeout_s: float = 2.0):
        if ENDPOINTS[name][0] != zmq.REP:
            raise KeyError(f"{name} is not a command endpoint")
        self.ctx, self.addr = ctx, address(runtime_dir, name)
        self.timeout_ms = int(timeout_s * 1000)
        self.sock: zmq.Socket | None = None

    def call(self, cmd: str, **args: Any) -> Any:
        if self.sock is None:
            self.sock = _socket(self.ctx, zmq.REQ)
            self.sock.connect(self.addr)
        self.sock.send(encode("request", cmd=cmd, args=args))
        if not self.sock.poll(self.timeout_ms, zmq.POLLIN):
            self.close()
            raise CommandError(f"{cmd}: no answer from {self.addr} "
                               f"within {self.timeout_ms} ms")
        reply = decode(self.sock.recv(), expect="reply")
        if not reply["ok"]:
            raise CommandError(reply.get("error", "failed"), reply.get("errors"))
        return reply.get("result")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None


def reply_ok(result: Any = None) -> bytes:
    return encode("reply", ok=True, result=result)


def reply_error(error: str, errors: list[str] | None = None) -> bytes:
    return encode("reply", ok=False, error=error, errors=errors or [error])


def serve_one(sock: zmq.Socket, handlers: dict[str, Any]) -> None:
    """Answer one pending request on a REP socket from a command table (name -> callable
    taking the args as keywords). Every request gets exactly one reply, whatever happens."""
    data = sock.recv()
    try:
        msg = decode(data, expect="request")
        handler = handlers.get(msg["cmd"])
        if handler is None:
            sock.send(reply_error(f"unknown command {msg['cmd']!r} "
                                  f"(known: {', '.join(sorted(handlers))})"))
            return
        sock.send(reply_ok(handler(**msg["args"])))
    except CommandError as exc:
        sock.send(reply_error(str(exc), exc.errors))
    except Exception as exc:  # a bad command must not kill the process that serves it
        sock.send(reply_error(f"{type(exc).__name__}: {exc}"))
