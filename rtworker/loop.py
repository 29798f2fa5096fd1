"""The real-time worker's loop: one control step per reading, output to 0 when data go
stale, a state message per sample and a heartbeat in between. One shutdown path
(``shutdown``) puts the output in the safe state whatever the reason."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import zmq

from vzdivert import bus
from vzdivert.config import Config, ConfigError
from vzdivert.rtworker.controller import Controller, params_from_config
from vzdivert.rtworker.curves import curve_from_config
from vzdivert.rtworker.drivers import Output
from vzdivert.rtworker.energy import EnergyCounter
from vzdivert.rtworker.stats import LoopStats

log = logging.getLogger("vzdivert.rtworker")

READBACK_EVERY_S = 5.0  # compare what the hardware runs with what we set, this often


class Worker:
    def __init__(self, cfg: Config, runtime_dir: Path, output: Output, ctx: zmq.Context,
                 realtime: dict[str, Any] | None = None):
        self.cfg, self.output = cfg, output
        self.controller = Controller(params_from_config(cfg))
        self.curve = curve_from_config(cfg)
        self.energy = EnergyCounter(cfg.state.dir)
        self.stats = LoopStats()
        self.realtime = realtime or {}
        self.readings = bus.subscribe(ctx, runtime_dir, "readings", conflate=True)
        self.commands = bus.bind(ctx, runtime_dir, "rtworker")
        self.state_pub = bus.bind(ctx, runtime_dir, "state")
        self.poller = zmq.Poller()
        self.poller.register(self.readings, zmq.POLLIN)
        self.poller.register(self.commands, zmq.POLLIN)
        self.handlers = {"ping": lambda: "pong", "status": self.status,
                         "apply_settings": self.apply_settings, "manual": self.manual}
        self.running = True
        self.stale = True  # no data yet: the output stays at 0 until a fresh reading
        self.stale_reason = "no data yet"
        self.last_reading_mono = time.monotonic()
        self.last_ts: float | None = None
        self.last_output_mono = time.monotonic()
        self.grid_w: float | None = None
        self.fraction = 0.0
        self.duty = 0.0
        self.seq = 0
        self.last_publish = 0.0
        self.error = ""
        self.manual_duty: float | None = None  # calibration holds the output here for a while
        self.manual_until = 0.0
        self.next_readback = 0.0
        self.output_fault = False
        self.readback_mismatches = 0

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        heartbeat_s = self.cfg.rtworker.heartbeat_s
        self.output.off()
        self.publish()
        while self.running:
            now = time.monotonic()
            wait_s = heartbeat_s
            if not self.stale:
                wait_s = min(wait_s, self.last_reading_mono + self.cfg.watchdog.stale_after_s - now)
            events = dict(self.poller.poll(max(0, int(wait_s * 1000)) + 1))
            if self.readings in events:
                self.on_reading(bus.decode(self.readings.recv(), expect="reading"))
            if self.commands in events:
                bus.serve_one(self.commands, self.handlers)
            now = time.monotonic()
            if not self.stale and now - self.last_reading_mono > self.cfg.watchdog.stale_after_s:
                self.go_stale(f"no fresh reading for {self.cfg.watchdog.stale_after_s:g} s")
            if now - self.last_publish >= heartbeat_s:
                self.publish()
            if now >= self.next_readback:
                self.next_readback = now + READBACK_EVERY_S
                self.check_readback()
            self.energy.tick(now)

    def on_reading(self, msg: dict[str, Any]) -> None:
        t0 = time.perf_counter_ns()
        now_wall, now = time.time(), time.monotonic()
        ts = msg["ts"]
        if now_wall - ts > self.cfg.watchdog.stale_after_s:
            self.stats.dropped_old += 1
            return
        if self.last_ts is not None and ts <= self.last_ts:
            self.stats.dropped_old += 1  # out of order or repeated: never step on old data
            return
        dt_s = ts - self.last_ts if self.last_ts is not None and not self.stale else 1.0
        dt_s = min(max(dt_s, 0.05), self.cfg.watchdog.stale_after_s)
        self.account(now)
        if self.stale:
            log.info("fresh data again (grid %.0f W): control resumes", msg["grid_w"])
            self.controller.reset()
            self.stale, self.stale_reason = False, ""
        self.last_ts, self.last_reading_mono, self.grid_w = ts, now, msg["grid_w"]
        if self.manual_duty is not None and now >= self.manual_until:
            log.info("manual hold expired: control resumes")
            self.manual_duty = None
            self.controller.reset()
        if self.manual_duty is None:
            self.fraction = self.controller.step(msg["grid_w"], dt_s)
            self.set_duty(self.curve.duty(self.fraction))
        self.stats.record(msg["rx"], time.time(), time.perf_counter_ns() - t0)
        self.publish()

    def set_duty(self, duty: float) -> None:
        try:
            if self.output_fault:  # a recovered output starts from a known safe state
                self.output.off()
                self.output_fault = False
                log.info("output reachable again")
            self.output.set(duty)
            self.duty = duty
            self.error = ""
        except Exception as exc:  # the output is unknown now: say so, force 0, carry on
            self.error = f"output write failed: {exc}"
            if not self.output_fault:  # once per outage, not once per reading
                log.error("%s", self.error)
            self.output_fault = True
            self.controller.reset()
            self.safe_off()

    def check_readback(self) -> None:
        """Someone else (another pigpio client, a restarted pigpiod) may have changed the
        pin: report it and put our duty back (0 when stale)."""
        read_back = getattr(self.output, "read_back", None)
        if read_back is None:
            return
        try:
            actual = read_back()
        except Exception as exc:
            self.error = f"output read-back failed: {exc}"
            return
        tolerance = 2 * getattr(self.output, "resolution", 0.001) + 1e-6
        if actual is not None and abs(actual - self.duty) > tolerance:
            self.readback_mismatches += 1
            problem = f"output ran duty {actual:.4f}, expected {self.duty:.4f}: re-applied"
            log.warning("%s", problem)
            self.set_duty(self.duty)
            self.error = problem

    def go_stale(self, reason: str) -> None:
        log.warning("stale data: %s; output to 0", reason)
        self.account(time.monotonic())
        self.stale, self.stale_reason = True, reason
        self.fraction = 0.0
        self.manual_duty = None
        self.controller.reset()
        self.safe_off()
        self.publish()

    def safe_off(self) -> None:
        self.duty = 0.0
        try:
            self.output.off()
        except Exception as exc:
            self.error = f"output off failed: {exc}"
            log.error("%s", self.error)

    def account(self, now: float) -> None:
        """Energy since the last output change, at the power that was really on."""
        if not self.stale and self.duty > 0:
            self.energy.add(self.power_w(), now - self.last_output_mono)
        self.last_output_mono = now

    def power_w(self) -> float:
        """Modelled load power; 0 while the load is seen not to draw (thermostat open)."""
        if self.controller.saturated:
            return 0.0
        return self.curve.power_fraction(self.duty) * self.cfg.load.rating_w

    def shutdown(self, reason: str) -> None:
        """The one way out: output to 0, counters saved, a last state published."""
        log.info("shutting down: %s", reason)
        self.running = False
        self.account(time.monotonic())
        self.stale, self.stale_reason = True, reason
        self.safe_off()
        self.energy.save()
        self.publish()

    # -- bus ------------------------------------------------------------------------------
    def publish(self) -> None:
        self.seq += 1
        self.last_publish = time.monotonic()
        self.state_pub.send(bus.encode("state", **self.state()))

    def state(self) -> dict[str, Any]:
        return {
            "ts": time.time(), "seq": self.seq, "grid_w": self.grid_w,
            "target_w": self.cfg.control.target_w, "duty": self.duty,
            "fraction": self.fraction, "power_w": 0.0 if self.stale else self.power_w(),
            "energy_wh": self.energy.total_wh, "energy_today_wh": self.energy.today_wh,
            "stale": self.stale, "stale_reason": self.stale_reason,
            "mode": "stale" if self.stale else "manual" if self.manual_duty is not None
            else "auto",
            "saturated": self.controller.saturated, "error": self.error,
            "readback_mismatches": self.readback_mismatches,
            "reading_age_s": time.monotonic() - self.last_reading_mono,
            "loop": self.stats.summary(time.monotonic()), "realtime": self.realtime,
        }

    def status(self) -> dict[str, Any]:
        return {**self.state(), "output": self.output.describe()}

    def manual(self, duty: float | None, hold_s: float = 10.0) -> dict[str, Any]:
        """Hold the output at ``duty`` for ``hold_s`` (calibration); None hands back to the
        controller. Refused on stale data; ends by itself, so a dead client cannot leave a
        load on; stale data end it at once."""
        if duty is None:
            self.manual_duty = None
            self.controller.reset()
            return self.state()
        if self.stale:
            raise bus.CommandError(f"refused: data are stale ({self.stale_reason})")
        if not 0.0 <= duty <= 1.0 or not 0.0 < hold_s <= 60.0:
            raise bus.CommandError("manual: duty must be 0..1 and hold_s 0..60")
        self.account(time.monotonic())
        self.manual_duty, self.manual_until = duty, time.monotonic() + hold_s
        self.fraction = self.curve.power_fraction(duty)
        self.set_duty(duty)
        self.publish()
        return self.state()

    def apply_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        try:
            cfg = self.cfg.with_settings(settings)
        except ConfigError as exc:
            raise bus.CommandError("invalid settings", exc.errors) from exc
        try:
            curve = curve_from_config(cfg)
        except ValueError as exc:
            raise bus.CommandError("invalid settings", [str(exc)]) from exc
        self.cfg, self.curve = cfg, curve
        self.controller.update_params(params_from_config(cfg))
        set_frequency = getattr(self.output, "set_frequency", None)
        if set_frequency is not None:
            set_frequency(cfg.output.frequency_hz)
        return cfg.tunables()
