"""Kernel PWM through sysfs (/sys/class/pwm): the Raspberry Pi 5 path (pigpio does not run
there) and any board with a kernel PWM driver. The chip is found by its device path, because
its number changes between kernels; like pigpio's hardware PWM it outlives our process.
Relays and the bypass go through libgpiod (gpiod_out), since sysfs GPIO is gone there."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from vzdivert.output.base import Backend, Output, OutputError, OutputSpec, Switch
from vzdivert.output.gpiod_out import GpioLines

PI5_CHANNELS = {12: 0, 13: 1, 18: 2, 19: 3}  # RP1 PWM0 channel per GPIO (domain.md §4)
EXPORT_WAIT_S = 2.0  # udev fixes the permissions of a freshly exported channel asynchronously
_PERMISSION_HINT = (
    "run vzdivert as a member of the `gpio` group (sudo usermod -aG gpio USER, then log in "
    "again) with a udev rule giving that group write access to /sys/class/pwm, e.g. "
    "SUBSYSTEM==\"pwm*\", PROGRAM=\"/bin/sh -c 'chgrp -R gpio /sys%p && chmod -R g+w /sys%p'\""
    " -- or as root")


def config_problems(out: Any) -> list[str]:
    """What is wrong with an ``[output]`` section for this driver, without touching sysfs."""
    if out.sysfs_channel < 0 and out.gpio not in PI5_CHANNELS:
        return [f"output.gpio: kernel PWM on the Raspberry Pi 5 is on GPIO 12, 13, 18 and 19 "
                f"(got {out.gpio}); on other boards set output.sysfs_channel"]
    return []


def write_attr(path: Path, value: int) -> None:
    """Write one number to a sysfs attribute, with errors that say what to do."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"%d\n" % value)
        finally:
            os.close(fd)
    except PermissionError as exc:
        raise OutputError(f"permission denied writing {path}: {_PERMISSION_HINT}") from exc
    except OSError as exc:
        raise OutputError(f"writing {value} to {path} failed: {exc.strerror or exc}") from exc


def read_attr(path: Path) -> int:
    return int(path.read_text().strip())


def find_chip(root: Path, device_suffix: str) -> Path:
    """The pwmchipN under ``root`` whose ``device`` link ends in ``device_suffix``."""
    seen = []
    for chip in sorted(root.glob("pwmchip*")):
        try:
            target = os.readlink(chip / "device").rstrip("/")
        except OSError:
            continue
        if target.endswith(device_suffix):
            return chip
        seen.append(f"{chip.name} -> {target.rsplit('/', 1)[-1]}")
    found = ", ".join(seen) or "none"
    raise OutputError(
        f"output.sysfs_device: no PWM chip under {root} whose device ends in "
        f"{device_suffix!r} (found: {found}); enable the PWM overlay in config.txt "
        f"(e.g. dtoverlay=pwm-2chan) and reboot, or set output.sysfs_device")


