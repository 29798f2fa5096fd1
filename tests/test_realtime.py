"""Real-time setup: applied where permitted, reported with the grant that is missing where
not. Runs in subprocesses so the test process keeps its own scheduling."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest
from syshelp import REPO

PROBE = """
import json, os, gc
import zmq
from vzdivert.rtworker import realtime
report = realtime.apply(priority=5, cpu=0, lock_memory=True)
ctx = zmq.Context()
realtime.tune_zmq(ctx, 5, 0, report)
ctx.socket(zmq.PUB).close()
realtime.quiet_gc()
print(json.dumps({"report": report, "policy": os.sched_getscheduler(0),
                  "cpus": sorted(os.sched_getaffinity(0)), "frozen": gc.get_freeze_count()}))
"""


def probe(prefix: tuple[str, ...] = (), preexec=None) -> dict:
    out = subprocess.run([*prefix, sys.executable, "-c", PROBE], capture_output=True,
                         text=True, cwd=REPO, timeout=60, preexec_fn=preexec, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(os.geteuid() != 0, reason="granting SCHED_FIFO needs root here")
def test_applied_when_permitted() -> None:
    result = probe()
    assert result["report"] == {"sched_fifo": True, "affinity": True, "mlockall": True,
                                "zmq_io_thread": True}
    assert result["policy"] == os.SCHED_FIFO and result["cpus"] == [0]
    assert result["frozen"] > 1000  # start-up objects moved out of the collector's way


def test_reported_with_the_missing_grant_when_not_permitted() -> None:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (65536, 65536))

    # without CAP_SYS_NICE / CAP_IPC_LOCK (even as root) and with systemd's default limits
    drop = ("setpriv", "--bounding-set", "-sys_nice,-ipc_lock") if os.geteuid() == 0 else ()
    report = probe(drop, limited)["report"]
    assert "LimitRTPRIO" in report["sched_fifo"]
    assert "LimitMEMLOCK" in report["mlockall"]
    assert report["affinity"] is True  # pinning needs no privilege
