"""`vzdivert doctor`: checks a running installation and prints one line per check, with
what to do when it fails. Exit status 1 when any check fails."""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from vzdivert import config as configmod
from vzdivert.host import CONFIG, GPIO_GROUP, USER, Host

SCHED_FIFO = 1
HWVER = 17  # pigpiod command: hardware revision
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"  # touched by systemd-timesyncd
TIME_ERROR = 5  # adjtimex(): the kernel clock is not synchronised
MIN_FREE_BYTES = 100 * 1024 * 1024


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok' if self.ok else 'FAIL':<4}  {self.name:<9} {self.detail}"
        return text + (f" -> {self.fix}" if self.fix and not self.ok else "")


class Doctor:
    """The checks, each a method returning a Check. ``status`` is the supervisor's answer to
    "status" (processes and the worker's newest state), or None when nothing answers."""

    def __init__(self, host: Host, cfg: configmod.Config, status: dict[str, Any] | None,
                 systemctl: str = "systemctl", min_free_bytes: int = MIN_FREE_BYTES):
        self.host, self.cfg, self.status = host, cfg, status
        self.systemctl, self.min_free_bytes = systemctl, min_free_bytes

    def checks(self) -> list[Callable[[], Check]]:
        checks = [self.service, self.output, self.gpio, self.meter, self.clock, self.realtime,
                  self.disk]
        if self.cfg.output.driver == "sysfs" and self.switch_gpios():
            checks.insert(3, self.gpiochip)  # relays on a Pi 5 go through libgpiod
        return checks

    def switch_gpios(self) -> list[int]:
        from vzdivert.output import output_specs

        return [s.gpio for s in output_specs(self.cfg) if s.kind == "switch"]

    def service(self) -> Check:
        if self.host.systemd_booted:
            state = _run([self.systemctl, "is-active", "vzdivert"])
            enabled = _run([self.systemctl, "is-enabled", "vzdivert"])
            ok = state == "active" and enabled == "enabled"
            return Check("service", ok, f"vzdivert.service {state or '?'}, {enabled or '?'}",
                         "sudo systemctl enable --now vzdivert; why it stopped: journalctl "
                         "-u vzdivert -e")
        if self.status is not None:
            return Check("service", True, "running (the supervisor answers), not under systemd")
        return Check("service", False, "systemd is not running and no vzdivert answers",
                     f"start it: vzdivert run --config {CONFIG}")

    def output(self) -> Check:
        out = self.cfg.output
        if out.driver == "pigpio":
            try:
                revision = pigpiod_hardware_revision(out.pigpio_host, out.pigpio_port)
            except OSError as exc:
                return Check("pigpiod", False, f"{out.pigpio_host}:{out.pigpio_port} not "
                             f"reachable ({exc.strerror or exc})",
                             "sudo apt install pigpiod; sudo systemctl enable --now pigpiod")
            return Check("pigpiod", True, f"{out.pigpio_host}:{out.pigpio_port} answers "
                         f"(hardware revision {revision:#x})")
        if out.driver == "sysfs":
            chip = self.pwm_chip()
            if chip is None:
                return Check("pwm", False, f"no PWM chip ending in {out.sysfs_device} under "
                             f"{out.sysfs_root}", "add dtoverlay=pwm-2chan to "
                             f"{self.host.boot_config()} and reboot")
            return Check("pwm", True, f"kernel PWM {chip.name} ({out.sysfs_device})")
        return Check("output", True, f"driver {out.driver}: no hardware")

    def pwm_chip(self) -> Path | None:
        from vzdivert.output import OutputError
        from vzdivert.output.sysfs import find_chip

        try:
            return find_chip(self.host.path(self.cfg.output.sysfs_root),
                             self.cfg.output.sysfs_device)
        except OutputError:
            return None

    def gpio(self) -> Check:
        members = self.host.group_members(GPIO_GROUP)
        if members is None or USER not in members:
            return Check("gpio", False, f"user {USER} is not in group {GPIO_GROUP}",
                         f"sudo usermod -aG {GPIO_GROUP} {USER}; sudo systemctl restart "
                         "vzdivert")
        if self.cfg.output.driver != "sysfs":
            return Check("gpio", True, f"user {USER} is in group {GPIO_GROUP}")
        chip = self.pwm_chip()
        if chip is None:
            return Check("gpio", False, "no PWM chip to check", "see the pwm line above")
        export = chip / "export"
        gid = self.host.group_id(GPIO_GROUP)
        try:
            st = export.stat()
        except OSError as exc:
            return Check("gpio", False, f"{export}: {exc.strerror}", "reboot after adding "
                         "the PWM overlay")
        if st.st_gid == gid and st.st_mode & 0o020:
            return Check("gpio", True, f"group {GPIO_GROUP} may write {export}")
        return Check("gpio", False, f"group {GPIO_GROUP} may not write {export}",
                     "Raspberry Pi OS's udev rule (99-com.rules) gives gpio the PWM "
                     "files; add it on other systems (docs/install.md)")

    def gpiochip(self) -> Check:
        """The relays' GPIO chip (driver sysfs): the gpiod package, the chip, its group."""
        from vzdivert.output import OutputError
        from vzdivert.output.gpiod_out import find_chip, load_gpiod

        want = self.cfg.output.gpiod_chip
        try:
            gpiod = load_gpiod()
            chip = Path(find_chip(gpiod, str(self.host.path(want)) if want.startswith("/")
                                  else want, self.host.path("/dev")))
        except OutputError as exc:
            fix = ("pip install 'gpiod>=2.1' into vzdivert's environment"
                   if "pip install" in str(exc) else
                   "set [output] gpiod_chip to the label or path gpiodetect shows")
            return Check("gpiochip", False, str(exc).removeprefix("output.gpiod_chip: "), fix)
        gpios = ", ".join(map(str, self.switch_gpios()))
        st = chip.stat()
        if st.st_gid != self.host.group_id(GPIO_GROUP) or st.st_mode & 0o060 != 0o060:
            return Check("gpiochip", False, f"group {GPIO_GROUP} may not use {chip.name}",
                         "Raspberry Pi OS's udev rule (99-com.rules) gives gpio the "
                         "/dev/gpiochip* nodes; add it on other systems (docs/install.md)")
        return Check("gpiochip", True, f"{chip.name} ({want}) for the relays on GPIO {gpios}")

    def meter(self) -> Check:
        limit = self.cfg.watchdog.stale_after_s
        if self.status is None:
            return Check("meter", False, "vzdivert is not running, so no meter data",
                         "start the service first")
        worker = self.status.get("worker") or {}
        age = worker.get("reading_age_s")
        listen = self.cfg.ingest.listen
        fix = (f"point vzlogger's influxdb channel at {listen} (database "
               f"{self.cfg.ingest.database!r}, measurement {self.cfg.ingest.measurement!r});"
               " vzdivert parse shows what a body gives")
        if age is None or worker.get("grid_w") is None:
            return Check("meter", False, "no reading has arrived", fix)
        if worker.get("stale") or age > limit:
            return Check("meter", False, f"last reading {age:.1f} s ago (stale after "
                         f"{limit:g} s)", fix)
        return Check("meter", True, f"last reading {age:.1f} s ago")

    def clock(self) -> Check:
        if self.host.path(TIMESYNC_FLAG).exists() or (self.host.live and kernel_clock_synced()):
            return Check("clock", True, "synchronised")
        return Check("clock", False, "not synchronised (meter timestamps are checked "
                     "against it)", "sudo timedatectl set-ntp true")

    def realtime(self) -> Check:
        rt = self.cfg.rtworker
        if rt.priority == 0 and not rt.lock_memory:
            return Check("realtime", True, "not requested ([rtworker] priority = 0)")
        pid = ((self.status or {}).get("processes") or {}).get("rtworker", {}).get("pid")
        if not pid:
            return Check("realtime", False, "the control loop is not running", "start the "
                         "service first")
        policy, locked_kb = proc_sched(self.host, pid)
        problems = []
        if rt.priority and policy != SCHED_FIFO:
            problems.append("not SCHED_FIFO")
        if rt.lock_memory and not locked_kb:
            problems.append("memory not locked")
        if policy is None:
            problems = [f"no /proc entry for pid {pid}"]
        if problems:
            return Check("realtime", False, f"control loop (pid {pid}): {', '.join(problems)}",
                         "run it from etc/vzdivert.service (AmbientCapabilities=CAP_SYS_NICE "
                         "CAP_IPC_LOCK, LimitRTPRIO, LimitMEMLOCK): sudo vzdivert setup")
        return Check("realtime", True, f"control loop (pid {pid}) SCHED_FIFO, "
                     f"{locked_kb} kB locked")

    def disk(self) -> Check:
        state_dir = Path(self.cfg.state.dir)
        if not state_dir.is_dir() or not os.access(state_dir, os.W_OK):
            return Check("disk", False, f"state dir {state_dir} missing or not writable",
                         "systemd creates it (StateDirectory=); check [state] dir")
        free = shutil.disk_usage(state_dir).free
        text = f"{free / 1e6:,.0f} MB free in {state_dir}"
        if free < self.min_free_bytes:
            return Check("disk", False, text, "free some space: settings and history are "
                         "written there")
        return Check("disk", True, text)


