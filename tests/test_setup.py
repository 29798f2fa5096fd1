"""`vzdivert setup` against a temporary root prefix (no container): the real useradd,
groupadd and `systemctl --root` act on the prefix's /etc."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from vzdivert import config as configmod
from vzdivert import setup
from vzdivert.host import Host

PIGPIOD_UNIT = "[Unit]\nDescription=pigpio\n[Service]\nExecStart=/usr/bin/pigpiod -l\n" \
               "[Install]\nWantedBy=multi-user.target\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A fresh system's /etc, with the account files the shadow tools expect."""
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    for name in ("passwd", "shadow", "gshadow"):
        (r / "etc" / name).write_text("")
    (r / "etc" / "group").write_text("gpio:x:997:\n")
    return r


def run_setup(root: Path, dry_run: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = setup.run(Namespace(root=str(root), dry_run=dry_run), out)
    return code, out.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b""
            for p in sorted(root.rglob("*"))}


def test_dry_run_lists_each_step_and_changes_nothing(root: Path) -> None:
    before = tree(root)
    code, out = run_setup(root, dry_run=True)
    assert code == 0
    assert tree(root) == before
    lines = [line.split(None, 1) for line in out.splitlines() if line.startswith("  ")]
    would = [text for kind, text in lines if kind == "would"]
    assert [w.split()[0] for w in would] == ["create", "write", "install", "enable"]
    assert "system user vzdivert in group gpio" in would[0]
    assert "dry run" in out.splitlines()[0]
    assert "install pigpiod" in out  # the default driver, and no pigpiod in this root


def test_setup_creates_user_config_and_enabled_unit(root: Path) -> None:
    code, out = run_setup(root)
    assert code == 0, out
    passwd = (root / "etc/passwd").read_text()
    assert passwd.startswith("vzdivert:x:") and ":/var/lib/vzdivert:/usr/sbin/nologin" in passwd
    assert "gpio:x:997:vzdivert" in (root / "etc/group").read_text()
    config = root / "etc/vzdivert/vzdivert.toml"
    assert config.read_text() == configmod.render()
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert config.stat().st_gid == Host(root).group_id("vzdivert")
    unit = (root / "etc/systemd/system/vzdivert.service").read_text()
    exe = Path(sys.prefix) / "bin" / "vzdivert"
    assert f"ExecStart={exe} run --config /etc/vzdivert/vzdivert.toml" in unit
    assert f"ExecStopPost={exe} safe-off" in unit
    wants = root / "etc/systemd/system/multi-user.target.wants/vzdivert.service"
    assert os.readlink(wants) == "/etc/systemd/system/vzdivert.service"
    assert "start the service" in out and "Left to do:" in out
    # a second run finds everything in place
    code, again = run_setup(root)
    assert code == 0
    kinds = [line.split()[0] for line in again.splitlines() if line.startswith("  ")
             and not line.strip()[0].isdigit()]
    assert set(kinds) == {"ok"}, again


def test_an_existing_config_is_never_overwritten(root: Path) -> None:
    config = root / "etc/vzdivert/vzdivert.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[load]\nrating_w = 3000\n[control]\ntarget_w = "zero"\n')
    code, out = run_setup(root)
    assert code == 0
    assert config.read_text() == '[load]\nrating_w = 3000\n[control]\ntarget_w = "zero"\n'
    assert "kept as it is" in out
    assert "control.target_w: expected a number" in out  # what to fix, in the to-do list
    assert out.index("control.target_w") > out.index("Left to do:")


def test_pigpiod_is_enabled_when_installed(root: Path) -> None:
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/pigpiod").write_text("")
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "lib/systemd/system/pigpiod.service").write_text(PIGPIOD_UNIT)
    code, out = run_setup(root, dry_run=True)
    assert "would   enable pigpiod" in out
    code, out = run_setup(root)
    assert code == 0 and "done    enable pigpiod" in out
    assert (root / "etc/systemd/system/multi-user.target.wants/pigpiod.service").is_symlink()
    assert "install pigpiod" not in out
    assert "ok      pigpiod is enabled" in run_setup(root)[1]


