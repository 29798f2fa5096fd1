"""Fault-injection catalogue against the real system (pigpio driver on the pigpiod emulator):
for each fault the expected and measured time to output 0 and to recovery, as a table.
"Output 0" means every output: the PWM load and a relay stage (GPIO 17) both off.
Run: .venv/bin/python bench/faults.py   (about a minute; exit status 1 if a fault missed)"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not bench/: bench/ingest.py would shadow the ingest package
sys.path.insert(1, str(REPO / "tests"))

from syshelp import System, reading, vzlogger_post, wait_for, worker_pids  # noqa: E402

from vzdivert import bus  # noqa: E402
from vzdivert.config import load  # noqa: E402
from vzdivert.supervisor.arbiter import (  # noqa: E402
    INGEST_HANG_S,
    START_GRACE_S,
    TICK_S,
    WEBUI_HANG_S,
)
from vzdivert.supervisor.children import BACKOFF_MAX_S, BACKOFF_MIN_S, HEALTHY_AFTER_S  # noqa: E402
from vzdivert.testing.pigpiod_emulator import Event, PigpiodEmulator  # noqa: E402

GPIO = 12
RELAY_GPIO = 17  # a relay stage, on while the open-loop export asks for all the loads
RELAYS = f"""
[load]
relay_on_after_s = 0

[[relays]]
name = "stage 2"
gpio = {RELAY_GPIO}
rating_w = 1000
min_on_s = 0
min_off_s = 0
"""
POST_EVERY_S = 0.1  # export readings, like a fast vzlogger
SURPLUS_W = 3600.0  # closed loop: the meter shows what the pins draw minus this surplus
LOAD_W, RELAY_W = 2000.0, 1000.0  # the default [load] rating_w; the relay stage's rating
IMMEDIATE_S = 0.5  # "immediately": a supervisor tick plus one pigpiod connection
FIRST_READING_S = 0.1  # recovery on the first good reading: one reading's latency, generously
SAFE_OFF_S = 2.0  # `vzdivert safe-off`: one Python start-up and one pigpiod round trip
PIGPIOD_DOWN_S = 1.0
START_SLACK_S = 1.0  # on top of the measured cold start, for restarts on a shared machine
SETTLE_S = 1.0  # a restarted child runs this long before the next fault is injected


def worker_pid(config: Path) -> int | None:
    """The live rtworker of this system, from /proc (the UI's view lags up to a second)."""
    return next(iter(worker_pids(config)), None)


class Feeder(threading.Thread):
    """Posts a reading every POST_EVERY_S to the current ingest port: what the emulator's
    pins draw minus a 3.6 kW surplus, with 40 W noise (the worker writes the duty on every
    reading; the relay stage stays on). Modes: good, nan, pause.
    Records (send time, HTTP status or None, mode) of every post."""

    def __init__(self, emu: PigpiodEmulator):
        super().__init__(daemon=True, name="feeder")
        self.emu, self.port, self.mode = emu, 0, "pause"
        self.posts: list[tuple[float, int | None, str]] = []
        self.busy, self.wake, self.done = threading.Lock(), threading.Event(), threading.Event()
        self.rng, self.last_ms = random.Random(1), 0

    def set_mode(self, mode: str) -> float:
        """Switch after any post in flight; post at once; return the switch time."""
        with self.busy:
            self.mode = mode
            t = time.monotonic()
        self.wake.set()
        return t

    def run(self) -> None:
        while not self.done.is_set():
            with self.busy:
                if self.mode != "pause" and self.port:
                    self.post_one()
            self.wake.wait(POST_EVERY_S)
            self.wake.clear()

    def post_one(self) -> None:
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)  # strictly newer
        grid_w = (self.emu.duty_fraction(GPIO) * LOAD_W
                  + self.emu.duty_fraction(RELAY_GPIO) * RELAY_W - SURPLUS_W
                  + self.rng.gauss(0, 40))
        value = "NaN" if self.mode == "nan" else f"{grid_w:.3f}"
        t_send, status = time.monotonic(), None
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=0.5)
        try:  # short timeout: a stopped ingest must not hold up the next reading
            status = vzlogger_post(self.port, f"leistung value={value} {self.last_ms}\n",
                                   conn=conn)[0]
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        self.posts.append((t_send, status, self.mode))

    def last_good_send(self) -> float:
        return max(t for t, status, mode in self.posts if status == 204 and mode == "good")

    def first_good_send(self, after: float) -> float | None:
        return next((t for t, status, mode in self.posts
                     if t >= after and status == 204 and mode == "good"), None)


