"""Calibration procedure against the plant simulator (pure: no processes)."""

from __future__ import annotations

import pytest

from vzdivert.calibrate import Calibration, CalibrationAborted
from vzdivert.plant import House, Scenario, actuator_fraction
from vzdivert.rtworker.curves import TableCurve

STEADY = Scenario("steady", "steady export", duration_s=None, pv_w=3500, base_w=300,
                  base_noise_w=5, meter_noise_w=2)


def calibrate(house: House, cal: Calibration, limit: int = 200) -> Calibration:
    for _ in range(limit):
        cal.feed(house.step(cal.duty))
        if cal.done:
            return cal
    raise AssertionError("calibration did not finish")


@pytest.mark.parametrize("actuator", ["pfc", "linear"])
def test_measures_true_rating_and_curve(actuator: str) -> None:
    house = House(STEADY, seed=3, actuator=actuator, rating_w=2000, rating_error=0.9)
    rating_w, points = calibrate(house, Calibration()).result()
    assert rating_w == pytest.approx(1800, rel=0.02)  # the true rating, not the configured
    curve = TableCurve(points)
    for duty in (0.2, 0.5, 0.8):
        assert curve.power_fraction(duty) == pytest.approx(
            actuator_fraction(actuator, duty), abs=0.03)


def test_aborts_on_import() -> None:
    small = Scenario("small", "too little surplus", duration_s=None, pv_w=1200, base_w=300)
    house = House(small, seed=1, actuator="linear", rating_w=2000)
    with pytest.raises(CalibrationAborted, match="imports"):
        calibrate(house, Calibration())


def test_refuses_without_steady_export() -> None:
    cal = Calibration()
    with pytest.raises(CalibrationAborted, match="not exporting"):
        for grid_w in (-500, -480, -50, -500, -500):
            cal.feed(grid_w)
    cal = Calibration()
    with pytest.raises(CalibrationAborted, match="not steady"):
        for grid_w in (-500, -900, -500, -1500, -500):
            cal.feed(grid_w)


def test_aborts_when_house_changes_during_run() -> None:
    cal = Calibration(steps=(0.5, 1.0), settle_samples=0, measure_samples=1,
                      baseline_samples=2)
    for grid_w in (-2000, -2000, -1000, 0):  # baseline, 50 %, 100 %
        cal.feed(grid_w)
    assert cal.duty == 0.0
    with pytest.raises(CalibrationAborted, match="changed"):
        for grid_w in (-600, -600):  # export at duty 0 is now 1400 W less than at the start
            cal.feed(grid_w)


def test_settle_skips_the_readings_of_the_load_just_switched_off() -> None:
    """Taken over from a controller that had the load on: the first readings still show it
    and must not spoil the baseline."""
    cal = Calibration()
    cal.settle()
    for grid_w in (-1400, -2500, -3200, -3195, -3205, -3200, -3198):
        cal.feed(grid_w)
    assert cal.baseline_w == pytest.approx(-3199.6) and cal.duty == cal.steps[0]
