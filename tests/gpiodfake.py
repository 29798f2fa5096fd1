"""A fake of the kernel side of libgpiod: the ``gpiod._ext`` native module of the real
``gpiod`` 2.x package, so the package's own Python layer (Chip, request_lines, LineRequest,
LineSettings, its checks and errors) runs unchanged over simulated GPIO chips. The sandbox
has no /dev/gpiochip; what the kernel does is modelled from gpiolib-cdev: a line is requested
by one request at a time (EBUSY), bias needs a direction (EINVAL), values are logical
(active_low applied), set_values on an input line is EPERM, and a released line either keeps
driving (Raspberry Pi kernels) or becomes an input resting on its pull (``strict``: upstream
and dtparam=strict_gpiod)."""

from __future__ import annotations

import errno
import fcntl
import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

# The real _ext's constants (gpiod 2.5), so enums built over the fake have the same values.
CONSTANTS = dict(
    BIAS_AS_IS=1, BIAS_UNKNOWN=2, BIAS_DISABLED=3, BIAS_PULL_UP=4, BIAS_PULL_DOWN=5,
    CLOCK_MONOTONIC=1, CLOCK_REALTIME=2, CLOCK_HTE=3,
    DIRECTION_AS_IS=1, DIRECTION_INPUT=2, DIRECTION_OUTPUT=3,
    DRIVE_PUSH_PULL=1, DRIVE_OPEN_DRAIN=2, DRIVE_OPEN_SOURCE=3,
    EDGE_NONE=1, EDGE_RISING=2, EDGE_FALLING=3, EDGE_BOTH=4,
    EDGE_EVENT_TYPE_RISING=1, EDGE_EVENT_TYPE_FALLING=2,
    INFO_EVENT_TYPE_LINE_REQUESTED=1, INFO_EVENT_TYPE_LINE_RELEASED=2,
    INFO_EVENT_TYPE_LINE_CONFIG_CHANGED=3,
    VALUE_INACTIVE=0, VALUE_ACTIVE=1)
C = type("C", (), CONSTANTS)


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))  # OSError() picks the subclass, as the C ext does


@dataclass
class Line:
    """One pin as the hardware sees it, plus the kernel's request bookkeeping."""

    name: str = ""
    output: bool = False
    level: int = 0  # electrical level driven while an output
    pull: int = C.BIAS_PULL_DOWN  # Pi GPIO 9-27 come up pulled down
    owner: Request | None = None
    consumer: str = ""
    active_low: bool = False
    writes: list[int] = field(default_factory=list)  # every electrical level driven

    def electrical(self) -> int:
        """What a relay input sees: the driven level, else the pull (floating reads 0)."""
        if self.output:
            return self.level
        return 1 if self.pull == C.BIAS_PULL_UP else 0

    def claim(self, req: Request, consumer: str) -> None:
        if self.owner is not None:
            raise _err(errno.EBUSY)
        self.owner, self.consumer = req, consumer

    def unclaim(self, strict: bool) -> None:
        self.owner, self.consumer, self.active_low = None, "", False
        if strict:
            self.output = False


