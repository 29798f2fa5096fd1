"""`vzdivert calibrate`: measure the load's real rating and power-vs-duty curve by stepping
the output while the house exports steadily, then store a `table` curve and the rating.
The procedure is a pure state machine fed with meter readings; the runner talks to the
running system (the worker's `manual` hold, the supervisor's settings)."""

from __future__ import annotations

import functools
import signal
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vzdivert.stopsignals import StopSignals

STEPS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class CalibrationAborted(RuntimeError):
    """Calibration stopped; the message says why. The output goes to 0."""


@dataclass
class Calibration:
    steps: tuple[float, ...] = STEPS
    settle_samples: int = 2      # readings skipped after a step (meter averaging, delay)
    measure_samples: int = 3
    baseline_samples: int = 5
    min_export_w: float = 100.0  # the house must export at least this before we start
    import_margin_w: float = 50.0  # a reading above this (import) aborts
    max_spread_w: float = 150.0  # baseline readings must agree this well (steady export)
    duty: float = 0.0
    baseline_w: float | None = None
    loads_w: dict[float, float] = field(default_factory=dict)
    _phase: str = "baseline"
    _index: int = 0
    _samples: list[float] = field(default_factory=list)
    _skip: int = 0
    done: bool = False

    def settle(self) -> None:
        """The output was just taken over (a controller may have had the load on): skip
        the readings that still show it, as after every step."""
        self._skip = self.settle_samples

    def feed(self, grid_w: float) -> None:
        """One meter reading; afterwards ``duty`` is what to hold next."""
        if grid_w > self.import_margin_w:
            raise CalibrationAborted(f"the house imports ({grid_w:.0f} W): not enough surplus "
                                     f"at duty {self.duty:.0%}")
        if self._skip:
            self._skip -= 1
            return
        self._samples.append(grid_w)
        wanted = self.baseline_samples if self._phase != "step" else self.measure_samples
        if len(self._samples) < wanted:
            return
        samples, self._samples = self._samples, []
        if self._phase == "baseline":
            self._baseline(samples)
        elif self._phase == "step":
            self.loads_w[self.duty] = statistics.fmean(samples) - self.baseline_w
            self._next_step()
        else:
            self._check_drift(samples)

    def _baseline(self, samples: list[float]) -> None:
        if max(samples) > -self.min_export_w:
            raise CalibrationAborted(f"not exporting steadily: readings {_fmt(samples)}; "
                                     f"need below -{self.min_export_w:.0f} W")
        if max(samples) - min(samples) > self.max_spread_w:
            raise CalibrationAborted(f"export not steady: readings {_fmt(samples)}")
        self.baseline_w = statistics.fmean(samples)
        self._phase, self._index = "step", -1
        self._next_step()

    def _next_step(self) -> None:
        self._index += 1
        if self._index < len(self.steps):
            self.duty = self.steps[self._index]
        else:
            self._phase, self.duty = "recheck", 0.0
        self._skip = self.settle_samples

    def _check_drift(self, samples: list[float]) -> None:
        drift = statistics.fmean(samples) - self.baseline_w
        if abs(drift) > max(self.max_spread_w, 0.1 * abs(self.rating_w())):
            raise CalibrationAborted(f"the house changed during calibration (export moved "
                                     f"{drift:+.0f} W); try again when it is steady")
        self.done = True

    def rating_w(self) -> float:
        return self.loads_w.get(self.steps[-1], 0.0)

    def result(self) -> tuple[float, list[list[float]]]:
        """(rating_w, points [[duty, fraction], ...]) made monotone, for a `table` curve."""
        rating = self.rating_w()
        if rating <= 0:
            raise CalibrationAborted("the load drew no power at full duty: check the wiring "
                                     "and the thermostat")
        points, level = [[0.0, 0.0]], 0.0
        for duty in self.steps:
            level = min(1.0, max(level, self.loads_w[duty] / rating))
            points.append([duty, round(level, 4)])
        return round(rating, 1), points


def _fmt(samples: list[float]) -> str:
    return ", ".join(f"{s:.0f}" for s in samples)


class Interrupted(CalibrationAborted):
    """Ctrl-C or SIGTERM before the result was decided."""


def _check(stop: StopSignals) -> None:
    signum = stop.received()
    if signum is not None:
        raise Interrupted("interrupted" if signum == signal.SIGINT
                          else f"interrupted ({signal.Signals(signum).name})")


