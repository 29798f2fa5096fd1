"""A pigpiod stand-in: speaks pigpiod's socket protocol on loopback so the real ``pigpio``
client, and vzdivert's pigpio driver, run without a Raspberry Pi. It records every write.
Run it alone with ``python -m vzdivert.testing.pigpiod_emulator --port 8888``."""

from __future__ import annotations

import argparse
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

# Command numbers, as in pigpio.py / pigpiod's command.h.
MODES, MODEG, READ, WRITE, PWM, PRS, PFS = 0, 1, 3, 4, 5, 6, 7
BR1, BR2, TICK, HWVER, NB, NP, NC = 10, 11, 16, 17, 19, 20, 21
PRG, PFG, PRRG, PIGPV, GDC, HP, NOIB = 22, 23, 24, 26, 83, 86, 99
CMD_NAMES = {MODES: "MODES", WRITE: "WRITE", PWM: "PWM", PRS: "PRS", PFS: "PFS", HP: "HP"}

# Error codes (pigpio.h).
PI_BAD_USER_GPIO, PI_BAD_GPIO, PI_BAD_MODE, PI_BAD_LEVEL = -2, -3, -4, -5
PI_BAD_DUTYCYCLE, PI_BAD_DUTYRANGE, PI_NO_HANDLE, PI_BAD_HANDLE = -8, -21, -24, -25
PI_NOT_PERMITTED, PI_UNKNOWN_COMMAND, PI_NOT_PWM_GPIO = -41, -88, -92
PI_NOT_HPWM_GPIO, PI_BAD_HPWM_FREQ, PI_BAD_HPWM_DUTY = -95, -96, -97

INPUT, OUTPUT, ALT0, ALT1, ALT5 = 0, 1, 4, 5, 2
MAX_GPIO, MAX_USER_GPIO = 53, 31
HW_PWM_RANGE = 1_000_000
PIGPIO_VERSION = 79
DEFAULT_HW_REVISION = 0xC03111  # Raspberry Pi 4B (BCM2711)
DEFAULT_PERMITTED = 0x0FFFFFFC  # pigpiod's default update mask on a Pi 3B/4B: GPIO 2-27
NOTIFY_SLOTS = 32
_MAX_EXTENSION = 1 << 16  # pigpiod drops a connection announcing a bigger extension

# gpio -> (PWM channel, pin mode that routes the channel to it); 40+ are not on the header.
PWM_DEF = {12: (0, ALT0), 13: (1, ALT0), 18: (0, ALT5), 19: (1, ALT5),
           40: (0, ALT0), 41: (1, ALT0), 45: (1, ALT0), 52: (0, ALT1), 53: (1, ALT1)}

# Software PWM: DMA cycles per period and the resulting real range, per frequency index.
PWM_CYCLES = (1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50, 80, 100, 160, 200, 400, 800)
PWM_REAL_RANGE = (25, 50, 100, 125, 200, 250, 400, 500, 625,
                  800, 1000, 1250, 2000, 2500, 4000, 5000, 10000, 20000)
DEFAULT_PWM_IDX, DEFAULT_RANGE = 5, 255

# GPIO bookkeeping kinds (pigpio.c's gpioInfo[].is).
_UNDEFINED, _WRITE, _PWM, _HW_PWM = 0, 1, 2, 3
_WRITE_CMDS = frozenset((MODES, WRITE, PWM, PRS, PFS, HP))  # need permission; recorded
_REQ = struct.Struct("<IIII")


def pwm_frequencies(sample_us: int = 5) -> tuple[int, ...]:
    """pigpiod's software PWM frequencies for a sample rate, highest first (8000..10 at 5 us)."""
    return tuple(int(1_000_000.0 / (25 * sample_us * c) + 0.5) for c in PWM_CYCLES)


def snap_frequency_index(hz: int, freqs: tuple[int, ...]) -> int:
    """The frequency index pigpiod picks for ``hz``: nearest, first one wins a tie."""
    if hz > freqs[0]:
        return 0
    if hz < freqs[-1]:
        return len(freqs) - 1
    return min(range(len(freqs)), key=lambda i: abs(hz - freqs[i]))


