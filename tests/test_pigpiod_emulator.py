"""The pigpiod emulator against the real PyPI pigpio client: connection, hardware and
software PWM with pigpiod's semantics and error codes, and pigpiod dying and restarting."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading

import pigpio
import pytest

from vzdivert.testing.pigpiod_emulator import ALT0, ALT5, OUTPUT, PigpiodEmulator, pwm_frequencies


@pytest.fixture
def emu():
    emulator = PigpiodEmulator().start()
    yield emulator
    emulator.stop()


def connect(emu: PigpiodEmulator) -> pigpio.pi:
    pi = pigpio.pi("127.0.0.1", emu.port, show_errors=False)
    assert pi.connected
    return pi


def stop_orphan(client: pigpio.pi) -> None:
    """Stop a client whose pigpiod died: pigpio's notification thread may close its socket
    while stop() still sends on it (a pigpio race, avoided by the driver)."""
    try:
        client.stop()
    except OSError:
        pass


@pytest.fixture
def pi(emu):
    client = connect(emu)
    yield client
    client.stop()


@pytest.fixture
def codes(monkeypatch):
    """Make the pigpio client return error codes instead of raising."""
    monkeypatch.setattr(pigpio, "exceptions", False)


def test_real_client_connects_and_reads_board_info(emu, pi):
    assert emu.wait_for(lambda: emu.connection_count == 2, 5)  # commands + notifications
    assert pi.get_hardware_revision() == 0xC03111
    assert pi.get_pigpio_version() == 79
    assert 0 <= pi.get_current_tick() < 60_000_000  # microseconds since start


def test_hardware_pwm(emu, pi):
    assert pi.hardware_PWM(12, 600, 250_000) == 0
    assert emu.duty_fraction(12) == pytest.approx(0.25, abs=1e-6)
    assert pi.get_PWM_dutycycle(12) == 250_000
    assert pi.get_PWM_frequency(12) == 600
    assert pi.get_PWM_range(12) == 1_000_000
    assert pi.get_PWM_real_range(12) == 625_000  # 750 MHz PLLD / (2 * 600 Hz)
    assert pi.get_mode(12) == ALT0
    last = emu.events[-1]
    assert (last.cmd, last.gpio, last.values, last.result) == ("HP", 12, (600, 250_000), 0)
    assert pi.hardware_PWM(12, 0, 0) == 0  # frequency 0 stops the channel
    assert emu.duty_fraction(12) == 0.0


def test_gpio_12_and_18_share_a_pwm_channel(emu, pi):
    pi.hardware_PWM(12, 600, 250_000)
    pi.hardware_PWM(18, 1000, 500_000)
    assert pi.get_mode(18) == ALT5
    assert pi.get_PWM_dutycycle(12) == 500_000
    assert emu.duty_fraction(12) == emu.duty_fraction(18) == pytest.approx(0.5)


def test_hardware_pwm_errors(emu, pi, codes):
    assert pi.hardware_PWM(17, 600, 1) == pigpio.PI_NOT_HPWM_GPIO
    assert pi.hardware_PWM(12, 600, 1_000_001) == pigpio.PI_BAD_HPWM_DUTY
    assert pi.hardware_PWM(12, 200_000_000, 1) == pigpio.PI_BAD_HPWM_FREQ
    assert pi.hardware_PWM(60, 600, 1) == pigpio.PI_BAD_GPIO
    assert pi.get_PWM_dutycycle(12) == pigpio.PI_NOT_PWM_GPIO
    assert [e.result for e in emu.events] == [-95, -97, -96, -3]
    assert emu.duty_fraction(12) == 0.0


def test_software_pwm(emu, pi):
    assert pi.set_PWM_frequency(17, 600) == 500  # snapped to pigpiod's table
    assert pi.set_PWM_range(17, 1000) == 400  # the real range at 500 Hz
    pi.set_PWM_dutycycle(17, 250)
    assert emu.duty_fraction(17) == 0.25
    assert pi.get_PWM_dutycycle(17) == 250
    assert pi.get_PWM_range(17) == 1000
    assert pi.get_PWM_real_range(17) == 400
    assert pi.get_mode(17) == OUTPUT
    pi.set_PWM_range(17, 100)  # pigpiod rescales a running duty to the new range
    assert pi.get_PWM_dutycycle(17) == 25
    pi.set_PWM_dutycycle(17, 0)
    assert emu.duty_fraction(17) == 0.0
    assert pi.read(17) == 0


def test_software_pwm_duty_is_quantised_to_the_real_range(emu, pi):
    pi.set_PWM_frequency(17, 8000)  # real range 25
    pi.set_PWM_range(17, 1000)
    pi.set_PWM_dutycycle(17, 123)
    assert emu.duty_fraction(17) == 3 / 25  # 123 * 25 // 1000 steps of 25
    assert pi.get_PWM_dutycycle(17) == 123


@pytest.mark.parametrize("asked, got", [(100_000, 8000), (8000, 8000), (700, 800), (600, 500),
                                        (450, 500), (1, 10), (0, 10), (90, 100)])
def test_software_pwm_frequency_snapping(pi, asked, got):
    assert pi.set_PWM_frequency(22, asked) == got
    assert pi.get_PWM_frequency(22) == got


def test_frequency_table_for_5us_samples():
    assert pwm_frequencies(5) == (8000, 4000, 2000, 1600, 1000, 800, 500, 400, 320, 250, 200,
                                  160, 100, 80, 50, 40, 20, 10)


def test_defaults_of_a_fresh_gpio(pi):
    assert pi.get_PWM_range(22) == 255
    assert pi.get_PWM_frequency(22) == 800


def test_pwm_errors(emu, pi, codes):
    assert pi.set_PWM_dutycycle(17, 256) == pigpio.PI_BAD_DUTYCYCLE  # default range 255
    assert pi.set_PWM_dutycycle(1, 10) == pigpio.PI_NOT_PERMITTED  # default mask: GPIO 2-27
    assert pi.set_PWM_dutycycle(40, 10) == pigpio.PI_NOT_PERMITTED
    assert pi.set_PWM_dutycycle(60, 10) == pigpio.PI_BAD_USER_GPIO
    assert pi.write(0, 1) == pigpio.PI_NOT_PERMITTED
    assert pi.set_PWM_range(17, 10) == pigpio.PI_BAD_DUTYRANGE
    assert pi.get_PWM_dutycycle(17) == pigpio.PI_NOT_PWM_GPIO
    assert pi.get_PWM_dutycycle(40) == pigpio.PI_BAD_USER_GPIO
    assert emu.duty_fraction(17) == 0.0


def test_write_and_mode_end_pwm(emu, pi):
    pi.set_PWM_dutycycle(17, 100)
    pi.write(17, 1)
    assert emu.duty_fraction(17) == 1.0 and pi.read(17) == 1
    pi.set_mode(17, pigpio.INPUT)
    assert emu.duty_fraction(17) == 0.0
    pi.hardware_PWM(13, 600, 300_000)
    pi.write(13, 0)  # the pin leaves the PWM channel
    assert emu.duty_fraction(13) == 0.0
    assert [e.cmd for e in emu.events] == ["PWM", "WRITE", "MODES", "HP", "WRITE"]


def test_client_exit_keeps_the_pwm_running(emu):
    client = connect(emu)
    client.hardware_PWM(12, 600, 400_000)
    client.set_PWM_dutycycle(17, 51)
    client.stop()
    assert emu.wait_for(lambda: emu.connection_count == 0, 5)
    assert emu.duty_fraction(12) == pytest.approx(0.4)
    assert emu.duty_fraction(17) == pytest.approx(0.2)


def test_pigpiod_dying_and_restarting(emu):
    client = connect(emu)
    client.hardware_PWM(12, 600, 400_000)
    client.set_PWM_dutycycle(17, 51)
    emu.stop()
    # Hardware PWM runs on; the software PWM pin freezes, assumed high.
    assert emu.duty_fraction(12) == pytest.approx(0.4)
    assert emu.duty_fraction(17) == 1.0
    with pytest.raises((OSError, struct.error)):
        client.get_current_tick()
    stop_orphan(client)
    emu.start()  # same port, a fresh pigpiod that forgot every setting
    fresh = connect(emu)
    try:
        with pytest.raises(pigpio.error):
            fresh.get_PWM_dutycycle(12)
        assert fresh.get_mode(12) == ALT0
        assert emu.duty_fraction(12) == pytest.approx(0.4)
        fresh.hardware_PWM(12, 600, 0)
        fresh.set_PWM_dutycycle(17, 0)
        assert emu.duty_fraction(12) == emu.duty_fraction(17) == 0.0
    finally:
        fresh.stop()


def test_events_wait_for_and_hook(emu, pi):
    seen = []
    emu.on_write = seen.append
    worker = threading.Thread(target=lambda: [pi.set_PWM_dutycycle(17, d) for d in (10, 20)])
    worker.start()
    assert emu.wait_for(lambda: emu.duty_fraction(17) == 20 * 250 // 255 / 250, 5)
    worker.join()
    assert emu.wait_for(lambda: len(seen) == 2, 5)
    events = emu.events
    assert [e.values for e in events] == [(10,), (20,)]
    assert events[0].t_ns <= events[1].t_ns and events[0].t_mono <= events[1].t_mono
    assert seen == events
    emu.clear_events()
    assert emu.events == []
    assert not emu.wait_for(lambda: False, 0.01)


def test_raw_protocol_echo_and_unknown_command(emu):
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(struct.pack("<IIII", 200, 7, 9, 0))
        assert struct.unpack("<IIIi", s.recv(16)) == (200, 7, 9, pigpio.PI_UNKNOWN_COMMAND)
        s.sendall(struct.pack("<IIII", 86, 19, 1000, 4) + struct.pack("<I", 750_000))  # HP
        assert struct.unpack("<IIIi", s.recv(16)) == (86, 19, 1000, 0)
    assert emu.duty_fraction(19) == pytest.approx(0.75)


def test_command_line_emulator():
    proc = subprocess.Popen([sys.executable, "-m", "vzdivert.testing.pigpiod_emulator", "--port",
                             "0"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", first).group(1))
        client = pigpio.pi("127.0.0.1", port, show_errors=False)
        assert client.connected
        client.hardware_PWM(12, 600, 500_000)
        client.stop()
        assert proc.stdout.readline().startswith("HP gpio=12 600 500000 -> 0 (duty 0.500)")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()


def test_restart_on_the_same_port_with_a_client_connected(emu):
    client = connect(emu)
    port = emu.port
    for _ in range(3):
        emu.stop()
        emu.start()
    assert emu.port == port
    stop_orphan(client)
    fresh = connect(emu)
    assert fresh.get_current_tick() >= 0
    fresh.stop()
