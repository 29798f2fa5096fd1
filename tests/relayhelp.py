"""A PWM heater and a relay stage on the pigpiod emulator for end-to-end tests, fed by a
closed loop (grid = what the emulator's pins draw - the surplus)."""

from __future__ import annotations

import pytest
from syshelp import System, wait_for

from vzdivert.testing.pigpiod_emulator import PigpiodEmulator

PWM, RELAY = 12, 17
RATING_W, RELAY_W = 2000.0, 1000.0
RELAYS = f"""
[load]
rating_w = {RATING_W}
relay_on_after_s = 0    # no time filter: the minimum times alone, for a quick test
relay_off_after_s = 0

[[relays]]
name = "stage 2"
gpio = {RELAY}
rating_w = {RELAY_W}
min_on_s = 3
min_off_s = 1
"""


@pytest.fixture
def relay_emulator():
    emu = PigpiodEmulator(port=0).start()
    yield emu
    emu.stop()


@pytest.fixture
def relay_system(tmp_path, relay_emulator: PigpiodEmulator):
    sys_ = System(tmp_path, f'driver = "pigpio"\ngpio = {PWM}\npigpio_port = '
                  f'{relay_emulator.port}', extra=RELAYS).start()
    yield sys_
    sys_.kill_all()


def grid_w(emu: PigpiodEmulator, surplus_w: float) -> float:
    """What the meter shows: the loads the pins really drive, minus the surplus."""
    return emu.duty_fraction(PWM) * RATING_W + emu.duty_fraction(RELAY) * RELAY_W - surplus_w


def relay_on(emu: PigpiodEmulator) -> bool:
    return emu.duty_fraction(RELAY) == 1.0


def feed_until(system: System, emu: PigpiodEmulator, surplus_w: float, done, timeout_s: float,
               what: str) -> None:
    wait_for(lambda: system.post(grid_w(emu, surplus_w)) == 204 and done(), timeout_s, 0.1,
             what=what)


def relay_stage_on(system: System, emu: PigpiodEmulator) -> None:
    feed_until(system, emu, 2600.0, lambda: relay_on(emu) and emu.duty_fraction(PWM) > 0.5,
               15, "the relay on and the PWM filling the rest")


def all_off(emu: PigpiodEmulator) -> bool:
    return emu.duty_fraction(PWM) == 0.0 and emu.duty_fraction(RELAY) == 0.0


