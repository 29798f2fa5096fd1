"""Relays and the bypass on plain GPIO lines through libgpiod v2 (PyPI ``gpiod`` 2.x): the
Raspberry Pi 5 path, where pigpio does not run and sysfs GPIO is gone. The chip is found by
its label (``pinctrl-rp1``), because its number changes between kernels (gpiochip4, then 0).

A line request is exclusive and ends with its process. What the line does then is the
kernel's choice: Raspberry Pi kernels keep an output driven at its last level (like pigpiod),
upstream kernels and ``dtparam=strict_gpiod`` make it an input. So the supervisor's
force_off still drives every relay off after a worker dies, and we set the internal pull
towards "off" so an input line rests there too (docs/install.md: add an external pull)."""

from __future__ import annotations

import errno
from pathlib import Path
from types import ModuleType
from typing import Any

from vzdivert.output.base import OutputError, Switch

PI5_LABEL = "pinctrl-rp1"
DEV_DIR = "/dev"
CONSUMER = "vzdivert"
_KEY = "output.gpiod_chip"
_PERMISSION_HINT = ("run vzdivert as a member of the `gpio` group (Raspberry Pi OS gives it "
                    "/dev/gpiochip*) or as root")


def load_gpiod() -> ModuleType:
    """The libgpiod v2 bindings, or an OutputError saying how to get them."""
    try:
        import gpiod
    except ImportError as exc:
        raise OutputError(f"{_KEY}: relays and the bypass with output.driver = 'sysfs' need "
                          f"the gpiod package (libgpiod 2.x bindings): pip install "
                          f"'gpiod>=2.1' into vzdivert's environment") from exc
    if not hasattr(gpiod, "request_lines"):  # Debian's python3-libgpiod 1.x, another API
        raise OutputError(f"{_KEY}: the gpiod package found is version "
                          f"{getattr(gpiod, '__version__', '1.x')}; relays need 2.x: pip "
                          f"install 'gpiod>=2.1' into vzdivert's environment")
    return gpiod


def _chip_number(path: Path) -> int:
    digits = path.name.removeprefix("gpiochip")
    return int(digits) if digits.isdigit() else 1 << 30


def find_chip(gpiod: ModuleType, chip: str, dev_dir: str | Path | None = None) -> str:
    """The device path of ``chip``: itself when it is a path, else the GPIO chip under
    ``dev_dir`` (/dev) with that label. Opens chips to read labels; changes no line."""
    dev_dir = DEV_DIR if dev_dir is None else dev_dir
    if chip.startswith("/"):
        if not Path(chip).exists():
            raise OutputError(f"{_KEY}: {chip} does not exist (gpiodetect lists the chips)")
        if not gpiod.is_gpiochip_device(chip):
            raise OutputError(f"{_KEY}: {chip} is not a GPIO chip (gpiodetect lists them)")
        return chip
    seen, denied = [], []
    for path in sorted(Path(dev_dir).glob("gpiochip*"), key=_chip_number):
        if not gpiod.is_gpiochip_device(str(path)):
            continue
        try:
            with gpiod.Chip(str(path)) as opened:
                label = opened.get_info().label
        except PermissionError:
            denied.append(path.name)
            continue
        except OSError as exc:
            seen.append(f"{path.name}: {exc.strerror or exc}")
            continue
        if label == chip:
            return str(path)
        seen.append(f"{path.name} = {label}")
    found = ", ".join(seen) or "none"
    hint = (f"; permission denied on {', '.join(denied)}: {_PERMISSION_HINT}" if denied else
            "" if seen else " (not a Raspberry Pi 5, or a kernel without GPIO character "
            "devices?)")
    raise OutputError(f"{_KEY}: no GPIO chip labelled {chip!r} under {dev_dir} (found: "
                      f"{found}){hint}; set {_KEY} to a label or a path such as "
                      f"/dev/gpiochip4")


