"""Diverted-energy accounting: counts only real output, survives restarts, never runs on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import export_until_on
from syshelp import System, wait_for

from vzdivert.rtworker.energy import ENERGY_FILE, EnergyCounter
from vzdivert.testing.pigpiod_emulator import PigpiodEmulator


def test_counts_power_over_time_and_ignores_off(tmp_path: Path) -> None:
    e = EnergyCounter(tmp_path)
    e.add(1800.0, 2.0)
    e.add(0.0, 100.0)  # output off or stale: callers pass 0 W
    assert e.total_wh == pytest.approx(1.0) and e.today_wh == pytest.approx(1.0)


def test_saves_at_most_every_interval_and_reloads(tmp_path: Path) -> None:
    e = EnergyCounter(tmp_path, save_every_s=60)
    e.add(3600.0, 1.0)
    e.tick(time.monotonic() + 1)
    assert not (tmp_path / ENERGY_FILE).exists()  # not yet due
    e.tick(time.monotonic() + 61)
    assert json.loads((tmp_path / ENERGY_FILE).read_text())["total_wh"] == pytest.approx(1.0)
    again = EnergyCounter(tmp_path)
    assert again.total_wh == pytest.approx(1.0) and again.today_wh == pytest.approx(1.0)


def test_new_day_keeps_total_and_restarts_today(tmp_path: Path) -> None:
    (tmp_path / ENERGY_FILE).write_text(json.dumps(
        {"total_wh": 5.0, "today_wh": 2.0, "day": "2020-01-01"}))
    e = EnergyCounter(tmp_path)
    assert e.total_wh == 5.0 and e.today_wh == 0.0


def test_the_tank_total_leaves_out_loads_that_heat_something_else(tmp_path: Path) -> None:
    """The daily guarantee counts what went into the tank: not a pool pump's energy."""
    (tmp_path / ENERGY_FILE).write_text(json.dumps(
        {"total_wh": 5.0, "today_wh": 2.0, "day": "2020-01-01"}))  # from before the tank total
    e = EnergyCounter(tmp_path, not_tank=frozenset({"pool pump"}))
    assert e.tank_wh == 5.0  # then every load heated the tank
    e.add(3600.0, 1.0, "heater")
    e.add(3600.0, 2.0, "pool pump")
    e.add(3600.0, 1.0)  # unnamed: the single PWM load
    assert e.total_wh == pytest.approx(9.0) and e.tank_wh == pytest.approx(7.0)
    e.save()
    assert EnergyCounter(tmp_path).tank_wh == pytest.approx(7.0)


def test_no_energy_while_stale_and_kept_across_restart(tmp_path: Path,
                                                       emulator: PigpiodEmulator) -> None:
    system = System(tmp_path, f'driver = "pigpio"\npigpio_port = {emulator.port}').start()
    try:
        export_until_on(system, emulator)
        for _ in range(10):
            system.post(-800)
            time.sleep(0.1)
        wait_for(lambda: system.state()["stale"], 6, what="stale after the data stop")
        frozen = system.state()["energy_wh"]
        assert frozen > 0
        time.sleep(1.0)  # the original kept counting here on the last value
        assert system.state()["energy_wh"] == frozen
        assert system.state()["power_w"] == 0.0
        assert system.terminate() == 0  # a clean stop saves
        saved = json.loads((system.state_dir / ENERGY_FILE).read_text())["total_wh"]
        assert saved == pytest.approx(frozen, abs=1e-5)
    finally:
        system.kill_all()
    # what the next worker starts from
    assert EnergyCounter(system.state_dir).total_wh == pytest.approx(frozen, abs=1e-5)
