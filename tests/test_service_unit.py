"""etc/vzdivert.service: `systemd-analyze verify` accepts it, and the directives the
diverter's safety and real-time behaviour rely on are there (and the harmful ones are not)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "etc" / "vzdivert.service"
INSTALLED_BIN = "/opt/vzdivert/bin/vzdivert"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value given (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= missing"
    assert len(values) == 1, f"[{section}] {key}= given {len(values)} times"
    return values[0]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """Really runs `systemd-analyze verify`; a machine without it fails this test. The
    binary paths are pointed at a stand-in, since verify checks they are executable."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not installed (Debian: apt-get install systemd)"
    stand_in = tmp_path / "bin" / "vzdivert"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    text = UNIT.read_text()
    assert INSTALLED_BIN in text
    copy = tmp_path / "vzdivert.service"
    copy.write_text(text.replace(INSTALLED_BIN, str(stand_in)))
    result = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # verify only warns (exit 0) about unknown keys or bad values: those count too
    about_unit = [line for line in output.splitlines() if "vzdivert.service" in line]
    assert not about_unit, "\n".join(about_unit)


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a missing binary is an error."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not installed (Debian: apt-get install systemd)"
    copy = tmp_path / "vzdivert.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED_BIN, str(tmp_path / "missing")))
    result = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0


def test_notify_and_watchdog(unit: dict) -> None:
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    # the supervisor pings every second: several misses in a row before systemd acts
    assert 3 <= int(one(unit, "Service", "WatchdogSec")) <= 60
    assert one(unit, "Service", "Restart") == "on-failure"


def test_output_forced_off_after_every_stop(unit: dict) -> None:
    config = "--config /etc/vzdivert/vzdivert.toml"
    assert one(unit, "Service", "ExecStart") == f"{INSTALLED_BIN} run {config}"
    assert one(unit, "Service", "ExecStopPost") == f"{INSTALLED_BIN} safe-off {config}"
    # mixed: the supervisor alone gets SIGTERM and stops the worker in order
    assert one(unit, "Service", "KillMode") == "mixed"
    assert int(one(unit, "Service", "TimeoutStopSec")) > 0


def test_user_directories_and_gpio(unit: dict) -> None:
    assert one(unit, "Service", "User") == "vzdivert"
    assert one(unit, "Service", "SupplementaryGroups") == "gpio"
    assert one(unit, "Service", "StateDirectory") == "vzdivert"
    assert one(unit, "Service", "RuntimeDirectory") == "vzdivert"
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0700"


def test_realtime_limits_and_capabilities(unit: dict) -> None:
    caps = {"CAP_SYS_NICE", "CAP_IPC_LOCK"}
    assert set(one(unit, "Service", "AmbientCapabilities").split()) == caps
    assert set(one(unit, "Service", "CapabilityBoundingSet").split()) == caps
    assert int(one(unit, "Service", "LimitRTPRIO")) >= 50  # [rtworker] priority default
    assert one(unit, "Service", "LimitMEMLOCK") == "infinity"


def test_hardening_that_keeps_realtime_and_gpio_working(unit: dict) -> None:
    service = unit["Service"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes"}.items():
        assert one(unit, "Service", key) == value
    # each of these would break SCHED_FIFO, /dev/gpio*, sysfs PWM or the capabilities
    for breaking in ("RestrictRealtime", "PrivateDevices", "ProtectClock",
                     "ProtectKernelTunables", "PrivateUsers", "DevicePolicy", "DeviceAllow",
                     "CPUSchedulingPolicy"):
        assert breaking not in service, f"{breaking}= breaks the real-time worker or gpio"


def test_install_section(unit: dict) -> None:
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_parser_handles_repeats_and_continuations() -> None:
    parsed = parse_unit("[Service]\n# c\nA=1\nA=2\nB=x \\\n  y\n")
    assert parsed == {"Service": {"A": ["1", "2"], "B": ["x  y"]}}
