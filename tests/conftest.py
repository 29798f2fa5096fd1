"""Fixtures for end-to-end tests: a pigpiod emulator and a whole `vzdivert run` on it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import settings
from influxhelp import start_influxd
from pwmfake import tree  # noqa: F401  (the fake /sys/class/pwm, for every test)
from relayhelp import relay_emulator, relay_system  # noqa: F401  (fixtures for every test)
from syshelp import System, wait_for, worker_pids

from vzdivert.testing.pigpiod_emulator import Event, PigpiodEmulator

GPIO = 12

# Properties are about results, not speed (benches measure that): a loaded 2-core CI machine
# must not fail a property on hypothesis's 200 ms per-example deadline.
settings.register_profile("vzdivert", deadline=None)
settings.load_profile("vzdivert")


class Recorder:
    """Snapshots, at every write the emulator receives, which workers were alive."""

    def __init__(self, config: Path):
        self.config = config
        self.armed = threading.Event()
        self.writes: list[tuple[Event, set[int]]] = []

    def __call__(self, event: Event) -> None:
        if self.armed.is_set() and event.gpio == GPIO:
            self.writes.append((event, worker_pids(self.config)))


@pytest.fixture
def emulator():
    emu = PigpiodEmulator(port=0).start()
    yield emu
    emu.stop()


@pytest.fixture
def system(tmp_path: Path, emulator: PigpiodEmulator):
    sys_ = System(tmp_path, f'driver = "pigpio"\ngpio = {GPIO}\npigpio_port = {emulator.port}')
    recorder = Recorder(sys_.config)
    emulator.on_write = recorder
    sys_.recorder = recorder
    sys_.start()
    yield sys_
    sys_.kill_all()


def duty(emu: PigpiodEmulator) -> float:
    return emu.duty_fraction(GPIO)


def export_until_on(system: System, emu: PigpiodEmulator, grid_w: float = -800) -> None:
    wait_for(lambda: system.post(grid_w) == 204 and duty(emu) > 0.05, 15, 0.2,
             what="export raising the duty")




@pytest.fixture(scope="module")
def influx(tmp_path_factory):
    """A real InfluxDB 1.x server on free loopback ports."""
    yield from start_influxd(tmp_path_factory.mktemp("influxd"))
