"""Supervisor parts without processes: restart backoff, exit reasons, CPU layout."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from vzdivert.supervisor.arbiter import child_cpus
from vzdivert.supervisor.children import BACKOFF_MAX_S, BACKOFF_MIN_S, Child, exit_reason


def test_exit_reasons() -> None:
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(3) == "exited with status 3"


def test_backoff_doubles_for_a_crash_loop_and_is_capped() -> None:
    child = Child("x", "nonexistent_module_for_test", [])
    delays = []
    for _ in range(10):
        child.start()
        child.proc.wait()
        assert child.reap() == 1  # python -m of a missing module exits 1
        delays.append(child.backoff_s)
    assert delays[0] == BACKOFF_MIN_S and delays[1] == 2 * BACKOFF_MIN_S
    assert max(delays) == BACKOFF_MAX_S and delays == sorted(delays)
    assert child.reap() is None  # reaped once only


def test_children_die_with_the_supervisor() -> None:
    """PR_SET_PDEATHSIG is set in the child: its parent's death sends it SIGTERM."""
    import subprocess

    code = (f"import sys, time; sys.path.insert(0, {os.getcwd()!r})\n"
            "from vzdivert.supervisor.children import Child\n"
            "c = Child('s', 'http.server', ['0', '--bind', '127.0.0.1']); c.start()\n"
            "print(c.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline_ok = False
    for _ in range(200):
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as f:
                if ") Z" in f.read():
                    deadline_ok = True
                    break
        except (ProcessLookupError, FileNotFoundError):
            deadline_ok = True
            break
        import time

        time.sleep(0.02)
    assert deadline_ok, "the child outlived its supervisor"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_cpu_layout_keeps_the_ui_off_the_control_cpu() -> None:
    cpus = os.sched_getaffinity(0)
    control = max(cpus)
    assert child_cpus("ingest", control) == {control}
    assert child_cpus("webui", control) == cpus - {control}
    assert child_cpus("rtworker", control) == frozenset()  # it pins itself
    assert child_cpus("webui", -1) == frozenset()  # nothing pinned: no layout


def test_ingest_fifo_only_on_a_pinned_control_cpu() -> None:
    from vzdivert.supervisor.arbiter import child_fifo

    control = max(os.sched_getaffinity(0))
    several = len(os.sched_getaffinity(0)) > 1
    assert child_fifo("ingest", control, 50) == (40 if several else 0)
    assert child_fifo("ingest", -1, 50) == 0  # not pinned: a flood could starve others
    assert child_fifo("webui", control, 50) == 0
    assert child_fifo("ingest", control, 5) == 0  # no room below the worker
