"""The walking system end to end: `vzdivert run` as real processes over real sockets, the
real pigpio client against the pigpiod emulator, vzlogger-shaped HTTP writes."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import GPIO, duty, export_until_on
from syshelp import System, stopped, wait_for, worker_pids

from vzdivert.testing.pigpiod_emulator import PigpiodEmulator


def test_export_raises_import_lowers_stale_zeroes(system: System,
                                                 emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    # the UI's state follows the worker's stream, which may trail the emulator's write
    state = wait_for(lambda: (s := system.state())["duty"] > 0 and s, 5, 0.1,
                     what="the state showing the duty the emulator got")
    assert state["grid_w"] == -800 and not state["stale"]
    assert set(state) >= {"grid_w", "duty", "power_w", "energy_wh", "stale", "target_w",
                          "processes"}
    high = duty(emulator)
    wait_for(lambda: system.post(+600) == 204 and duty(emulator) < high / 2, 15, 0.2,
             what="import lowering the duty")
    # feed export again, then stop: stale after 2 s drives the output to 0
    export_until_on(system, emulator)
    emulator.clear_events()
    wait_for(lambda: duty(emulator) == 0.0, 6, what="stale data zeroing the output")
    assert emulator.events[-1].duty == 0.0
    wait_for(lambda: system.state()["stale"], 3, what="stale reported")


def test_sigterm_zeroes_output_and_exits_0(system: System, emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    assert system.terminate(timeout_s=5) == 0
    assert duty(emulator) == 0.0
    writes = [e for e in emulator.events if e.gpio == GPIO]
    assert writes[-1].duty == 0.0


@pytest.mark.parametrize("child", ["ingest", "webui"])
def test_kill_9_child_is_respawned(system: System, emulator: PigpiodEmulator,
                                   child: str) -> None:
    old = system.pid(child)
    os.kill(old, signal.SIGKILL)
    state = wait_for(lambda: (s := system.state())["processes"][child]["alive"]
                     and s["processes"][child]["pid"] != old and s, 20, 0.1,
                     what=f"{child} respawned")
    assert state["processes"][child]["restarts"] == 1
    assert "SIGKILL" in state["processes"][child]["last_exit"]
    export_until_on(system, emulator)  # and the loop still works


def test_kill_9_worker_zero_before_restart(system: System, emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    old = system.pid("rtworker")
    system.recorder.armed.set()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: system.state()["processes"]["rtworker"]["pid"] not in (None, old), 20,
             what="rtworker respawned")
    wait_for(lambda: system.recorder.writes, 5, what="a write after the kill")
    first, alive_then = system.recorder.writes[0]
    assert first.duty == 0.0, "first write after the kill must be 0"
    assert old not in alive_then and not alive_then, \
        "the 0 was written by the supervisor before any new worker existed"
    export_until_on(system, emulator)  # control resumes with the new worker


def test_sigstop_worker_is_killed_zeroed_restarted(system: System,
                                                  emulator: PigpiodEmulator) -> None:
    export_until_on(system, emulator)
    old = system.pid("rtworker")
    system.recorder.armed.set()
    with stopped(old):  # hung: the heartbeat stops, the process does not end
        # the recorder runs after the emulator's reply: wait for it, not for the duty
        wait_for(lambda: system.recorder.writes, 5, what="hung worker's output written")
        first, alive_then = system.recorder.writes[0]
        assert first.duty == 0.0 and old not in alive_then
        wait_for(lambda: system.state()["processes"]["rtworker"]["pid"] not in (None, old),
                 20, what="rtworker replaced")
    export_until_on(system, emulator)


def test_worker_hanging_right_after_its_restart_is_caught(system: System,
                                                          emulator: PigpiodEmulator) -> None:
    """PUB/SUB loses a new worker's first heartbeats; a hang at its first write must still
    be caught within hang_after_s, not after the start-up grace."""
    export_until_on(system, emulator)
    old = system.pid("rtworker")
    frozen: list[int] = []

    def freeze_new_worker_at_first_write(event) -> None:
        if frozen or event.gpio != GPIO or event.duty <= 0:
            return
        new = worker_pids(system.config) - {old}
        for pid in new:
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)

    os.kill(old, signal.SIGKILL)
    wait_for(lambda: duty(emulator) == 0.0, 3, what="zero after the kill")
    emulator.on_write = freeze_new_worker_at_first_write
    try:
        wait_for(lambda: system.post(-800) == 204 and frozen, 10, 0.1,
                 what="the new worker's first write")
        # hang_after_s is 1.5 s; the start-up grace would be 15 s
        wait_for(lambda: system.post(-800) == 204 and duty(emulator) == 0.0, 4, 0.1,
                 what="the frozen new worker's output zeroed")
    finally:
        emulator.on_write = None
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
