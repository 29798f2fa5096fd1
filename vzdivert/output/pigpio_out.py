"""Output through the pigpio daemon: hardware PWM on GPIO 12/13/18/19, software PWM on the
other GPIOs. Reconnects after pigpiod restarts and re-applies frequency, range and duty."""

from __future__ import annotations

import atexit
import socket
import struct
from typing import Any

import pigpio

from vzdivert.config import HW_PWM_GPIOS
from vzdivert.output.base import Backend, Output, OutputError, OutputSpec, Switch

HW_RANGE = 1_000_000  # hardware PWM duty units
SW_MAX_FREQUENCY_HZ = 40_000  # fastest software PWM pigpiod offers (1 us sample rate)
IO_TIMEOUT_S = 1.0  # pigpiod answers in well under a millisecond; a stopped one never does
_IO_ERRORS = (OSError, struct.error)  # what pigpio raises when its connection is gone
_HINTS = {
    pigpio.PI_NOT_PERMITTED: "pigpiod does not permit writing this GPIO (its -x update mask; "
                             "by default only GPIO 2-27 may be written)",
    pigpio.PI_NOT_HPWM_GPIO: "hardware PWM exists only on GPIO 12, 13, 18 and 19",
    pigpio.PI_BAD_HPWM_FREQ: "the frequency is out of the hardware PWM range",
    pigpio.PI_BAD_USER_GPIO: "software PWM works on GPIO 0-31 only",
}
_HINT_BY_TEXT = {pigpio.error_text(code): hint for code, hint in _HINTS.items()}


def config_problems(out: Any) -> list[str]:
    """What is wrong with an ``[output]`` section for this driver, without connecting."""
    problems = []
    hardware = out.gpio in HW_PWM_GPIOS
    if not hardware and out.gpio > 31:
        problems.append(f"output.gpio: GPIO {out.gpio} has no hardware PWM and pigpio's "
                        f"software PWM works on GPIO 0-31 only (hardware PWM: 12, 13, 18, 19)")
    if not hardware and out.frequency_hz > SW_MAX_FREQUENCY_HZ:
        problems.append(f"output.frequency_hz: software PWM on GPIO {out.gpio} reaches at most "
                        f"{SW_MAX_FREQUENCY_HZ} Hz; use a hardware PWM GPIO (12, 13, 18, 19)")
    if out.status_gpio == out.gpio:
        problems.append("output.status_gpio: must differ from output.gpio")
    return problems


def _probe(host: str, port: int) -> str | None:
    """Why pigpiod at host:port cannot be used, or None. pigpio.pi() itself connects without
    a timeout and would hang on a stopped daemon or an unreachable host."""
    try:
        with socket.create_connection((host, port), timeout=IO_TIMEOUT_S) as s:
            s.sendall(struct.pack("<IIII", 16, 0, 0, 0))  # TICK
            got = b""
            while len(got) < 16:
                chunk = s.recv(16 - len(got))
                if not chunk:
                    return "it closed the connection"
                got += chunk
    except TimeoutError:
        return f"no answer within {IO_TIMEOUT_S:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


