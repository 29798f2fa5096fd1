"""systemd's notify protocol (sd_notify): one datagram per state to $NOTIFY_SOCKET. Eight
lines of standard library are as good as a dependency here; a no-op outside systemd."""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, path: str | None = None):
        path = path if path is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self.sock: socket.socket | None = None
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def __call__(self, state: str) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(state.encode(), self.address)
        except OSError:
            pass  # systemd gone or socket full: nothing useful to do about it here
