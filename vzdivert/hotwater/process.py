"""The hot-water process's loop: boost and pause with their timeouts, the guarantee planner
every few seconds, the tank temperature; it reaches the output only through self-expiring
`hold` and `tank` commands to the worker, refreshed every few seconds, so a dead or hung
planner leaves the worker in `auto` (and a configured sensor's temperature expires)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import zmq

from vzdivert import bus
from vzdivert.config import Config, ConfigError
from vzdivert.guarantee import Goal, Plan, Progress, plan
from vzdivert.hotwater.tankread import TankReader
from vzdivert.persist import read_json, write_json

log = logging.getLogger("vzdivert.hotwater")

PLAN_EVERY_S = 10.0  # the planner's minute, sampled finer so a start is at most 10 s late
REFRESH_S = 2.0      # mode and temperature sent to the worker this often ...
HOLD_S = 10.0        # ... and a mode lasts this long there without a refresh
PUBLISH_S = 1.0
SAVE_EVERY_S = 60.0
MAX_MINUTES = 24 * 60
STATE_FILE = "hotwater.json"


def local_zone() -> tzinfo:
    """The system's time zone with its DST rules ($TZ, else /etc/localtime), else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


def goal_from_config(cfg: Config) -> Goal:
    g, t = cfg.guarantee, cfg.tank
    return Goal(by=g.by, min_energy_wh=g.min_energy_wh, min_c=g.min_c,
                windows=tuple(g.windows), rating_w=cfg.load.rating_w, volume_l=t.volume_l,
                loss_w=t.loss_w, legionella_c=g.legionella_c, legionella_days=g.legionella_days)


