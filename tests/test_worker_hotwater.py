"""The worker core's hot-water holds on a fake clock: pause, boost (full power through the
controller, or a fixed power), the guarantee's top-up, their expiry, and the tank limit
(max_c with hysteresis, a lost sensor) beating every mode; stale data beat everything."""

from __future__ import annotations

import pytest

from vzdivert.config import validate
from vzdivert.output import PWM_NAME
from vzdivert.rtworker.core import Refused, WorkerCore
from vzdivert.rtworker.tank import TankLimit, TankLimits

WALL0 = 1_800_000_000.0


class Sink:
    def __init__(self) -> None:
        self.wh = 0.0

    def add(self, power_w: float, dt_s: float, load: str | None = None) -> None:
        self.wh += max(0.0, power_w) * max(0.0, dt_s) / 3600


class Rig:
    def __init__(self, sensor: str = "") -> None:
        self.cfg = validate({"watchdog": {"stale_after_s": 10.0}, "load": {"rating_w": 2000.0},
                             "tank": {"sensor": sensor, "max_c": 60, "hysteresis_c": 3,
                                      "sensor_timeout_s": 120}})
        self.t = 0.0
        self.core = WorkerCore(self.cfg, Sink(), self.t)

    def reading(self, grid_w: float, dt: float = 1.0) -> float:
        self.t += dt
        plan = self.core.on_reading(grid_w, WALL0 + self.t, WALL0 + self.t, self.t)
        assert plan is not None
        return plan.levels[PWM_NAME]

    def mode(self, mode: str, power_w: float = 0.0, hold_s: float = 10.0) -> None:
        self.core.hot_water(mode, power_w, hold_s, self.t)

    def tank(self, tank_c: float | None, age_s: float = 0.0, error: str = "") -> None:
        self.core.tank_reading(tank_c, age_s, error, self.t)


def importing(rig: Rig, n: int = 4, grid_w: float = 500.0) -> float:
    """Readings while the house imports grid_w plus what the load draws (ideal meter)."""
    duty = 0.0
    for _ in range(n):
        duty = rig.reading(grid_w + duty * 2000.0)
    return duty


def test_boost_runs_full_power_while_importing_and_expires() -> None:
    rig = Rig()
    assert importing(rig) == 0.0
    rig.mode("boost", hold_s=10.0)
    assert rig.core.mode() == "boost"
    assert importing(rig, 3) == pytest.approx(1.0)
    assert rig.core.state(rig.t)["mode"] == "boost"
    assert importing(rig, 10) == 0.0  # nobody refreshed it: back to auto, import -> 0
    assert rig.core.mode() == "auto"


def test_boost_at_a_fixed_power_and_cancel() -> None:
    rig = Rig()
    importing(rig)
    rig.mode("boost", power_w=500.0)
    assert importing(rig, 2) == pytest.approx(0.25)
    rig.mode("auto")
    assert importing(rig, 3) == 0.0 and rig.core.mode() == "auto"


def test_pause_holds_zero_under_export_and_ends() -> None:
    rig = Rig()
    assert rig.reading(-1500.0) > 0
    rig.mode("pause", hold_s=5.0)
    for _ in range(4):
        assert rig.reading(-1500.0) == 0.0
    assert rig.core.mode() == "pause"
    for _ in range(3):
        level = rig.reading(-1500.0)
    assert level > 0.5 and rig.core.mode() == "auto"


def test_pause_beats_boost() -> None:
    rig = Rig()
    importing(rig)
    rig.mode("boost")
    rig.mode("pause")
    assert importing(rig, 2) == 0.0


def test_topup_is_full_power_and_a_stale_meter_ends_it() -> None:
    rig = Rig()
    rig.mode("topup", hold_s=60.0)
    assert importing(rig, 3) == pytest.approx(1.0)
    rig.t += 11
    plan = rig.core.tick(rig.t)
    assert plan is not None and plan.safe and rig.core.duty == 0.0
    assert rig.core.mode() == "stale" and not rig.core.hot.full_kind


