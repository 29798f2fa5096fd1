"""Relays and the bypass through libgpiod (driver sysfs, the Pi 5 path): the real gpiod 2.x
Python layer over a fake of its native part (tests/gpiodfake.py). No GPIO chip exists here,
so the kernel side is modelled, not exercised."""

from __future__ import annotations

import inspect
import sys

import pytest
from gpiodfake import CONSTANTS, Kernel, gpiod_over, make_ext, pi5

from vzdivert.config import validate
from vzdivert.output import OutputError, config_problems, force_off, gpiod_out, open_outputs
from vzdivert.output.gpiod_out import GpiodSwitch, find_chip, load_gpiod

RELAY = 17
RELAYS = [{"name": "stage 2", "gpio": RELAY, "rating_w": 1000},
          {"name": "pump", "gpio": 22, "rating_w": 500, "active_low": True}]


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> Kernel:
    k = pi5(tmp_path / "dev", monkeypatch, names={RELAY: "GPIO17"})
    monkeypatch.setattr(gpiod_out, "DEV_DIR", str(k.dev))
    return k


def switch(kernel: Kernel, gpio: int = RELAY, active_low: bool = False) -> GpiodSwitch:
    return GpiodSwitch(load_gpiod(), kernel.rp1.path, gpio, active_low)


def sysfs_cfg(**output) -> object:
    return validate({"output": {"driver": "sysfs", **output}, "relays": RELAYS})


# -- the fake is the real package's native layer ------------------------------------------
def test_fake_ext_matches_the_real_native_module() -> None:
    """Same constants and the same methods and signatures as the real gpiod._ext, so the
    package's Python layer runs over it as over the kernel."""
    import gpiod._ext as real

    fake = make_ext(Kernel(None))
    assert {k: getattr(real, k) for k in dir(real) if k.isupper()} == CONSTANTS
    for cls in ("Chip", "LineConfig", "LineSettings", "Request"):
        want = {n for n in dir(getattr(real, cls)) if not n.startswith("_")}
        got = {n for n in dir(getattr(fake, cls)) if not n.startswith("_")}
        assert want <= got, (cls, want - got)
    params = inspect.signature(fake.LineSettings).parameters
    assert list(params) == ["direction", "edge_detection", "bias", "drive", "active_low",
                            "debounce_period", "event_clock", "output_value"]


# -- finding the chip -----------------------------------------------------------------------
def test_chip_found_by_label_whatever_its_number(kernel: Kernel, tmp_path) -> None:
    assert find_chip(load_gpiod(), "pinctrl-rp1") == kernel.rp1.path
    newer = Kernel(tmp_path)  # later kernels number the RP1 chip 0
    rp1 = newer.add_chip(0, "pinctrl-rp1")
    newer.add_chip(10, "gpio-brcmstb@107d508500", 32)
    assert find_chip(gpiod_over(newer), "pinctrl-rp1", tmp_path) == rp1.path


def test_no_chip_with_the_label_names_the_key_and_what_was_found(kernel: Kernel) -> None:
    with pytest.raises(OutputError, match=r"output.gpiod_chip: no GPIO chip labelled "
                       r"'pinctrl-rp2'.*gpiochip4 = pinctrl-rp1"):
        find_chip(load_gpiod(), "pinctrl-rp2")


def test_unreadable_chips_point_at_the_gpio_group(kernel: Kernel) -> None:
    kernel.rp1.denied = True
    with pytest.raises(OutputError, match=r"permission denied on gpiochip4: .*`gpio` group"):
        find_chip(load_gpiod(), "pinctrl-rp1")


def test_a_chip_given_by_path(kernel: Kernel, tmp_path) -> None:
    gpiod = load_gpiod()
    assert find_chip(gpiod, kernel.rp1.path) == kernel.rp1.path
    with pytest.raises(OutputError, match="output.gpiod_chip: /dev/gpiochip9 does not exist"):
        find_chip(gpiod, "/dev/gpiochip9")
    (tmp_path / "plain").touch()
    with pytest.raises(OutputError, match="is not a GPIO chip"):
        find_chip(gpiod, str(tmp_path / "plain"))


