"""Diverted-energy counter: integrates the modelled load power only while the output is
really on, keeps today and total, and persists atomically (at most ``save_every_s`` lost on
a crash, nothing on a clean stop). A second total counts only what went into the tank (the
daily guarantee's measure): loads that heat something else (``not_tank``) are left out."""

from __future__ import annotations

import time
from pathlib import Path

from vzdivert.persist import read_json, write_json

ENERGY_FILE = "energy.json"


class EnergyCounter:
    def __init__(self, state_dir: str | Path, save_every_s: float = 60.0,
                 not_tank: frozenset[str] = frozenset()):
        self.path = Path(state_dir) / ENERGY_FILE
        self.save_every_s = save_every_s
        self.not_tank = not_tank
        data = read_json(self.path, {}) or {}
        self.total_wh = float(data.get("total_wh", 0.0))
        # a file from before this total: every load heated the tank then
        self.tank_wh = float(data.get("tank_wh", self.total_wh))
        self.day = _today()  # once: a start at midnight must not see two days
        same_day = data.get("day", self.day) == self.day
        self.today_wh = float(data.get("today_wh", 0.0)) if same_day else 0.0
        # per load (several loads): today only; the total stays one number
        self.loads_today_wh: dict[str, float] = {
            str(k): float(v) for k, v in (data.get("loads_today_wh") or {}).items()
        } if same_day else {}
        self._last_save = time.monotonic()
        self._dirty = False

    def add(self, power_w: float, dt_s: float, load: str | None = None) -> None:
        """Account ``power_w`` held for ``dt_s`` (by ``load``, if named). Callers pass 0 W
        while the output is off or the data are stale, so a counter can never run on a
        last value."""
        if power_w <= 0 or dt_s <= 0:
            return
        wh = power_w * dt_s / 3600.0
        self.total_wh += wh
        self.today_wh += wh
        if load not in self.not_tank:
            self.tank_wh += wh
        if load is not None:
            self.loads_today_wh[load] = self.loads_today_wh.get(load, 0.0) + wh
        self._dirty = True

    def tick(self, now_mono: float) -> None:
        """Roll the day over and save if due; cheap enough to call every loop."""
        if now_mono - self._last_save < self.save_every_s:
            return
        self._last_save = now_mono
        today = _today()
        if today != self.day:
            self.day, self.today_wh, self._dirty = today, 0.0, True
            self.loads_today_wh = {}
        if self._dirty:
            self.save()

    def save(self) -> None:
        write_json(self.path, {"total_wh": round(self.total_wh, 6),
                               "tank_wh": round(self.tank_wh, 6),
                               "today_wh": round(self.today_wh, 6), "day": self.day,
                               "loads_today_wh": {k: round(v, 6)
                                                  for k, v in self.loads_today_wh.items()}})
        self._dirty = False


def _today() -> str:
    return time.strftime("%Y-%m-%d")
