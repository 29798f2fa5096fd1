"""A fake /sys/class/pwm tree (kernel PWM, the sysfs driver) for tests: chips whose export
file creates channels as the kernel does."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest


class FakePwmChip:
    """A pwmchipN directory as the kernel makes it: ``device`` is a symlink, and writing N to
    ``export`` (a FIFO here, read by a helper thread) creates ``pwmN/``."""

    def __init__(self, root: Path, name: str, device: Path, npwm: int = 4):
        device.mkdir(parents=True)
        self.path = root / name
        self.path.mkdir(parents=True)
        (self.path / "device").symlink_to(device)
        (self.path / "npwm").write_text(f"{npwm}\n")
        self.export = self.path / "export"
        os.mkfifo(self.export)
        self.exported: list[int] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            with open(self.export, "rb") as fifo:  # blocks until a writer opens it
                data = fifo.read()
            if data == b"stop":
                return
            for word in data.split():
                self.add_channel(int(word))
                self.exported.append(int(word))

    def add_channel(self, n: int, period: int = 0, duty: int = 0, enable: int = 0) -> Path:
        # The kernel creates pwmN/ with all its attributes at once: build aside, rename.
        staging = self.path / f".pwm{n}"
        staging.mkdir()
        for name, value in (("period", period), ("duty_cycle", duty), ("enable", enable)):
            (staging / name).write_text(f"{value}\n")
        channel = self.path / f"pwm{n}"
        staging.rename(channel)
        return channel

    def close(self) -> None:
        while self._thread.is_alive():
            try:
                fd = os.open(self.export, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # ENXIO: the helper is between two reads
                assert exc.errno == errno.ENXIO
                self._thread.join(timeout=0.01)
                continue
            os.write(fd, b"stop")
            os.close(fd)
            self._thread.join(timeout=5)


@pytest.fixture
def tree(tmp_path):
    """Two chips; the Pi 5's RP1 PWM is pwmchip2 (the number is not what we look for)."""
    root = tmp_path / "class" / "pwm"
    devices = tmp_path / "devices" / "platform" / "axi" / "1000120000.pcie"
    other = FakePwmChip(root, "pwmchip0", devices / "1f00050000.pwm", npwm=2)
    rp1 = FakePwmChip(root, "pwmchip2", devices / "1f00098000.pwm")
    yield SimpleNamespace(root=root, rp1=rp1, other=other)
    for chip in (other, rp1):
        chip.close()
