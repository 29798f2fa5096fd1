"""Real-time setup for the worker: SCHED_FIFO, CPU pinning, locked memory, a quiet GC.
Each step is applied where permitted; what could not be applied is reported together with
the systemd setting that grants it (the worker still runs, just with less isolation)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from typing import Any

MCL_CURRENT, MCL_FUTURE = 1, 2

GRANTS = {
    "sched_fifo": "LimitRTPRIO=<prio> or AmbientCapabilities=CAP_SYS_NICE",
    "affinity": "a cpu index that exists (see nproc); isolcpus= to keep others off it",
    "mlockall": "LimitMEMLOCK=infinity or AmbientCapabilities=CAP_IPC_LOCK",
}


def apply(priority: int, cpu: int, lock_memory: bool) -> dict[str, Any]:
    """Apply what is asked (priority 0 / cpu -1 / lock_memory False skip a step); returns
    {step: True | "reason it failed"}."""
    report: dict[str, Any] = {}
    if priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            report["sched_fifo"] = True
        except (OSError, AttributeError) as exc:
            report["sched_fifo"] = f"{exc} (grant with {GRANTS['sched_fifo']})"
    if cpu >= 0:
        try:
            os.sched_setaffinity(0, {cpu})
            report["affinity"] = True
        except (OSError, AttributeError) as exc:
            report["affinity"] = f"{exc} (use {GRANTS['affinity']})"
    if lock_memory:
        _small_thread_stacks()
        report["mlockall"] = _mlockall()
    return report


THREAD_STACK_BYTES = 256 * 1024


def _small_thread_stacks() -> None:
    """New threads get glibc's default stack (8 MB, from RLIMIT_STACK) and mlockall pins
    all of it: ZeroMQ's two threads would lock 16 MB they never touch. Threads made after
    this get 256 kB (C threads via pthread_setattr_default_np, Python threads too)."""
    threading.stack_size(THREAD_STACK_BYTES)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        attr = ctypes.create_string_buffer(128)  # >= sizeof(pthread_attr_t) on every ABI
        if libc.pthread_attr_init(attr) == 0:
            libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(THREAD_STACK_BYTES))
            libc.pthread_setattr_default_np(attr)
            libc.pthread_attr_destroy(attr)
    except (OSError, AttributeError):
        pass  # an old libc: the stacks stay large, which costs memory, nothing else


def tune_zmq(ctx: Any, priority: int, cpu: int, report: dict[str, Any]) -> None:
    """Give ZeroMQ's I/O thread the worker's policy and CPU (must run before the first
    socket is made); recorded in ``report`` under ``zmq_io_thread``."""
    import zmq

    try:
        if report.get("sched_fifo") is True:
            ctx.set(zmq.THREAD_SCHED_POLICY, os.SCHED_FIFO)
            ctx.set(zmq.THREAD_PRIORITY, priority)
        if report.get("affinity") is True:
            ctx.set(zmq.THREAD_AFFINITY_CPU_ADD, cpu)
        ctx.set(zmq.THREAD_NAME_PREFIX, 1)
        report["zmq_io_thread"] = True
    except zmq.ZMQError as exc:
        report["zmq_io_thread"] = f"{exc} (needs the same grants as sched_fifo)"


def _mlockall() -> bool | str:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0:
            return True
        err = ctypes.get_errno()
        return f"{os.strerror(err)} (grant with {GRANTS['mlockall']})"
    except (OSError, AttributeError) as exc:
        return f"{exc} (grant with {GRANTS['mlockall']})"


def quiet_gc() -> None:
    """Move everything allocated at start-up out of the collector's sight and make the
    young-generation threshold large: the loop allocates little, so collections are rare."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