def _run(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        return ""


def pigpiod_hardware_revision(host: str, port: int, timeout_s: float = 2.0) -> int:
    """Ask pigpiod for the board's revision (HWVER): proves it answers its protocol."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(struct.pack("<4I", HWVER, 0, 0, 0))
        reply = b""
        while len(reply) < 16:
            chunk = sock.recv(16 - len(reply))
            if not chunk:
                raise OSError("connection closed without an answer")
            reply += chunk
    return struct.unpack("<3Ii", reply)[3] & 0xFFFFFFFF


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("rest", ctypes.c_byte * 256)]


def kernel_clock_synced() -> bool:
    """adjtimex(2) with no changes: TIME_ERROR means the clock is not synchronised (chrony,
    ntpd and timesyncd all clear it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.adjtimex(ctypes.byref(_Timex())) not in (-1, TIME_ERROR)
    except (OSError, AttributeError):
        return False


def proc_sched(host: Host, pid: int) -> tuple[int | None, int]:
    """(scheduling policy, locked memory in kB) of a process, from /proc."""
    try:
        stat = host.path(f"/proc/{pid}/stat").read_text()
        status = host.path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, 0
    fields = stat.rpartition(")")[2].split()  # after "pid (comm)": field 3 is fields[0]
    policy = int(fields[38]) if len(fields) > 38 else None  # field 41
    locked = 0
    for line in status.splitlines():
        if line.startswith("VmLck:"):
            locked = int(line.split()[1])
    return policy, locked


def supervisor_status(cfg: configmod.Config) -> dict[str, Any] | None:
    import zmq

    from vzdivert import bus

    try:
        runtime_dir = bus.find_runtime_dir(cfg.state.dir)
    except OSError:  # the state dir is the service's (0750): not readable without sudo
        return None
    if runtime_dir is None:
        return None
    ctx = zmq.Context()
    try:
        return bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=2.0).call("status")
    except bus.CommandError:
        return None
    finally:
        ctx.destroy(0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="", help=f"config file (default {CONFIG})")
    p.add_argument("--root", default="/", help="look at a system under this prefix")


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    host = Host(Path(args.root).resolve())
    path = Path(args.config) if args.config else host.path(CONFIG)
    try:
        cfg = configmod.load(path)
    except configmod.ConfigError as exc:
        print(Check("config", False, str(exc).replace("\n", "; "),
                    f"fix it: vzdivert check-config {path}").line(), file=out)
        return 1
    if host.live and os.geteuid() != 0:
        print("(not root: checks that need the service's files may fail; "
              "sudo vzdivert doctor sees everything)", file=out)
    doctor = Doctor(host, cfg, supervisor_status(cfg))
    results = [check() for check in doctor.checks()]
    for result in results:
        print(result.line(), file=out)
    return 0 if all(r.ok for r in results) else 1
