"""`vzdivert calibrate` against a running system and a simulated house posting like vzlogger."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from syshelp import REPO, System, reading, vzlogger_post, wait_for

from vzdivert import bus
from vzdivert.output.sim import read_sim_duty
from vzdivert.plant import House, Scenario

INTERVAL_S = 0.2


class HouseFeed(threading.Thread):
    """The simulated house in real time: reads the sim output, posts the meter reading."""

    def __init__(self, system: System, scenario: Scenario):
        super().__init__(daemon=True)
        self.system, self.stop = system, threading.Event()
        self.house = House(scenario, seed=2, dt_s=INTERVAL_S, actuator="pfc", rating_w=2000,
                           rating_error=0.9)

    def run(self) -> None:
        sim = bus.find_runtime_dir(self.system.state_dir) / "sim-output"
        while not self.stop.wait(INTERVAL_S):
            grid_w = self.house.step(read_sim_duty(sim))
            vzlogger_post(self.system.ingest_port, reading(grid_w))


def calibrate(system: System) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vzdivert.cli", "calibrate", "--config",
                           str(system.config), "--yes"], capture_output=True, text=True,
                          cwd=REPO, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def sim_system(tmp_path: Path):
    system = System(tmp_path, 'driver = "sim"', extra="[load]\ncurve = \"pfc\"\n").start()
    yield system
    system.kill_all()


def run_with_house(system: System, scenario: Scenario) -> subprocess.CompletedProcess:
    feed = HouseFeed(system, scenario)
    feed.start()
    try:
        wait_for(lambda: not system.state()["stale"], 10, what="fresh data from the house")
        return calibrate(system)
    finally:
        feed.stop.set()
        feed.join()


def test_calibration_measures_and_stores_the_curve(sim_system: System) -> None:
    steady = Scenario("steady", "steady export", duration_s=None, pv_w=3500, base_w=300,
                      base_noise_w=5)
    result = run_with_house(sim_system, steady)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Measured rating: 1800 W" in result.stdout or "Measured rating: 17" in result.stdout
    settings = requests.get(f"http://127.0.0.1:{sim_system.ui_port}/api/settings",
                            timeout=5).json()
    assert settings["settings"]["curve"] == "table"
    assert settings["settings"]["rating_w"] == pytest.approx(1800, rel=0.03)
    points = settings["settings"]["curve_points"]
    assert points[0] == [0.0, 0.0] and points[-1][0] == 1.0 and points[-1][1] == 1.0
    assert settings["changes"][-1]["who"] == "calibrate"


def test_calibration_aborts_on_import_with_output_zero(sim_system: System) -> None:
    small = Scenario("small", "too little surplus", duration_s=None, pv_w=1200, base_w=300,
                     base_noise_w=5)
    result = run_with_house(sim_system, small)
    assert result.returncode == 1
    assert "aborted, output 0" in result.stdout and "imports" in result.stdout
    sim = bus.find_runtime_dir(sim_system.state_dir) / "sim-output"
    assert read_sim_duty(sim) == 0.0
    settings = requests.get(f"http://127.0.0.1:{sim_system.ui_port}/api/settings",
                            timeout=5).json()["settings"]
    assert settings["curve"] == "pfc"  # nothing stored


def test_calibration_refuses_without_data(sim_system: System) -> None:
    result = calibrate(sim_system)  # nobody posts: the worker is stale
    assert result.returncode == 1
    assert "stale" in result.stdout


def test_ctrl_c_aborts_with_output_zero(sim_system: System) -> None:
    steady = Scenario("steady", "steady export", duration_s=None, pv_w=3500, base_w=300)
    feed = HouseFeed(sim_system, steady)
    feed.start()
    try:
        wait_for(lambda: not sim_system.state()["stale"], 10, what="fresh data from the house")
        proc = subprocess.Popen([sys.executable, "-m", "vzdivert.cli", "calibrate", "--config",
                                 str(sim_system.config), "--yes"], stdout=subprocess.PIPE,
                                text=True, cwd=REPO, stdin=subprocess.DEVNULL)
        for line in proc.stdout:
            if "duty  30%" in line:  # the load is on, part way
                break
        sim = bus.find_runtime_dir(sim_system.state_dir) / "sim-output"
        assert read_sim_duty(sim) > 0
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        assert proc.wait(30) == 1 and "aborted, output 0: interrupted" in rest
        assert read_sim_duty(sim) == 0.0
    finally:
        feed.stop.set()
        feed.join()
