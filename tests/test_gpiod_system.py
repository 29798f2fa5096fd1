"""A whole `vzdivert run` on the Pi 5 path: kernel PWM (a fake /sys/class/pwm tree) and a
relay through libgpiod, the real gpiod package over a fake kernel shared between the
processes (tests/gpiodfake.py; a line's owner is an flock the kernel drops when its process
dies, as it closes a line request). Start-up, kill -9 of the worker, SIGTERM and safe-off
leave the relay off, and the supervisor never finds the line still held."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gpiodfake import Kernel
from relayhelp import RELAY, RELAYS
from syshelp import System, wait_for

TESTS = Path(__file__).parent
REPO = TESTS.parent


@pytest.fixture
def pi5(tmp_path, tree, monkeypatch):
    kernel = Kernel(tmp_path / "dev", shared=True)
    kernel.dev.mkdir()
    rp1 = kernel.add_chip(4, "pinctrl-rp1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS / "gpiodsite"), str(TESTS)]))
    monkeypatch.setenv("VZDIVERT_FAKE_GPIO", str(kernel.dev))
    line = rp1.lines[RELAY]
    line.output, line.level = True, 1  # left on by a crash, on a kernel that keeps it so
    system = System(tmp_path, f'driver = "sysfs"\ngpio = 12\nsysfs_root = "{tree.root}"\n'
                              f'gpiod_chip = "{rp1.path}"', extra=RELAYS)
    yield system, line, tree.rp1.path / "pwm0" / "duty_cycle"
    system.kill_all()


def test_relay_on_libgpiod_is_off_after_every_fault(pi5) -> None:
    system, line, duty = pi5
    system.start()
    assert line.electrical() == 0  # start-up drove it off before the worker ran
    wait_for(lambda: system.post(-3500.0) == 204 and line.electrical() == 1, 15, 0.1,
             what="the relay on through libgpiod")
    assert line.consumer == "vzdivert" and line.owner is not None
    worker = system.pid("rtworker")
    os.kill(worker, signal.SIGKILL)  # no more readings: only the supervisor can open it
    wait_for(lambda: line.electrical() == 0, 5, what="the relay off after kill -9")
    wait_for(lambda: system.pid("rtworker") not in (0, worker), 10, what="a new worker")
    wait_for(lambda: system.post(-3500.0) == 204 and line.electrical() == 1, 15, 0.1,
             what="the relay on again")
    assert system.terminate() == 0
    assert line.electrical() == 0 and line.owner is None and int(duty.read_text()) == 0
    logs = system.logs()
    assert "could not drive the output to 0" not in logs, logs
    line.output, line.level = True, 1  # as if a crash left it on
    result = subprocess.run([sys.executable, "-m", "vzdivert.cli", "safe-off", "--config",
                             str(system.config)], capture_output=True, text=True, cwd=REPO,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert line.electrical() == 0 and "relay:stage 2" in result.stdout
