"""The real-time worker's shell around ``WorkerCore``: the poller, the sockets, the output
calls and publishing. The core decides; this writes what it decides, a state message per
sample and a heartbeat in between. One shutdown path (``shutdown``) puts every output in the
safe state whatever the reason."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import zmq

from vzdivert import bus
from vzdivert.config import Config, ConfigError
from vzdivert.output import FrequencyUnsupported, OutputSet
from vzdivert.rtworker.core import Plan, Refused, WorkerCore, tank_loads
from vzdivert.rtworker.curves import curve_from_config
from vzdivert.rtworker.energy import EnergyCounter
from vzdivert.rtworker.rating_store import RatingStore

log = logging.getLogger("vzdivert.rtworker")

READBACK_EVERY_S = 5.0  # compare what the hardware runs with what we set, this often


class Worker:
    def __init__(self, cfg: Config, runtime_dir: Path, outputs: OutputSet, ctx: zmq.Context,
                 realtime: dict[str, Any] | None = None):
        self.outputs = outputs
        relays = frozenset(r.name for r in cfg.relays)
        self.energy = EnergyCounter(cfg.state.dir, not_tank=relays - set(tank_loads(cfg)))
        self.core = WorkerCore(cfg, self.energy, time.monotonic())
        self.rating_stores = [RatingStore(cfg.state.dir, learned, load=key)
                              for key, learned in self.core.estimators.items()]
        self.realtime = realtime or {}
        self.readings = bus.subscribe(ctx, runtime_dir, "readings", conflate=True)
        self.commands = bus.bind(ctx, runtime_dir, "rtworker")
        self.state_pub = bus.bind(ctx, runtime_dir, "state")
        self.poller = zmq.Poller()
        self.poller.register(self.readings, zmq.POLLIN)
        self.poller.register(self.commands, zmq.POLLIN)
        self.handlers = {"ping": lambda: "pong", "status": self.status,
                         "apply_settings": self.apply_settings, "manual": self.manual,
                         "hold": self.hold, "tank": self.tank}
        self.running = True
        self.seq = 0
        self.last_publish = 0.0
        self.next_readback = 0.0

    @property
    def cfg(self) -> Config:
        return self.core.cfg

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        heartbeat_s = self.cfg.rtworker.heartbeat_s
        self.apply(self.core.start(time.monotonic()))
        self.publish()
        while self.running:
            wait_s = min(heartbeat_s, self.core.next_deadline(time.monotonic()))
            events = dict(self.poller.poll(max(0, int(wait_s * 1000)) + 1))
            if self.readings in events:
                self.on_reading(bus.decode(self.readings.recv(), expect="reading"))
            if self.commands in events:
                bus.serve_one(self.commands, self.handlers)
            now = time.monotonic()
            plan = self.core.tick(now)
            if plan is not None:
                self.apply(plan)
                self.publish()
            if now - self.last_publish >= heartbeat_s:
                self.publish()
            if now >= self.next_readback:
                self.next_readback = now + READBACK_EVERY_S
                self.check_readback(now)
            self.energy.tick(now)
            for store in self.rating_stores:
                store.tick(now)

    def on_reading(self, msg: dict[str, Any]) -> None:
        t0 = time.perf_counter_ns()
        plan = self.core.on_reading(msg["grid_w"], msg["ts"], time.time(), time.monotonic())
        if plan is None:
            return
        self.apply(plan)
        self.core.stats.record(msg["rx"], time.time(), time.perf_counter_ns() - t0)
        self.publish()

    def apply(self, plan: Plan) -> None:
        """Write what the core decided; a failed write goes back to it (and ends safe)."""
        if plan.safe:
            failed = self.outputs.all_off()
            if failed:
                self.core.off_failed(failed)
            else:
                self.core.off_ok(plan)
            return
        try:
            if plan.recover:  # a recovered output starts from a known safe state
                failed = self.outputs.all_off()
                if failed:
                    raise RuntimeError("; ".join(failed))
            for name, level in plan.levels.items():
                self.outputs[name].set(level)
        except Exception as exc:  # the output is unknown now: the core forces it safe
            self.apply(self.core.write_failed(str(exc), time.monotonic()))
            return
        self.core.write_ok(plan)

    def check_readback(self, now: float) -> None:
        for name, output in self.outputs.items():
            try:
                actual = output.read_back()
            except Exception as exc:
                self.core.readback_failed(str(exc))
                continue
            plan = self.core.readback(name, actual, output.resolution, now)
            if plan is not None:
                self.apply(plan)

    def shutdown(self, reason: str) -> None:
        """The one way out: every output to its safe state, counters saved, a last state."""
        self.running = False
        self.apply(self.core.shutdown(reason, time.monotonic()))
        self.energy.save()
        for store in self.rating_stores:
            store.save()
        self.publish()

    # -- bus ------------------------------------------------------------------------------
    def publish(self) -> None:
        self.seq += 1
        self.last_publish = time.monotonic()
        self.state_pub.send(bus.encode("state", **self.state()))

    def state(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"ts": time.time(), "seq": self.seq,
                **self.core.state(now, self.energy.loads_today_wh),
                "energy_wh": self.energy.total_wh, "energy_today_wh": self.energy.today_wh,
                "tank_energy_wh": self.energy.tank_wh,
                "loop": self.core.stats.summary(now), "realtime": self.realtime}

    def status(self) -> dict[str, Any]:
        return {**self.state(), "output": self.outputs.describe()}

    def manual(self, duty: float | None, hold_s: float = 10.0) -> dict[str, Any]:
        """Hold the PWM load at ``duty`` for ``hold_s`` (calibration); see WorkerCore.manual."""
        try:
            plan = self.core.manual(duty, hold_s, time.monotonic())
        except Refused as exc:
            raise bus.CommandError(str(exc)) from exc
        if plan is not None:
            self.apply(plan)
            self.publish()
        return self.state()

    def hold(self, mode: str, power_w: float = 0.0, hold_s: float = 10.0) -> dict[str, Any]:
        """The hot-water process's mode (pause, boost, topup, auto) for ``hold_s``; it
        refreshes it, so a dead planner leaves the worker in auto. See WorkerCore.hot_water."""
        try:
            self.core.hot_water(mode, power_w, hold_s, time.monotonic())
        except Refused as exc:
            raise bus.CommandError(str(exc)) from exc
        return {"mode": self.core.mode()}

    def tank(self, tank_c: float | None, age_s: float = 0.0, error: str = "") -> dict[str, Any]:
        """The newest tank temperature (measured ``age_s`` ago), or None with the sensor's
        error; without a fresh one the tank limit holds the load off."""
        try:
            self.core.tank_reading(tank_c, age_s, error, time.monotonic())
        except Refused as exc:
            raise bus.CommandError(str(exc)) from exc
        return {"hold_reason": self.core.tank.held(time.monotonic())}

    def apply_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        try:
            cfg = self.cfg.with_settings(settings)
        except ConfigError as exc:
            raise bus.CommandError.invalid(exc.problems) from exc
        try:
            curve = curve_from_config(cfg)
        except ValueError as exc:
            raise bus.CommandError.invalid({"curve": str(exc)}) from exc
        self.core.configure(cfg, curve)
        for output in self.outputs:
            try:
                output.set_frequency(cfg.output.frequency_hz)
            except FrequencyUnsupported:
                pass  # a relay or a simulation: nothing to change
        return cfg.tunables()
