"""The kernel PWM (sysfs) driver against a fake /sys/class/pwm tree: chip found by its device
path, export, period/duty/enable order, read-back, and errors that say what to do."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from vzdivert.config import validate
from vzdivert.output import OutputError, open_output
from vzdivert.output import sysfs as sysfs_mod
from vzdivert.output.sysfs import SysfsOutput, config_problems


def output_cfg(root: Path, **over) -> SimpleNamespace:
    values = dict(driver="sysfs", gpio=12, frequency_hz=600, sysfs_root=str(root),
                  sysfs_device="1f00098000.pwm", sysfs_channel=-1)
    values.update(over)
    return SimpleNamespace(**values)


@pytest.fixture
def recorded(monkeypatch):
    """Every sysfs write as (attribute, value), in order."""
    log: list[tuple[str, int]] = []
    real = sysfs_mod.write_attr

    def record(path, value):
        log.append((Path(path).name, value))
        real(path, value)

    monkeypatch.setattr(sysfs_mod, "write_attr", record)
    return log


def attr(channel: Path, name: str) -> int:
    return int((channel / name).read_text())


def test_finds_the_chip_by_device_and_exports_the_channel(tree, recorded):
    out = SysfsOutput(output_cfg(tree.root, gpio=13))
    assert out.chip.name == "pwmchip2" and out.channel == 1
    assert tree.rp1.exported == [1] and tree.other.exported == []
    assert recorded == [("export", 1)]  # exporting does not change the output
    assert "pwmchip2/pwm1 (GPIO 13) at 600 Hz" in out.describe()


def test_first_set_zeroes_duty_sets_period_enables_then_duty(tree, recorded):
    channel = tree.rp1.add_channel(0, period=1_000_000, duty=900_000, enable=1)
    out = SysfsOutput(output_cfg(tree.root, frequency_hz=2000))
    out.set(0.25)
    assert recorded == [("duty_cycle", 0), ("period", 500_000), ("duty_cycle", 125_000)]
    assert (attr(channel, "period"), attr(channel, "duty_cycle"), attr(channel, "enable")) \
        == (500_000, 125_000, 1)
    recorded.clear()
    out.set(0.5)
    assert recorded == [("duty_cycle", 250_000)]


def test_fresh_channel_gets_period_and_enable(tree, recorded):
    out = SysfsOutput(output_cfg(tree.root, gpio=19))
    out.set(1.0)
    assert recorded == [("export", 3), ("duty_cycle", 0), ("period", 1_666_667),
                        ("enable", 1), ("duty_cycle", 1_666_667)]
    assert out.read_back() == 1.0


def test_a_restarted_worker_does_not_glitch_the_output(tree, recorded):
    tree.rp1.add_channel(0, period=1_666_667, duty=500_000, enable=1)
    out = SysfsOutput(output_cfg(tree.root))
    assert out.read_back() == pytest.approx(0.3, abs=1e-6)
    out.set(0.3)
    assert recorded == [("duty_cycle", 500_000)]


def test_duty_is_clamped_to_the_period_and_nan_is_zero(tree):
    out = SysfsOutput(output_cfg(tree.root))
    channel = tree.rp1.path / "pwm0"
    out.set(7)
    assert attr(channel, "duty_cycle") == attr(channel, "period")
    out.set(float("nan"))
    assert attr(channel, "duty_cycle") == 0


def test_off_before_any_set_writes_only_duty_zero(tree, recorded):
    tree.rp1.add_channel(0, period=1_000_000, duty=800_000, enable=1)
    out = SysfsOutput(output_cfg(tree.root))
    out.off()
    assert recorded == [("duty_cycle", 0)]
    assert out.read_back() == 0.0
    out.close()
    assert attr(tree.rp1.path / "pwm0", "enable") == 1  # close leaves the channel alone


def test_read_back(tree):
    channel = tree.rp1.add_channel(0, period=1_000_000, duty=250_000, enable=1)
    out = SysfsOutput(output_cfg(tree.root))
    assert out.read_back() == 0.25
    (channel / "enable").write_text("0\n")
    assert out.read_back() == 0.0
    (channel / "enable").unlink()
    assert out.read_back() is None


def test_set_frequency_keeps_the_duty(tree, recorded):
    out = SysfsOutput(output_cfg(tree.root))
    out.set(0.5)
    recorded.clear()
    out.set_frequency(1000)
    assert recorded == [("duty_cycle", 0), ("period", 1_000_000), ("duty_cycle", 500_000)]
    assert out.read_back() == 0.5


def test_no_matching_chip_lists_what_was_found(tree):
    with pytest.raises(OutputError, match=r"ends in '1f00099999.pwm' \(found: pwmchip0 -> "
                                          r"1f00050000.pwm, pwmchip2 -> 1f00098000.pwm\).*"
                                          r"dtoverlay"):
        SysfsOutput(output_cfg(tree.root, sysfs_device="1f00099999.pwm"))


def test_gpio_and_channel_checks(tree):
    assert config_problems(output_cfg(tree.root, gpio=17))
    assert config_problems(output_cfg(tree.root, gpio=17, sysfs_channel=0)) == []
    with pytest.raises(OutputError, match="GPIO 12, 13, 18 and 19"):
        SysfsOutput(output_cfg(tree.root, gpio=17))
    with pytest.raises(OutputError, match="has channels 0-1, not 3"):
        SysfsOutput(output_cfg(tree.root, sysfs_device="1f00050000.pwm", sysfs_channel=3))


def test_permission_error_names_the_gpio_group(tree, monkeypatch):
    # Tests may run as root, who ignores file modes: deny the way the kernel would.
    real_open = os.open

    def deny(path, flags, *args):
        if str(path).startswith(str(tree.root)) and flags & os.O_WRONLY:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(OutputError, match=r"permission denied writing .*pwmchip2/export: .*"
                                          r"`gpio` group.*udev rule"):
        SysfsOutput(output_cfg(tree.root))
    monkeypatch.setattr(os, "open", real_open)
    out = SysfsOutput(output_cfg(tree.root))
    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(OutputError, match=r"duty_cycle: .*`gpio` group"):
        out.off()


def test_open_output_from_config(tree, tmp_path):
    cfg = validate({"output": {"driver": "sysfs", "gpio": 18,
                               "sysfs_root": str(tree.root)}})
    out = open_output(cfg, tmp_path)
    assert isinstance(out, SysfsOutput) and out.channel == 2
    out.set(0.5)
    assert abs(out.read_back() - 0.5) <= out.resolution