def _why(exc: Exception) -> str:
    """An abort's reason for people, from the error's data."""
    from vzdivert import bus

    if isinstance(exc, bus.CommandError):
        if exc.code == bus.NO_ANSWER:
            return f"the running system did not answer ({exc})"
        if exc.problems:
            return "refused: " + "; ".join(f"{k}: {p}" for k, p in exc.problems.items())
    return str(exc)


def run(cfg: Any, yes: bool, out: TextIO = sys.stdout) -> int:
    """Drive a running system through a calibration; 0 on success, 1 on abort (and on a
    Ctrl-C or SIGTERM at any moment before success is reported)."""
    import zmq

    from vzdivert import bus

    say = functools.partial(print, file=out, flush=True)  # progress, also through a pipe
    runtime_dir = bus.find_runtime_dir(cfg.state.dir)
    if runtime_dir is None:
        print("vzdivert calibrate: no running system found (start `vzdivert run` first)",
              file=sys.stderr)
        return 1
    say(f"Calibration steps the load from 0 to 100 % ({cfg.load.rating_w:.0f} W configured) "
        "while measuring the meter.\nThe house must export steadily, more than the load "
        "draws; it aborts (output 0) on import, stale data or Ctrl-C.")
    if not yes:
        if not sys.stdin.isatty():
            print("vzdivert calibrate: pass --yes to confirm without a terminal",
                  file=sys.stderr)
            return 1
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited ignored
        try:
            answer = input("Switch the load on in steps now? [yes/no] ")
        except (KeyboardInterrupt, EOFError):
            answer = ""
        if answer.strip().lower() != "yes":
            say("Not calibrated.")
            return 1
    with StopSignals() as stop:  # before the context: ZeroMQ's threads must block them
        ctx = zmq.Context()
        try:
            return _calibrate(ctx, runtime_dir, cfg, say, stop)
        finally:
            ctx.destroy(0)


def _calibrate(ctx: Any, runtime_dir: Path, cfg: Any, say: Callable[..., None],
               stop: StopSignals) -> int:
    """Measure with the stop signals let in; decide with them kept out, so one that
    arrives while the result is saved is still seen before success is reported."""
    import zmq

    from vzdivert import bus

    worker = bus.Requester(ctx, runtime_dir, "rtworker", timeout_s=2.0)
    readings = bus.subscribe(ctx, runtime_dir, "readings")
    poller = zmq.Poller()
    poller.register(readings, zmq.POLLIN)
    poller.register(stop.fd, zmq.POLLIN)
    hold_s = min(60.0, cfg.watchdog.stale_after_s + 5)
    cal = Calibration()
    stop.open()
    try:
        _check(stop)
        worker.call("manual", duty=0.0, hold_s=hold_s)
        cal.settle()
        while not cal.done:
            _check(stop)
            events = dict(poller.poll(int(cfg.watchdog.stale_after_s * 1000)))
            _check(stop)
            if readings not in events:
                raise CalibrationAborted("no meter readings (stale data)")
            grid_w = bus.decode(readings.recv(), expect="reading")["grid_w"]
            cal.feed(grid_w)
            say(f"  duty {cal.duty:4.0%}  grid {grid_w:8.0f} W")
            worker.call("manual", duty=cal.duty, hold_s=hold_s)
        stop.close()
        _check(stop)  # the last moment a stop signal undoes the calibration
        rating_w, points = cal.result()
        supervisor = bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=5.0)
        supervisor.call("set_settings", settings={"rating_w": rating_w, "curve": "table",
                                                  "curve_points": points}, who="calibrate")
    except Exception as exc:  # aborted, refused, or anything unforeseen: output 0
        stop.close()
        _release(worker, 0.0)
        say(f"Calibration aborted, output 0: {_why(exc)}")
        return 1
    if stop.received() is not None:  # arrived while saving: saved, but not a success
        _release(worker, 0.0)
        say("Calibration interrupted, output 0: the measured curve and rating were saved "
            "already (reset them in the web UI if unwanted).")
        return 1
    _release(worker, None)
    say(f"\nMeasured rating: {rating_w:.0f} W (configured {cfg.load.rating_w:.0f} W)\n"
        "duty  power")
    for duty, fraction in points:
        say(f"{duty:4.0%}  {fraction * rating_w:6.0f} W")
    say('Saved: curve = "table" with these points, and the measured rating.')
    return 0


def _release(worker: Any, duty: float | None) -> None:
    """Output 0 (duty 0.0, held briefly) or hand back to the controller (None). On a fresh
    socket: the last request may have gone unanswered, and REQ is lockstep."""
    worker.close()
    try:
        worker.call("manual", duty=duty, hold_s=5.0)
    except Exception:  # the worker's own hold expires anyway
        pass
