"""The house simulator: determinism, sign conventions, actuator physics, meter averaging and
delay, thermostat, the energy tally and its definitions, the scenarios."""

from __future__ import annotations

import math

import pytest

from vzdivert.plant import SCENARIOS, SUBSTEP_S, House, Scenario, actuator_fraction

QUIET = Scenario("quiet", "nothing happens", duration_s=60, pv_w=2500, base_w=500,
                 meter_noise_w=0)


def readings(house: House, duties: list[float]) -> list[float]:
    return [house.step(d) for d in duties]


def test_deterministic_for_a_seed() -> None:
    a = readings(House("demo_day", seed=7), [0.3] * 300)
    b = readings(House("demo_day", seed=7), [0.3] * 300)
    c = readings(House("demo_day", seed=8), [0.3] * 300)
    assert a == b
    assert a != c


def test_same_world_at_any_meter_interval() -> None:
    """The house runs on a 50 ms grid: a 4 Hz meter averaged over 4 readings equals the
    1 Hz meter (delay 0, duty 0, no meter noise)."""
    sc = Scenario("w", "weather", duration_s=120, pv_w=3000, pv_flicker_w=20, cloud_gap_s=20,
                  base_w=400, base_noise_w=30, kettle_w=2000, kettle_gap_s=30, meter_noise_w=0)
    slow = readings(House(sc, seed=3, dt_s=1.0, meter_delay_samples=0), [0.0] * 100)
    fast = readings(House(sc, seed=3, dt_s=0.25, meter_delay_samples=0), [0.0] * 400)
    for i, y in enumerate(slow):
        assert sum(fast[4 * i:4 * i + 4]) / 4 == pytest.approx(y, abs=1e-6)


def test_grid_sign_and_heater_power() -> None:
    house = House(QUIET, actuator="linear", rating_w=2000, meter_delay_samples=0)
    assert house.step(0.0) == pytest.approx(500 - 2500)  # export is negative
    assert house.step(1.0) == pytest.approx(500 - 2500 + 2000)
    assert house.heater_w == pytest.approx(2000)
    assert house.surplus_w == pytest.approx(2000)


def test_rating_error_changes_the_true_power() -> None:
    house = House(QUIET, actuator="linear", rating_w=2000, rating_error=0.9,
                  meter_delay_samples=0)
    house.step(0.5)
    assert house.heater_w == pytest.approx(900)
    assert house.true_rating_w == pytest.approx(1800)


def test_pfc_actuator_is_the_s_curve() -> None:
    for duty in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        a = math.pi * (1 - duty)
        assert actuator_fraction("pfc", duty) == pytest.approx(
            1 - a / math.pi + math.sin(2 * a) / (2 * math.pi), abs=1e-12)
        assert actuator_fraction("linear", duty) == duty
    house = House(QUIET, actuator="pfc", rating_w=2000, meter_delay_samples=0)
    house.step(house.duty_for(700))
    assert house.heater_w == pytest.approx(700, abs=0.01)


@pytest.mark.parametrize("delay, expected", [
    (0, [-2000, 0, 0, 0]),
    (1, [-2000, -2000, 0, 0]),
    (0.5, [-2000, -1000, 0, 0]),  # averaged: half of the step shows one reading early
    (2, [-2000, -2000, -2000, 0]),
])
def test_meter_delay_and_averaging(delay: float, expected: list[float]) -> None:
    house = House(QUIET, actuator="linear", rating_w=2000, meter_delay_samples=delay)
    got = readings(house, [0.0, 1.0, 1.0, 1.0])
    assert got == pytest.approx(expected, abs=1e-6)


def test_meter_averages_within_the_interval() -> None:
    """A load step in the middle of an interval shows half in that reading."""
    sc = Scenario("half", "step at 1.5 s", duration_s=10, pv_w=2000, base_w=0,
                  steps=((0, 0), (1.5 + SUBSTEP_S / 2, 1000)), meter_noise_w=0)
    got = readings(House(sc, meter_delay_samples=0), [0.0] * 3)
    assert got == pytest.approx([-2000, -1500, -1000], abs=1e-6)


