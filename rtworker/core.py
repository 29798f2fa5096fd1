"""The worker's safety decisions as pure code: stale timer, old and out-of-order readings,
holds and their expiry, output-fault recovery, read-back repair and energy accounting. The
clock is passed in; every method returns the ``Plan`` the shell writes (or None: nothing to
write). Every zeroing goes through ``safe_off(reason)``, the one way to the safe state."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from vzdivert.output import PWM_NAME
from vzdivert.rtworker.adaptive import AdaptiveController
from vzdivert.rtworker.controller import params_from_config
from vzdivert.rtworker.curves import curve_from_config
from vzdivert.rtworker.holds import Hold, Holds
from vzdivert.rtworker.stats import LoopStats
from vzdivert.rtworker.tank import TankLimit, limits_from_config

log = logging.getLogger("vzdivert.rtworker")

MANUAL = "manual"
MANUAL_MAX_S = 60.0
# hot-water modes, sent by the hot-water process and refreshed by it (self-expiring)
PAUSE, BOOST, TOPUP, TANK = "pause", "boost", "topup", "tank"
HOT_WATER_MODES = ("auto", PAUSE, BOOST, TOPUP)
MODE_MAX_S = 60.0
FULL_POWER_TARGET_W = 1e6  # boost/top-up at full power: the controller is told import is
# welcome, so it commands 100 % and keeps probing whether the load still draws (thermostat)


class Refused(ValueError):
    """A command the core will not carry out; the message says why."""


class EnergySink(Protocol):
    def add(self, power_w: float, dt_s: float) -> None: ...


@dataclass
class Plan:
    """What to write: ``levels`` by output name, or (``safe``) every output to its safe
    state. ``recover``: the outputs failed before, so all go safe first. ``note`` is the
    error to show once the write succeeded (a read-back repair says what it repaired)."""

    levels: dict[str, float] = field(default_factory=dict)
    safe: bool = False
    recover: bool = False
    note: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Step:
    """One control step, for estimators fed from the core (no I/O, no clock of their own)."""

    now: float
    dt_s: float
    grid_w: float
    fraction: float
    levels: dict[str, float]
    saturated: bool


class WorkerCore:
    """Readings, commands, ticks and write results in; plans out."""

    def __init__(self, cfg: Any, energy: EnergySink, now: float):
        self.cfg = cfg
        self.controller = AdaptiveController(params_from_config(cfg),
                                             learn=cfg.load.learn_rating)
        self.curve = curve_from_config(cfg)
        self.energy = energy
        self.stats = LoopStats()
        self.holds = Holds()
        self.observers: list[Callable[[Step], None]] = []  # called after each control step
        self.stale = True  # no data yet: the outputs stay off until a fresh reading
        self.stale_reason = "no data yet"
        self.off_reason = ""  # why the last safe_off happened
        self.last_reading_mono = now
        self.last_ts: float | None = None
        self.last_output_mono = now
        self.grid_w: float | None = None
        self.fraction = 0.0
        self.levels: dict[str, float] = {PWM_NAME: 0.0}
        self.error = ""
        self.output_fault = False
        self.readback_mismatches = 0
        self.tank = TankLimit(limits_from_config(cfg))
        self.held = ""  # why the tank limit holds the load off ("" = it does not)
        self.full_kind = ""  # BOOST or TOPUP while the controller runs at full power ...
        self.full_until = 0.0  # ... until this (monotonic), unless refreshed

    @property
    def duty(self) -> float:
        return self.levels[PWM_NAME]

    # -- the one way to the safe state ---------------------------------------------------
    def safe_off(self, reason: str, now: float) -> Plan:
        """Every output to its safe state, the controller restarted from 0 (it must not
        believe in power that is no longer on). Energy is booked up to now first."""
        self.account(now)
        self.off_reason = reason
        self.fraction = 0.0
        for name in self.levels:
            self.levels[name] = 0.0
        self.controller.reset()
        return Plan(safe=True, reason=reason)

    def start(self, now: float) -> Plan:
        """Start-up: whatever a previous worker left running goes off first."""
        return self.safe_off("start-up", now)

    def shutdown(self, reason: str, now: float) -> Plan:
        log.info("shutting down: %s", reason)
        self.account(now)
        self.stale, self.stale_reason = True, reason
        return self.safe_off(reason, now)

    def go_stale(self, reason: str, now: float) -> Plan:
        log.warning("stale data: %s; output to 0", reason)
        self.account(now)
        self.stale, self.stale_reason = True, reason
        self.holds.end_on_stale()
        self._full_power("", 0.0)
        return self.safe_off(reason, now)

    # -- inputs --------------------------------------------------------------------------
    def on_reading(self, grid_w: float, ts: float, wall: float, now: float) -> Plan | None:
        """A meter reading (``ts`` its wall-clock time, ``wall`` ours); None: dropped."""
        stale_after_s = self.cfg.watchdog.stale_after_s
        if wall - ts > stale_after_s:
            self.stats.dropped_old += 1
            return None
        if self.last_ts is not None and ts <= self.last_ts:
            self.stats.dropped_old += 1  # out of order or repeated: never step on old data
            return None
        dt_s = ts - self.last_ts if self.last_ts is not None and not self.stale else 1.0
        dt_s = min(max(dt_s, 0.05), stale_after_s)
        self.account(now)
        if self.stale:
            log.info("fresh data again (grid %.0f W): control resumes", grid_w)
            self.controller.reset()
            self.stale, self.stale_reason = False, ""
        self.last_ts, self.last_reading_mono, self.grid_w = ts, now, grid_w
        ended, lifted = self._expire(now), self._tank_hold(now)
        if ended or lifted:
            self.controller.reset()
        if self.full_kind and now >= self.full_until:
            log.info("%s expired: control resumes", self.full_kind)
            self._full_power("", 0.0)
        hold = self.holds.active(PWM_NAME)
        if hold is None:
            self.fraction = self.controller.step(grid_w, dt_s)
            self.levels[PWM_NAME] = self.curve.duty(self.fraction)
        else:
            self.levels[PWM_NAME] = hold.level
            self.fraction = self.curve.power_fraction(hold.level)
        plan = self._write_plan()
        if self.observers:
            step = Step(now, dt_s, grid_w, self.fraction, dict(self.levels),
                        self.controller.saturated)
            for observe in self.observers:
                observe(step)
        return plan

    def tick(self, now: float) -> Plan | None:
        """Between readings: the stale timer and hold expiry."""
        stale_after_s = self.cfg.watchdog.stale_after_s
        if not self.stale and now - self.last_reading_mono > stale_after_s:
            return self.go_stale(f"no fresh reading for {stale_after_s:g} s", now)
        ended = self._expire(now)
        if ended and not self.stale:
            return self.safe_off(f"{ended} hold expired", now)
        return None

    def next_deadline(self, now: float) -> float:
        """Seconds until ``tick`` may have something to do (for the poller's timeout)."""
        due = self.holds.next_expiry() - now
        if not self.stale:
            due = min(due, self.last_reading_mono + self.cfg.watchdog.stale_after_s - now)
        return due

    def manual(self, duty: float | None, hold_s: float, now: float) -> Plan | None:
        """Hold the PWM load at ``duty`` for ``hold_s`` (calibration); None hands back to
        the controller. Refused on stale data; ends by itself; stale data end it at once."""
        if duty is None:
            self.holds.clear(PWM_NAME, MANUAL)
            self.controller.reset()
            return None
        if self.stale:
            raise Refused(f"refused: data are stale ({self.stale_reason})")
        if not 0.0 <= duty <= 1.0 or not 0.0 < hold_s <= MANUAL_MAX_S:
            raise Refused("manual: duty must be 0..1 and hold_s 0..60")
        self.account(now)
        self.holds.put(PWM_NAME, Hold(MANUAL, duty, now + hold_s, "manual (calibration)"))
        self.levels[PWM_NAME] = duty
        self.fraction = self.curve.power_fraction(duty)
        return self._write_plan()

    # -- hot water -----------------------------------------------------------------------
    def hot_water(self, mode: str, power_w: float, hold_s: float, now: float) -> None:
        """The hot-water process's mode for the next ``hold_s`` (it refreshes it): pause
        (0), boost at power_w (0 = full power through the controller) or a guarantee
        top-up (full power). Every one ends by itself; stale data and the tank limit beat
        them all; the next reading applies it."""
        if mode not in HOT_WATER_MODES:
            raise Refused(f"hold: mode must be one of {', '.join(HOT_WATER_MODES)}")
        if not 0.0 <= power_w <= 1e6 or not 0.0 < hold_s <= MODE_MAX_S:
            raise Refused(f"hold: power_w must be >= 0 and hold_s 0..{MODE_MAX_S:g}")
        until = now + hold_s
        rating = self.cfg.load.rating_w
        full = mode == TOPUP or (mode == BOOST and (power_w <= 0 or power_w >= rating))
        for kind in (PAUSE, BOOST):
            if (kind != mode or full) and self.holds.clear(PWM_NAME, kind) is not None:
                self.controller.reset()  # it did not run while the hold fixed the level
        if mode == PAUSE:
            self.holds.put(PWM_NAME, Hold(PAUSE, 0.0, until, "paused"))
        elif mode == BOOST and not full:
            duty = self.curve.duty(min(1.0, power_w / self.controller.rating_w))  # learned
            self.holds.put(PWM_NAME, Hold(BOOST, duty, until, f"boost at {power_w:.0f} W"))
        self._full_power(mode if full else "", until)

    def _full_power(self, kind: str, until: float) -> None:
        """Run the controller with a target that welcomes import (full power), or back to
        the configured target: a change of target, not a reset, so no bump."""
        if bool(kind) != bool(self.full_kind):
            params = params_from_config(self.cfg)
            if kind:
                params = replace(params, target_w=FULL_POWER_TARGET_W)
            self.controller.update_params(params)
        self.full_kind, self.full_until = kind, until

    def tank_reading(self, tank_c: float | None, age_s: float, error: str, now: float) -> None:
        try:
            self.tank.reading(tank_c, age_s, error, now)
        except ValueError as exc:
            raise Refused(str(exc)) from exc

    def _tank_hold(self, now: float) -> bool:
        """Put or lift the tank's off-hold; True when it was lifted (control restarts)."""
        held = self.tank.held(now)
        if held and held != self.held:
            if not self.held:
                log.warning("heating held: %s", held)
            self.holds.put(PWM_NAME, Hold(TANK, 0.0, math.inf, held, ends_on_stale=False))
        lifted = bool(self.held) and not held
        if lifted:
            log.info("heating resumes: tank limit lifted")
            self.holds.clear(PWM_NAME, TANK)
        self.held = held
        return lifted

    def _expire(self, now: float) -> str:
        """End holds whose time is up; returns their kinds ("" if none ended)."""
        ended = self.holds.expire(now)
        for load, hold in ended:
            log.info("%s hold on %s expired: control resumes", hold.kind, load)
        return ", ".join(hold.kind for _, hold in ended)

    # -- write results -------------------------------------------------------------------
    def _write_plan(self, note: str = "") -> Plan:
        return Plan(levels=dict(self.levels), recover=self.output_fault, note=note)

    def write_ok(self, plan: Plan) -> None:
        if self.output_fault:
            log.info("output reachable again")
            self.output_fault = False
        self.error = plan.note

    def write_failed(self, problem: str, now: float) -> Plan:
        """The outputs are unknown now: say so (once per outage), force them safe."""
        self.error = f"output write failed: {problem}"
        if not self.output_fault:
            log.error("%s", self.error)
        self.output_fault = True
        return self.safe_off("output write failed", now)

    def off_failed(self, problems: list[str]) -> None:
        self.error = f"output off failed: {'; '.join(problems)}"
        log.error("%s", self.error)

    def readback(self, name: str, actual: float | None, resolution: float,
                 now: float) -> Plan | None:
        """Someone else (another pigpio client, a restarted pigpiod) may have changed a pin:
        report it and put our level back (the safe state when ours is 0)."""
        expected = self.levels.get(name, 0.0)
        if actual is None or abs(actual - expected) <= 2 * resolution + 1e-6:
            return None
        self.readback_mismatches += 1
        problem = f"output ran duty {actual:.4f}, expected {expected:.4f}: re-applied"
        log.warning("%s", problem)
        if not any(self.levels.values()):
            plan = self.safe_off(f"read-back: {name} ran {actual:.4f}", now)
        else:
            plan = self._write_plan()
        plan.note = problem
        return plan

    def readback_failed(self, problem: str) -> None:
        self.error = f"output read-back failed: {problem}"

    # -- accounting and state ------------------------------------------------------------
    def account(self, now: float) -> None:
        """Energy since the last output change, at the power that was really on."""
        if not self.stale and self.duty > 0:
            self.energy.add(self.power_w(), now - self.last_output_mono)
        self.last_output_mono = now

    def power_w(self) -> float:
        """Modelled load power; 0 while the load is seen not to draw (thermostat open)."""
        if self.controller.saturated:
            return 0.0
        return self.curve.power_fraction(self.duty) * self.controller.rating_w

    def configure(self, cfg: Any, curve: Any) -> None:
        """New live settings (validated by the caller), without a bump."""
        self.cfg, self.curve = cfg, curve
        params = params_from_config(cfg)
        if self.full_kind:
            params = replace(params, target_w=FULL_POWER_TARGET_W)
        self.controller.update_params(params, learn=cfg.load.learn_rating)
        self.tank.limits = limits_from_config(cfg)

    def mode(self) -> str:
        """stale, manual (calibration), pause, boost, topup (the guarantee) or auto."""
        if self.stale:
            return "stale"
        for kind in (MANUAL, PAUSE, BOOST):
            if self.holds.get(PWM_NAME, kind) is not None:
                return kind
        return self.full_kind or "auto"

    def state(self, now: float) -> dict[str, Any]:
        return {
            "grid_w": self.grid_w, "target_w": self.cfg.control.target_w, "duty": self.duty,
            "fraction": self.fraction, "power_w": 0.0 if self.stale else self.power_w(),
            "stale": self.stale, "stale_reason": self.stale_reason, "mode": self.mode(),
            "saturated": self.controller.saturated, "error": self.error,
            "readback_mismatches": self.readback_mismatches,
            "reading_age_s": now - self.last_reading_mono,
            "hold_reason": self.held, "tank_c": self.tank.tank_c,
            "tank_age_s": self.tank.age_s(now),
            "rating_learned_w": round(self.controller.rating_learned_w, 1),
            "rating_confidence": round(self.controller.confidence, 3),
            "rating_used_w": round(self.controller.rating_w, 1),
        }