class HotWater:
    def __init__(self, cfg: Config, runtime_dir: Path, ctx: zmq.Context, reader: TankReader,
                 tz: tzinfo | None = None):
        self.cfg, self.reader, self.tz = cfg, reader, tz or local_zone()
        self.rep = bus.bind(ctx, runtime_dir, "hotwater")
        self.pub = bus.bind(ctx, runtime_dir, "hotwater_state")
        self.state_sub = bus.subscribe(ctx, runtime_dir, "state", conflate=True)
        self.health_sub = bus.subscribe(ctx, runtime_dir, "health", conflate=True)
        self.worker = bus.Requester(ctx, runtime_dir, "rtworker", timeout_s=1.0)
        self.poller = zmq.Poller()
        for sock in (self.rep, self.state_sub, self.health_sub):
            self.poller.register(sock, zmq.POLLIN)
        self.handlers = {"status": self.status, "boost": self.boost, "pause": self.pause}
        self.path = Path(cfg.state.dir) / STATE_FILE
        saved = self.saved = read_json(self.path, {}) or {}
        self.mode: str = saved.get("mode", "auto")
        self.mode_until: float | None = saved.get("mode_until")
        self.boost_w: float = saved.get("boost_w", 0.0)
        self.progress = Progress(**{k: v for k, v in saved.get("progress", {}).items()
                                    if k in Progress.__dataclass_fields__})
        self.progress.met = [tuple(x) for x in self.progress.met]
        self.plan: Plan | None = None
        self.worker_state: dict[str, Any] = {}
        self.running = True
        self.next_plan = self.next_refresh = self.next_publish = self.next_save = 0.0
        self.sent: tuple[str, float] | None = None
        self.worker_error = ""

    # -- commands (web UI, MQTT bridge) -----------------------------------------------------
    def boost(self, minutes: float, power_w: float | None = None) -> dict[str, Any]:
        """Run the load at power_w (default: the rating) from the grid for `minutes`; 0
        cancels. Ends early at max_c (the worker holds it off there anyway)."""
        minutes = self._minutes(minutes)
        rating = self.cfg.load.rating_w
        if power_w is not None and (isinstance(power_w, bool) or not isinstance(
                power_w, (int, float)) or not 0 < power_w <= rating):
            raise bus.CommandError(f"power_w: expected a number above 0 and at most the "
                                   f"rating ({rating:g} W), got {power_w!r}")
        if minutes == 0:
            if self.mode == "boost":
                self._set_mode("auto", None, 0.0, "boost cancelled")
        else:
            w = 0.0 if power_w is None or power_w >= rating else float(power_w)
            self._set_mode("boost", time.time() + minutes * 60, w,
                           f"boost for {minutes:g} min at {w or rating:g} W")
        return self.status()

    def pause(self, minutes: float) -> dict[str, Any]:
        """No diverting at all for `minutes` (guarantee included); 0 cancels."""
        minutes = self._minutes(minutes)
        if minutes == 0:
            if self.mode == "pause":
                self._set_mode("auto", None, 0.0, "pause cancelled")
        else:
            self._set_mode("pause", time.time() + minutes * 60, 0.0,
                           f"pause for {minutes:g} min")
        return self.status()

    @staticmethod
    def _minutes(minutes: Any) -> float:
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) \
                or not 0 <= minutes <= MAX_MINUTES:
            raise bus.CommandError(f"minutes: expected a number from 0 to {MAX_MINUTES} "
                                   f"(0 cancels), got {minutes!r}")
        return float(minutes)

    def _set_mode(self, mode: str, until: float | None, power_w: float, why: str) -> None:
        log.info("%s", why)
        self.mode, self.mode_until, self.boost_w = mode, until, power_w
        self.next_refresh = self.next_publish = 0.0  # tell the worker and the UI now
        self.save()

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        self.reader.start()
        try:
            while self.running:
                events = dict(self.poller.poll(200))
                if self.health_sub in events:
                    self.on_settings(bus.decode(self.health_sub.recv())["settings"])
                if self.state_sub in events:
                    self.worker_state = bus.decode(self.state_sub.recv(), expect="state")
                if self.rep in events:
                    bus.serve_one(self.rep, self.handlers)
                self.tick(time.monotonic(), time.time())
        finally:
            self.reader.stop()
            self.save()
            self.worker.close()

    def on_settings(self, settings: dict[str, Any]) -> None:
        if settings == self.cfg.tunables():
            return
        try:
            self.cfg = self.cfg.with_settings(settings)
        except ConfigError as exc:  # the supervisor validated them; say so if not
            log.error("settings not applied: %s", exc)
            return
        self.next_plan = 0.0

    def tick(self, mono: float, now: float) -> None:
        tank_c, tank_at, tank_error = self.reader.latest()
        fresh_c = tank_c if tank_c is not None and \
            mono - tank_at <= self.cfg.tank.sensor_timeout_s else None
        if self.mode != "auto" and self.mode_until is not None and now >= self.mode_until:
            self._set_mode("auto", None, 0.0, f"{self.mode} ended (time up)")
        if self.mode == "boost" and fresh_c is not None and fresh_c >= self.cfg.tank.max_c:
            self._set_mode("auto", None, 0.0, f"boost ended: tank at {fresh_c:.1f} °C")
        ws = self.worker_state
        if mono >= self.next_plan and ws.get("tank_energy_wh") is not None:
            # only with the worker's energy counter: a 0 before its first state would count
            # its whole total as delivered since the deadline. What went into the tank:
            # a relay that heats something else (heats_tank = false) is not counted
            self.next_plan = mono + PLAN_EVERY_S
            energy = ws["tank_energy_wh"]
            opened = bool(ws.get("saturated")) and ws.get("mode") in ("topup", "boost") \
                and not ws.get("stale", True)
            was = self.effective()
            self.plan = plan(now, self.tz, goal_from_config(self.cfg), self.progress,
                             energy, fresh_c, opened)
            if self.effective() != was:  # a top-up starts or ends: tell them now
                self.next_refresh = self.next_publish = 0.0
        # the UI first: it shows our mode ahead of the worker's, so it must never hear of a
        # change later than the worker applies it (the load at full power under "auto")
        if mono >= self.next_publish:
            self.next_publish = mono + PUBLISH_S
            self.pub.send(bus.encode("hotwater_state", **self.status()))
        if mono >= self.next_refresh:
            self.next_refresh = mono + REFRESH_S
            self.refresh_worker(mono, tank_c, tank_at, tank_error)
        if mono >= self.next_save:
            self.next_save = mono + SAVE_EVERY_S
            self.save()

    def effective(self) -> tuple[str, float]:
        """The mode the worker should run: a pause or boost beats the guarantee."""
        if self.mode in ("pause", "boost"):
            return self.mode, self.boost_w
        if self.plan is not None and self.plan.topup:
            return "topup", 0.0
        return "auto", 0.0

    def refresh_worker(self, mono: float, tank_c: float | None, tank_at: float,
                       tank_error: str) -> None:
        mode, power_w = self.effective()
        try:
            if self.cfg.tank.sensor:
                age = mono - tank_at if tank_c is not None else 0.0
                self.worker.call("tank", tank_c=tank_c, age_s=age, error=tank_error)
            self.worker.call("hold", mode=mode, power_w=power_w, hold_s=HOLD_S)
            if self.sent != (mode, power_w):
                log.info("worker mode: %s", mode)
            self.sent, self.worker_error = (mode, power_w), ""
        except bus.CommandError as exc:  # a restarting worker: its holds expire anyway
            self.worker_error = str(exc)
            self.sent = None

    def status(self) -> dict[str, Any]:
        tank_c, tank_at, tank_error = self.reader.latest()
        p = self.plan
        return {
            "ts": time.time(), "mode": self.mode,
            "mode_until": self.mode_until, "boost_w": self.boost_w or self.cfg.load.rating_w,
            "effective_mode": self.effective()[0],
            "tank_c": tank_c, "tank_error": tank_error,
            "tank_age_s": None if tank_c is None else time.monotonic() - tank_at,
            "guarantee": None if p is None else {
                "topup": p.topup, "missing_wh": round(p.missing_wh, 1), "deadline": p.deadline,
                "start_at": p.start_at, "reason": p.reason,
                "recent": [{"deadline": d, "met": m} for d, m in self.progress.met[-7:]]},
            "worker_error": self.worker_error,
        }

    def save(self) -> None:
        """Persist the mode and the planner's progress when they changed (an SD card is
        not written every minute for nothing)."""
        doc = {"mode": self.mode, "mode_until": self.mode_until, "boost_w": self.boost_w,
               "progress": asdict(self.progress)}
        if doc == self.saved:
            return
        try:
            write_json(self.path, doc)
            self.saved = doc
        except OSError as exc:
            log.error("cannot save %s: %s", self.path, exc)
