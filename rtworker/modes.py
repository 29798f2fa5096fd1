"""The hot-water process's modes in the worker (pause, boost, the guarantee's top-up) and the
tank limit, as holds on the loads (``holds``). A mode ends by itself unless the hot-water
process refreshes it, so a dead planner leaves the worker in auto; the tank limit beats every
mode. Pure: the clock is passed in."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from vzdivert.rtworker.holds import Hold, Holds
from vzdivert.rtworker.tank import TankLimit

log = logging.getLogger("vzdivert.rtworker")

PAUSE, BOOST, TOPUP, TANK = "pause", "boost", "topup", "tank"
HOT_WATER_MODES = ("auto", PAUSE, BOOST, TOPUP)
MODE_MAX_S = 60.0


class HotWaterModes:
    """Puts the modes' and the tank limit's holds on the loads. Boost at full power and
    top-up are no hold: ``full_kind`` tells the core to run the controller at full power."""

    def __init__(self, holds: Holds, tank: TankLimit, pwm_load: str, loads: list[str],
                 tank_loads: list[str]) -> None:
        self.holds, self.tank = holds, tank
        self.pwm_load, self.loads = pwm_load, loads  # every load, the PWM load among them
        self.tank_loads = tank_loads  # those that heat the tank: its limit holds only them
        self.full_kind = ""  # BOOST or TOPUP while the controller runs at full power ...
        self.full_until = 0.0  # ... until this (monotonic), unless refreshed
        self.held = ""  # why the tank limit holds the loads off ("" = it does not)

    def set(self, mode: str, power_w: float, hold_s: float, now: float, rating_w: float,
            duty_at: Callable[[float], float]) -> bool:
        """``mode`` for ``hold_s``: pause (every load off), boost at ``power_w`` (0 or at
        least ``rating_w``: full power; else the PWM load at ``duty_at(power_w)``) or top-up
        (full power). Control runs on under these holds (told what really went out), so
        ending one needs no restart. True when full power starts or ends."""
        if mode not in HOT_WATER_MODES:
            raise ValueError(f"hold: mode must be one of {', '.join(HOT_WATER_MODES)}")
        if not 0.0 <= power_w <= 1e6 or not 0.0 < hold_s <= MODE_MAX_S:
            raise ValueError(f"hold: power_w must be >= 0 and hold_s 0..{MODE_MAX_S:g}")
        until = now + hold_s
        full = mode == TOPUP or (mode == BOOST and (power_w <= 0 or power_w >= rating_w))
        if mode != PAUSE:
            self.holds.clear_all(self.loads, PAUSE)
        if mode != BOOST or full:
            self.holds.clear(self.pwm_load, BOOST)
        if mode == PAUSE:
            self.holds.put_all(self.loads, Hold(PAUSE, 0.0, until, "paused",
                                                freezes_control=False))
        elif mode == BOOST and not full:
            self.holds.put(self.pwm_load, Hold(BOOST, duty_at(power_w), until,
                                               f"boost at {power_w:.0f} W",
                                               freezes_control=False))
        was_full = bool(self.full_kind)
        self.full_kind, self.full_until = mode if full else "", until
        return full != was_full

    def end_full(self, now: float) -> bool:
        """End full power once its time is up; True when it ended."""
        if not self.full_kind or now < self.full_until:
            return False
        log.info("%s expired: control resumes", self.full_kind)
        self.full_kind = ""
        return True

    def stale(self) -> bool:
        """Stale data end full power at once; True when it was on."""
        was_full = bool(self.full_kind)
        self.full_kind, self.full_until = "", 0.0
        return was_full

    def tank_hold(self, now: float) -> None:
        """Put the tank limit's off-hold on every load that heats the tank, or lift it. Stale
        data do not end it: only the tank does."""
        held = self.tank.held(now)
        if held and held != self.held:
            if not self.held:
                log.warning("heating held: %s", held)
            self.holds.put_all(self.tank_loads, Hold(TANK, 0.0, math.inf, held,
                                                     ends_on_stale=False, freezes_control=False))
        if self.held and not held:
            log.info("heating resumes: tank limit lifted")
            self.holds.clear_all(self.tank_loads, TANK)
        self.held = held