def test_no_temperature_holds_off_when_a_sensor_is_configured() -> None:
    rig = Rig(sensor="w1:28-0316a2799fff")
    assert rig.reading(-1500.0) == 0.0
    assert "no tank temperature" in rig.core.state(rig.t)["hold_reason"]
    rig.tank(45.0)
    assert rig.reading(-1500.0) > 0.5
    rig.t += 121
    assert rig.reading(-1500.0) == 0.0
    assert "no tank temperature for 12" in rig.core.hot.held


def test_max_c_stops_every_mode_and_hysteresis_resumes() -> None:
    rig = Rig(sensor="mqtt:tank/temp")
    rig.tank(50.0)
    assert rig.reading(-1500.0) > 0.5
    rig.tank(60.5)
    assert rig.reading(-1500.0) == 0.0
    rig.mode("boost")
    assert rig.reading(500.0) == 0.0  # boost too
    rig.mode("auto")
    rig.tank(58.0)  # inside the hysteresis band: still held
    assert rig.reading(-1500.0) == 0.0
    rig.tank(56.5)
    assert importing(rig, 3, grid_w=-1500.0) > 0.5
    assert rig.core.hot.held == ""


def test_bad_commands_are_refused() -> None:
    rig = Rig()
    for args in (("turbo", 0.0, 5.0), ("boost", -5.0, 5.0), ("pause", 0.0, 61.0)):
        with pytest.raises(Refused):
            rig.core.hot_water(*args, now=0.0)
    with pytest.raises(Refused):
        rig.core.tank_reading(float("nan"), 0.0, "", 0.0)


def test_tank_limit_without_sensor_and_with_errors() -> None:
    assert TankLimit(TankLimits(sensor=False)).held(1e9) == ""
    lim = TankLimit(TankLimits(sensor=True, timeout_s=60))
    lim.reading(None, 0.0, "w1_slave: CRC check failed", 0.0)
    assert "CRC" in lim.held(1.0)
    lim.reading(40.0, 30.0, "", 10.0)  # measured 30 s ago
    assert lim.held(39.0) == "" and "no tank temperature for 61 s" in lim.held(41.0)


def test_a_thermostat_that_opens_during_a_top_up_is_seen_and_not_counted() -> None:
    """At full power the controller keeps testing whether the load draws: a meter that does
    not move with the load (thermostat open) makes it `saturated`, and the energy counter
    stops (the planner reads that as: tank full, guarantee met)."""
    rig = Rig()
    rig.mode("topup", hold_s=60.0)
    assert importing(rig, 5) == pytest.approx(1.0)
    assert not rig.core.controller.saturated and rig.core.power_w() == 2000.0
    for _ in range(200):  # the thermostat opened: the grid no longer shows the load
        rig.core.hot_water("topup", 0.0, 60.0, rig.t)
        rig.reading(500.0)
        if rig.core.controller.saturated:
            break
    assert rig.core.controller.saturated and rig.core.power_w() == 0.0
    assert rig.core.mode() == "topup"
    before = rig.core.energy.wh
    for _ in range(5):
        rig.core.hot_water("topup", 0.0, 60.0, rig.t)
        rig.reading(500.0)
    assert rig.core.energy.wh == before



def test_a_boost_keeps_the_learned_rating() -> None:
    """Full power changes the controller's target, not its rating: what was learned stays
    (a changed rating would tell the estimator to learn afresh)."""
    rig = Rig()
    importing(rig)
    est = rig.core.controller.estimator
    est.rating_w, est.ratios = 2400.0, [(2400.0, 1.0)]  # as if learned from earlier moves
    rig.core.allocator.pwm_rating_w = 2400.0  # what the allocator runs the PWM load at
    rig.mode("boost")
    assert rig.core.hot.full_kind == "boost"
    assert est.rating_w == 2400.0 and est.ratios
