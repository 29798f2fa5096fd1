"""The pigpio output driver against the pigpiod emulator: hardware and software PWM, read-back,
status GPIO, clear errors, and reconnecting after pigpiod restarts."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

import pigpio
import pytest

from vzdivert.config import validate
from vzdivert.output import OutputError, open_output
from vzdivert.output.pigpio_out import PigpioOutput, config_problems
from vzdivert.testing.pigpiod_emulator import PigpiodEmulator


@pytest.fixture
def emu():
    emulator = PigpiodEmulator().start()
    yield emulator
    emulator.stop()


def output_cfg(port: int, **over) -> SimpleNamespace:
    values = dict(driver="pigpio", gpio=12, frequency_hz=600, pigpio_host="127.0.0.1",
                  pigpio_port=port, pwm_range=1000, status_gpio=-1)
    values.update(over)
    return SimpleNamespace(**values)


@pytest.fixture
def make(emu):
    made = []

    def _make(**over) -> PigpioOutput:
        out = PigpioOutput(output_cfg(emu.port, **over))
        made.append(out)
        return out

    yield _make
    for out in made:
        out.close()


def writes(emu, gpio=None):
    return [(e.cmd, e.gpio, e.values) for e in emu.events if gpio is None or e.gpio == gpio]


def test_hardware_pwm_set_off_read_back(emu, make):
    out = make()
    assert out.read_back() is None  # never written: pigpiod does not know the pin as PWM
    out.set(0.4)
    assert emu.duty_fraction(12) == pytest.approx(0.4)
    assert out.read_back() == pytest.approx(0.4)
    out.off()
    assert emu.duty_fraction(12) == 0.0
    assert out.read_back() == 0.0
    assert writes(emu) == [("HP", 12, (600, 400_000)), ("HP", 12, (600, 0))]
    assert out.describe().startswith("pigpio hardware PWM on GPIO 12 at 600 Hz")


def test_software_pwm_set_read_back(emu, make):
    out = make(gpio=17)
    assert writes(emu) == [("PFS", 17, (600,)), ("PRS", 17, (1000,))]
    assert out.actual_frequency_hz == 500 and out.real_range == 400
    out.set(0.25)
    assert emu.duty_fraction(17) == 0.25
    assert out.read_back() == 0.25
    out.set(0.1234)
    assert abs(out.read_back() - 0.1234) < out.resolution
    assert out.read_back() == emu.duty_fraction(17)
    out.off()
    assert emu.duty_fraction(17) == 0.0
    assert "software PWM on GPIO 17 at 500 Hz (asked 600)" in out.describe()


def test_construction_does_not_change_the_output(emu, make):
    make().set(0.7)
    emu.clear_events()
    make()
    make(gpio=17)
    assert emu.duty_fraction(12) == pytest.approx(0.7)
    assert [e.cmd for e in emu.events] == ["PFS", "PRS"]  # software PWM settings only


def test_close_keeps_the_output(emu, make):
    out = make()
    out.set(0.6)
    out.close()
    assert emu.wait_for(lambda: emu.connection_count == 0, 5)
    assert emu.duty_fraction(12) == pytest.approx(0.6)


def test_clamps_and_nan_is_zero(emu, make):
    out = make()
    out.set(1.7)
    assert emu.duty_fraction(12) == 1.0
    out.set(float("nan"))
    assert emu.duty_fraction(12) == 0.0
    out.set(-3)
    assert writes(emu)[-1] == ("HP", 12, (600, 0))


def test_status_gpio_lit_while_on(emu, make):
    out = make(status_gpio=27)
    out.set(0.3)
    out.set(0.5)
    assert emu.duty_fraction(27) == 1.0
    out.set(0.0)
    assert emu.duty_fraction(27) == 0.0
    assert writes(emu, 27) == [("WRITE", 27, (1,)), ("WRITE", 27, (0,))]


def test_read_back_sees_another_client_change_the_duty(emu, make):
    out = make()
    out.set(0.5)
    other = pigpio.pi("127.0.0.1", emu.port, show_errors=False)
    other.hardware_PWM(18, 600, 100_000)  # GPIO 18 shares GPIO 12's PWM channel
    other.stop()
    assert out.read_back() == pytest.approx(0.1)


def test_read_back_of_a_pin_taken_over_as_plain_output(emu, make):
    out = make(gpio=17)
    out.set(0.5)
    other = pigpio.pi("127.0.0.1", emu.port, show_errors=False)
    other.write(17, 1)
    other.stop()
    assert out.read_back() == 1.0


def test_invalid_gpio_is_a_clear_error(emu):
    with pytest.raises(OutputError, match="GPIO 40 has no hardware PWM.*0-31"):
        PigpioOutput(output_cfg(emu.port, gpio=40))
    with pytest.raises(OutputError, match="no permission to update GPIO.*-x update mask"):
        PigpioOutput(output_cfg(emu.port, gpio=1))
    with pytest.raises(OutputError, match="status_gpio: must differ"):
        PigpioOutput(output_cfg(emu.port, status_gpio=12))
    assert emu.wait_for(lambda: emu.connection_count == 0, 5)  # nothing left open


def test_invalid_frequency_is_a_clear_error(emu):
    with pytest.raises(OutputError, match="at most 40000 Hz"):
        PigpioOutput(output_cfg(emu.port, gpio=17, frequency_hz=100_000))
    with pytest.raises(OutputError, match="offers 8000 Hz.*far from the 20000 Hz"):
        PigpioOutput(output_cfg(emu.port, gpio=17, frequency_hz=20_000))
    out = PigpioOutput(output_cfg(emu.port, frequency_hz=200_000_000))
    with pytest.raises(OutputError, match="invalid hardware PWM frequency"):
        out.set(0.5)
    out.close()


def test_config_problems_without_connecting():
    assert config_problems(output_cfg(1, gpio=12)) == []
    assert config_problems(output_cfg(1, gpio=17)) == []
    assert len(config_problems(output_cfg(1, gpio=33, status_gpio=33))) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_pigpiod_is_a_clear_error_and_prints_nothing(capsys):
    with pytest.raises(OutputError, match=r"cannot reach pigpiod at 127\.0\.0\.1:\d+: .*refused"):
        PigpioOutput(output_cfg(free_port()))
    assert capsys.readouterr().out == ""


def test_a_stopped_pigpiod_does_not_hang_us(monkeypatch):
    monkeypatch.setattr("vzdivert.output.pigpio_out.IO_TIMEOUT_S", 0.05)
    with socket.socket() as lsock:  # accepts connections (kernel backlog), never answers
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)
        with pytest.raises(OutputError, match="no answer within 0.05 s"):
            PigpioOutput(output_cfg(lsock.getsockname()[1]))


@pytest.mark.parametrize("gpio", [12, 17])
def test_reconnects_after_pigpiod_restart_and_reapplies(emu, make, gpio):
    out = make(gpio=gpio)
    out.set(0.3)
    emu.stop()
    emu.start()  # same port, a fresh pigpiod
    emu.clear_events()
    out.set(0.3)
    assert emu.duty_fraction(gpio) == pytest.approx(0.3)
    assert out.read_back() == pytest.approx(0.3)
    if gpio == 12:
        assert writes(emu) == [("HP", 12, (600, 300_000))]
    else:  # frequency and range before the duty
        assert writes(emu) == [("PFS", 17, (600,)), ("PRS", 17, (1000,)), ("PWM", 17, (300,))]


def test_set_while_pigpiod_is_down_raises_then_recovers(emu, make):
    out = make(status_gpio=27)
    out.set(0.3)
    emu.stop()
    with pytest.raises(OutputError, match="cannot reach pigpiod"):
        out.set(0.2)
    assert out.read_back() is None
    with pytest.raises(OutputError):
        out.off()
    emu.start()
    emu.clear_events()
    out.set(0.2)
    assert writes(emu) == [("HP", 12, (600, 200_000)), ("WRITE", 27, (1,))]  # status re-lit


def test_read_back_notices_a_restart(emu, make):
    out = make()
    out.set(0.3)
    emu.stop()
    emu.start()
    assert out.read_back() is None  # the old connection is gone
    out.set(0.3)
    assert out.read_back() == pytest.approx(0.3)


def test_no_notification_thread_left_to_spin_when_pigpiod_dies(emu, make):
    # pigpio 1.78's notification thread busy-loops on a closed socket; the driver closes it.
    make()
    emu.stop()
    assert not [t for t in threading.enumerate()
                if isinstance(t, pigpio._callback_thread) and t.go]


def test_set_frequency_live(emu, make):
    hw = make()
    hw.set(0.5)
    hw.set_frequency(1000)
    assert writes(emu)[-1] == ("HP", 12, (1000, 500_000))
    assert hw.actual_frequency_hz == 1000
    sw = make(gpio=17)
    sw.set(0.5)
    sw.set_frequency(100)
    assert sw.actual_frequency_hz == 100 and sw.real_range == 2000
    assert emu.duty_fraction(17) == 0.5
    with pytest.raises(OutputError):
        sw.set_frequency(0)


def test_open_output_from_config(emu, tmp_path):
    cfg = validate({"output": {"driver": "pigpio", "gpio": 13, "pigpio_port": emu.port,
                               "status_gpio": 17}})
    out = open_output(cfg, tmp_path)
    try:
        assert isinstance(out, PigpioOutput)
        out.set(0.5)
        assert emu.duty_fraction(13) == pytest.approx(0.5)
        out.off()
        assert emu.duty_fraction(13) == 0.0 and emu.duty_fraction(17) == 0.0
    finally:
        out.close()
