"""Output back-ends behind one tiny interface (gpiozero-style pin factories): nothing above
this package knows which one runs. ``open_output`` picks one from ``[output] driver``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from vzdivert.config import Config


class OutputError(RuntimeError):
    """The output could not be opened or written; the message says what to fix."""


class Output(Protocol):
    def set(self, duty: float) -> None:
        """Drive the output at ``duty`` (0..1 of the PWM period)."""

    def off(self) -> None:
        """Duty 0. Must work (or raise) even if ``set`` never ran."""

    def close(self) -> None:
        """Release the handle; does NOT change the output (the caller decides)."""

    def describe(self) -> str:
        """One line for logs and the UI: driver, pin, frequency."""


def open_output(cfg: Config, runtime_dir: str | Path) -> Output:
    driver = cfg.output.driver
    if driver == "sim":
        from vzdivert.rtworker.drivers.sim import SimOutput

        return SimOutput(Path(runtime_dir) / "sim-output")
    if driver == "pigpio":
        from vzdivert.rtworker.drivers.pigpio_out import PigpioOutput

        return PigpioOutput(cfg.output)
    if driver == "sysfs":
        from vzdivert.rtworker.drivers.sysfs import SysfsOutput

        return SysfsOutput(cfg.output)
    raise OutputError(f"output.driver: unknown driver {driver!r}")


def config_problems(cfg: Config) -> list[str]:
    """Driver-specific config checks that need no hardware (for run and check-config)."""
    if cfg.output.driver == "pigpio":
        from vzdivert.rtworker.drivers.pigpio_out import config_problems as check
    elif cfg.output.driver == "sysfs":
        from vzdivert.rtworker.drivers.sysfs import config_problems as check
    else:
        return []
    return check(cfg.output)


def force_off(cfg: Config, runtime_dir: str | Path) -> None:
    """Open the configured output just to write 0: for the supervisor (a worker died or
    hung) and for ``vzdivert safe-off`` (systemd's ExecStopPost). Raises OutputError."""
    output = open_output(cfg, runtime_dir)
    try:
        output.off()
    finally:
        output.close()
