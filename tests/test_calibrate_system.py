"""`vzdivert calibrate` against a running system and a simulated house posting like vzlogger."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from syshelp import REPO, System, reading, vzlogger_post, wait_for

from vzdivert import bus
from vzdivert.calibrate import Calibration
from vzdivert.output.sim import read_sim_duty
from vzdivert.plant import House, Scenario

INTERVAL_S = 0.2


class HouseFeed(threading.Thread):
    """The simulated house in real time: reads the sim output, posts the meter reading."""

    def __init__(self, system: System, scenario: Scenario, interval_s: float = INTERVAL_S):
        super().__init__(daemon=True)
        self.system, self.stop, self.interval_s = system, threading.Event(), interval_s
        self.paused = threading.Event()  # the meter says nothing while set
        self.house = House(scenario, seed=2, dt_s=interval_s, actuator="pfc", rating_w=2000,
                           rating_error=0.9)

    def run(self) -> None:
        sim = bus.find_runtime_dir(self.system.state_dir) / "sim-output"
        while not self.stop.wait(self.interval_s):
            if not self.paused.is_set():
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
    shown = re.search(r"Measured rating: (\d+) W", result.stdout)
    assert shown and float(shown.group(1)) == pytest.approx(1800, rel=0.03), result.stdout
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


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_at_any_moment_is_never_lost(sim_system: System) -> None:
    """SIGINT at many moments of a calibration, from before the first reading to while the
    result is saved, to a `calibrate` started as a background job would be (SIGINT ignored
    on entry, no PYTHONUNBUFFERED). Before the measuring ends the Ctrl-C must win: exit 1,
    output 0, nothing stored (the meter is paused then, so the run cannot end first).
    Later it may land on either side of the decision, never lost in between: exit 1 with
    output 0, or exit 0 only with the full result saved and reported."""
    cal = Calibration()
    lines = (cal.settle_samples + cal.baseline_samples
             + (len(cal.steps) + 1) * (cal.settle_samples + cal.measure_samples))
    steady = Scenario("steady", "steady export", duration_s=None, pv_w=3500, base_w=300,
                      base_noise_w=5)
    interval_s = 0.1
    feed = HouseFeed(sim_system, steady, interval_s)
    feed.start()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    rng = random.Random(10)
    sim = bus.find_runtime_dir(sim_system.state_dir) / "sim-output"
    api = f"http://127.0.0.1:{sim_system.ui_port}/api/settings"
    outcomes = []
    try:
        baseline_done = cal.settle_samples + cal.baseline_samples
        for after in (0, 1, 3, baseline_done, baseline_done + 1, 24, 44, lines - 2, lines - 1,
                      lines, lines):
            wait_for(lambda: not sim_system.state()["stale"], 10, what="fresh data")
            proc = subprocess.Popen(
                [sys.executable, "-m", "vzdivert.cli", "calibrate", "--config",
                 str(sim_system.config), "--yes"], stdout=subprocess.PIPE, text=True, cwd=REPO,
                stdin=subprocess.DEVNULL, env=env, preexec_fn=_ignore_sigint)
            seen = [proc.stdout.readline()]  # the banner: the run has started
            while sum("grid" in line for line in seen) < after:
                seen.append(proc.stdout.readline())
                assert seen[-1], "".join(seen)  # ended before the moment: it must not
            must_win = after <= lines - 2
            if must_win:
                feed.paused.set()
            time.sleep(rng.uniform(0, interval_s))  # somewhere inside the next interval
            proc.send_signal(signal.SIGINT)
            out = "".join(seen) + proc.stdout.read()
            code = proc.wait(30)
            feed.paused.clear()
            stored = requests.get(api, timeout=5).json()["settings"]["curve"] == "table"
            outcomes.append((after, code))
            assert code in (0, 1), out
            if code == 1:
                assert read_sim_duty(sim) == 0.0, out
                assert ("aborted, output 0: interrupted" in out) != stored, out
                assert stored == ("Calibration interrupted, output 0" in out), out
            else:
                assert not must_win, out
                assert stored and "Saved:" in out, out
            if stored:
                requests.post(f"{api}/reset", timeout=5).raise_for_status()
    finally:
        feed.stop.set()
        feed.join()
    assert sum(code == 1 for _, code in outcomes) >= 8, outcomes