@dataclass
class Row:
    fault: str
    zero_expected: str
    zero_bound_s: float | None  # None: the fault must never zero the output
    zero_s: float | None  # measured; None: no zero written
    rec_expected: str = "-"
    rec_bound_s: float | None = None  # None: control was not interrupted, nothing to recover
    rec_s: float | None = None
    note: str = ""
    also_ok: bool = True  # a fault-specific condition (see note)

    def verdict(self) -> str:
        if self.zero_bound_s is None:
            zero_ok = self.zero_s is None
        else:
            zero_ok = self.zero_s is not None and self.zero_s <= self.zero_bound_s
        rec_ok = self.rec_bound_s is None or (self.rec_s is not None
                                              and self.rec_s <= self.rec_bound_s)
        missed = [w for w, ok in (("to 0", zero_ok), ("rec", rec_ok), ("cond", self.also_ok))
                  if not ok]
        return "OK" if not missed else "MISSED " + ",".join(missed)


COLS = (("fault", 30), ("to 0 expected", 35), ("to 0 meas.", 10), ("recovery expected", 42),
        ("rec. meas.", 10), ("result", 8), ("note", 0))


def fmt_s(value: float | None, none: str) -> str:
    return none if value is None else f"{value:.3f} s"


def print_row(cells: list[str]) -> None:
    print(" ".join(c.ljust(w) if w else c for c, (_, w) in zip(cells, COLS, strict=True)))


