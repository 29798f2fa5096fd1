"""The message contract: every ZeroMQ endpoint and every message type, in one place.

Streams are PUB/SUB carrying latest-value state (a late subscriber loses nothing that the
next message does not repeat); commands are REQ/REP. Messages are msgpack maps with a type
``t`` and a schema version ``v``; a message of another version is rejected, not guessed at.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import msgpack
import zmq

VERSION = 1


class Endpoint(NamedTuple):
    kind: int  # socket type of the side that binds
    owner: str  # the process that binds it
    carries: str
    commands: tuple[str, ...] = ()  # REP: every command it answers (tests/test_bus.py checks)


ENDPOINTS: dict[str, Endpoint] = {
    "readings": Endpoint(zmq.PUB, "ingest", "reading: the newest grid power per accepted write"),
    "ingest_stats": Endpoint(zmq.PUB, "ingest",
                             "ingest_stats: request/line/reject counters, 1 Hz"),
    "state": Endpoint(zmq.PUB, "rtworker", "state: controller state per sample, and a heartbeat"),
    "health": Endpoint(zmq.PUB, "supervisor",
                       "health: per-process state and current settings, 1 Hz"),
    "supervisor": Endpoint(zmq.REP, "supervisor", "commands: status and the live settings; "
                           "alive is the web UI's and the recorder's heartbeat",
                           ("status", "get_settings", "set_settings", "reset_settings",
                            "import_settings", "alive")),
    "rtworker": Endpoint(zmq.REP, "rtworker", "commands: the worker's status, settings, "
                         "the manual hold (calibration) and the hot-water holds",
                         ("ping", "status", "apply_settings", "manual", "hold", "tank")),
    "hotwater_state": Endpoint(zmq.PUB, "hotwater",
                               "hotwater: mode, tank temperature, guarantee, 1 Hz"),
    "hotwater": Endpoint(zmq.REP, "hotwater", "commands: boost and pause with a timeout, "
                         "the hot-water status", ("status", "boost", "pause")),
}

# message type -> fields every message of that type carries (more may follow)
MESSAGES: dict[str, tuple[str, ...]] = {
    "reading": ("grid_w", "ts", "rx"),  # ts: meter time, rx: arrival time (epoch seconds)
    "ingest_stats": ("requests", "lines", "points", "rejects", "last_reading_age_s"),
    "state": ("ts", "seq", "grid_w", "target_w", "duty", "power_w", "energy_wh", "stale"),
    "health": ("ts", "processes", "settings"),
    "hotwater_state": ("ts", "mode", "mode_until", "tank_c", "tank_age_s", "guarantee"),
    "request": ("cmd", "args"),
    # plus "result" when ok; when not: "error" (a sentence), "code" (ERROR_CODES), "errors"
    # (one sentence per problem) and "problems" ({key: problem} when the code is invalid)
    "reply": ("ok",),
}

# the state's `mode`: what decides the load now (the worker's; the web UI may show a boost or
# pause asked for and not yet applied)
STATE_MODES = ("auto", "boost", "pause", "topup", "manual", "stale")

# why a command failed: a value was wrong (see the problems), the peer said no, or nobody
# answered in time
INVALID, REFUSED, NO_ANSWER = "invalid", "refused", "no_answer"
ERROR_CODES = (INVALID, REFUSED, NO_ANSWER)


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


def unsendable(values: dict[str, Any]) -> dict[str, str]:
    """{key: problem} for values a message cannot carry (msgpack: integers beyond 64 bits,
    text with lone surrogates), so callers refuse them as bad input instead of failing."""
    problems = {}
    for key, value in values.items():
        try:
            msgpack.packb({key: value}, use_bin_type=True)
        except OverflowError:
            problems[key] = "number out of range"
        except (UnicodeEncodeError, ValueError, TypeError):
            problems[key] = "not a value a setting can hold (invalid text or type)"
    return problems


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
    kind = ENDPOINTS[name].kind
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
    if ENDPOINTS[name].kind != zmq.PUB:
        raise KeyError(f"{name} is not a stream")
    sock = _socket(ctx, zmq.SUB)
    if conflate:
        sock.setsockopt(zmq.CONFLATE, 1)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(address(runtime_dir, name))
    return sock


class CommandError(RuntimeError):
    """A command failed, as data: ``code`` says how (one of ERROR_CODES); ``problems`` maps
    each bad key to what is wrong with it (code invalid); ``errors`` says it all in
    sentences, for people and logs. Nobody parses the sentences back."""

    def __init__(self, message: str, errors: list[str] | None = None, *,
                 code: str = REFUSED, problems: dict[str, str] | None = None):
        super().__init__(message)
        if code not in ERROR_CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.problems = dict(problems or {})
        self.errors = errors or [f"{k}: {p}" for k, p in self.problems.items()] or [message]

    @classmethod
    def invalid(cls, problems: dict[str, str],
                message: str = "invalid settings") -> CommandError:
        return cls(message, code=INVALID, problems=problems)


class Requester:
    """REQ client that survives a dead peer: after a timeout the lockstep REQ socket is
    closed and rebuilt (the 'lazy pirate' pattern), so the next call works."""

    def __init__(self, ctx: zmq.Context, runtime_dir: str | Path, name: str,
                 timeout_s: float = 2.0):
        if ENDPOINTS[name].kind != zmq.REP:
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
                               f"within {self.timeout_ms} ms", code=NO_ANSWER)
        reply = decode(self.sock.recv(), expect="reply")
        if not reply["ok"]:
            code = reply.get("code", REFUSED)
            raise CommandError(reply.get("error", "failed"), reply.get("errors"),
                               code=code if code in ERROR_CODES else REFUSED,
                               problems=reply.get("problems"))
        return reply.get("result")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None


def reply_ok(result: Any = None) -> bytes:
    return encode("reply", ok=True, result=result)


def reply_error(error: CommandError) -> bytes:
    return encode("reply", ok=False, error=str(error), code=error.code, errors=error.errors,
                  problems=error.problems)


def serve_one(sock: zmq.Socket, handlers: dict[str, Any], *owner: Any) -> None:
    """Answer one pending request on a REP socket from a command table: name -> callable
    taking ``owner`` (if given: the object the commands act on, passed per call as circus
    does) and then the args as keywords. Every request gets exactly one reply."""
    data = sock.recv()
    try:
        msg = decode(data, expect="request")
        handler = handlers.get(msg["cmd"])
        if handler is None:
            raise CommandError(f"unknown command {msg['cmd']!r} "
                               f"(known: {', '.join(sorted(handlers))})")
        sock.send(reply_ok(handler(*owner, **msg["args"])))
    except CommandError as exc:
        sock.send(reply_error(exc))
    except Exception as exc:  # a bad command must not kill the process that serves it
        sock.send(reply_error(CommandError(f"{type(exc).__name__}: {exc}")))
