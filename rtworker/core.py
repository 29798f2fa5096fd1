"""The worker's safety decisions as pure code: stale timer, old and out-of-order readings,
holds and their expiry (calibration here; hot water and the tank limit in ``modes``), the
split of power between the loads (``Allocator``), output-fault recovery, read-back repair
and energy accounting. The clock is passed in; every method returns the ``Plan`` the shell
writes (or None: nothing to write). Every zeroing goes through ``safe_off(reason)``, the one
way to the safe state of every output."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from vzdivert.output import BYPASS_NAME, PWM_NAME, bypass_load, relay_output
from vzdivert.rtworker.adaptive import AdaptiveController
from vzdivert.rtworker.allocator import Allocator, Relay
from vzdivert.rtworker.controller import params_from_config
from vzdivert.rtworker.curves import curve_from_config
from vzdivert.rtworker.holds import Hold, Holds
from vzdivert.rtworker.load_learning import learning_from_config
from vzdivert.rtworker.modes import BOOST, PAUSE, HotWaterModes
from vzdivert.rtworker.stats import LoopStats
from vzdivert.rtworker.tank import TankLimit, limits_from_config

log = logging.getLogger("vzdivert.rtworker")

MANUAL = "manual"
MANUAL_MAX_S = 60.0
RETUNE_SHARE = 0.005  # several loads: the controller's capacity follows the learned ratings
FULL_POWER_TARGET_W = 1e6  # boost/top-up at full power: the controller is told import is
# welcome, so it commands 100 % and keeps probing whether the load still draws (thermostat)


class Refused(ValueError):
    """A command the core will not carry out; the message says why."""


class EnergySink(Protocol):
    def add(self, power_w: float, dt_s: float, load: str | None = None) -> None: ...


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
        self.pwm_load = cfg.load.name
        self.allocator = allocator_from_config(cfg, now)
        self.learning = None if self._single_load() else learning_from_config(
            cfg, bypass_load(self.pwm_load) if self.allocator.bypass_after_s is not None else "")
        self._switched_on: dict[str, bool] = {}  # for the learning, refilled each reading
        self.holds = Holds()
        self.tank = TankLimit(limits_from_config(cfg))
        self.hot = HotWaterModes(self.holds, self.tank, self.pwm_load,
                                 [self.pwm_load, *(r.name for r in cfg.relays)],
                                 tank_loads(cfg))
        self.controller = AdaptiveController(self._control_params(cfg),
                                             learn=self._learns(cfg))
        self.curve = self.controller.corrected(curve_from_config(cfg))  # + learned shape
        self.energy = energy
        self.stats = LoopStats()
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
        if self.allocator.bypass_after_s is not None:
            self.levels[BYPASS_NAME] = 0.0
        for relay in self.allocator.relays:
            self.levels[relay_output(relay.name)] = 0.0
        self._written: dict[str, float] = {}  # what the outputs run, as far as we know
        self.error = ""
        self.output_fault = False
        self.readback_mismatches = 0

    @property
    def duty(self) -> float:
        return self.levels[PWM_NAME]

    def _control_params(self, cfg: Any) -> Any:
        """The controller decides the power of all loads together; at full power (boost,
        top-up) it is told that import is welcome."""
        capacity_w = cfg.load.rating_w + sum(r.rating_w for r in cfg.relays)  # configured:
        # a new rating here means "learn afresh" to the estimator; with several loads the
        # controller does not learn, and the sum of the ratings in use is what it can place
        if self.learning is not None:
            capacity_w = self.allocator.capacity_w
        params = replace(params_from_config(cfg), rating_w=capacity_w)
        if self.hot.full_kind:
            params = replace(params, target_w=FULL_POWER_TARGET_W)
        return params

    def _single_load(self) -> bool:
        return not self.allocator.relays and self.allocator.bypass_after_s is None

    def _learns(self, cfg: Any) -> bool:
        """The controller learns the rating of a single PWM load itself; with relay stages
        or a bypass its fraction mixes several loads and ``load_learning`` learns each."""
        return bool(cfg.load.learn_rating and self._single_load())

    def _pwm_rating_w(self) -> float:
        """What the PWM load draws at full duty (learned, unless learning is off)."""
        if self.learning is not None:
            return self.learning.pwm_rating_w()
        return self.controller.rating_w if self.controller.learn else self.cfg.load.rating_w

    @property
    def estimators(self) -> dict[str, Any]:
        """What is learned, to keep across restarts, by state file (rating-<key>.json)."""
        if self.learning is None:
            return {PWM_NAME: self.controller.estimator}
        return {PWM_NAME: self.learning.pwm, "relays": self.learning.switched}

    def _learned(self, name: str) -> dict[str, float]:
        """A load's learned rating and confidence, for the state."""
        if self.learning is None:
            w, confidence = self.controller.rating_learned_w, self.controller.confidence
        else:
            w, confidence = self.learning.learned(name)
        return {"rating_learned_w": round(w, 1), "rating_confidence": round(confidence, 3)}

    def _learn(self, grid_w: float, dt_s: float) -> None:
        """Several loads: each learns what it draws (see load_learning) from this reading
        and what was switched after it; what they learned is used from the next one."""
        if self.learning is None:
            return
        alloc, on = self.allocator, self._switched_on
        for relay in alloc.relays:
            on[relay.name] = relay.on
        on[self.learning.bypass] = alloc.bypass
        self.learning.step(grid_w, dt_s, self.curve.power_fraction(self.levels[PWM_NAME]), on,
                           self.controller.saturated)
        self._use_ratings()

    def _use_ratings(self) -> None:
        """Several loads: the learned ratings go into the allocator, and the controller's
        capacity follows their sum (a change of rating, not a reset: no bump)."""
        assert self.learning is not None
        capacity_w = self.learning.use(self.allocator)
        if abs(capacity_w - self.controller.configured.rating_w) > RETUNE_SHARE * capacity_w:
            command_w = self.controller.command_w  # watts stay watts: no bump
            self.controller.update_params(self._control_params(self.cfg))
            self.controller.applied(command_w)

    # -- the one way to the safe state ---------------------------------------------------
    def safe_off(self, reason: str, now: float) -> Plan:
        """Every output to its safe state, the controller restarted from 0 (it must not
        believe in power that is no longer on). Energy is booked up to now first."""
        self.account(now)
        self.off_reason = reason
        self.fraction = 0.0
        for name in self.levels:
            self.levels[name] = 0.0
        self.allocator.all_off(now)
        self.controller.reset()
        if self.learning is not None:
            self.learning.restart()
        self._written = {}  # known again once all_off succeeded
        return Plan(levels=dict(self.levels), safe=True, reason=reason)

    def start(self, now: float) -> Plan:
        """Start-up: whatever a previous worker left running goes off first; ratings
        restored from the state files go into use."""
        if self.learning is not None:
            self._use_ratings()
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
        if self.hot.stale():
            self._retarget()
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
        ended = self._expire(now)
        self.hot.tank_hold(now)
        if ended and _has_kind(ended, MANUAL):  # the controller paused while it held the level
            self.controller.reset()
        if self.hot.end_full(now):
            self._retarget()
        if self.holds.freezing():
            self._hold_pwm(now)
            if self.learning is not None:
                self.learning.restart()  # calibration's steps are not ours to pair
        else:
            self.fraction = self.controller.step(grid_w, dt_s)
            self._allocate(now)
            self._learn(grid_w, dt_s)
        plan = self._write_plan()
        if self.observers:
            step = Step(now, dt_s, grid_w, self.fraction, dict(self.levels),
                        self.controller.saturated)
            for observe in self.observers:
                observe(step)
        return plan

    def _allocate(self, now: float) -> None:
        """Split the controller's power between the loads; tell it what really went out."""
        alloc = self.allocator
        # what the meter has shown, not the ramp-led forecast: on a sun edge the lead jumps
        # ahead and then stands, which the relay tests would take for a relay's step
        alloc.observe(self.controller.surplus_seen_w, now)
        forced = {}  # relays switched on (True) or off by a hold
        for relay in alloc.relays:
            if self.hot.full_kind:  # boost/top-up heats the PWM load, not every stage
                forced[relay.name] = False
            elif (hold := self.holds.active(relay.name)) is not None:
                forced[relay.name] = hold.level >= 0.5
        pwm_hold = self.holds.active(self.pwm_load)  # one that lets control run on
        if self.learning is None:  # one load: the controller's estimate, from this step
            alloc.pwm_rating_w = self._pwm_rating_w()
        rating_w = alloc.pwm_rating_w  # several: put in by _use_ratings
        held_w = 0.0 if pwm_hold is None else self.curve.power_fraction(pwm_hold.level) * rating_w
        want_w = self.controller.command_w
        if want_w >= self.controller.rating_w:  # full: every load full, whatever is learned
            want_w = max(want_w, alloc.capacity_w)
        split = alloc.split(want_w - held_w, now, forced, pwm_available=pwm_hold is None)
        applied_w = split.applied_w + held_w
        if abs(applied_w - want_w) > 1e-6:
            self.controller.applied(applied_w)
        self.levels[PWM_NAME] = pwm_hold.level if pwm_hold is not None else \
            self.curve.duty(split.pwm_w / rating_w)
        self._relay_levels()

    def _hold_pwm(self, now: float) -> None:
        """A hold that freezes control (calibration) sets the PWM load; relays stay as they
        are, the bypass opens (the PWM must reach the load)."""
        hold = self.holds.active(self.pwm_load)
        level = hold.level if hold is not None else self.duty
        self.allocator.split(0.0, now, frozen=True)
        self.levels[PWM_NAME] = level
        self.fraction = self.curve.power_fraction(level)
        self._relay_levels()

    def _relay_levels(self) -> None:
        alloc = self.allocator
        if BYPASS_NAME in self.levels:
            self.levels[BYPASS_NAME] = float(alloc.bypass)
            if alloc.bypass:
                self.levels[PWM_NAME] = 0.0  # the module is bridged: spare it the heat
        for relay in alloc.relays:
            self.levels[relay_output(relay.name)] = float(relay.on)

    def tick(self, now: float) -> Plan | None:
        """Between readings: the stale timer and hold expiry."""
        stale_after_s = self.cfg.watchdog.stale_after_s
        if not self.stale and now - self.last_reading_mono > stale_after_s:
            return self.go_stale(f"no fresh reading for {stale_after_s:g} s", now)
        ended = self._expire(now)
        if ended and _has_kind(ended, MANUAL) and not self.stale:
            kinds = ", ".join(hold.kind for _, hold in ended)
            return self.safe_off(f"{kinds} hold expired", now)
        return None

    def next_deadline(self, now: float) -> float:
        """Seconds until ``tick`` may have something to do (for the poller's timeout)."""
        due = self.holds.next_expiry() - now
        if not self.stale:
            due = min(due, self.last_reading_mono + self.cfg.watchdog.stale_after_s - now)
        return due

    def _expire(self, now: float) -> list[tuple[str, Hold]]:
        """End holds whose time is up, and say so; returns them."""
        ended = self.holds.expire(now)
        for load, hold in ended:
            log.info("%s hold on %s expired: control resumes", hold.kind, load)
        return ended

    def manual(self, duty: float | None, hold_s: float, now: float) -> Plan | None:
        """Hold the PWM load at ``duty`` for ``hold_s`` (calibration); None hands back to
        the controller. Refused on stale data; ends by itself; stale data end it at once."""
        if duty is None:
            self.holds.clear(self.pwm_load, MANUAL)
            self.controller.reset()
            return None
        if self.stale:
            raise Refused(f"refused: data are stale ({self.stale_reason})")
        if not 0.0 <= duty <= 1.0 or not 0.0 < hold_s <= MANUAL_MAX_S:
            raise Refused("manual: duty must be 0..1 and hold_s 0..60")
        self.account(now)
        self.holds.put(self.pwm_load, Hold(MANUAL, duty, now + hold_s, "manual (calibration)"))
        self._hold_pwm(now)
        return self._write_plan()

    # -- hot water (see modes) -----------------------------------------------------------
    def hot_water(self, mode: str, power_w: float, hold_s: float, now: float) -> None:
        """The hot-water process's mode for the next ``hold_s`` (it refreshes it). Stale
        data and the tank limit beat every mode; the next reading applies it."""
        try:
            changed = self.hot.set(mode, power_w, hold_s, now, self.cfg.load.rating_w,
                                   self._boost_duty)
        except ValueError as exc:
            raise Refused(str(exc)) from exc
        if changed:
            self._retarget()

    def _boost_duty(self, power_w: float) -> float:
        return self.curve.duty(min(1.0, power_w / self._pwm_rating_w()))

    def _retarget(self) -> None:
        """Full power started or ended: the controller's target welcomes import, or is the
        configured one again; a change of target, not a reset, so no bump."""
        self.controller.update_params(self._control_params(self.cfg))

    def tank_reading(self, tank_c: float | None, age_s: float, error: str, now: float) -> None:
        try:
            self.tank.reading(tank_c, age_s, error, now)
        except ValueError as exc:
            raise Refused(str(exc)) from exc

    # -- write results -------------------------------------------------------------------
    def _write_plan(self, note: str = "") -> Plan:
        """The PWM every step (its write is the loop's heartbeat at the pin); relays only
        when they change, after a fault, or when their level is not known."""
        if self.output_fault:
            return Plan(levels=dict(self.levels), recover=True, note=note)
        levels = {name: level for name, level in self.levels.items()
                  if name == PWM_NAME or self._written.get(name) != level}
        return Plan(levels=levels, note=note)

    def write_ok(self, plan: Plan) -> None:
        self._written.update(plan.levels)
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

    def off_ok(self, plan: Plan) -> None:
        self._written.update(plan.levels)

    def off_failed(self, problems: list[str]) -> None:
        self.error = f"output off failed: {'; '.join(problems)}"
        log.error("%s", self.error)

    def readback(self, name: str, actual: float | None, resolution: float,
                 now: float) -> Plan | None:
        """Someone else (another pigpio client, a restarted pigpiod) may have changed a pin:
        report it and put our level back (the safe state when ours is 0)."""
        expected = self.levels.get(name, 0.0)
        tolerance = min(2 * resolution + 1e-6, 0.49)  # a relay's level is 0 or 1
        if actual is None or abs(actual - expected) <= tolerance:
            return None
        self.readback_mismatches += 1
        what = "output" if name == PWM_NAME else name
        problem = f"{what} ran duty {actual:.4f}, expected {expected:.4f}: re-applied"
        log.warning("%s", problem)
        if not any(self.levels.values()):
            plan = self.safe_off(f"read-back: {name} ran {actual:.4f}", now)
        else:
            self._written.pop(name, None)
            plan = self._write_plan()
        plan.note = problem
        return plan

    def readback_failed(self, problem: str) -> None:
        self.error = f"output read-back failed: {problem}"

    # -- accounting and state ------------------------------------------------------------
    def account(self, now: float) -> None:
        """Energy since the last output change, at the power that was really on."""
        dt_s = now - self.last_output_mono
        self.last_output_mono = now
        if self.stale or dt_s <= 0:
            return
        for name, _kind, power_w, _level, _held in self._loads():
            if power_w > 0:
                self.energy.add(power_w, dt_s, name)

    def _loads(self) -> list[tuple[str, str, float, float, str]]:
        """(name, kind, modelled power W, duty or level, held reason) per load: the power
        through each output, 0 where a load is seen not to draw (thermostat open)."""
        rating_w = self._pwm_rating_w()
        pwm_w = 0.0 if self.controller.saturated else \
            self.curve.power_fraction(self.duty) * rating_w
        pwm_hold = self.holds.active(self.pwm_load)
        held = pwm_hold.reason if pwm_hold is not None else \
            "thermostat" if self.controller.saturated else ""
        loads = [(self.pwm_load, "pwm", pwm_w, self.duty, held)]
        alloc = self.allocator
        if alloc.bypass_after_s is not None:
            bypass_w = 0.0 if not alloc.bypass or self.controller.saturated else \
                rating_w if self.learning is None else self.learning.bypass_rating_w()
            loads.append((bypass_load(self.pwm_load), "bypass", bypass_w,
                          float(alloc.bypass), ""))
        for relay in alloc.relays:
            hold = self.holds.active(relay.name)
            held = hold.reason if hold is not None else relay.held
            loads.append((relay.name, "relay", relay.rating_w if relay.on else 0.0,
                          float(relay.on), held))
        return loads

    def power_w(self) -> float:
        """Modelled power of all loads together."""
        return sum(load[2] for load in self._loads())

    def configure(self, cfg: Any, curve: Any) -> None:
        """New live settings (validated by the caller), without a bump."""
        self.cfg, self.curve = cfg, self.controller.corrected(curve)
        self.allocator.margin_w = cfg.load.relay_margin_w
        self.allocator.on_after_s = cfg.load.relay_on_after_s
        self.allocator.off_after_s = cfg.load.relay_off_after_s
        if self.learning is not None:
            self.learning.set_configured(cfg.load.rating_w, cfg.control.max_delay_samples,
                                         cfg.load.learn_rating)
            self.learning.use(self.allocator)  # the capacity below is what they sum to
        self.controller.update_params(self._control_params(cfg), learn=self._learns(cfg))
        self.tank.limits = limits_from_config(cfg)

    def mode(self) -> str:
        """stale, manual (calibration), pause, boost, topup (the guarantee) or auto."""
        if self.stale:
            return "stale"
        for kind in (MANUAL, PAUSE, BOOST):
            if self.holds.get(self.pwm_load, kind) is not None:
                return kind
        return self.hot.full_kind or "auto"

    def state(self, now: float, loads_today_wh: dict[str, float] | None = None
              ) -> dict[str, Any]:
        today = loads_today_wh or {}
        loads = [{"name": name, "kind": kind, "on": level > 0, "duty": level,
                  "power_w": 0.0 if self.stale else power_w,
                  "energy_today_wh": today.get(name, 0.0), "held": held, **self._learned(name)}
                 for name, kind, power_w, level, held in self._loads()]
        return {
            "grid_w": self.grid_w, "target_w": self.cfg.control.target_w, "duty": self.duty,
            "fraction": self.fraction,
            "power_w": 0.0 if self.stale else sum(load["power_w"] for load in loads),
            "stale": self.stale, "stale_reason": self.stale_reason, "mode": self.mode(),
            "saturated": self.controller.saturated, "error": self.error,
            "readback_mismatches": self.readback_mismatches,
            "reading_age_s": now - self.last_reading_mono, "loads": loads,
            "hold_reason": self.hot.held, "tank_c": self.tank.tank_c,
            "tank_age_s": self.tank.age_s(now),
            **self._learned(self.pwm_load),  # the PWM load's; each load's in `loads`
            "rating_used_w": round(self._pwm_rating_w(), 1),
            "curve_correction": [round(g, 3) for g in self.controller.curve_correction]
            if self._single_load() else None,
        }


def _has_kind(ended: list[tuple[str, Hold]], kind: str) -> bool:
    return any(hold.kind == kind for _, hold in ended)


def tank_loads(cfg: Any) -> list[str]:
    """The loads that heat the tank: the PWM load and each relay with ``heats_tank``."""
    return [cfg.load.name, *(r.name for r in cfg.relays if r.heats_tank)]


def allocator_from_config(cfg: Any, now: float) -> Allocator:
    relays = [Relay(r.name, r.rating_w, r.min_on_s, r.min_off_s, r.priority)
              for r in cfg.relays]
    bypass = cfg.load.bypass_after_s if cfg.load.bypass_gpio >= 0 else None
    return Allocator(cfg.load.rating_w, relays, now, pwm_priority=cfg.load.priority,
                     margin_w=cfg.load.relay_margin_w, bypass_after_s=bypass,
                     check_readings=cfg.control.max_delay_samples + 1,
                     on_after_s=cfg.load.relay_on_after_s,
                     off_after_s=cfg.load.relay_off_after_s)