class Bench:
    def __init__(self, emu: PigpiodEmulator, feeder: Feeder):
        self.emu, self.feeder = emu, feeder
        self.systems: list[System] = []
        self.tmps: list[Path] = []
        self.cold_start_s = 0.0
        self.started: dict[str, float] = {}  # child -> when its current process started
        self.backoff: dict[str, float] = {}  # the supervisor's backoff, mirrored
        self.stale_after_s = self.heartbeat_s = self.hang_after_s = 0.0  # from the config

    @property
    def system(self) -> System:
        return self.systems[-1]

    # -- observation ----------------------------------------------------------------------
    def first_write(self, pred: Callable[[Event], bool], after: float,
                    timeout_s: float, gpio: int = GPIO) -> Event | None:
        """The first write to ``gpio`` at or after ``after`` matching ``pred``, waiting at
        most ``timeout_s`` from now (the emulator's timestamps are taken on arrival)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for e in self.emu.events:
                if e.gpio == gpio and e.t_mono >= after and e.result >= 0 and pred(e):
                    return e
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)

    def zero_after(self, t0: float, timeout_s: float) -> float | None:
        """Time until every output is off: the PWM at 0 and the relay opened."""
        pwm = self.first_write(lambda e: e.duty == 0.0, t0, timeout_s)
        relay = self.first_write(lambda e: e.duty == 0.0, t0, timeout_s, RELAY_GPIO)
        if pwm is None or relay is None:
            return None
        return max(pwm.t_mono, relay.t_mono) - t0

    def on_after(self, t0: float, timeout_s: float) -> float | None:
        e = self.first_write(lambda e: e.duty > 0.0, t0, timeout_s)
        return None if e is None else e.t_mono - t0

    def zeros_between(self, t0: float, t1: float) -> float | None:
        """The first time any output (PWM or relay) went off in [t0, t1], or None."""
        hits = [e.t_mono - t0 for gpio in (GPIO, RELAY_GPIO)
                if (e := self.first_write(lambda e: e.duty == 0.0 and e.t_mono <= t1, t0, 0,
                                          gpio)) is not None]
        return min(hits, default=None)

    def sleep_until(self, t: float) -> None:
        time.sleep(max(0.0, t - time.monotonic()))

    def ready(self) -> None:
        """All processes alive, every child started at least SETTLE_S ago (so that the
        supervisor has its heartbeat) and control writing a duty > 0 in the last 0.5 s."""
        def controlling() -> bool:
            now = time.monotonic()
            return (self.system.all_alive() and self.emu.duty_fraction(GPIO) > 0.05
                    and self.emu.duty_fraction(RELAY_GPIO) == 1.0
                    and now > max(self.started.values()) + SETTLE_S
                    and self.first_write(lambda e: e.duty > 0, now - 0.5, 0) is not None)
        self.feeder.set_mode("good")
        wait_for(controlling, 30, 0.1, what="system controlling")

    # -- systems --------------------------------------------------------------------------
    def new_system(self) -> float:
        """Start a fresh system with readings flowing; return the time to the first duty > 0
        write (cold start: supervisor, children, first reading)."""
        tmp = Path(tempfile.mkdtemp(prefix="vzdivert-faults-"))
        self.tmps.append(tmp)
        sys_ = System(tmp, f'driver = "pigpio"\ngpio = {GPIO}\npigpio_port = {self.emu.port}',
                      extra=RELAYS)
        self.systems.append(sys_)
        self.feeder.port = sys_.ingest_port
        self.feeder.set_mode("good")
        t0 = time.monotonic()
        sys_.start()
        took = self.on_after(t0, 30)
        if took is None:
            raise AssertionError(f"no control after start:\n{sys_.logs()}")
        self.started = dict.fromkeys(("rtworker", "ingest", "webui"), t0)
        self.backoff = dict.fromkeys(self.started, 0.0)
        self.ready()
        return took

    def next_backoff(self, child: str, dies_at: float) -> float:
        """The supervisor's restart delay for this death (supervisor/children.py rules)."""
        healthy = dies_at - self.started[child] > HEALTHY_AFTER_S
        b = 0.0 if healthy else min(max(self.backoff[child] * 2, BACKOFF_MIN_S), BACKOFF_MAX_S)
        self.backoff[child] = b
        return b

    def restart_bound(self, child: str, dies_at: float, detect_s: float = 0.0,
                      detect: str = "") -> tuple[float, str]:
        """Bound and wording for "detected, restarted after the backoff, started"."""
        backoff = self.next_backoff(child, dies_at)
        self.started[child] = dies_at + detect_s + backoff + TICK_S  # at the latest
        bound = detect_s + TICK_S + backoff + self.cold_start_s + START_SLACK_S
        steps = [detect] if detect else []
        return bound, " + ".join([*steps, f"backoff {backoff:g} s", "start"]) + \
            f" (<={bound:.1f} s)"

    # -- the catalogue --------------------------------------------------------------------
    def data_fault(self, name: str, mode: str, note: str) -> Row:
        """Readings stop (or turn invalid): stale after stale_after_s, 0 within a poll."""
        stale, poll = self.stale_after_s, self.heartbeat_s
        self.feeder.set_mode(mode)
        t0 = self.feeder.last_good_send()  # staleness counts from the last good reading
        zero = self.zero_after(t0, stale + poll + 3)
        self.sleep_until(t0 + stale + 1.0)
        t_fix = self.feeder.set_mode("good")
        rec = self.on_after(t_fix, 3)
        return Row(name, f"stale {stale:g} s + poll (<={stale + poll:.2f} s)", stale + poll,
                   zero, f"first reading (<={FIRST_READING_S:g} s)", FIRST_READING_S, rec,
                   note + "; times from the last good reading / from the first new one")

    def harmless(self, name: str, inject: Callable[[], str]) -> Row:
        """A fault that must not touch the output while good readings keep coming."""
        t0 = time.monotonic()
        note = inject()
        t1 = t0 + self.stale_after_s + 1.0
        self.sleep_until(t1)
        zero = self.zeros_between(t0, t1)
        writes = [e.t_mono for e in self.emu.events if e.gpio == GPIO and t0 <= e.t_mono <= t1]
        gap = max((b - a for a, b in zip([t0, *writes], [*writes, t1], strict=True)),
                  default=t1 - t0)
        restarts = self.system.state()["processes"]["ingest"]["restarts"]
        on = self.emu.duty_fraction(GPIO) > 0
        return Row(name, "never", None, zero,
                   note=f"{note}; longest write gap {gap:.2f} s; ingest restarts {restarts}",
                   also_ok=on)

    def malformed(self) -> str:
        status, _ = vzlogger_post(self.system.ingest_port, "leistung value=\n\x00garbage=,\n")
        return f"answered {status}"

    def oversized(self) -> str:
        """Announce 50 MB; the server must refuse before reading it (tests/test_faults.py)."""
        with socket.create_connection(("127.0.0.1", self.system.ingest_port), timeout=5) as s:
            s.sendall(b"POST /write?db=vzlogger&precision=ms HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: 50000000\r\n\r\nleistung value=1\n")
            status = s.makefile("rb").readline().split()[1].decode()
        return f"50 MB announced: answered {status}"

    def stale_batch(self) -> str:
        old = int(time.time() * 1000) - 3_600_000
        batch = "".join(reading(+3000, ts_ms=old + i) for i in range(5000))  # an hour old
        t = time.monotonic()
        status, _ = vzlogger_post(self.system.ingest_port, batch)
        return f"{len(batch) // 1000} kB answered {status} in {(time.monotonic() - t) * 1e3:.0f} ms"

    def kill_child(self, child: str, sig: signal.Signals) -> Row:
        """kill -9 / SIGSTOP of one child; what should follow depends on the child."""
        pid = self.system.pid(child)
        t0 = time.monotonic()
        os.kill(pid, sig)
        try:
            if child == "rtworker":
                return self.worker_fault(sig, t0)
            if child == "ingest":
                return self.ingest_fault(sig, t0)
            return self.webui_fault(sig, t0, pid)
        finally:
            if sig == signal.SIGSTOP:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def worker_fault(self, sig: signal.Signals, t0: float, name: str = "",
                     note: str = "") -> Row:
        if sig == signal.SIGKILL:
            zero_exp, bound0, detect = f"supervisor at once (<{IMMEDIATE_S:g} s)", IMMEDIATE_S, 0.0
        else:
            detect = self.hang_after_s
            bound0 = detect + 0.5
            zero_exp = f"hang_after_s {detect:g} s (<={bound0:g} s)"
        # long enough to see a worker that is given the start-up grace instead
        zero = self.zero_after(t0, START_GRACE_S + 3)
        bound, rec_exp = self.restart_bound("rtworker", t0, detect,
                                            f"hang {detect:g} s" if detect else "")
        if zero is not None and zero > bound0:  # detected late: the restart came later too
            self.started["rtworker"] += zero - bound0
        rec_event = self.first_write(lambda e: e.duty > 0, t0 + (zero or 0), bound + 5)
        return Row(name or f"{sig.name} rtworker", zero_exp, bound0, zero, rec_exp, bound,
                   None if rec_event is None else rec_event.t_mono - t0,
                   note or "new worker; recovery from the injection")

    def stop_at_first_write(self) -> Row:
        """SIGKILL the worker, then SIGSTOP its replacement the moment its first duty > 0
        write reaches pigpiod (from the emulator's write hook): a worker that hangs right
        after it started driving the output."""
        config, old, fired = self.system.config, self.system.pid("rtworker"), {}

        def hook(e: Event) -> None:
            if "t0" not in fired and e.gpio == GPIO and e.duty > 0:
                pid = worker_pid(config)
                if pid is not None and pid != old:
                    os.kill(pid, signal.SIGSTOP)
                    fired.update(t0=time.monotonic(), pid=pid)

        self.emu.on_write = hook
        t_kill = time.monotonic()
        os.kill(old, signal.SIGKILL)
        bound, _ = self.restart_bound("rtworker", t_kill)
        try:
            wait_for(lambda: "t0" in fired, bound + 5, 0.01, what="the new worker's first write")
        finally:
            self.emu.on_write = None
        try:
            return self.worker_fault(signal.SIGSTOP, fired["t0"], "SIGSTOP rtworker at 1st write",
                                     "restarted worker stopped right after its first duty > 0 "
                                     "write; from the SIGSTOP")
        finally:
            try:
                os.kill(fired["pid"], signal.SIGCONT)
            except ProcessLookupError:
                pass

    def ingest_fault(self, sig: signal.Signals, t0: float) -> Row:
        stale, poll = self.stale_after_s, self.heartbeat_s
        if sig == signal.SIGKILL:  # restarted before the data go stale: the output stays on
            bound, rec_exp = self.restart_bound("ingest", t0)
            t_good = self.wait_first_good(t0, bound + 5)
            rec = None if t_good is None else self.on_after(t_good, 2)
            rec = None if rec is None else rec + t_good - t0
            self.sleep_until(t0 + stale + 1.0)
            zero = self.zeros_between(t0, time.monotonic())
            gap = "?" if t_good is None else f"{t_good - t0:.2f} s"
            return Row("SIGKILL ingest", f"never (restart < stale {stale:g} s)", None, zero,
                       rec_exp, bound, rec, f"data gap {gap}; recovery from the kill")
        zero = self.zero_after(t0, stale + poll + 3)
        bound, rec_exp = self.restart_bound("ingest", t0, INGEST_HANG_S,
                                            f"hang {INGEST_HANG_S:g} s")
        rec = self.on_after(t0 + (zero or 0), bound + 5)
        return Row("SIGSTOP ingest", f"stale {stale:g} s + poll (<={stale + poll:.2f} s)",
                   stale + poll, zero, rec_exp,
                   bound, None if rec is None else rec + (zero or 0),
                   "stale zeroes first, then the hung ingest is replaced; from the SIGSTOP")

    def wait_first_good(self, after: float, timeout_s: float) -> float | None:
        try:
            return wait_for(lambda: self.feeder.first_good_send(after), timeout_s, 0.02)
        except AssertionError:
            return None

    def webui_fault(self, sig: signal.Signals, t0: float, pid: int) -> Row:
        t1 = t0 + self.stale_after_s + 1.0
        frozen = ""
        if sig == signal.SIGSTOP:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.system.ui_port, timeout=1)
                conn.request("GET", "/api/state")
                conn.getresponse().read()
                frozen = "UI still answered?"
            except (OSError, http.client.HTTPException):
                frozen = "UI frozen"
        else:
            wait_for(lambda: self.system.pid("webui") not in (None, pid), 20, 0.02,
                     what="webui respawned")
            note = f"UI answering again after {time.monotonic() - t0:.2f} s"
        self.sleep_until(t1)
        zero = self.zeros_between(t0, t1)
        on = self.emu.duty_fraction(GPIO) > 0
        if sig == signal.SIGSTOP:  # the supervisor replaces a UI silent for WEBUI_HANG_S
            bound = WEBUI_HANG_S + TICK_S + START_GRACE_S / 15 + 1.0
            try:
                wait_for(lambda: self.system.pid("webui") not in (None, pid), bound + 5, 0.05,
                         what="frozen webui replaced")
                replaced = time.monotonic() - t0
            except AssertionError:
                replaced = None
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            return Row("SIGSTOP webui", "never", None, zero,
                       f"hang {WEBUI_HANG_S:g} s + start (<={bound:.1f} s)", bound, replaced,
                       f"{frozen}; control untouched; recovery = the UI replaced", on)
        return Row(f"{sig.name} webui", "never", None, zero, note=note, also_ok=on)

    def pigpiod_drop(self) -> Row:
        self.emu.stop()  # clients cut off; the hardware PWM keeps running
        t_down = time.monotonic()
        before = self.emu.duty_fraction(GPIO)  # after the stop: a write may have been in flight
        held = True
        while time.monotonic() < t_down + PIGPIOD_DOWN_S:
            held &= self.emu.duty_fraction(GPIO) == before
            time.sleep(0.05)
        error = self.system.state()["error"]
        t0 = time.monotonic()
        self.emu.start()  # a fresh pigpiod on the same port
        self.feeder.set_mode("good")  # the next reading now: its write reconnects
        zero = self.zero_after(t0, 3)
        rec = self.on_after(t0 + (zero or 0), 3)
        first = self.first_write(lambda e: True, t0, 0)
        first_zero = first is not None and first.duty == 0.0
        return Row("pigpiod drop + restart", f"not while down; reconnect "
                   f"(<={FIRST_READING_S:g} s)", FIRST_READING_S, zero,
                   f"on reconnect (<={FIRST_READING_S:g} s)", FIRST_READING_S,
                   None if rec is None else rec + (zero or 0),
                   f"duty {'held' if held else 'CHANGED'} at {before:.2f} for "
                   f"{PIGPIOD_DOWN_S:g} s down ({'error reported' if error else 'no error'}); "
                   f"first write on reconnect {'0' if first_zero else 'NOT 0'}; from restart",
                   also_ok=held and first_zero)

    def sigterm_system(self) -> Row:
        proc = self.system.proc
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        zero = self.zero_after(t0, IMMEDIATE_S + 3)
        code = proc.wait(10)
        took = time.monotonic() - t0
        return Row("SIGTERM whole system", f"at once (<{IMMEDIATE_S:g} s)", IMMEDIATE_S, zero,
                   note=f"supervisor exited {code} after {took:.2f} s", also_ok=code == 0)

    def kill_supervisor(self) -> Row:
        pids = [self.system.pid(n) for n in ("rtworker", "ingest", "webui")]
        t0 = time.monotonic()
        os.kill(self.system.proc.pid, signal.SIGKILL)
        zero = self.zero_after(t0, IMMEDIATE_S + 3)

        def gone() -> bool:
            return not any(Path(f"/proc/{p}").exists() and ") Z" not in
                           Path(f"/proc/{p}/stat").read_text() for p in pids)
        wait_for(gone, 10, 0.02, what="children gone with the supervisor")
        return Row("SIGKILL supervisor", f"PDEATHSIG->worker (<{IMMEDIATE_S:g} s)",
                   IMMEDIATE_S, zero, note=f"children gone after {time.monotonic() - t0:.2f} s")

    def safe_off(self, name: str, since: float | None = None) -> Row:
        """systemd's ExecStopPost; ``since``: measure from an earlier injection instead."""
        t0 = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "vzdivert.cli", "safe-off", "--config",
                                 str(self.system.config)], capture_output=True, text=True,
                                cwd=REPO, timeout=30)
        took = time.monotonic() - t0
        zero = self.zero_after(t0, 1)
        base = t0 if since is None else since
        zero = None if zero is None else zero + t0 - base
        return Row(name, f"safe-off start-up (<={SAFE_OFF_S:g} s)", SAFE_OFF_S, zero,
                   note=f"safe-off exit {result.returncode}, ran {took:.2f} s",
                   also_ok=result.returncode == 0)

    def kill_everything(self) -> Row:
        """SIGKILL to every process at once (OOM killer, systemd's final SIGKILL): nobody is
        left to write 0; only ExecStopPost's safe-off can."""
        t0 = time.monotonic()
        os.killpg(self.system.proc.pid, signal.SIGKILL)
        self.system.proc.wait(5)
        before = self.emu.duty_fraction(GPIO)  # after the kill: a reading may have been in flight
        time.sleep(0.5)
        held = (before > 0 and self.emu.duty_fraction(GPIO) == before
                and self.emu.duty_fraction(RELAY_GPIO) == 1.0
                and self.zeros_between(t0, 1e12) is None)
        row = self.safe_off("SIGKILL all, then safe-off", since=t0)
        row.note = (f"duty {'held' if held else 'CHANGED'} at {before:.2f} (relay on) until "
                    f"safe-off "
                    f"(started 0.5 s after the kill); {row.note}; from the kill")
        row.zero_bound_s = SAFE_OFF_S + 0.5
        row.zero_expected = f"only by safe-off (<={SAFE_OFF_S + 0.5:g} s)"
        row.also_ok &= held
        return row

    def run(self) -> list[Row]:
        self.cold_start_s = self.new_system()
        cfg = load(self.system.config)
        self.stale_after_s = cfg.watchdog.stale_after_s
        self.heartbeat_s = cfg.rtworker.heartbeat_s
        self.hang_after_s = cfg.supervisor.hang_after_s
        print(f"settings: driver pigpio, hardware PWM GPIO {GPIO} at {cfg.output.frequency_hz} "
              f"Hz and a 1 kW relay stage on GPIO {RELAY_GPIO} (on while controlling; 'to 0' = "
              f"both off) on the pigpiod emulator (port {self.emu.port}); stale_after_s "
              f"{self.stale_after_s:g}, heartbeat_s (worker poll) {self.heartbeat_s:g}, "
              f"hang_after_s {self.hang_after_s:g}; supervisor tick {TICK_S:g} s, ingest hang "
              f"{INGEST_HANG_S:g} s, restart backoff {BACKOFF_MIN_S:g} s doubling (reset after "
              f"{HEALTHY_AFTER_S:g} s healthy); closed-loop readings ({SURPLUS_W:g} W surplus) "
              f"every {POST_EVERY_S:g} s")
        print(f"cold start (supervisor start to first duty > 0): {self.cold_start_s:.2f} s; "
              f"start-up allowance for restarts: that + {START_SLACK_S:g} s\n")
        rows = [self.data_fault("data stop", "pause", "readings stop")]
        self.ready()
        rows.append(self.data_fault("NaN values", "nan", "NaN posts answered 400"))
        # SIGKILL ingest before SIGSTOP ingest: its restart must stay inside stale_after_s,
        # so it gets the smallest backoff
        for fault in [lambda: self.harmless("malformed body", self.malformed),
                      lambda: self.harmless("oversized body", self.oversized),
                      lambda: self.harmless("5000-line stale batch", self.stale_batch),
                      lambda: self.kill_child("ingest", signal.SIGKILL),
                      lambda: self.kill_child("webui", signal.SIGKILL),
                      lambda: self.kill_child("webui", signal.SIGSTOP),
                      lambda: self.kill_child("rtworker", signal.SIGSTOP),
                      lambda: self.kill_child("rtworker", signal.SIGKILL),
                      self.stop_at_first_write,
                      lambda: self.kill_child("ingest", signal.SIGSTOP),
                      self.pigpiod_drop, self.sigterm_system]:
            self.ready()
            rows.append(fault())
        self.new_system()
        rows.append(self.kill_supervisor())
        rows.append(self.safe_off("  then safe-off (ExecStopPost)"))
        self.new_system()
        rows.append(self.kill_everything())
        return rows

    def close(self, keep_logs: bool) -> None:
        for sys_ in self.systems:
            sys_.kill_all()
            runtime = bus.find_runtime_dir(sys_.state_dir)  # left behind by a killed supervisor
            if runtime is not None and runtime.name.startswith("vzdivert-"):
                shutil.rmtree(runtime, ignore_errors=True)
            if keep_logs:
                print(f"log kept: {sys_.log_path}")
        if not keep_logs:
            for tmp in self.tmps:
                shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    emu = PigpiodEmulator(port=0).start()
    feeder = Feeder(emu)
    feeder.start()
    bench = Bench(emu, feeder)
    t_start = time.monotonic()
    rows: list[Row] = []
    try:
        rows = bench.run()
    except BaseException:
        if bench.systems:
            print(bench.system.logs(), file=sys.stderr)
        raise
    finally:
        feeder.done.set()
        feeder.wake.set()
        feeder.join(5)
        bench.close(keep_logs=not rows or any(r.verdict() != "OK" for r in rows))
        emu.stop()
    print_row([name for name, _ in COLS])
    print_row(["-" * (w or 4) for _, w in COLS])
    for r in rows:
        print_row([r.fault, r.zero_expected, fmt_s(r.zero_s, "none"), r.rec_expected,
                   fmt_s(r.rec_s, "-" if r.rec_bound_s is None else "none"), r.verdict(),
                   r.note])
    ok = sum(r.verdict() == "OK" for r in rows)
    print(f"\n{ok}/{len(rows)} faults within expectation ({time.monotonic() - t_start:.0f} s)")
    return 0 if ok == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
