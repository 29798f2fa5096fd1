"""Simulated output for the demo and tests: the duty lives in a small file, so like real
PWM hardware it outlives the process that set it, and the simulated house can read it."""

from __future__ import annotations

import os
import struct
from pathlib import Path

_FMT = struct.Struct("<d")


class SimOutput:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self.fd).st_size < _FMT.size:
            os.pwrite(self.fd, _FMT.pack(0.0), 0)

    def set(self, duty: float) -> None:
        os.pwrite(self.fd, _FMT.pack(min(1.0, max(0.0, duty))), 0)

    def off(self) -> None:
        self.set(0.0)

    def read(self) -> float:
        return _FMT.unpack(os.pread(self.fd, _FMT.size, 0))[0]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def describe(self) -> str:
        return f"sim output ({self.path})"


def read_sim_duty(path: str | Path) -> float:
    """The duty the simulated hardware is running (0 if never set)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0.0
    return _FMT.unpack(data[:_FMT.size])[0] if len(data) >= _FMT.size else 0.0