class FileLine:
    """A Line shared between processes: its state in a JSON file, its owner an flock on a
    lock file, which the kernel drops when the owning process dies (as it closes a line
    request's fd). With ``strict`` a line nobody owns is an input, however it was left."""

    FIELDS = ("output", "level", "pull", "active_low", "consumer", "writes")

    def __init__(self, base: Path, strict: bool, name: str = ""):
        self.name, self._base, self._strict = name, base, strict
        self._lock_fd = -1
        if not base.with_suffix(".json").exists():
            self._save(dict(output=False, level=0, pull=C.BIAS_PULL_DOWN, active_low=False,
                            consumer="", writes=[]))

    def _load(self) -> dict[str, Any]:
        return json.loads(self._base.with_suffix(".json").read_text())

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self._base.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._base.with_suffix(".json"))

    def __getattr__(self, name: str) -> Any:
        if name not in FileLine.FIELDS:
            raise AttributeError(name)
        data = self._load()
        if name == "output":
            return data["output"] and not (self._strict and self.owner is None)
        return data[name]

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in FileLine.FIELDS:
            object.__setattr__(self, name, value)
            return
        data = self._load()
        data[name] = value
        self._save(data)

    @property
    def owner(self) -> object | None:
        """Someone holds the line (a probe lock fails), or None."""
        if self._lock_fd >= 0:
            return self
        fd = os.open(self._base.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "another process"
        finally:
            os.close(fd)  # closing drops the probe's lock
        return None

    def electrical(self) -> int:
        return Line.electrical(self)

    def claim(self, req: Request, consumer: str) -> None:
        fd = os.open(self._base.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _err(errno.EBUSY) from None
        if self._strict:
            self.output = False  # whatever a dead owner left: an input now
        self._lock_fd, self.consumer = fd, consumer

    def unclaim(self, strict: bool) -> None:
        self.consumer, self.active_low = "", False
        os.close(self._lock_fd)
        self._lock_fd = -1


@dataclass
class ChipState:
    path: str
    name: str
    label: str
    lines: list[Line]
    denied: bool = False  # the device node is not ours to open
    strict: bool = False  # released lines become inputs (upstream, dtparam=strict_gpiod)


class Kernel:
    """Every simulated chip, by device path; the device nodes are plain files in ``dev``."""

    def __init__(self, dev: Path, shared: bool = False):
        self.dev, self.shared = dev, shared
        self.chips: dict[str, ChipState] = {}
        self._layer: ModuleType | None = None

    @property
    def layer(self) -> ModuleType:
        """The gpiod package loaded over this kernel (in a child process: the one imported)."""
        return self._layer or sys.modules["gpiod"]

    @layer.setter
    def layer(self, module: ModuleType) -> None:
        self._layer = module

    def add_chip(self, number: int, label: str, num_lines: int = 54,
                 names: dict[int, str] | None = None, strict: bool = False,
                 **kw: Any) -> ChipState:
        """A chip; ``shared``: its lines in files under dev/.gpio, for other processes too
        (``Kernel.load`` there), and the chip listed in dev/.gpio/chips.json."""
        path = self.dev / f"gpiochip{number}"
        path.touch()
        if self.shared:
            state = self.dev / ".gpio"
            state.mkdir(exist_ok=True)
            lines = [FileLine(state / f"{path.name}.{i}", strict, (names or {}).get(i, ""))
                     for i in range(num_lines)]
            listed = state / "chips.json"
            chips = json.loads(listed.read_text()) if listed.exists() else []
            chips.append(dict(number=number, label=label, num_lines=num_lines, strict=strict))
            listed.write_text(json.dumps(chips))
        else:
            lines = [Line(name=(names or {}).get(i, "")) for i in range(num_lines)]
        chip = ChipState(str(path), path.name, label, lines, strict=strict, **kw)
        self.chips[str(path)] = chip
        return chip

    @classmethod
    def load(cls, dev: Path) -> Kernel:
        """Another process's view of a shared kernel."""
        kernel = cls(dev)
        kernel.shared = True
        for chip in json.loads((dev / ".gpio" / "chips.json").read_text()):
            base = dev / ".gpio" / f"gpiochip{chip['number']}"
            lines = [FileLine(base.with_name(f"{base.name}.{i}"), chip["strict"])
                     for i in range(chip["num_lines"])]
            path = str(dev / f"gpiochip{chip['number']}")
            kernel.chips[path] = ChipState(path, Path(path).name, chip["label"], lines,
                                           strict=chip["strict"])
        return kernel


class LineSettings:
    def __init__(self, direction: int, edge_detection: int, bias: int, drive: int,
                 active_low: bool, debounce_period: int, event_clock: int,
                 output_value: int) -> None:
        self.direction, self.bias, self.active_low = direction, bias, active_low
        self.output_value = output_value


class LineConfig:
    def __init__(self) -> None:
        self.settings: dict[int, LineSettings] = {}
        self.order: list[int] = []
        self.global_values: list[Any] | None = None

    def add_line_settings(self, offsets: list[int], settings: LineSettings) -> None:
        for offset in offsets:
            if offset not in self.settings:
                self.order.append(offset)
            self.settings[offset] = settings

    def set_output_values(self, global_output_values: list[Any]) -> None:
        self.global_values = list(global_output_values)

    def items(self) -> list[tuple[int, LineSettings, int]]:
        """(offset, settings, logical output value), the global values overriding."""
        out = []
        for i, offset in enumerate(self.order):
            settings = self.settings[offset]
            value = settings.output_value
            if self.global_values is not None and i < len(self.global_values):
                value = getattr(self.global_values[i], "value", self.global_values[i])
            out.append((offset, settings, int(value)))
        return out


def _validate(settings: LineSettings) -> None:
    if settings.bias != C.BIAS_AS_IS and settings.direction == C.DIRECTION_AS_IS:
        raise _err(errno.EINVAL)  # gpiolib-cdev: "Bias requires explicit direction"


def _apply(line: Line, settings: LineSettings, value: int) -> None:
    line.active_low = settings.active_low
    if settings.direction == C.DIRECTION_OUTPUT:
        line.output = True
        line.level = int(bool(value) != settings.active_low)
        line.writes = [*line.writes, line.level]
    elif settings.direction == C.DIRECTION_INPUT:
        line.output = False
    if settings.bias in (C.BIAS_PULL_UP, C.BIAS_PULL_DOWN, C.BIAS_DISABLED):
        line.pull = settings.bias


class Request:
    def __init__(self, kernel: Kernel, chip: ChipState, offsets: list[int]):
        self._kernel, self._chip, self._offsets, self._live = kernel, chip, offsets, True
        self._fd = os.open(os.devnull, os.O_RDONLY)

    def _lines(self, offsets: Any) -> list[Line]:
        if not self._live:
            raise _err(errno.EBADF)
        if any(o not in self._offsets for o in offsets):
            raise _err(errno.EINVAL)
        return [self._chip.lines[o] for o in offsets]

    def release(self) -> None:
        if not self._live:
            return
        self._live = False
        os.close(self._fd)
        for offset in self._offsets:
            self._chip.lines[offset].unclaim(self._chip.strict)

    def get_values(self, offsets: list[int], values: list[Any]) -> None:
        value = self._kernel.layer.line.Value  # the C ext builds these too
        for i, line in enumerate(self._lines(offsets)):
            raw = line.level if line.output else line.electrical()
            values[i] = value(int(bool(raw) != line.active_low))

    def set_values(self, values: dict[int, Any]) -> None:
        lines = self._lines(list(values))
        if any(not line.output for line in lines):
            raise _err(errno.EPERM)
        for line, value in zip(lines, values.values(), strict=True):
            line.level = int(bool(getattr(value, "value", value)) != line.active_low)
            line.writes = [*line.writes, line.level]

    def reconfigure_lines(self, line_cfg: LineConfig) -> None:
        items = line_cfg.items()
        for _offset, settings, _value in items:
            _validate(settings)
        self._lines([offset for offset, _s, _v in items])
        for offset, settings, value in items:
            _apply(self._chip.lines[offset], settings, value)

    def read_edge_events(self, max_events: int | None) -> list[Any]:
        return []

    @property
    def chip_name(self) -> str:
        return self._chip.name

    @property
    def num_lines(self) -> int:
        return len(self._offsets)

    @property
    def offsets(self) -> list[int]:
        return list(self._offsets)

    @property
    def fd(self) -> int:
        return self._fd


def make_ext(kernel: Kernel) -> ModuleType:
    """A ``gpiod._ext`` module over ``kernel``."""
    ext = ModuleType("gpiod._ext")
    ext.__dict__.update(CONSTANTS)
    ext.api_version = "2.3 (fake)"
    ext.LineSettings, ext.LineConfig, ext.Request = LineSettings, LineConfig, Request

    def state(path: str) -> ChipState:
        if not Path(path).exists():
            raise _err(errno.ENOENT)
        chip = kernel.chips.get(path)
        if chip is None:
            raise _err(errno.ENODEV)  # what the real one says for /dev/null
        if chip.denied:
            raise _err(errno.EACCES)
        return chip

    class Chip:
        def __init__(self, path: str) -> None:
            self._state, self._path = state(path), path

        def get_info(self) -> Any:
            s = self._state
            return kernel.layer.chip_info.ChipInfo(s.name, s.label, len(s.lines))

        def line_offset_from_id(self, id: str) -> int:
            for i, line in enumerate(self._state.lines):
                if line.name and line.name == id:
                    return i
            raise _err(errno.ENOENT)

        def get_line_info(self, offset: int, watch: bool) -> Any:
            line = self._state.lines[offset]
            return kernel.layer.line_info.LineInfo(
                offset, line.name, line.owner is not None, line.consumer,
                C.DIRECTION_OUTPUT if line.output else C.DIRECTION_INPUT, line.active_low,
                line.pull, C.DRIVE_PUSH_PULL, C.EDGE_NONE, C.CLOCK_MONOTONIC, False, 0)

        def get_line_name(self, offset: int) -> str | None:
            return self._state.lines[offset].name or None

        def request_lines(self, line_cfg: LineConfig, consumer: str | None,
                          event_buffer_size: int | None) -> Request:
            items = line_cfg.items()
            for offset, settings, _value in items:
                if offset >= len(self._state.lines):
                    raise _err(errno.EINVAL)
                _validate(settings)
            req = Request(kernel, self._state, [offset for offset, _s, _v in items])
            claimed = []
            try:
                for offset, _settings, _value in items:
                    self._state.lines[offset].claim(req, consumer or "?")
                    claimed.append(offset)
            except OSError:
                for offset in claimed:
                    self._state.lines[offset].unclaim(False)
                raise
            for offset, settings, value in items:
                _apply(self._state.lines[offset], settings, value)
            return req

        def read_info_event(self) -> Any:
            raise _err(errno.EAGAIN)

        def close(self) -> None:
            pass

        def unwatch_line_info(self, line: int) -> None:
            pass

        @property
        def path(self) -> str:
            return self._path

        @property
        def fd(self) -> int:
            return -1

    ext.Chip = Chip
    ext.is_gpiochip_device = lambda path: path in kernel.chips and Path(path).exists()
    return ext


def gpiod_over(kernel: Kernel) -> ModuleType:
    """The real ``gpiod`` package, imported afresh with the fake ``_ext`` under it; the
    caller installs it as sys.modules["gpiod"] (monkeypatch) for the code under test."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules)
             if k == "gpiod" or k.startswith("gpiod.")}
    sys.modules["gpiod._ext"] = make_ext(kernel)
    try:
        module = importlib.import_module("gpiod")
        fresh = {k: sys.modules[k] for k in list(sys.modules)
                 if k == "gpiod" or k.startswith("gpiod.")}
    finally:
        for k in [k for k in sys.modules if k == "gpiod" or k.startswith("gpiod.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    module.fake_modules = fresh  # everything to install together (gpiod.line, ...)
    kernel.layer = module
    return module


def pi5(dev: Path, monkeypatch: Any, names: dict[int, str] | None = None) -> Kernel:
    """A Pi 5 on an older kernel (the header's pinctrl-rp1 is gpiochip4, ``kernel.rp1``),
    installed as the ``gpiod`` package the code under test imports."""
    dev.mkdir(parents=True, exist_ok=True)
    kernel = Kernel(dev)
    for n, (label, lines) in enumerate((("gpio-brcmstb@107d508500", 32),
                                        ("gpio-brcmstb@107d508520", 4),
                                        ("gpio-brcmstb@107d517c00", 17),
                                        ("gpio-brcmstb@107d517c20", 6))):
        kernel.add_chip(n, label, lines)
    kernel.rp1 = kernel.add_chip(4, "pinctrl-rp1", 54, names=names)
    for name, module in gpiod_over(kernel).fake_modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return kernel
