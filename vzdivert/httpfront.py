"""A small HTTP/1.1 front end (asyncio + h11) in front of a WSGI app, for listeners a
hostile LAN can reach. What waitress lacks: a deadline for each request's head and body
(slowloris), a per-address and a total connection cap that evicts idle connections instead of
refusing good clients, keep-alive after bodiless answers (vzlogger reuses its connection),
bodies read as they arrive under a byte budget (memory) and handed to the app one large body
at a time, and JSON errors. The app runs in a thread pool."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import h11

log = logging.getLogger("vzdivert.http")

READ_BYTES = 65536  # per read; a connection buffers at most twice this beyond its body
REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           503: "Service Unavailable"}


@dataclass(frozen=True)
class Limits:
    """Per-listener limits; defaults fit the ingest (one logger, a few clients)."""
    max_connections: int = 512  # all addresses; the oldest idle connection makes room
    per_client: int = 16  # open connections from one address
    header_timeout_s: float = 10.0  # a request's head must arrive within this
    body_timeout_s: float = 30.0  # and its body within this (vzlogger's own timeout is 30 s)
    idle_timeout_s: float = 75.0  # keep-alive between requests
    max_header_bytes: int = 16384
    max_body_bytes: int = 1_000_000
    large_body_bytes: int = 65536  # complete bodies above this go to the app one at a time
    body_budget: int = 16 << 20  # bytes of bodies held at once, all addresses ...
    body_budget_per_client: int = 4 << 20  # ... and from one address (at least max_body_bytes)
    linger_s: float = 5.0  # after an answer on the head, read and drop the body until the
    linger_bytes: int = 16 << 20  # client pauses this long, sends this much, or body_timeout_s
    uncapped: frozenset[str] = frozenset()  # addresses without a per-address cap (a proxy)


def is_loopback(host: str) -> bool:
    """Whether a listen host only takes connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_proxy(proxy: str) -> Callable[[dict[str, Any]], None]:
    """An environ rule for requests that come through ``proxy`` (an address): the scheme,
    client address and host it forwards (X-Forwarded-Proto/-For/-Host, the entry the proxy
    itself added) replace the connection's. Other peers' X-Forwarded-* are ignored."""

    def adjust(env: dict[str, Any]) -> None:
        if env.get("REMOTE_ADDR") != proxy:
            return
        proto = env.get("HTTP_X_FORWARDED_PROTO", "").rpartition(",")[2].strip().lower()
        if proto in ("http", "https"):
            env["wsgi.url_scheme"] = proto
        client = env.get("HTTP_X_FORWARDED_FOR", "").rpartition(",")[2].strip()
        if client:
            env["REMOTE_ADDR"] = client
        host = env.get("HTTP_X_FORWARDED_HOST", "").rpartition(",")[2].strip()
        if host:
            env["HTTP_HOST"] = host

    return adjust


def json_error(status: int, reason: str) -> tuple[list[tuple[str, str]], bytes]:
    """The default error document: ``{"error": reason}``."""
    return [("Content-Type", "application/json")], json.dumps({"error": reason}).encode()


class _Body:
    """A request body being read (or waiting for the app): its bytes count in the budget."""
    __slots__ = ("peer", "writer", "size", "reading")

    def __init__(self, peer: str, writer: asyncio.StreamWriter):
        self.peer, self.writer = peer, writer
        self.size = 0
        self.reading = True  # incomplete: may be cut to make room


class _Conn:
    __slots__ = ("peer", "writer", "served", "idle", "since", "linger")

    def __init__(self, peer: str, writer: asyncio.StreamWriter):
        self.peer, self.writer = peer, writer
        self.served = 0  # requests answered on this connection
        self.idle = True  # waiting for a request head (may be evicted)
        self.since = time.monotonic()
        self.linger = False  # answered before the request was read: drain before closing


