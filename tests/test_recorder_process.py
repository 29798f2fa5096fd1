"""The recorder as a real process on a real ZeroMQ state stream (the test publishes what the
worker would, with synthetic timestamps 1 s apart, so minutes close quickly): kill -9 loses
at most the open minute and never corrupts the database."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from syshelp import free_port, wait_for, write_config

from vzdivert import bus
from vzdivert.history.store import DB_FILE

T0 = (int(time.time()) // 60 + 10 * 1440) * 60  # in the future: no silence flushes minutes


class Recorder:
    """``python -m vzdivert.recorder`` in its own process group."""

    def __init__(self, tmp: Path):
        self.state_dir = tmp / "state"
        self.state_dir.mkdir()
        self.runtime_dir = tmp / "run"
        self.runtime_dir.mkdir()
        self.config = write_config(tmp / "vzdivert.toml", self.state_dir, free_port(),
                                   free_port(), 'driver = "sim"',
                                   '\n[history]\ntimezone = "UTC"\n')
        self.db = self.state_dir / DB_FILE
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vzdivert.recorder", "--config", str(self.config),
             "--runtime-dir", str(self.runtime_dir)], start_new_session=True)

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def minutes(self) -> list[tuple[int, float]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT ts, import_wh FROM minutes ORDER BY ts").fetchall()


class Worker:
    """Publishes state messages as the worker does: grid 3600 W = 1 Wh per synthetic second."""

    def __init__(self, runtime_dir: Path):
        self.ctx = zmq.Context()
        self.pub = bus.bind(self.ctx, runtime_dir, "state")
        self.ts = T0
        self.seq = 0

    def send_until(self, ts_end: int) -> None:
        while self.ts < ts_end:
            self.seq += 1
            self.pub.send(bus.encode("state", ts=float(self.ts), seq=self.seq, grid_w=3600.0,
                                     target_w=0.0, duty=0.5, power_w=1800.0, energy_wh=0.0,
                                     stale=False))
            self.ts += 1
            time.sleep(0.002)

    def close(self) -> None:
        self.ctx.destroy(0)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Recorder, Worker]]:
    rec = Recorder(tmp_path)
    worker = Worker(rec.runtime_dir)
    try:
        yield rec, worker
    finally:
        rec.stop()
        worker.close()


def subscribed(rec: Recorder, worker: Worker) -> int:
    """Publish until the recorder has written a minute (a new SUB misses the first
    messages); returns the first minute that is complete for sure."""
    def written() -> bool:
        worker.send_until(worker.ts + 30)
        return bool(rec.minutes())
    wait_for(written, timeout_s=20, what="the recorder's first minute")
    return rec.minutes()[0][0] + 60


def test_kill9_loses_at_most_the_open_minute(setup: tuple[Recorder, Worker]) -> None:
    rec, worker = setup
    rec.start()
    first = subscribed(rec, worker)
    open_minute = (worker.ts // 60 + 3) * 60
    worker.send_until(open_minute + 30)  # half of the open minute is in the recorder only
    wait_for(lambda: rec.minutes()[-1][0] == open_minute - 60, timeout_s=10,
             what="the minute before the open one")
    rec.kill9()
    stored = dict(rec.minutes())
    assert sorted(stored) == list(range(rec.minutes()[0][0], open_minute, 60))
    assert all(stored[ts] == 60.0 for ts in stored if ts >= first)  # complete minutes
    with sqlite3.connect(rec.db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # restarted, it records the rest of the open minute and everything after
    rec.start()
    wait_for(lambda: (worker.send_until(worker.ts + 20), rec.minutes()[-1][0] > open_minute)
             [1], timeout_s=20, what="minutes after the restart")
    after = dict(rec.minutes())
    # the open minute is lost, or holds only what arrived after the restart (a new
    # subscriber misses the first messages: the worker never waits for the recorder)
    assert after.get(open_minute, 0) < 60.0
    resumed = min(ts for ts in after if ts > open_minute)
    assert all(after[ts] == 60.0 for ts in after if resumed < ts < max(after))
    assert all(after[ts] == stored[ts] for ts in stored)


WRITER = """
import sys
from vzdivert.history.store import open_writer, write_minutes, zone
from vzdivert.testing.history import synthetic_minutes
conn = open_writer(sys.argv[1])
start = int(sys.argv[2])
print("ready", flush=True)
for i in range(10**6):
    write_minutes(conn, list(synthetic_minutes(start + i * 500 * 60, 500)), zone("UTC"))
"""


def test_kill9_during_writes_never_corrupts(tmp_path: Path) -> None:
    """A writer doing big transactions back to back, killed at 5 moments: every time the
    database is intact and holds whole transactions (minutes and days agree)."""
    db = tmp_path / "h.sqlite"
    start = T0
    for round_ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(start)],
                                stdout=subprocess.PIPE, start_new_session=True)
        try:
            assert proc.stdout.readline() == b"ready\n"
            time.sleep(0.3 + 0.17 * round_)  # land somewhere inside a transaction
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            count, imported, last = conn.execute(
                "SELECT COUNT(*), SUM(import_wh), MAX(ts) FROM minutes").fetchone()
            assert count % 500 == 0 and count > 0
            days = conn.execute("SELECT SUM(import_wh) FROM days").fetchone()[0]
            assert days == pytest.approx(imported, rel=1e-9)
        start = last + 60
