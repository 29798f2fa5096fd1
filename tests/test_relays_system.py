"""Several loads end to end: a PWM heater and a relay stage on the pigpiod emulator (closed
loop). A surplus beyond the PWM rating switches the relay on and the PWM takes the rest;
import switches it off after min_on_s. Faults with relays: tests/test_faults.py."""

from __future__ import annotations

import json
import time

import pigpio
import pytest
from relayhelp import PWM, RATING_W, RELAY, RELAY_W, feed_until, grid_w, relay_on, relay_stage_on
from syshelp import System, wait_for

from vzdivert.testing.pigpiod_emulator import PigpiodEmulator


def test_surplus_beyond_the_pwm_switches_the_relay_and_the_pwm_takes_the_rest(
        relay_system: System, relay_emulator: PigpiodEmulator) -> None:
    system, emulator = relay_system, relay_emulator
    relay_stage_on(system, emulator)
    for _ in range(10):  # settle: the PWM carries 2600 - 1000 W
        system.post(grid_w(emulator, 2600.0))
        time.sleep(0.1)
    assert emulator.duty_fraction(PWM) == pytest.approx(0.8, abs=0.03)
    assert abs(grid_w(emulator, 2600.0)) < 60
    loads = {load["name"]: load for load in system.state()["loads"]}
    assert loads["stage 2"]["kind"] == "relay" and loads["stage 2"]["on"]
    assert loads["stage 2"]["power_w"] == RELAY_W
    assert loads["heater"]["kind"] == "pwm" and loads["heater"]["duty"] == \
        pytest.approx(0.8, abs=0.03)
    # the surplus falls below the relay's rating: it must stay on for min_on_s, then go
    feed_until(system, emulator, 600.0, lambda: not relay_on(emulator), 10, "relay off")
    on_at, off_at = [e.t_mono for e in emulator.events if e.gpio == RELAY][-2:]
    assert off_at - on_at >= 3.0
    feed_until(system, emulator, 600.0,
               lambda: emulator.duty_fraction(PWM) == pytest.approx(0.3, abs=0.03), 5,
               "the PWM taking the whole surplus again")
    levels = [e.values[0] for e in emulator.events if e.gpio == RELAY]
    first_on = levels.index(1)
    assert set(levels[:first_on]) == {0}  # start-up: the supervisor's and the worker's off
    assert levels[first_on:] == [1, 0]  # then on once, off once: no chatter, no rewrites
    # what each load learned is kept across restarts: the relays' by name, in one file
    assert system.terminate() == 0
    saved = json.loads((system.state_dir / "rating-relays.json").read_text())
    assert list(saved) == ["stage 2"] and saved["stage 2"]["configured_w"] == RELAY_W
    assert json.loads((system.state_dir / "rating-load.json").read_text())[
        "configured_w"] == RATING_W


def test_relay_level_changed_by_someone_else_is_read_back_and_reapplied(
        relay_system: System, relay_emulator: PigpiodEmulator) -> None:
    system, emulator = relay_system, relay_emulator
    relay_stage_on(system, emulator)
    for _ in range(10):  # past the switch-on check (a load that stops drawing right after
        system.post(grid_w(emulator, 2600.0))  # switching on counts as a thermostat)
        time.sleep(0.1)
    pi = pigpio.pi("127.0.0.1", emulator.port, show_errors=False)  # another pigpio client
    try:
        pi.write(RELAY, 0)
    finally:
        pi.stop()
    # the meter goes on as if the relay still drew, so only the read-back can notice (a
    # meter that showed its load gone would let the not-drawing check act first)
    wait_for(lambda: system.post(emulator.duty_fraction(PWM) * RATING_W + RELAY_W - 2600.0)
             == 204 and relay_on(emulator), 8, 0.1,
             what="the relay re-applied after the read-back (every 5 s)")
    # the pin is seen at once; the worker's state reaches the UI with its next publish
    wait_for(lambda: system.state()["readback_mismatches"] >= 1, 3, 0.1,
             what="the mismatch counted in the state")