class _PigpioPin:
    """One pin's own connection to pigpiod: connects lazily after a loss, reconnects once
    per write when pigpiod restarted, and explains pigpio's error codes."""

    gpio: int
    host: str
    port: int

    def _connect(self) -> None:
        problem = _probe(self.host, self.port)
        if problem is not None:
            raise OutputError(f"cannot reach pigpiod at {self.host}:{self.port}: {problem} "
                              f"(is it running? sudo systemctl enable --now pigpiod)")
        pi = pigpio.pi(self.host, self.port, show_errors=False)  # no banner on stdout
        if not pi.connected:
            raise OutputError(f"cannot connect to pigpiod at {self.host}:{self.port}")
        atexit.unregister(pi.stop)  # we stop it; atexit would keep every dead handle alive
        self._close_notifications(pi)
        pi.sl.s.settimeout(IO_TIMEOUT_S)
        self._pi = pi
        self._connected(pi)

    def _connected(self, pi: pigpio.pi) -> None:
        """A fresh connection: forget what was written, configure the pin."""
        try:
            self._configure(pi)
        except OutputError:
            self._disconnect()
            raise
        except pigpio.error as exc:
            self._disconnect()
            raise OutputError(self._explain(exc)) from exc
        except _IO_ERRORS as exc:
            self._disconnect()
            raise OutputError(f"lost pigpiod at {self.host}:{self.port}: {exc}") from exc

    def _configure(self, pi: pigpio.pi) -> None:
        """Set up the pin on a fresh connection (nothing for a plain level)."""

    def _write_retrying(self, write: Any, value: Any) -> None:
        """``write(value)`` on the connection; after a lost connection, once more on a new
        one (pigpiod restarted: re-applied)."""
        if self._pi is None:
            self._connect()
        try:
            write(value)
            return
        except pigpio.error as exc:
            raise OutputError(self._explain(exc)) from exc
        except _IO_ERRORS:
            self._disconnect()
        self._connect()
        try:
            write(value)
        except pigpio.error as exc:
            raise OutputError(self._explain(exc)) from exc
        except _IO_ERRORS as exc:
            self._disconnect()
            raise OutputError(f"lost pigpiod at {self.host}:{self.port}: {exc}") from exc

    @staticmethod
    def _close_notifications(pi: pigpio.pi) -> None:
        # pigpio.pi() always starts a notification thread; we need no callbacks, and in pigpio
        # 1.78 that thread spins at 100% CPU once pigpiod goes away (recv() returning b"" in a
        # loop) -- next to the real-time loop. Closing it now costs one round trip.
        notify = getattr(pi, "_notify", None)
        if notify is not None:
            try:
                notify.stop()
            except OSError:
                pass
            pi._notify = None

    def _disconnect(self) -> None:
        pi, self._pi = self._pi, None
        if pi is not None:
            try:
                pi.stop()  # closes the sockets; pigpiod keeps the output running
            except OSError:
                pass

    def _explain(self, exc: pigpio.error) -> str:
        text = str(getattr(exc, "value", exc))
        hint = _HINT_BY_TEXT.get(text)
        where = f"pigpiod {self.host}:{self.port}, GPIO {self.gpio}"
        return f"{where}: {text}" + (f" -- {hint}" if hint else "")

    def close(self) -> None:
        self._disconnect()