def write_config(root: Path, text: str) -> None:
    config = root / "etc/vzdivert/vzdivert.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)


def test_pi5_needs_the_pwm_overlay(root: Path) -> None:
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text("Raspberry Pi 5 Model B Rev 1.0\0")
    write_config(root, '[output]\ndriver = "pigpio"\n')  # an existing config is kept
    out = run_setup(root, dry_run=True)[1]
    assert 'pigpio does not run on a Raspberry Pi 5: set [output] driver = "sysfs"' in out
    (root / "etc/vzdivert/vzdivert.toml").unlink()  # a fresh one gets the Pi 5's driver
    assert "example config for a Raspberry Pi 5 (driver sysfs)" in run_setup(root)[1]
    assert configmod.load(root / "etc/vzdivert/vzdivert.toml").output.driver == "sysfs"
    boot = root / "boot/firmware/config.txt"
    boot.parent.mkdir(parents=True)
    boot.write_text("[all]\n# dtoverlay=pwm-2chan\n")
    out = run_setup(root, dry_run=True)[1]
    assert f"add dtoverlay=pwm-2chan to {boot}" in out
    boot.write_text("[all]\ndtoverlay=pwm-2chan,pin=12,func=4\n")
    out = run_setup(root, dry_run=True)[1]
    assert "ok      kernel PWM overlay pwm-2chan" in out and "add dtoverlay" not in out


def test_one_wire_checked_only_when_a_tank_sensor_is_configured(root: Path) -> None:
    write_config(root, '[output]\ndriver = "sim"\n')
    assert "1-Wire" not in run_setup(root, dry_run=True)[1]
    assert "w1-gpio" not in run_setup(root, dry_run=True)[1]
    write_config(root, '[output]\ndriver = "sim"\n[tank]\nsensor = "ds18b20"\n')
    boot = root / "boot/config.txt"
    boot.parent.mkdir(parents=True)
    boot.write_text("")
    assert f"add dtoverlay=w1-gpio to {boot}" in run_setup(root, dry_run=True)[1]
    boot.write_text("dtoverlay=w1-gpio\n")
    assert "shows no DS18B20" in run_setup(root, dry_run=True)[1]
    (root / "sys/bus/w1/devices/28-3c01d607e4aa").mkdir(parents=True)
    assert "ok      1-Wire is on, sensors: 28-3c01d607e4aa" in run_setup(root, dry_run=True)[1]
    write_config(root, '[output]\ndriver = "sim"\n[tank]\nsensor = "mqtt:boiler/temp"\n')
    assert "is not on 1-Wire" in run_setup(root, dry_run=True)[1]
    write_config(root, '[output]\ndriver = "sim"\n[tank]\nsensor = 5\n')  # nonsense: ignored
    assert "1-Wire" not in run_setup(root, dry_run=True)[1]


def test_cli_dry_run(root: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "vzdivert.cli", "setup", "--dry-run",
                          "--root", str(root)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "would   create system user vzdivert in group gpio" in out.stdout
    assert not (root / "etc/vzdivert").exists()


def test_pi5_relays_need_the_gpiod_bindings(root: Path, monkeypatch) -> None:
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text("Raspberry Pi 5 Model B Rev 1.0\0")
    write_config(root, '[output]\ndriver = "sysfs"\n')
    assert "libgpiod" not in run_setup(root, dry_run=True)[1]  # no relays: not needed
    write_config(root, '[output]\ndriver = "sysfs"\n[load]\nbypass_gpio = 23\n')
    out = run_setup(root, dry_run=True)[1]
    assert "ok      libgpiod bindings (gpiod 2." in out
    monkeypatch.setitem(sys.modules, "gpiod", None)
    out = run_setup(root, dry_run=True)[1]
    assert "relays and the bypass with output.driver = 'sysfs' need the gpiod package" in out
