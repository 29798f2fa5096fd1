"""Several loads end to end: a PWM heater and a relay stage on the pigpiod emulator, fed by
a closed loop (grid = what the emulator's pins draw - the surplus). A surplus beyond the PWM
rating switches the relay on and the PWM takes the rest; import switches it off after
min_on_s; and every fault (data stop, kill -9 and SIGSTOP of the worker, SIGTERM,
`vzdivert safe-off`) leaves the relay off as well as the PWM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pigpio
import pytest
from syshelp import REPO, System, stopped, wait_for

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
def emulator():
    emu = PigpiodEmulator(port=0).start()
    yield emu
    emu.stop()


@pytest.fixture
def system(tmp_path, emulator: PigpiodEmulator):
    sys_ = System(tmp_path, f'driver = "pigpio"\ngpio = {PWM}\npigpio_port = {emulator.port}',
                  extra=RELAYS).start()
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


def test_surplus_beyond_the_pwm_switches_the_relay_and_the_pwm_takes_the_rest(
        system: System, emulator: PigpiodEmulator) -> None:
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


def test_data_stop_opens_the_relay(system: System, emulator: PigpiodEmulator) -> None:
    relay_stage_on(system, emulator)
    t0 = time.monotonic()
    wait_for(lambda: all_off(emulator), 5, what="every output off after the data stop")
    assert time.monotonic() - t0 < 2.5  # stale_after_s = 2, like the PWM
    assert system.state()["loads"][1]["on"] is False


def test_kill_9_and_sigstop_of_the_worker_open_the_relay(system: System,
                                                        emulator: PigpiodEmulator) -> None:
    relay_stage_on(system, emulator)
    os.kill(system.pid("rtworker"), signal.SIGKILL)  # the supervisor's own handle zeroes
    wait_for(lambda: all_off(emulator), 2, what="every output off after kill -9")
    relay_stage_on(system, emulator)  # the new worker (min_off counts from its start)
    with stopped(system.pid("rtworker")):
        t0 = time.monotonic()
        wait_for(lambda: all_off(emulator), 5, what="every output off for a hung worker")
        assert time.monotonic() - t0 < 2.5  # hang_after_s 1.5 + a tick


def test_sigterm_and_safe_off_open_the_relay(system: System, emulator: PigpiodEmulator) -> None:
    relay_stage_on(system, emulator)
    assert system.terminate() == 0
    assert all_off(emulator)
    emulator.clear_events()
    # the pins back on (as if a crash had left them), then systemd's ExecStopPost
    pi = pigpio.pi("127.0.0.1", emulator.port, show_errors=False)
    try:
        pi.write(RELAY, 1)
        pi.hardware_PWM(PWM, 600, 500_000)
    finally:
        pi.stop()
    assert relay_on(emulator)
    result = subprocess.run([sys.executable, "-m", "vzdivert.cli", "safe-off", "--config",
                             str(system.config)], capture_output=True, text=True, cwd=REPO,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert all_off(emulator) and "stage 2" in result.stdout
    last = [e for e in emulator.events if e.gpio == RELAY][-1]
    assert (last.cmd, last.values) == ("WRITE", (0,))