# -- check-config -------------------------------------------------------------------------
def test_sysfs_driver_accepts_relays_when_the_chip_is_there(kernel: Kernel) -> None:
    assert config_problems(sysfs_cfg()) == []


def test_missing_gpiod_package_names_the_key_and_the_relays(kernel, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)  # import gpiod raises ImportError
    [problem] = config_problems(sysfs_cfg())
    assert problem.startswith("output.gpiod_chip: ") and "pip install 'gpiod>=2.1'" in problem
    assert "relay:stage 2, relay:pump" in problem


def test_gpiod_1x_is_refused_with_the_version(kernel, monkeypatch) -> None:
    old = type(sys)("gpiod")
    old.__version__ = "1.6.3"  # Debian's python3-libgpiod: Chip, Line, no request_lines
    monkeypatch.setitem(sys.modules, "gpiod", old)
    [problem] = config_problems(sysfs_cfg())
    assert "version 1.6.3; relays need 2.x" in problem


def test_missing_chip_names_the_key(kernel: Kernel) -> None:
    [problem] = config_problems(sysfs_cfg(gpiod_chip="/dev/gpiochip7"))
    assert problem.startswith("output.gpiod_chip: /dev/gpiochip7 does not exist")


def test_pwm_alone_needs_no_gpiod(kernel, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)
    assert config_problems(validate({"output": {"driver": "sysfs"}})) == []


# -- the relay ------------------------------------------------------------------------------
def test_opening_changes_nothing_and_the_first_write_makes_an_output(kernel: Kernel) -> None:
    line = kernel.rp1.lines[RELAY]
    relay = switch(kernel)
    try:
        assert (line.output, line.consumer, line.writes) == (False, "vzdivert", [])
        assert relay.read_back() == 0.0
        relay.set(1.0)
        assert (line.output, line.electrical()) == (True, 1)
        assert relay.read_back() == 1.0
        relay.set(0.2)  # a switch is on from 0.5
        assert line.electrical() == 0 and relay.read_back() == 0.0
        relay.set(float("nan"))
        assert line.electrical() == 0
    finally:
        relay.close()


def test_active_low_inverts_the_pin_and_reads_back_the_relay(kernel: Kernel) -> None:
    line = kernel.rp1.lines[22]
    relay = switch(kernel, 22, active_low=True)
    try:
        relay.set(1.0)
        assert line.electrical() == 0 and relay.read_back() == 1.0
        relay.off()
        assert line.electrical() == 1 and relay.read_back() == 0.0
        assert "active low" in relay.describe()
    finally:
        relay.close()


def test_a_level_changed_behind_the_kernel_is_read_back_and_reapplied(kernel) -> None:
    """`pinctrl set 17 ip` writes the RP1 registers directly: the line reads its pull-down
    (off) although we drive it on; writing the same level again restores the output."""
    line = kernel.rp1.lines[RELAY]
    relay = switch(kernel)
    try:
        relay.set(1.0)
        line.output = False
        assert relay.read_back() == 0.0
        relay.set(1.0)
        assert line.output and relay.read_back() == 1.0
    finally:
        relay.close()


def test_a_line_in_use_names_its_consumer(kernel: Kernel) -> None:
    gpiod = load_gpiod()
    other = gpiod.request_lines(kernel.rp1.path, {RELAY: None}, consumer="gpioset")
    try:
        with pytest.raises(OutputError, match=r"GPIO 17 on .*gpiochip4: in use by 'gpioset'"):
            switch(kernel)
    finally:
        other.release()


def test_a_gpio_beyond_the_chip(kernel: Kernel) -> None:
    with pytest.raises(OutputError, match="GPIO 60 does not exist on"):
        switch(kernel, 60)