class PigpioOutput(_PigpioPin, Output):
    """PWM output through pigpiod. ``set``/``off`` raise OutputError when pigpiod cannot be
    reached; the next call tries again, so the caller just keeps writing."""

    def __init__(self, out: Any):
        problems = config_problems(out)
        if problems:
            raise OutputError("; ".join(problems))
        self.gpio = int(out.gpio)
        self.frequency_hz = int(out.frequency_hz)
        self.host, self.port = str(out.pigpio_host), int(out.pigpio_port)
        self.pwm_range = int(out.pwm_range)
        self.status_gpio = int(out.status_gpio)
        self.hardware = self.gpio in HW_PWM_GPIOS
        self.actual_frequency_hz = self.frequency_hz  # as pigpiod reports it once connected
        self.real_range = HW_RANGE if self.hardware else self.pwm_range
        self._pi: pigpio.pi | None = None
        self._duty: float | None = None  # last duty written on the current connection
        self._status_lit: bool | None = None
        self._connect()

    @property
    def resolution(self) -> float:  # type: ignore[override]
        """Smallest duty step the output can make; read_back() differs from set() by less."""
        return 1.0 / min(self.real_range, self.pwm_range if not self.hardware else HW_RANGE)

    def _connected(self, pi: pigpio.pi) -> None:
        self._duty, self._status_lit = None, None
        super()._connected(pi)

    def _configure(self, pi: pigpio.pi) -> None:
        if self.hardware:
            return  # hardware_PWM carries the frequency with every duty
        actual = pi.set_PWM_frequency(self.gpio, self.frequency_hz)
        if not 0.5 <= actual / self.frequency_hz <= 2.0:
            raise OutputError(
                f"output.frequency_hz: pigpiod offers {actual} Hz software PWM on GPIO "
                f"{self.gpio}, far from the {self.frequency_hz} Hz asked (10-8000 Hz at its "
                f"default 5 us sample rate); or use a hardware PWM GPIO (12, 13, 18, 19)")
        self.actual_frequency_hz = actual
        self.real_range = pi.set_PWM_range(self.gpio, self.pwm_range)

    # -- output interface ------------------------------------------------------------------

    def set(self, duty: float) -> None:
        duty = min(1.0, max(0.0, duty)) if duty == duty else 0.0  # NaN: the safe value
        self._write_retrying(self._write, duty)

    def _write(self, duty: float) -> None:
        pi = self._pi
        assert pi is not None
        if self.hardware:
            pi.hardware_PWM(self.gpio, self.frequency_hz, int(duty * HW_RANGE + 0.5))
            if self._duty is None:  # first write on this connection: learn the real frequency
                self.actual_frequency_hz = pi.get_PWM_frequency(self.gpio)
                self.real_range = pi.get_PWM_real_range(self.gpio)
        else:
            pi.set_PWM_dutycycle(self.gpio, int(duty * self.pwm_range + 0.5))
        self._duty = duty
        if self.status_gpio >= 0 and (duty > 0) != self._status_lit:
            pi.write(self.status_gpio, int(duty > 0))
            self._status_lit = duty > 0

    def off(self) -> None:
        self.set(0.0)

    def read_back(self) -> float | None:
        """The duty pigpiod is running on the pin, or None if unknown (no connection, or
        pigpiod does not know the pin as PWM although it may still be routed to the PWM
        hardware, e.g. after a pigpiod restart)."""
        pi = self._pi
        if pi is None:
            return None
        try:
            try:
                raw = pi.get_PWM_dutycycle(self.gpio)
            except pigpio.error:
                if pi.get_mode(self.gpio) == pigpio.OUTPUT:  # a plain level: that is the duty
                    return float(pi.read(self.gpio))
                return None
        except _IO_ERRORS:
            self._disconnect()  # the next set() reconnects and re-applies
            return None
        if self.hardware:
            return raw / HW_RANGE
        # What the pin really does: pigpiod scales the duty onto the frequency's real range.
        return (raw * self.real_range // self.pwm_range) / self.real_range

    def set_frequency(self, hz: int) -> None:
        """Change the PWM frequency live; the duty stays."""
        hz = int(hz)
        if hz < 1 or (not self.hardware and hz > SW_MAX_FREQUENCY_HZ):
            raise OutputError(f"output.frequency_hz: {hz} Hz is not possible on GPIO {self.gpio}")
        self.frequency_hz = hz
        pi = self._pi
        if pi is None:
            return  # applied by the next connect
        try:
            if self.hardware:
                if self._duty is not None:
                    pi.hardware_PWM(self.gpio, hz, int(self._duty * HW_RANGE + 0.5))
                    self.actual_frequency_hz = pi.get_PWM_frequency(self.gpio)
                    self.real_range = pi.get_PWM_real_range(self.gpio)
            else:
                self._configure(pi)
        except pigpio.error as exc:
            raise OutputError(self._explain(exc)) from exc
        except _IO_ERRORS:
            self._disconnect()

    def describe(self) -> str:
        where = f"pigpiod {self.host}:{self.port}"
        status = f", status GPIO {self.status_gpio}" if self.status_gpio >= 0 else ""
        if self.hardware:
            return (f"pigpio hardware PWM on GPIO {self.gpio} at {self.actual_frequency_hz} Hz "
                    f"({where}){status}")
        asked = (f" (asked {self.frequency_hz})"
                 if self.actual_frequency_hz != self.frequency_hz else "")
        return (f"pigpio software PWM on GPIO {self.gpio} at {self.actual_frequency_hz} Hz{asked}"
                f", range {self.pwm_range} (real {self.real_range}) ({where}){status}")


class PigpioSwitch(_PigpioPin, Switch):
    """A relay on a plain GPIO level through pigpiod (WRITE); ``active_low`` inverts."""

    def __init__(self, out: Any, gpio: int, active_low: bool = False):
        self.gpio, self.active_low = int(gpio), bool(active_low)
        self.host, self.port = str(out.pigpio_host), int(out.pigpio_port)
        self._pi = None
        self._connect()

    def _write(self, on: bool) -> None:
        assert self._pi is not None
        self._pi.write(self.gpio, int(on != self.active_low))

    def set(self, duty: float) -> None:
        self._write_retrying(self._write, self.level(duty))

    def off(self) -> None:
        self.set(0.0)

    def read_back(self) -> float | None:
        """1.0 when the relay is driven on, else 0.0 (a pin that is no output drives nothing:
        after a pigpiod restart or someone else's mode change); None without pigpiod."""
        pi = self._pi
        if pi is None:
            return None
        try:
            if pi.get_mode(self.gpio) != pigpio.OUTPUT:
                return 0.0
            return float(bool(pi.read(self.gpio)) != self.active_low)
        except pigpio.error:
            return None
        except _IO_ERRORS:
            self._disconnect()
            return None

    def describe(self) -> str:
        low = ", active low" if self.active_low else ""
        return f"pigpio GPIO {self.gpio} relay{low} (pigpiod {self.host}:{self.port})"


class PigpioBackend(Backend):
    def pwm(self, spec: OutputSpec) -> PigpioOutput:
        return PigpioOutput(spec.section)

    def switch(self, spec: OutputSpec) -> PigpioSwitch:
        return PigpioSwitch(spec.section, spec.gpio, spec.active_low)

    def problems(self, specs: list[OutputSpec]) -> list[str]:
        problems = []
        for spec in specs:
            if spec.kind == "pwm":
                problems += config_problems(spec.section)
            elif not 0 <= spec.gpio <= 53:
                problems.append(f"{spec.name}: GPIO {spec.gpio} does not exist")
        return problems