def test_thermostat_cuts_the_heater() -> None:
    sc = Scenario("t", "thermostat", duration_s=100, pv_w=2500, base_w=500,
                  thermostat_closed_s=10, thermostat_open_s=10, meter_noise_w=0)
    house = House(sc, actuator="linear", rating_w=2000, meter_delay_samples=0)
    states = []
    for _ in range(40):
        house.step(1.0)
        states.append((house.thermostat_closed, house.heater_w, house.capacity_w))
    assert any(not closed for closed, _, _ in states) and any(closed for closed, _, _ in states)
    for closed, heater, _ in states:
        if not closed:
            assert heater == 0.0
    assert len(house.events_s) >= 2
    # it re-closes after roughly thermostat_open_s (jitter 0.7..1.3)
    assert 7 <= house.events_s[1] - house.events_s[0] <= 13


def test_tally_definitions() -> None:
    """Heater off: no caused import, export counts only what the heater could absorb.
    Heater too high: import beyond the surplus is caused by the diverter."""
    off = House(QUIET, actuator="linear", rating_w=2000, meter_delay_samples=0)
    readings(off, [0.0] * 36)  # 36 s at 2 kW surplus, heater could take 2 kW
    assert off.tally.caused_import_wh == 0.0
    assert off.tally.exported_wh == pytest.approx(2000 * 36 / 3600, rel=1e-6)
    assert off.tally.ideal_wh == pytest.approx(2000 * 36 / 3600, rel=1e-6)
    night = Scenario("night", "no PV", duration_s=60, pv_w=0, base_w=300, meter_noise_w=0)
    on = House(night, actuator="linear", rating_w=2000, meter_delay_samples=0)
    readings(on, [0.5] * 36)  # 1 kW heater with no surplus: all of it is caused import
    assert on.tally.caused_import_wh == pytest.approx(1000 * 36 / 3600, rel=1e-6)
    assert on.tally.exported_wh == 0.0 and on.tally.ideal_wh == 0.0
    assert on.tally.loss_wh == pytest.approx(10.0)
    big = Scenario("big", "surplus above the rating", duration_s=60, pv_w=4000, base_w=500,
                   meter_noise_w=0)
    full = House(big, actuator="linear", rating_w=2000, meter_delay_samples=0)
    readings(full, [1.0] * 36)  # 1.5 kW exported, but the heater could take no more
    assert full.tally.exported_wh == 0.0 and full.tally.loss_wh == 0.0


def test_oracle_duty_is_nearly_lossless_on_a_quiet_house() -> None:
    house = House(QUIET, actuator="pfc", rating_w=2000, meter_delay_samples=1)
    house.step(0.0)
    while not house.finished:
        house.step(house.duty_for(house.surplus_w))
    assert house.tally.loss_wh <= 2 * 2000 / 3600  # only while the first reading travels
    assert house.tally.diverted_wh == pytest.approx(house.tally.ideal_wh - house.tally.loss_wh)


def test_scenarios_run_and_finish() -> None:
    for name, sc in SCENARIOS.items():
        house = House(name, seed=1, dt_s=2.0)
        for _ in range(200):
            y = house.step(0.5)
            assert math.isfinite(y)
        assert house.finished == (sc.duration_s is not None and sc.duration_s <= 400), name


def test_demo_day_is_endless_and_lively() -> None:
    house = House("demo_day", seed=1, dt_s=4.0)
    values = readings(house, [0.0] * 3000)  # 3.3 hours
    assert not house.finished
    assert max(values) - min(values) > 1500  # clouds and kettles, not a flat line
    assert len(house.events_s) > 20


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="actuator"):
        House(QUIET, actuator="triac")
    with pytest.raises(ValueError, match="dt_s"):
        House(QUIET, dt_s=0.0)
    with pytest.raises(KeyError):
        House("no_such_scenario")
