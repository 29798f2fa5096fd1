"""SMA Energy Meter / Sunny Home Manager 2.0: the UDP datagrams they multicast to
239.12.255.254:9522 about once a second. Grid power = active power import (OBIS 1.4.0)
minus export (2.4.0), both uint32 in 0.1 W. One socket for every sma-em channel; a
channel's ``serial`` picks the meter (0: the first one heard)."""

from __future__ import annotations

import socket
import struct
import threading
import time

from vzdivert.channel_spec import ChannelSpec
from vzdivert.ingest.sources.sink import Outage, Sink
from vzdivert.ingest.sources.values import PayloadError

PROTOCOL_EM = 0x6069
TAG_DATA, TAG_END = 0x0010, 0x0000
IMPORT_W, EXPORT_W = (1, 4, 0), (2, 4, 0)  # (index, type, tariff) of the OBIS record
SILENT_AFTER_S = 5.0
REJOIN_EVERY_S = 10.0  # at boot the network (and so the group) may not be there yet


def parse_datagram(data: bytes) -> tuple[int, float]:
    """(serial, grid power in W, + = import) of an energy-meter datagram; PayloadError for
    anything else (other SMA protocols on the same group included)."""
    if len(data) < 12 or data[:4] != b"SMA\0":
        raise PayloadError("bad_datagram", f"not an SMA datagram: {data[:8]!r}")
    pos = 4
    while pos + 4 <= len(data):
        length, tag = struct.unpack_from(">HH", data, pos)
        body = data[pos + 4:pos + 4 + length]
        if tag == TAG_END and length == 0:
            break
        if tag == TAG_DATA:
            if len(body) < 12:  # (meters disagree on what the length counts: not checked)
                raise PayloadError("bad_datagram", "truncated data block")
            protocol, _susy, serial = struct.unpack_from(">HHI", body, 0)
            if protocol != PROTOCOL_EM:
                raise PayloadError("other_protocol", f"protocol 0x{protocol:04x}")
            return serial, _grid_w(body, 12)
        pos += 4 + length
    raise PayloadError("bad_datagram", "no data block")


def _grid_w(body: bytes, pos: int) -> float:
    found: dict[tuple[int, int, int], int] = {}
    while pos + 4 <= len(body):
        (obis,) = struct.unpack_from(">I", body, pos)
        channel, index, kind, tariff = obis >> 24, (obis >> 16) & 0xFF, (obis >> 8) & 0xFF, \
            obis & 0xFF
        if obis == 0:
            break
        size = 8 if kind == 8 and channel != 0x90 else 4
        if pos + 4 + size > len(body):
            raise PayloadError("bad_datagram", "truncated OBIS record")
        if size == 4:
            found[(index, kind, tariff)] = struct.unpack_from(">I", body, pos + 4)[0]
        pos += 4 + size
    if IMPORT_W not in found or EXPORT_W not in found:
        raise PayloadError("path_missing", "no active power import/export (1.4.0/2.4.0)")
    return (found[IMPORT_W] - found[EXPORT_W]) / 10.0


class SmaListener:
    def __init__(self, specs: list[ChannelSpec], sink: Sink, outage: Outage, listen: str,
                 group: str):
        self.specs, self.sink, self.outage = specs, sink, outage
        self.listen, self.group = listen, group
        self.sock: socket.socket | None = None
        self.joined = not group
        self.serials = {s.name: s.serial for s in specs}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="sma-em", daemon=True)

    def start(self) -> SmaListener:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def open(self) -> bool:
        """Bind, then join the group; False (the outage says why) until both worked."""
        try:
            if self.sock is None:
                host, _, port = self.listen.rpartition(":")
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if hasattr(socket, "SO_REUSEPORT"):  # SMA's own tools may listen here too
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.settimeout(0.5)
                try:
                    sock.bind((host.strip("[]"), int(port)))
                except OSError:
                    sock.close()
                    raise
                self.sock = sock
            if not self.joined:
                mreq = socket.inet_aton(self.group) + socket.inet_aton("0.0.0.0")
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                self.joined = True
            return True
        except OSError as exc:
            what = "listen on" if self.sock is None else f"join {self.group} for"
            self.outage.failed(f"cannot {what} {self.listen}: {exc.strerror or exc}")
            return False

    def run(self) -> None:
        last_mono, next_open = time.monotonic(), 0.0
        try:
            while not self.stopping.is_set():
                if (self.sock is None or not self.joined) and time.monotonic() >= next_open:
                    if not self.open():  # unicast still works while the join fails
                        next_open = time.monotonic() + REJOIN_EVERY_S
                if self.sock is None:
                    self.stopping.wait(1.0)
                    continue
                try:
                    data = self.sock.recv(2048)
                except TimeoutError:
                    silent_s = time.monotonic() - last_mono
                    if silent_s > SILENT_AFTER_S and not self.outage.down:
                        self.outage.failed(f"no energy-meter datagram for {silent_s:.0f} s")
                    continue
                if self.on_datagram(data):
                    last_mono = time.monotonic()
        finally:
            if self.sock is not None:
                self.sock.close()

    def on_datagram(self, data: bytes) -> bool:
        try:
            serial, grid_w = parse_datagram(data)
        except PayloadError as exc:
            if exc.reason != "other_protocol":
                for spec in self.specs:
                    self.sink.reject(spec.name, exc.reason, str(exc))
            return False
        heard = False
        for spec in self.specs:
            wanted = self.serials[spec.name]
            if wanted == 0:
                self.serials[spec.name] = wanted = serial  # the first meter heard, kept
            if wanted == serial:
                heard = True
                self.sink.offer(spec.name, grid_w, None)
        if heard:
            self.outage.ok()
        return heard
