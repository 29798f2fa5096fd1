"""Fault catalogue with the pigpiod emulator: every fault ends with the output at 0 (or
leaves control untouched where it must), and control resumes after recovery."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pigpio
import pytest
from conftest import GPIO, duty, export_until_on
from relayhelp import PWM, RELAY, all_off, relay_on, relay_stage_on
from syshelp import REPO, System, reading, stopped, vzlogger_post, wait_for

from vzdivert.testing.pigpiod_emulator import PigpiodEmulator


def oversized_status(port: int, length: int) -> int:
    """Announce a huge body; the server must refuse it before reading it (413)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"POST /write?db=vzlogger&precision=ms HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Type: application/x-www-form-urlencoded\r\n"
                  f"Content-Length: {length}\r\n\r\nleistung value=1\n".encode())
        status_line = s.makefile("rb").readline()
    return int(status_line.split()[1])


def hold_control(system: System, emu: PigpiodEmulator, seconds: float) -> None:
    """Keep feeding export for a while and check the output stays on throughout."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert system.post(-800) == 204
        assert duty(emu) > 0.05, "output dropped while data were good"
        time.sleep(0.1)


def test_malformed_and_oversized_bodies_change_nothing(system: System,
                                                       emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    status, body = vzlogger_post(system.ingest_port, "leistung value=\n\x00garbage=,\n")
    assert status == 400 and b"unable to parse" in body
    assert oversized_status(system.ingest_port, 50_000_000) == 413
    hold_control(system, emulator, 1.0)
    assert system.state()["processes"]["ingest"]["restarts"] == 0


def test_5000_line_stale_batch_is_ignored(system: System, emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    before = duty(emulator)
    old = int(time.time() * 1000) - 3_600_000
    batch = "".join(reading(+3000, ts_ms=old + i) for i in range(5000))  # big import, old
    assert vzlogger_post(system.ingest_port, batch)[0] == 204
    time.sleep(0.3)  # give a wrong reading time to act; none may arrive
    assert duty(emulator) == pytest.approx(before, abs=1e-6)
    wait_for(lambda: duty(emulator) == 0.0, 6, what="stale zero (only old data came)")


def test_nan_values_rejected_and_go_stale(system: System, emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    deadline = time.monotonic() + 6
    while duty(emulator) > 0 and time.monotonic() < deadline:
        status, body = vzlogger_post(system.ingest_port, "leistung value=NaN\n")
        assert status == 400
        time.sleep(0.2)
    assert duty(emulator) == 0.0
    export_until_on(system, emulator)


def test_pigpiod_drop_and_restart(system: System, emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    emulator.stop()  # pigpiod dies: hardware PWM keeps running, nobody can change it
    for _ in range(5):
        system.post(-800)
        time.sleep(0.1)
    assert "output" in system.state()["error"]
    emulator.clear_events()
    emulator.start()  # a fresh pigpiod on the same port; the PWM still runs the old duty

    def hp_writes() -> list:
        return [e for e in emulator.events if e.gpio == GPIO and e.cmd == "HP"]

    wait_for(lambda: system.post(-800) == 204 and any(e.duty > 0 for e in hp_writes()), 10,
             0.1, what="control writing again")
    assert hp_writes()[0].duty == 0.0, "a recovered output starts from 0"


def test_kill_9_supervisor_children_zero_output(system: System,
                                               emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    pids = [system.pid(n) for n in ("rtworker", "ingest", "webui")]
    os.kill(system.proc.pid, signal.SIGKILL)
    wait_for(lambda: duty(emulator) == 0.0, 5, what="worker zeroing after supervisor death")

    def gone() -> bool:
        for pid in pids:
            try:
                os.kill(pid, 0)
                stat = open(f"/proc/{pid}/stat").read()
                if ") Z" not in stat:
                    return False
            except (ProcessLookupError, FileNotFoundError):
                pass
        return True

    wait_for(gone, 10, what="children gone with the supervisor")
    # systemd's ExecStopPost path: safe-off against the same output
    emulator.clear_events()
    result = subprocess.run([sys.executable, "-m", "vzdivert.cli", "safe-off", "--config",
                             str(system.config)], capture_output=True, text=True, cwd=REPO,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    writes = [e for e in emulator.events if e.gpio == GPIO]
    assert writes and writes[-1].duty == 0.0


def test_safe_off_fails_loudly_without_pigpiod(tmp_path) -> None:
    sys_ = System(tmp_path, 'driver = "pigpio"\npigpio_port = 1')
    result = subprocess.run([sys.executable, "-m", "vzdivert.cli", "safe-off", "--config",
                             str(sys_.config)], capture_output=True, text=True, cwd=REPO,
                            timeout=30)
    assert result.returncode == 1
    assert "FAILED" in result.stderr and "pigpiod" in result.stderr


def test_sigstop_ingest_is_replaced(system: System, emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    old = system.pid("ingest")
    with stopped(old):  # hung: no stats heartbeat, no data; stale zeroes first
        wait_for(lambda: duty(emulator) == 0.0, 6, what="stale zero while ingest hangs")
        wait_for(lambda: system.state()["processes"]["ingest"]["pid"] not in (None, old), 15,
                 what="hung ingest replaced")
    export_until_on(system, emulator)


def test_sigstop_webui_is_replaced_and_control_unaffected(system: System,
                                                          emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    old = system.pid("webui")
    with stopped(old):
        hold_control(system, emulator, 1.0)  # a frozen UI never touches control

        def replaced() -> bool:
            return system.state()["processes"]["webui"]["pid"] not in (None, old)

        wait_for(replaced, 20, 0.5, what="frozen web UI replaced")
    export_until_on(system, emulator)


# -- with a relay stage: every fault leaves every output off, within the PWM's limits ----

def test_relay_data_stop(relay_system: System, relay_emulator: PigpiodEmulator) -> None:
    system, emu = relay_system, relay_emulator
    relay_stage_on(system, emu)
    t0 = time.monotonic()
    wait_for(lambda: all_off(emu), 5, what="every output off after the data stop")
    assert time.monotonic() - t0 < 2.5  # stale_after_s = 2, like the PWM
    # the worker writes the outputs first and publishes its state after: the dashboard
    # shows it a moment later than the pins, so wait for it rather than race it
    wait_for(lambda: [load["on"] for load in system.state()["loads"]] == [False, False], 2,
             what="the dashboard shows every load off")


def test_relay_kill_9_and_sigstop_of_the_worker(relay_system: System,
                                                relay_emulator: PigpiodEmulator) -> None:
    system, emu = relay_system, relay_emulator
    relay_stage_on(system, emu)
    os.kill(system.pid("rtworker"), signal.SIGKILL)  # the supervisor's own handle zeroes
    wait_for(lambda: all_off(emu), 2, what="every output off after kill -9")
    relay_stage_on(system, emu)  # the new worker (min_off counts from its start)
    with stopped(system.pid("rtworker")):
        t0 = time.monotonic()
        wait_for(lambda: all_off(emu), 5, what="every output off for a hung worker")
        assert time.monotonic() - t0 < 2.5  # hang_after_s 1.5 + a tick


def test_relay_sigterm_and_safe_off(relay_system: System,
                                    relay_emulator: PigpiodEmulator) -> None:
    system, emu = relay_system, relay_emulator
    relay_stage_on(system, emu)
    assert system.terminate() == 0
    assert all_off(emu)
    emu.clear_events()
    pi = pigpio.pi("127.0.0.1", emu.port, show_errors=False)  # as if a crash left them on
    try:
        pi.write(RELAY, 1)
        pi.hardware_PWM(PWM, 600, 500_000)
    finally:
        pi.stop()
    assert relay_on(emu)
    result = subprocess.run([sys.executable, "-m", "vzdivert.cli", "safe-off", "--config",
                             str(system.config)], capture_output=True, text=True, cwd=REPO,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert all_off(emu) and "stage 2" in result.stdout
    last = [e for e in emu.events if e.gpio == RELAY][-1]
    assert (last.cmd, last.values) == ("WRITE", (0,))


def test_relay_kill_9_supervisor(relay_system: System, relay_emulator: PigpiodEmulator) -> None:
    system, emu = relay_system, relay_emulator
    relay_stage_on(system, emu)
    os.kill(system.proc.pid, signal.SIGKILL)  # children get SIGTERM (PR_SET_PDEATHSIG)
    wait_for(lambda: all_off(emu), 2, what="every output off after the supervisor died")
