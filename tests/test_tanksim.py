"""The simulated tank: heating, standing losses, draws, the heater's thermostat."""

from __future__ import annotations

import pytest

from vzdivert.tanksensor import parse_w1_slave
from vzdivert.tanksim import Tank, TankSpec, w1_slave_text


def test_heating_a_tank_takes_its_heat_capacity():
    tank = Tank(TankSpec(volume_l=100, start_c=20, ambient_c=20, loss_w_per_k=0, draws=()))
    for _ in range(60):
        assert tank.step(60.0, 1163.0, 0, 12.0) == 1163.0
    assert tank.temp_c == pytest.approx(30.0, abs=0.05)  # 1.163 kWh = 100 L x 10 K


def test_standing_losses_cool_towards_the_room():
    spec = TankSpec(start_c=60, draws=())
    tank = Tank(spec)
    for m in range(24 * 60):
        tank.step(60.0, 0.0, 0, m / 60)
    lost_wh = (60 - tank.temp_c) * tank.wh_per_k  # about loss_w_per_k x 40 K x 24 h
    assert spec.loss_w_per_k * 36 * 24 < lost_wh < spec.loss_w_per_k * 40 * 24


def test_the_heater_thermostat_opens_and_closes():
    spec = TankSpec(volume_l=50, start_c=64, thermostat_c=65, thermostat_band_k=5, draws=())
    tank = Tank(spec)
    drawn = [tank.step(60.0, 2000.0, 0, 12.0) for _ in range(5)]
    assert drawn[0] == 2000.0 and drawn[-1] == 0.0 and not tank.thermostat_closed


def test_draws_follow_the_profile_and_are_seeded():
    spec = TankSpec(start_c=60, draws=((7.0, 10, 50.0),), draw_spread=0.2)
    a, b = Tank(spec, seed=3), Tank(spec, seed=3)
    for tank in (a, b):
        for m in range(24 * 60):
            tank.step(60.0, 0.0, 0, m / 60)
    assert a.temp_c == b.temp_c
    assert 40 <= a.drawn_l <= 60
    assert a.temp_c < 60 - 40 * (60 - 10) / 200 / 1.5


def test_sensor_reads_in_sixteenths():
    tank = Tank(TankSpec(start_c=48.0))
    assert abs(tank.sensor_c() - 48.0) < 0.3
    assert (tank.sensor_c() * 16) == int(tank.sensor_c() * 16)


@pytest.mark.parametrize("temp_c", [23.125, 59.9375, -1.5, 0.0])
def test_the_demo_writes_what_a_ds18b20_shows(temp_c):
    assert parse_w1_slave(w1_slave_text(temp_c)) == pytest.approx(temp_c, abs=0.001)