class GpiodSwitch(Switch):
    """A relay on one GPIO line, requested for as long as this object lives. Opening takes
    the line as it is (the base contract: opening changes nothing); the first write makes it
    an output. The kernel applies ``active_low``, so the logical value is the relay's state
    both ways (write and read-back)."""

    def __init__(self, gpiod: ModuleType, chip_path: str, gpio: int, active_low: bool = False):
        self.gpiod, self.chip_path = gpiod, chip_path
        self.gpio, self.active_low = int(gpio), bool(active_low)
        self._value: bool | None = None  # last level written on this request
        settings = gpiod.LineSettings(active_low=self.active_low)  # direction AS_IS
        try:
            self.request = gpiod.request_lines(chip_path, {self.gpio: settings},
                                               consumer=CONSUMER)
        except ValueError as exc:  # the offset is beyond the chip's lines
            raise OutputError(f"GPIO {self.gpio} does not exist on {chip_path}: {exc}") from exc
        except OSError as exc:
            raise OutputError(self._explain(exc, "cannot request")) from exc

    def _explain(self, exc: OSError, what: str) -> str:
        where = f"{what} GPIO {self.gpio} on {self.chip_path}"
        if exc.errno == errno.EBUSY:
            return f"{where}: in use by {self._consumer() or 'another program'}"
        if exc.errno == errno.EACCES:
            return f"{where}: permission denied: {_PERMISSION_HINT}"
        return f"{where}: {exc.strerror or exc}"

    def _consumer(self) -> str:
        try:
            with self.gpiod.Chip(self.chip_path) as chip:
                consumer = chip.get_line_info(self.gpio).consumer
        except (OSError, ValueError):
            return ""
        return repr(consumer) if consumer else ""

    def _settings(self, on: bool) -> Any:
        line = self.gpiod.line
        return self.gpiod.LineSettings(
            direction=line.Direction.OUTPUT, active_low=self.active_low,
            # where the line rests once it is an input again: the relay's off level
            bias=line.Bias.PULL_UP if self.active_low else line.Bias.PULL_DOWN,
            output_value=line.Value.ACTIVE if on else line.Value.INACTIVE)

    def set(self, duty: float) -> None:
        on = self.level(duty)
        try:
            if self._value is None or self._value == on:
                # The first write, or the caller writing the level it already wrote (the
                # worker does so only after a read-back mismatch): set the direction too.
                self.request.reconfigure_lines({self.gpio: self._settings(on)})
            else:
                value = self.gpiod.line.Value
                self.request.set_value(self.gpio, value.ACTIVE if on else value.INACTIVE)
        except OSError as exc:
            self._value = None
            raise OutputError(self._explain(exc, "cannot write")) from exc
        except self.gpiod.RequestReleasedError as exc:
            raise OutputError(f"GPIO {self.gpio}: written after close") from exc
        self._value = on

    def off(self) -> None:
        self.set(0.0)

    def read_back(self) -> float | None:
        """The line's logical level: 1.0 when the relay is on. An input line reads what
        rests on it (the pull), so an undriven relay that is on shows as on."""
        try:
            return float(bool(self.request.get_value(self.gpio)))
        except (OSError, self.gpiod.RequestReleasedError):
            return None

    def close(self) -> None:
        """Release the line (see the module docstring for what the kernel does then)."""
        self.request.release()

    def describe(self) -> str:
        low = ", active low" if self.active_low else ""
        return f"libgpiod GPIO {self.gpio} relay{low} ({self.chip_path})"


class GpioLines:
    """The chip shared by every relay of one back-end: located once, on first use."""

    def __init__(self, chip: str, dev_dir: str | Path | None = None):
        self.chip, self.dev_dir = chip, dev_dir
        self._found: tuple[ModuleType, str] | None = None

    def locate(self) -> tuple[ModuleType, str]:
        if self._found is None:
            gpiod = load_gpiod()
            self._found = gpiod, find_chip(gpiod, self.chip, self.dev_dir)
        return self._found

    def switch(self, gpio: int, active_low: bool) -> GpiodSwitch:
        gpiod, path = self.locate()
        return GpiodSwitch(gpiod, path, gpio, active_low)