@pytest.mark.parametrize("active_low", [False, True])
def test_released_line_rests_off_on_either_kernel(kernel: Kernel, active_low: bool) -> None:
    """Raspberry Pi kernels keep a released output driven; upstream (and strict_gpiod) make
    it an input, which then rests on the pull we set towards off."""
    for strict in (False, True):
        kernel.rp1.strict = strict
        line = kernel.rp1.lines[RELAY]
        relay = switch(kernel, active_low=active_low)
        relay.set(1.0)
        relay.off()
        relay.close()
        assert line.output is not strict and line.owner is None
        assert line.electrical() == int(active_low)  # the relay's off level


def test_writes_after_close_raise(kernel: Kernel) -> None:
    relay = switch(kernel)
    relay.close()
    with pytest.raises(OutputError, match="after close"):
        relay.set(1.0)
    assert relay.read_back() is None


# -- the output layer: every path that zeroes the PWM -------------------------------------
def pwm_and_relays(tree, **load) -> object:
    return validate({"output": {"driver": "sysfs", "gpio": 12, "sysfs_root": str(tree.root)},
                     "load": load, "relays": RELAYS})


def test_open_outputs_and_all_off(kernel: Kernel, tree, tmp_path) -> None:
    outputs = open_outputs(pwm_and_relays(tree, bypass_gpio=23), tmp_path)
    try:
        assert [n for n, _ in outputs.items()] == ["load", "bypass", "relay:stage 2",
                                                   "relay:pump"]
        for _, output in outputs.items():
            output.set(1.0)
        lines = kernel.rp1.lines
        assert (lines[23].electrical(), lines[RELAY].electrical(), lines[22].electrical()) \
            == (1, 1, 0)
        assert outputs.all_off() == []
        assert (lines[23].electrical(), lines[RELAY].electrical(), lines[22].electrical()) \
            == (0, 0, 1)
    finally:
        outputs.close()
    assert all(line.owner is None for line in kernel.rp1.lines)


def test_force_off_drives_relays_left_on_by_a_dead_worker(kernel, tree, tmp_path) -> None:
    cfg = pwm_and_relays(tree)
    outputs = open_outputs(cfg, tmp_path)
    for _, output in outputs.items():
        output.set(1.0)
    for _, output in outputs.items():
        if output.kind == "switch":
            output.request.release()  # the process died: the kernel released its lines
    line = kernel.rp1.lines[RELAY]
    assert line.electrical() == 1  # a Raspberry Pi kernel keeps it driven
    force_off(cfg, tmp_path)
    assert line.electrical() == 0 and kernel.rp1.lines[22].electrical() == 1
    assert tree.rp1.path.joinpath("pwm0", "duty_cycle").read_text().strip() == "0"


def test_force_off_reaches_the_relays_when_the_pwm_fails(kernel, tree, tmp_path) -> None:
    cfg = validate({"output": {"driver": "sysfs", "sysfs_device": "nope.pwm",
                               "sysfs_root": str(tree.root)}, "relays": RELAYS})
    gpiod = load_gpiod()
    held = gpiod.request_lines(kernel.rp1.path, {RELAY: gpiod.LineSettings(
        direction=gpiod.line.Direction.OUTPUT, output_value=gpiod.line.Value.ACTIVE)})
    held.release()  # left on
    with pytest.raises(OutputError, match=r"^load: output.sysfs_device"):
        force_off(cfg, tmp_path)
    assert kernel.rp1.lines[RELAY].electrical() == 0


def test_force_off_names_a_relay_it_cannot_reach(kernel, tree, tmp_path) -> None:
    gpiod = load_gpiod()
    other = gpiod.request_lines(kernel.rp1.path, {RELAY: None}, consumer="gpioset")
    try:
        with pytest.raises(OutputError, match=r"relay:stage 2: .*in use by 'gpioset'"):
            force_off(pwm_and_relays(tree), tmp_path)
    finally:
        other.release()
    assert kernel.rp1.lines[22].electrical() == 1  # the other relay went off all the same


