"""`sudo vzdivert setup`: from Raspberry Pi OS with vzdivert pip-installed (/opt/vzdivert) to
an enabled, running service. Each step says what it did (or, with --dry-run, would do);
what needs a human (wiring, rating, a missing package) is listed at the end."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from vzdivert import config as configmod
from vzdivert.host import (
    CONFIG,
    GPIO_GROUP,
    UNIT,
    USER,
    Host,
    raw_config,
    shipped_file,
    tank_sensor,
)

UNIT_EXE = "/opt/vzdivert/bin/vzdivert"  # what etc/vzdivert.service names
PIGPIOD_BINARIES = ("/usr/bin/pigpiod", "/usr/sbin/pigpiod", "/usr/local/bin/pigpiod")
PIGPIOD_WANTS = "/etc/systemd/system/multi-user.target.wants/pigpiod.service"
VZDIVERT_WANTS = "/etc/systemd/system/multi-user.target.wants/vzdivert.service"
PWM_OVERLAYS = ("pwm", "pwm-2chan")
W1_OVERLAY = "w1-gpio"
ONE_WIRE_MARKS = ("28-", "w1", "ds18b20", "1-wire", "1wire", "onewire")  # a DS18B20's names


class StepFailed(RuntimeError):
    pass


def this_executable() -> Path:
    """The `vzdivert` of this installation, which the unit must start."""
    candidate = Path(sys.prefix) / "bin" / "vzdivert"
    return candidate if candidate.exists() else Path(UNIT_EXE)


class Setup:
    def __init__(self, host: Host, dry_run: bool, out: TextIO, exe: Path):
        self.host, self.dry_run, self.out, self.exe = host, dry_run, out, exe
        self.left: list[str] = []
        self.config_ok = False
        self.unit_updated = False  # a running service must restart to use the new unit

    # -- reporting and doing ----------------------------------------------------------------
    def say(self, kind: str, text: str) -> None:
        print(f"  {kind:<7} {text}", file=self.out)

    def act(self, title: str, do: Callable[[], Any]) -> None:
        if self.dry_run:
            self.say("would", title)
            return
        try:
            do()
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or exc
            raise StepFailed(f"{title}: {str(detail).strip()}") from exc
        self.say("done", title)

    def command(self, *args: str) -> Callable[[], None]:
        return lambda: subprocess.run(list(args), check=True, capture_output=True, text=True,
                                      timeout=120)

    def systemctl(self, *args: str) -> Callable[[], None]:
        # without a running systemd (an image, a container) systemctl edits links offline
        online = self.host.live and self.host.systemd_booted
        return self.command("systemctl", *([] if online else ["--root", str(self.host.root)]),
                            *args)

    # -- the steps --------------------------------------------------------------------------
    def user(self) -> None:
        prefix = self.host.prefix_args("--prefix")
        if self.host.group_members(GPIO_GROUP) is None:
            self.act(f"create group {GPIO_GROUP} (not a Raspberry Pi OS?)",
                     self.command("groupadd", *prefix, "--system", GPIO_GROUP))
        if not self.host.user_exists(USER):
            self.act(f"create system user {USER} in group {GPIO_GROUP}", self.command(
                "useradd", *prefix, "--system", "--user-group", "--no-create-home",
                "--home-dir", "/var/lib/vzdivert", "--shell", "/usr/sbin/nologin",
                "--groups", GPIO_GROUP, USER))
        elif USER not in (self.host.group_members(GPIO_GROUP) or []):
            self.act(f"add user {USER} to group {GPIO_GROUP}", self.command(
                "usermod", *prefix, "--append", "--groups", GPIO_GROUP, USER))
        else:
            self.say("ok", f"system user {USER} in group {GPIO_GROUP}")

    def config(self) -> None:
        path = self.host.path(CONFIG)
        if path.exists():
            self.say("ok", f"{CONFIG} exists, kept as it is")
            try:
                configmod.load(path)
                self.config_ok = True
            except configmod.ConfigError as exc:
                self.left.append(f"fix {CONFIG}:\n       " + "\n       ".join(exc.errors))
            return

        def write() -> None:
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(configmod.render(configmod.validate(self.board_defaults())),
                           encoding="utf-8")
            os.chmod(tmp, 0o640)  # passwords may go in: root and the service only
            gid = self.host.group_id(USER)
            if gid is not None and os.geteuid() == 0:
                os.chown(tmp, 0, gid)
            os.replace(tmp, path)

        board = " for a Raspberry Pi 5 (driver sysfs)" if self.board_defaults() else ""
        self.act(f"write the example config{board} to {CONFIG} (mode 0640, group {USER})",
                 write)
        self.config_ok = True

    def board_defaults(self) -> dict[str, Any]:
        """What the example config should say for this board: pigpio does not run on a Pi 5,
        kernel PWM does."""
        if "Raspberry Pi 5" in self.host.model():
            return {"output": {"driver": "sysfs"}}
        return {}

    def unit(self) -> bool:
        """Install the unit pointing at this installation; True when it changed."""
        text = shipped_file("vzdivert.service").read_text(encoding="utf-8")
        text = text.replace(UNIT_EXE, str(self.exe))
        path = self.host.path(UNIT)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            self.say("ok", f"{UNIT} is up to date")
            return False

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            os.chmod(path, 0o644)

        self.unit_updated = path.exists()
        verb = "update" if self.unit_updated else "install"
        self.act(f"{verb} {UNIT} (starts {self.exe})", write)
        return True

    def output(self) -> None:
        raw = raw_config(self.host.path(CONFIG))
        output = raw.get("output") if isinstance(raw.get("output"), dict) else {}
        driver = output.get("driver", configmod.KEYS["output.driver"].default)
        model = self.host.model()
        if driver == "pigpio" and "Raspberry Pi 5" in model:
            self.left.append('pigpio does not run on a Raspberry Pi 5: set [output] driver = '
                             '"sysfs" and add dtoverlay=pwm-2chan to config.txt, then reboot')
        elif driver == "pigpio":
            self.pigpiod()
        elif driver == "sysfs":
            overlays = self.host.boot_overlays() & set(PWM_OVERLAYS)
            if overlays:
                self.say("ok", f"kernel PWM overlay {', '.join(sorted(overlays))} in "
                               f"{self.host.boot_config()}")
            else:
                self.left.append(f"add dtoverlay=pwm-2chan to {self.host.boot_config()} and "
                                 "reboot (kernel PWM on GPIO 12/13 for the sysfs driver)")
            load = raw.get("load") if isinstance(raw.get("load"), dict) else {}
            if raw.get("relays") or load.get("bypass_gpio", -1) >= 0:
                self.gpiod_bindings()
        else:
            self.say("ok", f"output driver {driver}: no hardware to prepare")

    def gpiod_bindings(self) -> None:
        """Relays with the sysfs driver go through libgpiod's 2.x Python bindings."""
        from vzdivert.output import OutputError
        from vzdivert.output.gpiod_out import load_gpiod

        try:
            gpiod = load_gpiod()
        except OutputError as exc:
            self.left.append(str(exc).removeprefix("output.gpiod_chip: "))
            return
        self.say("ok", f"libgpiod bindings (gpiod {gpiod.__version__}) for the relays")

    def pigpiod(self) -> None:
        if not any(self.host.path(p).exists() for p in PIGPIOD_BINARIES):
            self.left.append("install pigpiod: sudo apt install pigpiod, then sudo systemctl "
                             "enable --now pigpiod")
            return
        if self.host.enabled(PIGPIOD_WANTS):
            self.say("ok", "pigpiod is enabled")
            return
        now = ["--now"] if self.host.live and self.host.systemd_booted else []
        self.act("enable pigpiod", self.systemctl("enable", *now, "pigpiod"))

    def one_wire(self) -> None:
        sensor = tank_sensor(raw_config(self.host.path(CONFIG)))
        if not sensor:
            return
        if not any(mark in sensor.lower() for mark in ONE_WIRE_MARKS):
            self.say("ok", f"tank sensor {sensor!r} is not on 1-Wire: nothing to prepare")
            return
        if W1_OVERLAY not in self.host.boot_overlays():
            self.left.append(f"tank sensor {sensor!r}: add dtoverlay=w1-gpio to "
                             f"{self.host.boot_config()} (data on GPIO 4) and reboot")
            return
        devices = self.host.path("/sys/bus/w1/devices")
        found = sorted(p.name for p in devices.glob("28-*")) if devices.is_dir() else []
        if found:
            self.say("ok", f"1-Wire is on, sensors: {', '.join(found)}")
        else:
            self.left.append("1-Wire is enabled but shows no DS18B20 (28-...) in "
                             "/sys/bus/w1/devices: check the wiring and the 4.7 kOhm pull-up")

    def service(self, unit_changed: bool) -> None:
        live = self.host.live and self.host.systemd_booted
        if live and unit_changed:
            self.act("reload systemd", self.systemctl("daemon-reload"))
        start = live and self.config_ok
        what = "enable and start" if start else "enable"
        if not start and self.host.enabled(VZDIVERT_WANTS):
            self.say("ok", "vzdivert.service is enabled")
            self.left.append("start the service: sudo systemctl start vzdivert")
            return
        self.act(f"{what} vzdivert.service",
                 self.systemctl("enable", *(["--now"] if start else []), "vzdivert"))
        if start and self.unit_updated:
            self.act("restart vzdivert.service", self.systemctl("restart", "vzdivert"))
        if not start:
            self.left.append("start the service: sudo systemctl start vzdivert")

    def run(self) -> int:
        mode = " (dry run: nothing is changed)" if self.dry_run else ""
        where = "" if self.host.live else f" under {self.host.root}"
        print(f"vzdivert setup{where}{mode}", file=self.out)
        try:
            self.user()
            self.config()
            changed = self.unit()
            self.output()
            self.one_wire()
            self.service(changed)
        except StepFailed as exc:
            self.say("FAILED", str(exc))
            return 1
        self.left += [
            f"set [load] rating_w and curve, and [webui] listen/password, in {CONFIG}; "
            f"then: sudo systemctl restart vzdivert",
            "wire the output and point vzlogger at [ingest] listen: docs/install.md",
            "check the running installation: sudo vzdivert doctor",
        ]
        print("Left to do:", file=self.out)
        for i, item in enumerate(self.left, 1):
            print(f"  {i}. {item}", file=self.out)
        return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="list each step without doing it")
    p.add_argument("--root", default="/", help="act on a system image under this prefix "
                                               "(default /: this machine)")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    host = Host(Path(args.root).resolve())
    if host.live and not args.dry_run and os.geteuid() != 0:
        print("vzdivert setup: needs root (sudo vzdivert setup), or --dry-run",
              file=sys.stderr)
        return 2
    return Setup(host, args.dry_run, out, this_executable()).run()
