"""The supervisor's loop (circus calls it the arbiter): start the children, restart the dead
ones with backoff, kill a hung worker, publish health, answer commands. Whenever the worker
is gone, the output is driven to 0 through the supervisor's own handle *before* anything is
restarted: pigpiod and kernel PWM keep the last duty when their client dies."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from vzdivert import bus
from vzdivert.config import Config
from vzdivert.rtworker.drivers import force_off
from vzdivert.supervisor import commands
from vzdivert.supervisor.children import Child
from vzdivert.supervisor.live_settings import LiveSettings

log = logging.getLogger("vzdivert.supervisor")

TICK_S = 0.1
HEALTH_EVERY_S = 1.0
START_GRACE_S = 15.0  # a first heartbeat may take this long (imports on a Pi 3)
HEARTBEATS = {"rtworker": "state", "ingest": "ingest_stats"}  # child -> stream it beats on
ESSENTIAL = ("rtworker", "ingest", "webui")  # systemd's watchdog is fed only while these run
INGEST_HANG_S = 5.0  # the ingest publishes its stats every second
WEBUI_HANG_S = 10.0  # the web UI says `alive` every second
# silence after which a child counts as hung (rtworker: `[supervisor] hang_after_s`)
HANG_LIMITS_S = {"rtworker": 0.0, "ingest": INGEST_HANG_S, "webui": WEBUI_HANG_S}
NICE = {"ingest": -5, "webui": 10, "mqtt": 10}  # the worker itself runs SCHED_FIFO
# kept off the worker's CPU when it is pinned (the supervisor too: a hammered UI asks it
# for settings)
SIDE_PROCESSES = ("supervisor", "webui", "mqtt", "house")


def child_fifo(name: str, worker_cpu: int, worker_priority: int) -> int:
    """With the control path pinned, the ingest runs SCHED_FIFO 10 below the worker: the
    worker still preempts it, and nothing but the control path shares that CPU, so even a
    write flood cannot starve the supervisor or the UI. Removes the loaded tail in
    bench/latency.py (loaded/idle p99 1.0 instead of 1.0-5.9 between runs)."""
    if name != "ingest" or worker_cpu < 0 or worker_priority <= 10:
        return 0
    if not frozenset(os.sched_getaffinity(0)) - {worker_cpu}:
        return 0  # a single CPU: the supervisor and UI would share it
    return worker_priority - 10


def child_cpus(name: str, worker_cpu: int) -> frozenset[int]:
    """With the worker pinned, the control path (ingest, its feeder) shares its CPU, where
    the FIFO worker preempts it at once, and the side processes get the other CPUs. Not
    pinned, or a single CPU: any (the worker pins itself)."""
    others = frozenset(os.sched_getaffinity(0) - {worker_cpu})
    if worker_cpu < 0 or not others:
        return frozenset()
    if name == "ingest":
        return frozenset({worker_cpu})
    return others if name in SIDE_PROCESSES else frozenset()


class Arbiter:
    def __init__(self, base_cfg: Config, config_path: str, runtime_dir: Path,
                 extra_children: tuple[str, ...] = (),
                 notify: Callable[[str], None] | None = None):
        self.base_cfg, self.runtime_dir = base_cfg, runtime_dir
        own_cpus = child_cpus("supervisor", base_cfg.rtworker.cpu)
        if own_cpus:  # before the ZeroMQ threads exist, so they follow
            os.sched_setaffinity(0, own_cpus)
        args = ["--config", str(config_path), "--runtime-dir", str(runtime_dir)]
        optional = ("mqtt",) if base_cfg.mqtt.enabled else ()
        names = ("rtworker", "ingest", "webui", *optional, *extra_children)
        modules = {"house": "vzdivert.demo_meter", "mqtt": "vzdivert.mqtt"}
        rt = base_cfg.rtworker
        self.children = {n: Child(n, modules.get(n, f"vzdivert.{n}"), args, NICE.get(n, 0),
                                  child_cpus(n, rt.cpu), child_fifo(n, rt.cpu, rt.priority))
                         for n in names}
        self.ctx = zmq.Context()
        self.settings = LiveSettings(base_cfg)
        self.notify = notify or (lambda state: None)
        self.running = True
        self.worker_state: dict[str, Any] = {}
        self.output_off_ok: bool | None = None
        self.ready = False

    @property
    def cfg(self) -> Config:
        return self.settings.cfg

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        rep = bus.bind(self.ctx, self.runtime_dir, "supervisor")
        health = bus.bind(self.ctx, self.runtime_dir, "health")
        poller = zmq.Poller()
        poller.register(rep, zmq.POLLIN)
        beats = {}  # heartbeat socket -> the child whose stream it is
        for name, stream in HEARTBEATS.items():
            sock = bus.subscribe(self.ctx, self.runtime_dir, stream, conflate=True)
            poller.register(sock, zmq.POLLIN)
            beats[sock] = self.children[name]
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.drive_output_off("start-up")
        for child in self.children.values():
            self.spawn(child)
        next_health = 0.0
        try:
            while self.running:
                events = dict(poller.poll(int(TICK_S * 1000)))
                for sock, child in beats.items():
                    if sock in events:
                        self.heartbeat(child, bus.decode(sock.recv()))
                if rep in events:
                    bus.serve_one(rep, commands.HANDLERS, self)
                self.watch()
                now = time.monotonic()
                if now >= next_health:
                    next_health = now + HEALTH_EVERY_S
                    health.send(bus.encode("health", ts=time.time(),
                                           processes=self.processes(),
                                           settings=self.cfg.tunables()))
                    if self.healthy():
                        self.notify("WATCHDOG=1")
        finally:
            self.shutdown()
        return 0

    def stop(self, signum: int, frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.running = False

    def spawn(self, child: Child) -> None:
        child.start()
        log.info("started %s (pid %d)", child.name, child.pid)

    def heartbeat(self, child: Child, msg: dict[str, Any]) -> None:
        child.last_heartbeat = time.monotonic()
        if child.name == "rtworker":
            self.worker_state = msg
            if not self.ready:  # the control loop runs: tell systemd we are up
                self.ready = True
                self.notify("READY=1")

    def child_alive(self, name: str) -> bool:
        """A heartbeat by command, from a child without a stream (the web UI)."""
        child = self.children.get(name)
        if child is None or name not in HANG_LIMITS_S:
            raise bus.CommandError(f"alive: {name!r} is not a watched process")
        child.last_heartbeat = time.monotonic()
        return True

    def watch(self) -> None:
        now = time.monotonic()
        for name in HANG_LIMITS_S:
            child = self.children[name]
            if child.alive and self.hung(child, now):
                log.error("%s (pid %d) silent for %.1f s: killing it", name, child.pid,
                          now - max(child.last_heartbeat, child.started_mono))
                child.kill()
        for child in self.children.values():
            code = child.reap()
            if code is not None:
                log.warning("%s %s", child.name, child.last_exit)
                if child.name == "rtworker":
                    self.drive_output_off(f"rtworker {child.last_exit}")
            if child.proc is None and now >= child.next_start_mono and self.running:
                child.restarts += 1
                self.spawn(child)

    def hang_limit_s(self, child: Child) -> float:
        return HANG_LIMITS_S[child.name] or self.cfg.supervisor.hang_after_s

    def hung(self, child: Child, now: float) -> bool:
        since = child.last_heartbeat
        if since < child.started_mono:  # nothing heard from this one yet
            bound = self.stream_bound_mono(child)
            if bound is None:
                return now - child.started_mono > START_GRACE_S
            since = bound
        return now - since > self.hang_limit_s(child)

    def stream_bound_mono(self, child: Child) -> float | None:
        """When the child bound its heartbeat stream (its socket file's mtime), or None.
        PUB/SUB loses a new publisher's first messages, so a child that hangs right after
        start-up must not get the whole start-up grace: from its bind on it must beat."""
        stream = HEARTBEATS.get(child.name)
        if stream is None:
            return None
        try:
            mtime = (self.runtime_dir / f"{stream}.sock").stat().st_mtime
        except FileNotFoundError:
            return None
        if mtime < child.started_wall:
            return None  # the previous process's socket
        return child.started_mono + (mtime - child.started_wall)

    def drive_output_off(self, why: str) -> None:
        """The supervisor's own path to a safe output; the worker must be gone (or not yet
        started), else the two would fight over the pin."""
        try:
            force_off(self.cfg, self.runtime_dir)
            self.output_off_ok = True
            log.info("output driven to 0 (%s)", why)
        except Exception as exc:  # nothing else can be done from here: say it loudly
            self.output_off_ok = False
            log.error("could not drive the output to 0 (%s): %s", why, exc)

    def healthy(self) -> bool:
        """All alive, and the ones with a heartbeat heard from recently (systemd's watchdog
        is pinged only then)."""
        now = time.monotonic()
        return all(self.children[n].alive for n in ESSENTIAL) and all(
            now - self.children[n].last_heartbeat < self.hang_limit_s(self.children[n])
            for n in HANG_LIMITS_S)

    def processes(self) -> dict[str, dict[str, Any]]:
        return {name: child.describe() for name, child in self.children.items()}

    def worker_call(self, cmd: str, **args: Any) -> Any:
        req = bus.Requester(self.ctx, self.runtime_dir, "rtworker", timeout_s=1.0)
        try:
            return req.call(cmd, **args)
        finally:
            req.close()

    def shutdown(self) -> None:
        """Worker first (its own shutdown writes 0), then our own 0, then the rest."""
        self.notify("STOPPING=1")
        self.children["rtworker"].terminate(2.0)
        self.children["rtworker"].reap()
        self.drive_output_off("shutdown")
        rest = [c for n, c in self.children.items() if n != "rtworker" and c.alive]
        for child in rest:
            child.proc.terminate()
        deadline = time.monotonic() + 2.0
        for child in rest:
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        self.ctx.destroy(0)
        log.info("stopped")