# -- the worker's shell over libgpiod relays (in-process, real sockets) --------------------
@pytest.fixture
def worker(kernel, tree, tmp_path):
    import zmq

    from vzdivert.rtworker.loop import Worker

    cfg = validate({"output": {"driver": "sysfs", "gpio": 12, "sysfs_root": str(tree.root)},
                    "state": {"dir": str(tmp_path)},
                    "load": {"rating_w": 2000.0, "relay_on_after_s": 0, "relay_off_after_s": 0},
                    "relays": [{"name": "stage 2", "gpio": RELAY, "rating_w": 1000.0,
                                "min_on_s": 0, "min_off_s": 0}]})
    ctx = zmq.Context()
    outputs = open_outputs(cfg, tmp_path)
    w = Worker(cfg, tmp_path, outputs, ctx)
    yield w
    outputs.close()
    ctx.destroy(0)


def feed_until(w, done, surplus_w: float = 2600.0) -> None:
    """Readings from a closed loop (grid = load power - surplus) until ``done()``."""
    import time

    deadline = time.monotonic() + 10.0
    while not done():
        assert time.monotonic() < deadline, "the worker never got there"
        w.on_reading({"grid_w": w.core.power_w() - surplus_w, "ts": time.time(),
                      "rx": time.time()})


def test_worker_switches_the_relay_reads_it_back_and_every_exit_opens_it(kernel, worker):
    import time

    line = kernel.rp1.lines[RELAY]
    worker.apply(worker.core.start(time.monotonic()))
    assert line.output and line.electrical() == 0  # start-up drives it off
    feed_until(worker, lambda: line.electrical() == 1)
    assert worker.core.levels["relay:stage 2"] == 1.0
    line.output = False  # `pinctrl set 17 ip` behind the kernel's back: the relay drops
    worker.check_readback(time.monotonic())
    assert line.output and line.electrical() == 1 and worker.core.readback_mismatches == 1
    worker.shutdown("stopped")  # SIGTERM ends here
    assert line.electrical() == 0 and line.owner is not None  # still held until close


def test_worker_stale_data_opens_the_relay(kernel, worker):
    import time

    line = kernel.rp1.lines[RELAY]
    worker.apply(worker.core.start(time.monotonic()))
    feed_until(worker, lambda: line.electrical() == 1)
    plan = worker.core.tick(time.monotonic() + 11.0)  # the meter went quiet
    worker.apply(plan)
    assert plan.safe and line.electrical() == 0


def test_worker_write_failure_ends_with_every_relay_off(kernel, worker):
    import time

    line = kernel.rp1.lines[RELAY]
    worker.apply(worker.core.start(time.monotonic()))
    feed_until(worker, lambda: line.electrical() == 1)
    relay = worker.outputs["relay:stage 2"]
    real = relay.request.set_value
    relay.request.set_value = lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error"))
    feed_until(worker, lambda: worker.core.error != "", surplus_w=0.0)  # relay must go off
    relay.request.set_value = real
    assert line.electrical() == 0  # the failed write was followed by the safe state


def test_safe_off_zeroes_the_pwm_when_the_relays_cannot_be_reached(
        kernel, tree, tmp_path, monkeypatch, capsys) -> None:
    """A driver-level problem (no gpiod here) fails check-config, but safe-off still puts
    every output it can reach to 0 and names the ones it could not."""
    from vzdivert import cli

    duty = tree.rp1.add_channel(0, period=1_666_667, duty=900_000, enable=1) / "duty_cycle"
    config = tmp_path / "vzdivert.toml"
    config.write_text(f'[output]\ndriver = "sysfs"\nsysfs_root = "{tree.root}"\n'
                      f'[[relays]]\nname = "stage 2"\ngpio = {RELAY}\nrating_w = 1000\n')
    monkeypatch.setitem(sys.modules, "gpiod", None)
    assert config_problems(validate({"output": {"driver": "sysfs"}, "relays": RELAYS}))
    code = cli.main(["safe-off", "--config", str(config), "--runtime-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "FAILED" in err and "relay:stage 2: output.gpiod_chip" in err
    assert duty.read_text().strip() == "0"