class SysfsOutput(Output):
    """One kernel PWM channel. Construction exports the channel but does not change the
    output; the period and enable are written on the first ``set``, and only if needed."""

    def __init__(self, out: Any):
        problems = config_problems(out)
        if problems:
            raise OutputError("; ".join(problems))
        self.gpio = int(out.gpio)
        self.frequency_hz = int(out.frequency_hz)
        channel = int(out.sysfs_channel)
        self.channel = channel if channel >= 0 else PI5_CHANNELS[self.gpio]
        self.root = Path(out.sysfs_root)
        self.chip = find_chip(self.root, out.sysfs_device)
        self.pwm_dir = self.chip / f"pwm{self.channel}"
        self._duty_path = self.pwm_dir / "duty_cycle"
        self.period_ns = self._period_for(self.frequency_hz)
        self._configured = False
        self._duty = 0.0
        self._export()

    @staticmethod
    def _period_for(hz: int) -> int:
        if hz < 1:
            raise OutputError(f"output.frequency_hz: must be >= 1, got {hz}")
        return max(1, round(1e9 / hz))

    @property
    def resolution(self) -> float:
        return 1.0 / self.period_ns

    def _export(self) -> None:
        if self.pwm_dir.is_dir():
            return
        try:
            npwm = read_attr(self.chip / "npwm")
        except (OSError, ValueError):
            npwm = None
        if npwm is not None and self.channel >= npwm:
            raise OutputError(f"output.sysfs_channel: {self.chip.name} has channels "
                              f"0-{npwm - 1}, not {self.channel}")
        try:
            write_attr(self.chip / "export", self.channel)
        except OutputError:
            if not self.pwm_dir.is_dir():  # EBUSY: someone exported it meanwhile -- fine
                raise
        # The kernel creates pwmN/ at once, but udev changes its group a moment later.
        deadline = time.monotonic() + EXPORT_WAIT_S
        while not os.access(self._duty_path, os.W_OK):
            if time.monotonic() > deadline:
                if self._duty_path.exists():
                    raise OutputError(f"permission denied writing {self._duty_path}: "
                                      f"{_PERMISSION_HINT}")
                raise OutputError(f"exported channel {self.channel} of {self.chip} but "
                                  f"{self.pwm_dir} did not appear")
            time.sleep(0.01)

    def _configure(self) -> None:
        if read_attr(self.pwm_dir / "period") != self.period_ns:
            write_attr(self._duty_path, 0)  # duty must never exceed the period
            write_attr(self.pwm_dir / "period", self.period_ns)
        if read_attr(self.pwm_dir / "enable") != 1:
            write_attr(self.pwm_dir / "enable", 1)
        self._configured = True

    def set(self, duty: float) -> None:
        duty = min(1.0, max(0.0, duty)) if duty == duty else 0.0  # NaN: the safe value
        try:
            if not self._configured:
                self._configure()
        except (OSError, ValueError) as exc:
            raise OutputError(f"cannot read {self.pwm_dir}: {exc}") from exc
        write_attr(self._duty_path, min(self.period_ns, round(duty * self.period_ns)))
        self._duty = duty

    def off(self) -> None:
        # Duty 0 is valid whatever the period; a channel never enabled outputs nothing anyway.
        write_attr(self._duty_path, 0)
        self._duty = 0.0

    def read_back(self) -> float | None:
        """The duty the channel runs (0 when disabled), or None if sysfs cannot be read."""
        try:
            if read_attr(self.pwm_dir / "enable") != 1:
                return 0.0
            period = read_attr(self.pwm_dir / "period")
            return read_attr(self._duty_path) / period if period > 0 else None
        except (OSError, ValueError):
            return None

    def set_frequency(self, hz: int) -> None:
        """Change the PWM frequency live; the duty stays."""
        self.period_ns = self._period_for(int(hz))
        self.frequency_hz = int(hz)
        if self._configured:
            self._configured = False
            self.set(self._duty)

    def close(self) -> None:
        """Nothing held open; the channel stays exported and keeps running."""

    def describe(self) -> str:
        return (f"kernel PWM {self.chip.name}/pwm{self.channel} (GPIO {self.gpio}) at "
                f"{self.frequency_hz} Hz, period {self.period_ns} ns")


class SysfsBackend(Backend):
    """Kernel PWM for the PWM load; relays and the bypass on GPIO lines through libgpiod."""

    def __init__(self, runtime_dir: str | Path):
        super().__init__(runtime_dir)
        self._lines: GpioLines | None = None

    def pwm(self, spec: OutputSpec) -> SysfsOutput:
        return SysfsOutput(spec.section)

    def lines(self, section: Any) -> GpioLines:
        if self._lines is None:
            self._lines = GpioLines(section.gpiod_chip)
        return self._lines

    def switch(self, spec: OutputSpec) -> Switch:
        return self.lines(spec.section).switch(spec.gpio, spec.active_low)

    def problems(self, specs: list[OutputSpec]) -> list[str]:
        """The PWM section's checks; with relays, also that libgpiod and the chip are there
        (reads the chip labels, changes no line)."""
        problems = [p for spec in specs if spec.kind == "pwm"
                    for p in config_problems(spec.section)]
        switches = [spec for spec in specs if spec.kind == "switch"]
        if switches:
            try:
                self.lines(switches[0].section).locate()
            except OutputError as exc:
                names = ", ".join(spec.name for spec in switches)
                problems.append(f"{exc} (needed by {names})")
        return problems
