"""The recorder process: subscribes to the worker's state stream, closes 1-minute aggregates
and writes each minute in one SQLite transaction. Started and watched by the supervisor; it
never touches an output, and the worker never waits for it (PUB drops for slow readers)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import zmq

from vzdivert import bus, process
from vzdivert.config import Config
from vzdivert.history.minutes import Accumulator, Minute
from vzdivert.history.store import DB_FILE, open_writer, write_minutes, zone

PRUNE_EVERY_S = 3600.0
ALIVE_EVERY_S = 1.0
DRAIN_MAX = 10_000


class Recorder:
    """The loop's state: the accumulator, the database and when to prune next."""

    def __init__(self, cfg: Config, db_path: Path):
        self.cfg, self.tz = cfg, zone(cfg.history.timezone)
        self.conn = open_writer(db_path)
        self.acc = Accumulator()
        self.next_prune = 0.0  # prune with the first write after a start
        self.written = 0

    def take(self, msg: dict) -> list[Minute]:
        return self.acc.add(msg)

    def write(self, minutes: list[Minute], now: float) -> None:
        prune = None
        if minutes and now >= self.next_prune:
            self.next_prune = now + PRUNE_EVERY_S
            h = self.cfg.history
            prune = (now, h.keep_days, int(h.max_mb * 1_000_000))
        write_minutes(self.conn, minutes, self.tz, prune)
        self.written += len(minutes)

    def close(self) -> None:
        """A clean stop writes the open minute too (a restart merges the rest into it)."""
        sums, ts = self.acc.sums, self.acc.minute_ts
        if ts is not None and sums.out_s + sums.grid_s > 0:
            write_minutes(self.conn, [sums.minute(ts)], self.tz)
        self.conn.close()


def heartbeat(ctx: zmq.Context, runtime_dir: Path, stopping: threading.Event) -> None:
    """Tell the supervisor we live (a thread: a slow write never delays it, nor it the loop)."""
    beat = bus.Requester(ctx, runtime_dir, "supervisor", timeout_s=1.0)
    try:
        while not stopping.wait(ALIVE_EVERY_S):
            try:
                beat.call("alive", name="recorder")
            except bus.CommandError:
                pass  # the supervisor is busy or restarting: the next beat tries again
    except zmq.ZMQError:
        pass  # the context is going away: we are stopping
    finally:
        beat.close()


def main(argv: list[str] | None = None) -> int:
    cfg, runtime_dir, log = process.start("recorder", argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stopping.set())
    signal.signal(signal.SIGINT, lambda s, f: stopping.set())
    db_path = Path(cfg.state.dir) / DB_FILE
    recorder = Recorder(cfg, db_path)
    ctx = zmq.Context()
    states = bus.subscribe(ctx, runtime_dir, "state")
    beats = threading.Thread(target=heartbeat, args=(ctx, runtime_dir, stopping),
                             name="heartbeat", daemon=True)
    beats.start()
    log.info("recording history to %s", db_path)
    try:
        while not stopping.is_set():
            pending: list[Minute] = []
            if states.poll(200):
                for _ in range(DRAIN_MAX):  # what has queued up, but never forever
                    if not states.poll(0):
                        break
                    try:
                        pending += recorder.take(bus.decode(states.recv(), expect="state"))
                    except bus.MessageError as exc:
                        log.warning("ignored a bad state message: %s", exc)
            now = time.time()
            pending += recorder.acc.flush_until(now)
            if pending:
                recorder.write(pending, now)
    finally:
        stopping.set()
        recorder.close()
        states.close(0)
        beats.join(2.0)
        ctx.destroy(0)
        log.info("stopped after writing %d minutes", recorder.written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
