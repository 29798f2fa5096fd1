"""Simulated outputs for the demo and tests: each duty or relay level lives in a small file in
the runtime directory, so like real hardware it outlives the process that set it, and the
simulated house can read it (``sim-output`` for the PWM load, ``sim-gpio<N>`` for a plain
GPIO, holding the pin's electrical level)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from vzdivert.output.base import Backend, Output, OutputSpec, Switch

_FMT = struct.Struct("<d")
PWM_FILE = "sim-output"


def switch_file(gpio: int) -> str:
    return f"sim-gpio{gpio}"


class _SimFile:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self.fd).st_size < _FMT.size:
            os.pwrite(self.fd, _FMT.pack(0.0), 0)

    def write(self, value: float) -> None:
        os.pwrite(self.fd, _FMT.pack(value), 0)

    def read(self) -> float:
        return _FMT.unpack(os.pread(self.fd, _FMT.size, 0))[0]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class SimOutput(Output):
    def __init__(self, path: str | Path):
        self.file = _SimFile(path)
        self.path = self.file.path

    def set(self, duty: float) -> None:
        self.file.write(min(1.0, max(0.0, duty)) if duty == duty else 0.0)

    def off(self) -> None:
        self.set(0.0)

    def read(self) -> float:
        return self.file.read()

    def read_back(self) -> float | None:
        return self.file.read()

    def close(self) -> None:
        self.file.close()

    def describe(self) -> str:
        return f"sim output ({self.path})"


class SimSwitch(Switch):
    """A relay on a simulated GPIO; the file holds the pin level (``active_low`` inverts)."""

    def __init__(self, path: str | Path, active_low: bool = False):
        self.file = _SimFile(path)
        self.path, self.active_low = self.file.path, active_low

    def set(self, duty: float) -> None:
        self.file.write(float(self.level(duty) != self.active_low))

    def off(self) -> None:
        self.set(0.0)

    def read_back(self) -> float | None:
        return float((self.file.read() >= 0.5) != self.active_low)

    def close(self) -> None:
        self.file.close()

    def describe(self) -> str:
        low = ", active low" if self.active_low else ""
        return f"sim relay ({self.path}{low})"


class SimBackend(Backend):
    def pwm(self, spec: OutputSpec) -> SimOutput:
        return SimOutput(self.runtime_dir / PWM_FILE)

    def switch(self, spec: OutputSpec) -> SimSwitch:
        return SimSwitch(self.runtime_dir / switch_file(spec.gpio), spec.active_low)


def read_sim_duty(path: str | Path) -> float:
    """The duty (or level) the simulated hardware is running (0 if never set)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0.0
    return _FMT.unpack(data[:_FMT.size])[0] if len(data) >= _FMT.size else 0.0