class FrontEnd:
    """``run()`` serves until SIGTERM/SIGINT (in the main thread) or ``close()``;
    ``count(name)`` is told of every refused or evicted connection (``connection_limit``)
    and every request cut at a deadline (``header_timeout``, ``body_timeout``).

    Bodies are read as they arrive, whatever their size, each byte charged to
    ``Limits.body_budget`` and ``body_budget_per_client``; the one-at-a-time slot for large
    bodies is taken only once a body is complete. So a client that trickles a body holds
    nothing but its own bytes (it used to hold the slot for up to ``body_timeout_s`` while
    a logger's batch behind it timed out), and nobody's queue time counts against their
    deadline. When the total budget is full, the address holding the most gives way: its
    oldest incomplete body is cut (``body_timeout``) if that address would still hold more
    than the one asking; else, and over the per-address budget, the request gets 503 with
    Retry-After (``connection_limit``). Fast-then-stalling clients on several addresses
    can therefore not lock a light client (a logger) out of the budget."""

    def __init__(self, app: Callable[..., Iterable[bytes]], host: str, port: int,
                 limits: Limits = Limits(), threads: int = 4,
                 count: Callable[[str], None] = lambda name: None,
                 error_document: Callable[[int, str], tuple[list[tuple[str, str]], bytes]]
                 = json_error, server_header: str = "vzdivert",
                 adjust_environ: Callable[[dict[str, Any]], None] | None = None):
        self.app, self.host, self.port, self.limits = app, host, port, limits
        self.count, self.error_document, self.server_header = count, error_document, server_header
        self.adjust_environ = adjust_environ
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="http")
        self.conns: dict[_Conn, None] = {}  # insertion order = age
        self.per_peer: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.Server | None = None
        self._large: asyncio.Semaphore | None = None
        self._bodies: dict[_Body, None] = {}  # held bodies; insertion order = age
        self._held = 0  # their bytes
        self._held_by: dict[str, int] = {}  # their bytes by address

    # --- lifecycle -----------------------------------------------------------------------
    def run(self) -> None:
        asyncio.run(self._serve())

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._large = asyncio.Semaphore(1)
        self.server = await asyncio.start_server(self._handle, self.host, self.port,
                                                 limit=READ_BYTES // 2, backlog=256)
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self) -> None:
        await self.start()
        assert self.server is not None and self.loop is not None
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:  # stop between requests, not by an exception inside one
                self.loop.add_signal_handler(signum, stop.set)
            except (RuntimeError, ValueError):
                pass  # not the main thread (tests): close() stops it
        serving = asyncio.ensure_future(self.server.serve_forever())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
        # Not Server.wait_closed(): it would wait for every kept-alive client to go quiet.
        serving.cancel()
        self.server.close()
        for conn in list(self.conns):
            conn.writer.transport.abort()

    def close(self) -> None:
        if self.server is not None and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.server.close)
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- connection admission ------------------------------------------------------------
    def _admit(self, peer: str, writer: asyncio.StreamWriter) -> _Conn | None:
        if self.per_peer.get(peer, 0) >= self.limits.per_client and \
                peer not in self.limits.uncapped:
            self.count("connection_limit")
            return None
        if len(self.conns) >= self.limits.max_connections:
            # Make room by closing the oldest idle connection, one that never completed a
            # request first: a flood of idle sockets cannot lock out a client that talks.
            idle = [c for c in self.conns if c.idle]
            victim = min(idle, key=lambda c: (c.served > 0, c.since), default=None)
            self.count("connection_limit")
            if victim is None:
                return None
            self._forget(victim)
            victim.writer.transport.abort()
        conn = _Conn(peer, writer)
        self.conns[conn] = None
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        return conn

    def _forget(self, conn: _Conn) -> None:
        if self.conns.pop(conn, False) is None:
            left = self.per_peer[conn.peer] - 1
            if left:
                self.per_peer[conn.peer] = left
            else:
                del self.per_peer[conn.peer]

    # --- one connection ------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """``start_server``'s callback. Only the shutdown cancels it (``asyncio.run`` cancels
        what is left), and then it ends quietly: Python 3.11's ``start_server`` logs a
        cancelled callback as an unhandled error with a traceback. Real errors still are."""
        try:
            await self._connection(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                          ) -> None:
        peername = writer.get_extra_info("peername") or ("?", 0)
        if hasattr(writer.transport, "max_size"):  # asyncio's selector transport reads 256 kB
            writer.transport.max_size = READ_BYTES  # at a time into a connection's buffer
        conn = self._admit(peername[0], writer)
        if conn is None:
            await self._refuse(writer)
            return
        h = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        try:
            while True:
                conn.idle, conn.since = True, time.monotonic()
                if not await self._one_request(h, conn, reader, writer, peername):
                    break
                if h.our_state is h11.MUST_CLOSE or h.their_state is h11.MUST_CLOSE:
                    break
                try:
                    h.start_next_cycle()
                except h11.LocalProtocolError:
                    break
            if conn.linger:
                await self._linger(conn, reader, writer)
        except (OSError, TimeoutError, h11.ProtocolError):
            pass  # the peer went away or stalled while we were answering
        finally:
            self._forget(conn)
            if not writer.transport.is_closing():
                writer.close()

    async def _linger(self, conn: _Conn, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        """Half-close, then read and drop what the client still sends (bounded). Closing a
        socket with unread data resets the connection, and the reset destroys the answer
        before a client that sends its whole body first (http.client, curl) reads it."""
        if writer.transport.is_closing():
            return
        conn.idle = True  # nothing of value left on it: a flood may evict it
        writer.write_eof()
        limits = self.limits
        end = time.monotonic() + limits.body_timeout_s
        dropped = 0
        while dropped <= limits.linger_bytes:
            timeout = min(limits.linger_s, end - time.monotonic())
            if timeout <= 0:
                return
            try:
                data = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
            except TimeoutError:
                return
            if not data:
                return
            dropped += len(data)

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        headers, body = self.error_document(503, "too many connections")
        data = (f"HTTP/1.1 503 {REASONS[503]}\r\nConnection: close\r\n"
                f"Content-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")
        try:
            writer.write(data + body)
            await asyncio.wait_for(writer.drain(), 1.0)
        except (TimeoutError, OSError):
            pass
        writer.transport.abort()

    async def _next_event(self, h: h11.Connection, reader: asyncio.StreamReader,
                          deadline: float, first_byte_deadline: float | None = None) -> Any:
        """The next h11 event, reading as needed until ``deadline`` (monotonic)."""
        while True:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event
            until = first_byte_deadline if first_byte_deadline is not None else deadline
            timeout = until - time.monotonic()
            if timeout <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
            if first_byte_deadline is not None and data:
                first_byte_deadline = None
                deadline = time.monotonic() + self.limits.header_timeout_s
            h.receive_data(data)
            del data  # h11 has its copy: a stalled connection must not keep a second one

    async def _one_request(self, h: h11.Connection, conn: _Conn, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter, peername: tuple) -> bool:
        """Serve one request; False when the connection should close."""
        limits = self.limits
        now = time.monotonic()
        first = None if conn.served == 0 else now + limits.idle_timeout_s
        try:
            request = await self._next_event(h, reader, now + limits.header_timeout_s, first)
        except TimeoutError:
            if conn.served == 0:
                self.count("header_timeout")
            return False
        except h11.RemoteProtocolError as exc:
            conn.linger = True
            await self._send_error(h, writer, exc.error_status_hint, str(exc) or "bad request")
            return False
        if not isinstance(request, h11.Request):
            return False  # ConnectionClosed
        conn.idle = False
        conn.linger = True  # until its body is read, an answer must not close outright
        if sum(len(k) + len(v) + 4 for k, v in request.headers) > limits.max_header_bytes:
            await self._send_error(h, writer, 431, "request headers too large")
            return False
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        length = next((v for k, v in headers if k == "content-length"), None)
        declared = int(length) if length is not None else 0
        if declared > limits.max_body_bytes:
            await self._send_error(h, writer, 413, "body too large")
            return False
        if h.they_are_waiting_for_100_continue:
            await self._send(writer, h, h11.InformationalResponse(
                status_code=100, headers=[], reason=b"Continue"))
        deadline = time.monotonic() + limits.body_timeout_s  # reading it, never queueing
        body = _Body(conn.peer, writer)
        self._bodies[body] = None
        try:
            data = await self._read_body(h, reader, writer, body, deadline)
            if data is None:
                return False
            conn.linger = False
            if len(data) > limits.large_body_bytes:
                assert self._large is not None
                async with self._large:  # parsing one at a time bounds the app's memory
                    await self._respond(h, writer, request, headers, data, peername)
            else:
                await self._respond(h, writer, request, headers, data, peername)
        except TimeoutError:
            conn.linger = False  # a client this slow gets no more time
            self.count("body_timeout")
            await self._send_error(h, writer, 408, "request body not received in time")
            return False
        except h11.RemoteProtocolError as exc:
            await self._send_error(h, writer, exc.error_status_hint, str(exc) or "bad request")
            return False
        finally:
            self._release(body)
        conn.served += 1
        return True

    async def _read_body(self, h: h11.Connection, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, body: _Body,
                         deadline: float) -> bytes | None:
        """The whole body, each chunk charged to the budget; None when answered instead."""
        buf = io.BytesIO()  # grows in place (realloc), and getvalue() shares it: one copy
        while True:
            event = await self._next_event(h, reader, deadline)
            if isinstance(event, h11.Data):
                if body.size + len(event.data) > self.limits.max_body_bytes:
                    await self._send_error(h, writer, 413, "body too large")
                    return None
                if body not in self._bodies:
                    return None  # cut to make room (its connection is gone)
                if not self._charge(body, len(event.data)):
                    self.count("connection_limit")
                    await self._send_error(h, writer, 503, "too many request bodies at once",
                                           [("Retry-After", "1")])
                    return None
                buf.write(event.data)
                del event  # the buffer has it: stalled, hold it once
                continue
            if isinstance(event, h11.EndOfMessage):
                body.reading = False
                return buf.getvalue()
            return None

    def _charge(self, body: _Body, n: int) -> bool:
        """Count ``n`` more bytes of ``body``; False when they do not fit."""
        limits = self.limits
        mine = self._held_by.get(body.peer, 0) + n
        if mine > limits.body_budget_per_client and body.peer not in limits.uncapped:
            return False
        while self._held + n > limits.body_budget:
            if not self._make_room(body.peer, mine):
                return False
        body.size += n
        self._held += n
        self._held_by[body.peer] = mine
        return True

    def _make_room(self, asking: str, would_hold: int) -> bool:
        """Cut the oldest incomplete body of the address holding the most, if it holds
        more than ``asking`` would: every address keeps a fair share of the budget."""
        reading: dict[str, _Body] = {}
        for b in self._bodies:  # oldest first
            if b.reading and b.peer != asking and b.peer not in reading:
                reading[b.peer] = b
        if not reading:
            return False
        peer = max(reading, key=lambda p: self._held_by.get(p, 0))
        if self._held_by.get(peer, 0) <= would_hold:
            return False
        victim = reading[peer]
        self._release(victim)
        self.count("body_timeout")
        victim.writer.transport.abort()  # its reader sees the end; its memory goes with it
        return True

    def _release(self, body: _Body) -> None:
        if self._bodies.pop(body, False) is None and body.size:
            self._held -= body.size
            left = self._held_by[body.peer] - body.size
            if left:
                self._held_by[body.peer] = left
            else:
                del self._held_by[body.peer]
            body.size = 0

    # --- the app -------------------------------------------------------------------------
    def environ(self, request: h11.Request, headers: list[tuple[str, str]], body: bytes,
                peername: tuple) -> dict[str, Any]:
        path, _, query = request.target.partition(b"?")
        env: dict[str, Any] = {
            "REQUEST_METHOD": request.method.decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "SERVER_NAME": self.host, "SERVER_PORT": str(self.port),
            "SERVER_PROTOCOL": f"HTTP/{request.http_version.decode('ascii')}",
            "REMOTE_ADDR": peername[0], "REMOTE_PORT": str(peername[1]),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers:
            if name == "content-type":
                env["CONTENT_TYPE"] = value
            elif name != "content-length" and name != "transfer-encoding":
                key = "HTTP_" + name.upper().replace("-", "_")
                env[key] = f"{env[key]},{value}" if key in env else value
        if self.adjust_environ is not None:
            self.adjust_environ(env)
        return env

    def _call_app(self, env: dict[str, Any]) -> tuple[str, list[tuple[str, str]], Iterator]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return lambda data: None  # write() is not supported (no app here uses it)

        result = self.app(env, start_response)
        it = iter(result)
        try:
            first = next(it)
        except StopIteration:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            first, it, result = b"", iter(()), None
        status, headers = started
        return status, headers, _chain(first, it, result)

    async def _respond(self, h: h11.Connection, writer: asyncio.StreamWriter,
                       request: h11.Request, headers: list[tuple[str, str]], body: bytes,
                       peername: tuple) -> None:
        assert self.loop is not None
        env = self.environ(request, headers, body, peername)
        try:
            status, out_headers, chunks = await self.loop.run_in_executor(
                self.pool, self._call_app, env)
        except Exception:
            log.exception("%s: internal error", env["PATH_INFO"])
            await self._send_error(h, writer, 500, "internal error")
            return
        code = int(status.split(" ", 1)[0])
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
        if not any(k.lower() == b"server" for k, _ in raw):
            raw.append((b"Server", self.server_header.encode()))
        await self._send(writer, h, h11.Response(status_code=code, headers=raw,
                                                 reason=status.partition(" ")[2].encode()))
        try:
            while True:
                chunk = await self.loop.run_in_executor(self.pool, next, chunks, None)
                if chunk is None:
                    break
                if chunk and request.method != b"HEAD":
                    await self._send(writer, h, h11.Data(data=chunk))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await self.loop.run_in_executor(self.pool, close)
        await self._send(writer, h, h11.EndOfMessage())

    async def _send(self, writer: asyncio.StreamWriter, h: h11.Connection, event: Any) -> None:
        data = h.send(event)
        if data:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), self.limits.body_timeout_s)

    async def _send_error(self, h: h11.Connection, writer: asyncio.StreamWriter, status: int,
                          reason: str, extra: list[tuple[str, str]] | None = None) -> None:
        if h.our_state not in (h11.IDLE, h11.SEND_RESPONSE) or writer.transport.is_closing():
            return
        headers, body = self.error_document(status, reason)
        headers = [*headers, *(extra or ()), ("Content-Length", str(len(body))),
                   ("Connection", "close"), ("Server", self.server_header)]
        try:
            await self._send(writer, h, h11.Response(status_code=status, headers=headers,
                                                     reason=REASONS.get(status, "").encode()))
            await self._send(writer, h, h11.Data(data=body))
            await self._send(writer, h, h11.EndOfMessage())
        except (TimeoutError, h11.LocalProtocolError, OSError):
            pass


class _chain:
    """The app's first chunk, then the rest; ``close()`` reaches the app's iterable."""

    def __init__(self, first: bytes, rest: Iterator[bytes], result: Any):
        self.first, self.rest, self.result = first, rest, result

    def __iter__(self) -> _chain:
        return self

    def __next__(self) -> bytes:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        return next(self.rest)

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            close()
