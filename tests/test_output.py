"""The shared output layer: the back-end contract and its safe defaults, the name -> back-end
table, relays on plain GPIOs (pigpio WRITE against the emulator, sim), and the one call that
puts every output in its safe state even when one of them fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from vzdivert.config import validate
from vzdivert.output import (
    BACKENDS,
    FrequencyUnsupported,
    Output,
    OutputError,
    OutputSet,
    OutputSpec,
    backend,
    force_off,
    open_outputs,
)
from vzdivert.output.pigpio_out import PigpioBackend, PigpioSwitch
from vzdivert.output.sim import SimBackend, read_sim_duty, switch_file
from vzdivert.testing.pigpiod_emulator import PigpiodEmulator


class Minimal(Output):
    """A back-end that implements only what it must."""

    def __init__(self, fail_off: bool = False) -> None:
        self.duty, self.fail_off, self.closed = 0.0, fail_off, False

    def set(self, duty: float) -> None:
        self.duty = duty

    def off(self) -> None:
        if self.fail_off:
            raise OutputError("stuck")
        self.duty = 0.0

    def close(self) -> None:
        self.closed = True

    def describe(self) -> str:
        return "minimal"


def test_optional_parts_have_safe_defaults() -> None:
    out = Minimal()
    assert out.read_back() is None and out.resolution == 0.001 and out.kind == "pwm"
    with pytest.raises(FrequencyUnsupported, match="minimal"):
        out.set_frequency(100)
    assert issubclass(FrequencyUnsupported, OutputError)


def test_a_back_end_must_implement_the_required_parts() -> None:
    class Incomplete(Output):
        def set(self, duty: float) -> None: ...

    with pytest.raises(TypeError, match="off"):
        Incomplete()  # type: ignore[abstract]


def test_every_configurable_driver_is_in_the_table() -> None:
    from vzdivert.config import KEYS

    assert set(BACKENDS) == set(KEYS["output.driver"].choices)
    with pytest.raises(OutputError, match="unknown driver 'gpiozero'"):
        backend(type("C", (), {"output": type("O", (), {"driver": "gpiozero"})}), "/tmp")


def test_all_off_reaches_every_output_when_one_fails() -> None:
    a, stuck, c = Minimal(), Minimal(fail_off=True), Minimal()
    a.set(0.7), c.set(1.0)
    outputs = OutputSet(SimBackend("/nonexistent"), {"a": a, "b": stuck, "c": c})
    assert outputs.all_off() == ["b: stuck"]
    assert a.duty == 0.0 and c.duty == 0.0
    outputs.close()
    assert a.closed and stuck.closed and c.closed


def test_sim_outputs_outlive_their_process_and_force_off(tmp_path: Path) -> None:
    cfg = validate({"output": {"driver": "sim"}})
    outputs = open_outputs(cfg, tmp_path)
    outputs["load"].set(0.6)
    assert outputs["load"].read_back() == pytest.approx(0.6)
    outputs.close()
    assert read_sim_duty(tmp_path / "sim-output") == pytest.approx(0.6)  # like hardware
    force_off(cfg, tmp_path)
    assert read_sim_duty(tmp_path / "sim-output") == 0.0


def test_sim_relay_levels_and_active_low(tmp_path: Path) -> None:
    back = SimBackend(tmp_path)
    relay = back.switch(OutputSpec("stage 2", "switch", 17, None, active_low=True))
    relay.set(1.0)
    assert read_sim_duty(tmp_path / switch_file(17)) == 0.0  # active low: pin low = on
    assert relay.read_back() == 1.0 and relay.resolution == 1.0
    relay.off()
    assert read_sim_duty(tmp_path / switch_file(17)) == 1.0 and relay.read_back() == 0.0
    with pytest.raises(FrequencyUnsupported):
        relay.set_frequency(10)
    relay.close()


@pytest.fixture
def emu():
    emulator = PigpiodEmulator().start()
    yield emulator
    emulator.stop()


def pigpio_section(port: int) -> object:
    return validate({"output": {"driver": "pigpio", "pigpio_port": port}}).output


def test_pigpio_relay_writes_levels_and_reads_them_back(emu: PigpiodEmulator) -> None:
    relay = PigpioBackend("/tmp").switch(OutputSpec("r", "switch", 17, pigpio_section(emu.port)))
    try:
        relay.set(1.0)
        assert emu.duty_fraction(17) == 1.0 and relay.read_back() == 1.0
        relay.off()
        assert emu.duty_fraction(17) == 0.0 and relay.read_back() == 0.0
        assert [(e.cmd, e.gpio, e.values) for e in emu.events] == [
            ("WRITE", 17, (1,)), ("WRITE", 17, (0,))]
        emu.stop()
        emu.start()  # same port, a fresh pigpiod: the pin is an input again
        assert relay.read_back() is None  # the old connection is gone: cannot tell
        relay.set(1.0)  # one reconnect, re-applied
        assert emu.duty_fraction(17) == 1.0 and relay.read_back() == 1.0
    finally:
        relay.close()


def test_pigpio_relay_active_low_and_a_pin_that_is_no_output(emu: PigpiodEmulator) -> None:
    relay = PigpioSwitch(pigpio_section(emu.port), 22, active_low=True)
    try:
        assert relay.read_back() == 0.0  # an input drives no relay
        relay.set(1.0)
        assert emu.duty_fraction(22) == 0.0 and relay.read_back() == 1.0
        relay.off()
        assert emu.duty_fraction(22) == 1.0 and relay.read_back() == 0.0
    finally:
        relay.close()


def test_pigpio_relay_refused_gpio_is_explained(emu: PigpiodEmulator) -> None:
    relay = PigpioSwitch(pigpio_section(emu.port), 28)  # outside pigpiod's default mask
    try:
        with pytest.raises(OutputError, match="GPIO 28.*does not permit"):
            relay.set(1.0)
    finally:
        relay.close()


def test_force_off_without_pigpiod_names_the_output() -> None:
    cfg = validate({"output": {"driver": "pigpio", "pigpio_port": 1}})
    with pytest.raises(OutputError, match="load: cannot reach pigpiod"):
        force_off(cfg, "/tmp")
