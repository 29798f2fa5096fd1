"""`vzdivert doctor`: each check seen failing and passing, against a real running system
(tests/syshelp.py) where a check needs one, a temporary root with fake /proc, /sys and
/run entries otherwise, and the pigpiod emulator on loopback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from syshelp import System, free_port, wait_for

from vzdivert import config as configmod
from vzdivert import doctor
from vzdivert.doctor import Doctor
from vzdivert.host import Host
from vzdivert.testing.pigpiod_emulator import PigpiodEmulator

PI5_PWM = "/sys/devices/platform/axi/1000120000.pcie/1f00098000.pwm"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    s = System(tmp_path_factory.mktemp("doctor"), 'driver = "sim"')
    try:
        yield s.start()
    finally:
        s.kill_all()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc/group").write_text("gpio:x:997:vzdivert\nvzdivert:x:996:\n")
    (r / "etc/passwd").write_text("vzdivert:x:996:996::/var/lib/vzdivert:/usr/sbin/nologin\n")
    return r


def make(root: Path, status: dict[str, Any] | None = None, state_dir: Path | None = None,
         **sections: dict[str, Any]) -> Doctor:
    data = {k: v for k, v in sections.items()}
    data.setdefault("state", {"dir": str(state_dir or root)})
    return Doctor(Host(root), configmod.validate(data), status)


def status_of(system: System) -> dict[str, Any]:
    cfg = configmod.load(system.config)
    status = doctor.supervisor_status(cfg)
    assert status is not None
    return status


def test_service_without_systemd(root: Path, system: System) -> None:
    assert not make(root).service().ok
    check = make(root, status_of(system)).service()
    assert check.ok and "not under systemd" in check.detail


def test_service_under_systemd(root: Path, tmp_path: Path) -> None:
    (root / "run/systemd/system").mkdir(parents=True)
    fake = tmp_path / "systemctl"  # stands in for systemd, which does not run here
    fake.write_text('#!/bin/sh\ncase "$1" in is-active) echo "$ACTIVE";; '
                    'is-enabled) echo enabled;; esac\n')
    fake.chmod(0o755)
    d = make(root)
    d.systemctl = str(fake)
    os.environ["ACTIVE"] = "failed"
    try:
        check = d.service()
        assert not check.ok and "failed" in check.detail and "journalctl" in check.fix
        os.environ["ACTIVE"] = "active"
        assert d.service().ok
    finally:
        del os.environ["ACTIVE"]


def test_pigpiod_reachable_or_not(root: Path) -> None:
    port = free_port()
    check = make(root, output={"pigpio_port": port}).output()
    assert not check.ok and "not reachable" in check.detail and "pigpiod" in check.fix
    emulator = PigpiodEmulator().start()
    try:
        check = make(root, output={"pigpio_port": emulator.port}).output()
        assert check.ok and "hardware revision" in check.detail, check
    finally:
        emulator.stop()


def fake_pwm_chip(root: Path, writable: bool) -> Path:
    chip = root / "sys/class/pwm/pwmchip2"
    chip.mkdir(parents=True)
    os.symlink(PI5_PWM, chip / "device")
    (chip / "export").write_text("")
    os.chown(chip / "export", 0, 997)
    (chip / "export").chmod(0o220 if writable else 0o200)
    return chip


def test_pwm_chip_and_its_permission(root: Path) -> None:
    sysfs = {"driver": "sysfs"}
    check = make(root, output=sysfs).output()
    assert not check.ok and "dtoverlay=pwm-2chan" in check.fix
    assert not make(root, output=sysfs).gpio().ok
    fake_pwm_chip(root, writable=False)
    assert make(root, output=sysfs).output().ok
    check = make(root, output=sysfs).gpio()
    assert not check.ok and "may not write" in check.detail
    (root / "sys/class/pwm/pwmchip2/export").chmod(0o220)
    assert make(root, output=sysfs).gpio().ok


def test_gpio_group_membership(root: Path) -> None:
    assert make(root).gpio().ok
    (root / "etc/group").write_text("gpio:x:997:pi\nvzdivert:x:996:\n")
    check = make(root).gpio()
    assert not check.ok and check.fix.startswith("sudo usermod -aG gpio vzdivert")


def test_meter_data_arriving_and_their_age(root: Path, system: System) -> None:
    assert not make(root).meter().ok  # nothing running
    fresh = status_of(system)
    if fresh["worker"].get("grid_w") is None:  # this system has had no reading yet
        check = make(root, fresh).meter()
        assert not check.ok and check.detail == "no reading has arrived"
        assert "vzlogger" in check.fix
    system.post(-300.0)
    status = wait_for(lambda: (s := status_of(system))["worker"].get("grid_w") == -300.0
                      and s, what="the reading in the worker's state")
    check = make(root, status).meter()
    assert check.ok and check.detail.startswith("last reading ")
    # stale_after_s is 2 s in this system: a reading that old fails
    wait_for(lambda: status_of(system)["worker"]["stale"], timeout_s=10, what="stale")
    check = make(root, status_of(system), watchdog={"stale_after_s": 2}).meter()
    assert not check.ok and "stale after 2 s" in check.detail


def test_clock_synchronised(root: Path) -> None:
    check = make(root).clock()
    assert not check.ok and "timedatectl set-ntp" in check.fix
    (root / "run/systemd/timesync").mkdir(parents=True)
    (root / "run/systemd/timesync/synchronized").write_text("")
    assert make(root).clock().ok


def fake_proc(root: Path, pid: int, policy: int, locked_kb: int) -> None:
    proc = root / f"proc/{pid}"
    proc.mkdir(parents=True, exist_ok=True)
    fields = ["S"] + ["0"] * 37 + [str(policy)] + ["0"] * 10  # fields 3.., 41 = policy
    (proc / "stat").write_text(f"{pid} (python3 -m vz) " + " ".join(fields) + "\n")
    (proc / "status").write_text(f"Name:\tpython3\nVmLck:\t{locked_kb:>8} kB\n")


def test_realtime_grants_of_the_running_worker(root: Path, system: System) -> None:
    status = status_of(system)
    pid = status["processes"]["rtworker"]["pid"]
    check = make(root, status).realtime()
    assert not check.ok and f"no /proc entry for pid {pid}" in check.detail
    fake_proc(root, pid, policy=0, locked_kb=0)
    check = make(root, status).realtime()
    assert not check.ok and "not SCHED_FIFO, memory not locked" in check.detail
    assert "AmbientCapabilities" in check.fix
    fake_proc(root, pid, policy=1, locked_kb=40960)
    check = make(root, status).realtime()
    assert check.ok and "SCHED_FIFO, 40960 kB locked" in check.detail
    assert make(root, status, rtworker={"priority": 0, "lock_memory": False}).realtime().ok
    assert not make(root).realtime().ok  # nothing running
    # the real /proc entry is read the same way: the policy of this worker, whatever it is
    policy, _ = doctor.proc_sched(Host(), pid)
    assert policy == os.sched_getscheduler(pid)


def test_disk_space_of_the_state_dir(root: Path, tmp_path: Path) -> None:
    assert make(root, state_dir=tmp_path).disk().ok
    d = make(root, state_dir=tmp_path)
    d.min_free_bytes = 1 << 60
    check = d.disk()
    assert not check.ok and "MB free" in check.detail
    check = make(root, state_dir=tmp_path / "missing").disk()
    assert not check.ok and "missing or not writable" in check.detail


def test_one_line_per_check(root: Path, system: System) -> None:
    out = io.StringIO()
    code = doctor.run(Namespace(root=str(root), config=str(system.config)), out)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["service", "output", "gpio", "meter",
                                                   "clock", "realtime", "disk"]
    assert lines[0].startswith("ok    service")  # the running system answered
    assert code == 1 and lines[4].startswith("FAIL  clock")  # no sync flag in this root
    bad = root / "bad.toml"
    bad.write_text("[control]\ntarget_w = 'x'\n")
    out = io.StringIO()
    assert doctor.run(Namespace(root=str(root), config=str(bad)), out) == 1
    assert out.getvalue().startswith("FAIL  config    ") and "control.target_w" in out.getvalue()


def test_cli_doctor(root: Path, system: System) -> None:
    out = subprocess.run([sys.executable, "-m", "vzdivert.cli", "doctor", "--root", str(root),
                          "--config", str(system.config)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1, out.stderr  # the clock flag is missing in this root
    assert len(out.stdout.splitlines()) == 7 and "ok    service" in out.stdout


def test_relays_on_a_pi5_check_gpiod_and_the_chip(root: Path, monkeypatch) -> None:
    from gpiodfake import pi5

    relays = [{"name": "stage 2", "gpio": 17, "rating_w": 1000}]
    d = make(root, output={"driver": "sysfs"}, relays=relays)
    names = [c.__name__ for c in d.checks()]
    assert names[3] == "gpiochip" and "gpiochip" not in \
        [c.__name__ for c in make(root, output={"driver": "sysfs"}).checks()]  # no relays
    monkeypatch.setitem(sys.modules, "gpiod", None)
    check = d.gpiochip()
    assert not check.ok and check.fix.startswith("pip install 'gpiod>=2.1'")
    kernel = pi5(root / "dev", monkeypatch)
    check = d.gpiochip()
    assert not check.ok and "may not use gpiochip4" in check.detail
    os.chown(kernel.rp1.path, 0, 997)
    os.chmod(kernel.rp1.path, 0o660)
    check = d.gpiochip()
    assert check.ok and check.line() == ("ok    gpiochip  gpiochip4 (pinctrl-rp1) for the "
                                         "relays on GPIO 17")
    kernel.rp1.label = "pinctrl-rp2"
    check = make(root, output={"driver": "sysfs"}, relays=relays).gpiochip()
    assert not check.ok and "no GPIO chip labelled 'pinctrl-rp1'" in check.detail
    assert "gpiodetect" in check.fix