class Event(NamedTuple):
    """One output write as the emulator received it."""
    t_mono: float  # time.monotonic() when the request had fully arrived
    t_ns: int  # time.perf_counter_ns() at the same moment, for latency measurements
    cmd: str  # MODES, WRITE, PWM, PRS, PFS or HP
    gpio: int
    values: tuple[int, ...]  # the command's arguments after the gpio
    result: int  # pigpiod's answer; negative is an error
    duty: float  # duty_fraction(gpio) right after the command


@dataclass
class _GpioInfo:  # pigpiod's per-GPIO bookkeeping; a restarted pigpiod starts afresh
    kind: int = _UNDEFINED
    width: int = 0
    range: int = DEFAULT_RANGE
    freq_idx: int = DEFAULT_PWM_IDX


@dataclass
class _Channel:  # a PWM peripheral channel: hardware, so it outlives pigpiod
    enabled: bool = False
    real_range: int = 0
    real_duty: int = 0


class PigpiodEmulator:
    """Threaded pigpiod emulator. ``stop()`` is pigpiod dying (clients cut off, hardware PWM
    keeps running, software PWM pins freeze -- assumed high, the worst case); ``start()`` again
    is a fresh pigpiod that has forgotten every setting while the pins keep their state."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 hw_revision: int = DEFAULT_HW_REVISION, permitted: int = DEFAULT_PERMITTED,
                 sample_us: int = 5, on_write: Callable[[Event], None] | None = None):
        self.host, self.port = host, port
        self.hw_revision = hw_revision
        self.permitted = permitted  # like pigpiod's -x mask: bit n set = GPIO n may be written
        self.on_write = on_write  # called in the connection thread after each write's reply
        self.freqs = pwm_frequencies(sample_us)
        is_2711 = bool(hw_revision & 0x800000) and (hw_revision >> 12) & 0xF == 3
        self.plld_hz = 750_000_000 if is_2711 else 500_000_000
        self.hw_max_hz = 187_500_000 if is_2711 else 125_000_000
        self._cond = threading.Condition(threading.RLock())
        self._events: list[Event] = []
        # The board: pin modes and levels, software PWM being generated, PWM channels.
        self._modes = [INPUT] * (MAX_GPIO + 1)
        self._levels = 0
        self._sw: dict[int, float] = {}  # gpio -> duty of the DMA-generated pulses
        self._channels = [_Channel(), _Channel()]
        self._reset_daemon()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []

    def _reset_daemon(self) -> None:
        self._info = [_GpioInfo() for _ in range(MAX_GPIO + 1)]
        self._hw_freq, self._hw_duty, self._hw_real_range = [0, 0], [0, 0], [0, 0]
        self._notify: dict[int, tuple[socket.socket, int]] = {}  # handle -> (socket, bits)
        self._t0_ns = time.monotonic_ns()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PigpiodEmulator:
        with self._cond:
            if self._listener is not None:
                raise RuntimeError("emulator already running")
            self._reset_daemon()
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart on same port
            lsock.bind((self.host, self.port))
            lsock.listen(16)
            self.port = lsock.getsockname()[1]
            self._listener = lsock
        self._spawn(self._accept_loop, lsock)
        return self

    def stop(self) -> None:
        """pigpiod exits: every client connection is closed, the DMA stops."""
        with self._cond:
            lsock, self._listener = self._listener, None
            conns = list(self._conns)
            threads, self._threads = self._threads, []
        if lsock is None:
            return
        for s in [lsock, *conns]:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()/recv()
            except OSError:
                pass
        lsock.close()
        for t in threads:
            t.join(timeout=5)
        with self._cond:
            # Software PWM stops mid-pulse and the pin keeps whatever level it had: assume high.
            for gpio in self._sw:
                self._set_level(gpio, True)
            self._sw.clear()
            self._cond.notify_all()

    def __enter__(self) -> PigpiodEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test API ----------------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def clear_events(self) -> None:
        with self._cond:
            self._events.clear()

    @property
    def connection_count(self) -> int:
        """Open client connections (pigpio.pi() opens two: commands and notifications)."""
        with self._cond:
            return len(self._conns)

    def duty_fraction(self, gpio: int) -> float:
        """The duty the pin really outputs (0..1), whatever drives it: hardware PWM, software
        PWM (quantised to its real range) or a plain level."""
        with self._cond:
            mode = self._modes[gpio]
            pwm = PWM_DEF.get(gpio)
            if pwm is not None and mode == pwm[1]:
                ch = self._channels[pwm[0]]
                return ch.real_duty / ch.real_range if ch.enabled and ch.real_range else 0.0
            if mode == OUTPUT:
                return self._sw.get(gpio, float(self._levels >> gpio & 1))
            return 0.0

    def mode(self, gpio: int) -> int:
        with self._cond:
            return self._modes[gpio]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``predicate()`` is true (re-checked after every command and connection
        change); False if ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    # -- network -----------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True,
                             name=f"pigpiod-emu-{target.__name__}")
        with self._cond:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _accept_loop(self, lsock: socket.socket) -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return  # listener shut down by stop()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                if self._listener is not lsock:
                    conn.close()
                    return
                self._conns.add(conn)
                self._cond.notify_all()
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        head = bytearray(16)
        try:
            while True:
                if not _recv_into(conn, head):
                    return
                cmd, p1, p2, p3 = _REQ.unpack(head)
                ext = b""
                if p3:
                    if p3 >= _MAX_EXTENSION:
                        return
                    buf = bytearray(p3)
                    if not _recv_into(conn, buf):
                        return
                    ext = bytes(buf)
                t_mono, t_ns = time.monotonic(), time.perf_counter_ns()
                with self._cond:
                    res = self._execute(conn, cmd, p1, p2, ext)
                    event = None
                    if cmd in _WRITE_CMDS:
                        values = (p2, _u32(ext)) if cmd == HP else (p2,)
                        duty = self.duty_fraction(p1) if p1 <= MAX_GPIO else 0.0
                        event = Event(t_mono, t_ns, CMD_NAMES[cmd], p1, values, res, duty)
                        self._events.append(event)
                    self._cond.notify_all()
                # pigpiod echoes cmd, p1, p2 and puts the result in place of p3.
                conn.sendall(_REQ.pack(cmd, p1, p2, res & 0xFFFFFFFF))
                hook = self.on_write
                if event is not None and hook is not None:
                    hook(event)
                    with self._cond:
                        self._cond.notify_all()  # wait_for() may be watching what the hook did
        except OSError:
            return
        finally:
            with self._cond:
                self._conns.discard(conn)
                for handle in [h for h, (s, _) in self._notify.items() if s is conn]:
                    del self._notify[handle]  # pigpiod's closeOrphanedNotifications
                self._cond.notify_all()
            conn.close()

    # -- pigpiod semantics (pigpio.c) --------------------------------------------------------

    def _execute(self, conn: socket.socket, cmd: int, p1: int, p2: int, ext: bytes) -> int:
        if cmd in _WRITE_CMDS and p1 <= MAX_GPIO and not self.permitted >> p1 & 1:
            return PI_NOT_PERMITTED
        handler = self._HANDLERS.get(cmd)
        if handler is None:
            return PI_UNKNOWN_COMMAND
        return handler(self, conn, p1, p2, ext)

    def _set_level(self, gpio: int, high: bool) -> None:
        if high:
            self._levels |= 1 << gpio
        else:
            self._levels &= ~(1 << gpio)

    def _sw_pwm(self, gpio: int, width: int) -> None:
        """What the DMA generates for ``width`` (pigpio's myGpioSetPwm)."""
        info = self._info[gpio]
        real_range = PWM_REAL_RANGE[info.freq_idx]
        on = width * real_range // info.range
        if on:
            self._sw[gpio] = on / real_range
        elif self._sw.pop(gpio, None) is not None:
            self._set_level(gpio, False)  # pigpio clears the pin when PWM stops

    def _switch_function_off(self, gpio: int) -> None:
        info = self._info[gpio]
        if info.kind == _PWM:
            self._sw_pwm(gpio, 0)
        info.width = 0  # hardware PWM is left running, as pigpio does

    def _modes_cmd(self, conn: socket.socket, gpio: int, mode: int, ext: bytes) -> int:
        if gpio > MAX_GPIO:
            return PI_BAD_GPIO
        if mode > 7:
            return PI_BAD_MODE
        if mode != self._modes[gpio]:
            self._switch_function_off(gpio)
            self._info[gpio].kind = _UNDEFINED
        self._modes[gpio] = mode
        return 0

    def _modeg(self, conn: socket.socket, gpio: int, p2: int, ext: bytes) -> int:
        return PI_BAD_GPIO if gpio > MAX_GPIO else self._modes[gpio]

    def _read(self, conn: socket.socket, gpio: int, p2: int, ext: bytes) -> int:
        return PI_BAD_GPIO if gpio > MAX_GPIO else self._levels >> gpio & 1

    def _write(self, conn: socket.socket, gpio: int, level: int, ext: bytes) -> int:
        if gpio > MAX_GPIO:
            return PI_BAD_GPIO
        if level > 1:
            return PI_BAD_LEVEL
        info = self._info[gpio]
        if info.kind != _WRITE:
            self._switch_function_off(gpio)
            info.kind = _WRITE
        self._modes[gpio] = OUTPUT
        self._set_level(gpio, bool(level))
        return 0

    def _pwm(self, conn: socket.socket, gpio: int, width: int, ext: bytes) -> int:
        if gpio > MAX_USER_GPIO:
            return PI_BAD_USER_GPIO
        info = self._info[gpio]
        if width > info.range:
            return PI_BAD_DUTYCYCLE
        if info.kind != _PWM:
            self._switch_function_off(gpio)
            info.kind = _PWM
            if not width:
                self._set_level(gpio, False)
        self._modes[gpio] = OUTPUT
        info.width = width
        self._sw_pwm(gpio, width)
        return 0

    def _prs(self, conn: socket.socket, gpio: int, rng: int, ext: bytes) -> int:
        if gpio > MAX_USER_GPIO:
            return PI_BAD_USER_GPIO
        if not 25 <= rng <= 40000:
            return PI_BAD_DUTYRANGE
        info = self._info[gpio]
        if info.width and info.kind == _PWM:
            info.width = rng * info.width // info.range
            info.range = rng
            self._sw_pwm(gpio, info.width)
        info.range = rng
        return PWM_REAL_RANGE[info.freq_idx]

    def _pfs(self, conn: socket.socket, gpio: int, hz: int, ext: bytes) -> int:
        if gpio > MAX_USER_GPIO:
            return PI_BAD_USER_GPIO
        info = self._info[gpio]
        info.freq_idx = snap_frequency_index(hz, self.freqs)
        if info.width and info.kind == _PWM:
            self._sw_pwm(gpio, info.width)
        return self.freqs[info.freq_idx]

    def _gdc(self, conn: socket.socket, gpio: int, p2: int, ext: bytes) -> int:
        if gpio > MAX_USER_GPIO:
            return PI_BAD_USER_GPIO
        info = self._info[gpio]
        if info.kind == _PWM:
            return info.width
        if info.kind == _HW_PWM:
            return self._hw_duty[PWM_DEF[gpio][0]]
        return PI_NOT_PWM_GPIO

    def _prg(self, conn: socket.socket, gpio: int, p2: int, ext: bytes) -> int:
        if gpio > MAX_USER_GPIO:
            return PI_BAD_USER_GPIO
        info = self._info[gpio]
        return HW_PWM_RANGE if info.kind == _HW_PWM else info.range

    def _prrg(self, conn: socket.socket, gpio: int, p2: int, ext: bytes) -> int:
        if gpio > MAX_USER_GPIO:
            return PI_BAD_USER_GPIO
        info = self._info[gpio]
        if info.kind == _HW_PWM:
            return self._hw_real_range[PWM_DEF[gpio][0]]
        return PWM_REAL_RANGE[info.freq_idx]

    def _pfg(self, conn: socket.socket, gpio: int, p2: int, ext: bytes) -> int:
        if gpio > MAX_USER_GPIO:
            return PI_BAD_USER_GPIO
        info = self._info[gpio]
        if info.kind == _HW_PWM:
            return self._hw_freq[PWM_DEF[gpio][0]]
        return self.freqs[info.freq_idx]

    def _hp(self, conn: socket.socket, gpio: int, hz: int, ext: bytes) -> int:
        duty = _u32(ext)
        if gpio > MAX_GPIO:
            return PI_BAD_GPIO
        if gpio not in PWM_DEF:
            return PI_NOT_HPWM_GPIO
        if duty > HW_PWM_RANGE:
            return PI_BAD_HPWM_DUTY
        if hz and not 1 <= hz <= self.hw_max_hz:
            return PI_BAD_HPWM_FREQ
        pwm, alt = PWM_DEF[gpio]
        info, ch = self._info[gpio], self._channels[pwm]
        if hz:
            real_range = int(self.plld_hz / (2.0 * hz) + 0.5)
            self._hw_freq[pwm] = int(self.plld_hz / (2.0 * real_range) + 0.5)
            self._hw_duty[pwm], self._hw_real_range[pwm] = duty, real_range
            ch.enabled, ch.real_range = True, real_range
            ch.real_duty = duty * real_range // HW_PWM_RANGE
            if info.kind != _HW_PWM:
                self._switch_function_off(gpio)
                self._modes[gpio] = alt
                info.kind = _HW_PWM
        elif info.kind == _HW_PWM:  # frequency 0 stops the channel
            ch.enabled = False
            info.kind = _UNDEFINED
        return 0

    def _br1(self, conn: socket.socket, p1: int, p2: int, ext: bytes) -> int:
        return self._levels & 0xFFFFFFFF

    def _br2(self, conn: socket.socket, p1: int, p2: int, ext: bytes) -> int:
        return self._levels >> 32 & 0x3FFFFF

    def _tick(self, conn: socket.socket, p1: int, p2: int, ext: bytes) -> int:
        return (time.monotonic_ns() - self._t0_ns) // 1000 & 0xFFFFFFFF

    def _hwver(self, conn: socket.socket, p1: int, p2: int, ext: bytes) -> int:
        return self.hw_revision

    def _pigpv(self, conn: socket.socket, p1: int, p2: int, ext: bytes) -> int:
        return PIGPIO_VERSION

    def _noib(self, conn: socket.socket, p1: int, p2: int, ext: bytes) -> int:
        # The socket becomes an in-band notification stream. Level-change reports are not
        # emulated: the handle exists so that pigpio.pi() connects as it does to pigpiod.
        free = [h for h in range(NOTIFY_SLOTS) if h not in self._notify]
        if not free:
            return PI_NO_HANDLE
        self._notify[free[0]] = (conn, 0)
        return free[0]

    def _nb(self, conn: socket.socket, handle: int, bits: int, ext: bytes) -> int:
        if handle not in self._notify:
            return PI_BAD_HANDLE
        self._notify[handle] = (self._notify[handle][0], bits)
        return 0

    def _np(self, conn: socket.socket, handle: int, p2: int, ext: bytes) -> int:
        return self._nb(conn, handle, 0, ext)

    def _nc(self, conn: socket.socket, handle: int, p2: int, ext: bytes) -> int:
        return 0 if self._notify.pop(handle, None) is not None else PI_BAD_HANDLE

    _HANDLERS: dict[int, Callable[..., int]] = {
        MODES: _modes_cmd, MODEG: _modeg, READ: _read, WRITE: _write, PWM: _pwm, PRS: _prs,
        PFS: _pfs, BR1: _br1, BR2: _br2, TICK: _tick, HWVER: _hwver, NB: _nb, NP: _np,
        NC: _nc, PRG: _prg, PFG: _pfg, PRRG: _prrg, PIGPV: _pigpv, GDC: _gdc, HP: _hp,
        NOIB: _noib,
    }


def _u32(ext: bytes) -> int:
    """The 4-byte extension argument (pigpiod reads it whatever p3 says)."""
    return struct.unpack("<I", ext[:4].ljust(4, b"\0"))[0]


def _recv_into(conn: socket.socket, buf: bytearray) -> bool:
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = conn.recv_into(view[got:])
        if not n:
            return False
        got += n
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vzdivert.testing.pigpiod_emulator",
        description="Emulate pigpiod on loopback so the pigpio output can run without a Pi.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8888, help="TCP port (0: any free port)")
    parser.add_argument("--quiet", action="store_true", help="do not print each write")
    args = parser.parse_args(argv)

    def show(ev: Event) -> None:
        values = " ".join(str(v) for v in ev.values)
        print(f"{ev.cmd} gpio={ev.gpio} {values} -> {ev.result} (duty {ev.duty:.3f})", flush=True)

    emu = PigpiodEmulator(args.host, args.port, on_write=None if args.quiet else show)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        emu.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"pigpiod emulator listening on {emu.host}:{emu.port}", flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
