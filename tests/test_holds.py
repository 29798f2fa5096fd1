"""The worker's hot-water holds: self-expiring modes and the tank limit."""

from __future__ import annotations

import pytest

from vzdivert.rtworker.holds import HOLD_MAX_S, Holds, TankLimits


def test_a_mode_expires_by_itself():
    h = Holds(TankLimits())
    h.command("boost", 0.0, 20.0, now=100.0)
    assert h.decide(119.9) == ("boost", 0.0, "")
    assert h.decide(120.0) == ("auto", 0.0, "")


def test_mode_commands_are_checked():
    h = Holds(TankLimits())
    for args in (("turbo", 0.0, 10.0), ("boost", -1.0, 10.0), ("pause", 0.0, HOLD_MAX_S + 1)):
        with pytest.raises(ValueError):
            h.command(*args, now=0.0)


def test_without_a_sensor_nothing_is_held():
    assert Holds(TankLimits(sensor=False)).decide(1e9)[2] == ""


def test_with_a_sensor_no_temperature_holds_off():
    h = Holds(TankLimits(sensor=True, timeout_s=120))
    assert "no tank temperature" in h.decide(0.0)[2]
    h.temperature(45.0, 5.0, "", now=10.0)
    assert h.decide(10.0)[2] == ""
    assert h.decide(124.0)[2] == ""
    held = h.decide(126.0)[2]
    assert "no tank temperature for 121 s" in held


def test_sensor_error_is_the_reason():
    h = Holds(TankLimits(sensor=True, timeout_s=60))
    h.temperature(None, 0.0, "w1_slave: CRC check failed", now=0.0)
    assert "CRC" in h.decide(1.0)[2]


def test_max_c_with_hysteresis_in_every_mode():
    h = Holds(TankLimits(sensor=True, max_c=60, hysteresis_c=3))
    h.command("boost", 0.0, 30.0, now=0.0)
    for tank_c, held in ((59.9, False), (60.0, True), (58.0, True), (57.1, True),
                         (56.9, False), (58.0, False)):
        h.temperature(tank_c, 0.0, "", now=1.0)
        mode, _, why = h.decide(1.0)
        assert mode == "boost" and bool(why) == held, tank_c
