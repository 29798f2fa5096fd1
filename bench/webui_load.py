"""Web UI under load: /api/state throughput with every live-stream slot taken, as a ratio
to the same run's throughput with no streams open (the baseline).

Usage: python bench/webui_load.py http://127.0.0.1:8081 [--seconds 5] [--clients 8]
against a running UI without a password (e.g. `vzdivert demo`)."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from urllib.parse import urlsplit

import requests


def hammer(base: str, seconds: float, clients: int) -> float:
    """Requests per second of GET /api/state from ``clients`` threads."""
    count = [0] * clients
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with requests.Session() as s:
            while time.monotonic() < stop:
                s.get(base + "/api/state", timeout=10).raise_for_status()
                count[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / seconds


def open_streams(base: str) -> list[socket.socket]:
    """Open /api/events until the UI refuses one (503); return the open ones."""
    parts = urlsplit(base)
    streams = []
    while len(streams) < 64:
        sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=5)
        sock.sendall(f"GET /api/events HTTP/1.0\r\nHost: {parts.netloc}\r\n\r\n".encode())
        head = sock.recv(64)
        if not head.startswith(b"HTTP/1.0 200"):
            sock.close()
            return streams
        streams.append(sock)
    return streams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    base = args.url.rstrip("/")
    baseline = hammer(base, args.seconds, args.clients)
    streams = open_streams(base)
    try:
        loaded = hammer(base, args.seconds, args.clients)
    finally:
        for s in streams:
            s.close()
    print(f"/api/state, {args.clients} client threads: {baseline:.0f} req/s with no streams")
    print(f"live streams accepted before 503: {len(streams)}")
    print(f"/api/state with those streams open: {loaded:.0f} req/s "
          f"(ratio to baseline {loaded / baseline:.2f})")


if __name__ == "__main__":
    main()
