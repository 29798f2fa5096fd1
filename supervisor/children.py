"""One supervised child process (circus calls it a watcher): how to start it, whether it
is alive, how often it was restarted and why it last ended, and when it may start again."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PR_SET_PDEATHSIG = 1
BACKOFF_MIN_S, BACKOFF_MAX_S, HEALTHY_AFTER_S = 0.5, 30.0, 60.0


def _prepare(nice: int, cpus: frozenset[int], fifo: int) -> Callable[[], None]:
    def prepare() -> None:
        """Runs in the child before exec: SIGTERM it if the supervisor dies (even by
        kill -9), so a worker never outlives its supervisor with the output on; and set its
        CPU weight and CPUs (the UI yields to, and stays off the CPU of, the control loop)."""
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
            except OSError:
                pass  # raising priority needs CAP_SYS_NICE; without it the default stays
        if cpus:
            try:
                os.sched_setaffinity(0, cpus)
            except OSError:
                pass
        if fifo:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo))
            except OSError:
                pass  # needs CAP_SYS_NICE or LimitRTPRIO, as the worker does

    return prepare


def exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class Child:
    name: str
    module: str
    args: list[str]
    nice: int = 0  # CPU weight: negative for the control path, positive for the UI
    cpus: frozenset[int] = frozenset()  # empty: any CPU
    fifo: int = 0  # SCHED_FIFO priority; 0: normal scheduling
    proc: subprocess.Popen | None = None
    restarts: int = 0
    last_exit: str = ""
    started_mono: float = 0.0
    started_wall: float = 0.0
    last_heartbeat: float = 0.0
    next_start_mono: float = 0.0
    backoff_s: float = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args],
                                     preexec_fn=_prepare(self.nice, self.cpus, self.fifo),
                                     stdin=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.started_mono, self.started_wall = time.monotonic(), time.time()

    def reap(self) -> int | None:
        """The exit code if the child has ended since the last call (and forget it)."""
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is None:
            return None
        self.proc = None
        self.last_exit = exit_reason(code)
        now = time.monotonic()
        healthy = now - self.started_mono > HEALTHY_AFTER_S
        self.backoff_s = 0.0 if healthy else min(max(self.backoff_s * 2, BACKOFF_MIN_S),
                                                  BACKOFF_MAX_S)
        self.next_start_mono = now + self.backoff_s
        return code

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
            self.proc.wait()

    def terminate(self, timeout_s: float) -> None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout_s``."""
        if not self.alive:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def describe(self) -> dict[str, Any]:
        return {"alive": self.alive, "pid": self.pid, "restarts": self.restarts,
                "last_exit": self.last_exit}
