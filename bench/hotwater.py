"""Hot-water benchmark: a seeded simulated year (or a seasonal sample of days) of PV,
household load and hot-water draws, run minute by minute for three policies, all behind an
ideal diverter (the control loop's own quality is bench/control.py's subject):
  ours    the real planner (vzdivert.guarantee) fed the tank sensor and the metered
          energy, tops up at full power at the latest start, the worker's max_c hold;
  timer   what users do today: a contactor runs the heater 02:00-05:00 every night;
  oracle  knows each day's PV: tops up exactly the shortfall, at the last moment.
Prints per policy: days the tank missed min_c at the deadline, grid kWh for heating,
surplus kWh diverted; and the ratios against the issue's targets.
Run: python bench/hotwater.py [--days 365 | --sample 14] [--seed N]"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vzdivert.guarantee import Goal, Progress, plan  # noqa: E402
from vzdivert.tanksim import Tank, TankSpec  # noqa: E402

RATING_W = 2000.0
MAX_C, HYSTERESIS_C = 60.0, 3.0       # [tank] max_c / hysteresis_c
BY_HOUR, MIN_C = 17, 50.0             # [guarantee] by = "17:00", min_c = 50
TIMER_HOURS = (1.0, 6.0)
EPOCH0 = 1767225600.0                 # 2026-01-01 00:00 UTC; the bench runs in UTC
TZ = UTC
MINUTES = 1440
SPEC = TankSpec()
GOAL = Goal(by=f"{BY_HOUR:02d}:00", min_c=MIN_C, rating_w=RATING_W, volume_l=SPEC.volume_l,
            loss_w=SPEC.loss_w_per_k * (MIN_C - SPEC.ambient_c))


def day_profile(day: int, seed: int) -> list[float]:
    """Surplus (PV - household, W) per minute of a day of the year: a seasonal clear-sky
    bell, a day's cloudiness (some grey runs of several days), passing clouds, and a
    household with a morning and an evening peak."""
    rng = random.Random(f"{seed}:day:{day}")
    season = 0.5 - 0.5 * math.cos(2 * math.pi * (day - 10) / 365)  # 0 midwinter, 1 midsummer
    peak_w = 1200 + 3800 * season
    half_day_h = 4.0 + 4.0 * season
    grey = random.Random(f"{seed}:grey:{day // 3}").random() < 0.35 - 0.2 * season
    clear = rng.uniform(0.05, 0.3) if grey else rng.uniform(0.5, 1.0)
    out = []
    cloud = 1.0
    for minute in range(MINUTES):
        hour = minute / 60
        x = (hour - 12.5) / half_day_h
        pv = peak_w * math.cos(x * math.pi / 2) ** 2 if abs(x) < 1 else 0.0
        cloud += 0.2 * (rng.uniform(clear - 0.3, 1.0) - cloud)
        load = 250 + 400 * math.exp(-((hour - 7.5) / 1.0) ** 2) + \
            600 * math.exp(-((hour - 19.0) / 1.5) ** 2) + rng.uniform(0, 150)
        out.append(pv * min(1.0, max(0.0, cloud)) - load)
    return out


@dataclass
class Result:
    misses: int = 0
    grid_wh: float = 0.0
    surplus_wh: float = 0.0
    heat_wh: float = 0.0


class Run:
    """One policy over the days: the tank, the worker's max_c hold, the tallies."""

    def __init__(self, seed: int):
        self.tank = Tank(SPEC, seed)
        self.hot = False
        self.result = Result()

    def divert(self, surplus_w: float) -> float:
        """What the (ideal) diverter offers: the surplus, up to the rating, below max_c."""
        return min(RATING_W, max(0.0, surplus_w)) if not self.hot else 0.0

    def minute(self, day: int, minute: int, offered_w: float, surplus_w: float) -> float:
        sensor = self.tank.sensor_c()
        if sensor >= MAX_C:
            self.hot = True
        elif sensor < MAX_C - HYSTERESIS_C:
            self.hot = False
        drawn = self.tank.step(60.0, offered_w, day, minute / 60)
        r = self.result
        covered = min(drawn, max(0.0, surplus_w))
        r.surplus_wh += covered / 60
        r.grid_wh += (drawn - covered) / 60
        r.heat_wh += drawn / 60
        if minute == BY_HOUR * 60 - 1 and self.tank.temp_c < MIN_C:
            r.misses += 1
        return drawn


def run_ours(days: list[int], seed: int) -> Result:
    run, progress = Run(seed), Progress()
    energy_wh, open_seen = 0.0, False
    for day in days:
        surplus = day_profile(day, seed)
        for m in range(MINUTES):
            now = EPOCH0 + day * 86400 + m * 60
            p = plan(now, TZ, GOAL, progress, energy_wh, run.tank.sensor_c(), open_seen)
            offered = 0.0 if run.hot else RATING_W if p.topup else run.divert(surplus[m])
            drawn = run.minute(day, m, offered, surplus[m])
            energy_wh += drawn / 60
            open_seen = offered >= RATING_W and drawn == 0.0  # the worker's saturation
    return run.result


def run_timer(days: list[int], seed: int) -> Result:
    run = Run(seed)
    lo, hi = TIMER_HOURS
    for day in days:
        surplus = day_profile(day, seed)
        for m in range(MINUTES):
            on = lo <= m / 60 < hi  # the contactor bypasses the diverter and its max_c
            run.minute(day, m, RATING_W if on else run.divert(surplus[m]), surplus[m])
    return run.result


def oracle_final_c(snapshot: tuple[float, bool, bool], topup_min: int, day: int,
                   surplus: list[float], seed: int) -> float:
    """The tank at the deadline with ``topup_min`` full-power minutes just before it."""
    t = Tank(SPEC, seed)
    t.temp_c, t.thermostat_closed, hot = snapshot
    deadline_m = BY_HOUR * 60
    for m in range(deadline_m):
        on = m >= deadline_m - topup_min
        offered = RATING_W if on else min(RATING_W, max(0.0, surplus[m]))
        hot = t.temp_c >= MAX_C or (hot and t.temp_c >= MAX_C - HYSTERESIS_C)
        t.step(60.0, 0.0 if hot else offered, day, m / 60)
    return t.temp_c


def run_oracle(days: list[int], seed: int) -> Result:
    """Per day: the fewest full-power minutes just before the deadline that still meet it
    (bisection on a copy of the tank, knowing the day's PV), without any margin."""
    run = Run(seed)
    deadline_m = BY_HOUR * 60
    for day in days:
        surplus = day_profile(day, seed)
        snapshot = (run.tank.temp_c, run.tank.thermostat_closed, run.hot)
        lo, hi = 0, deadline_m
        if oracle_final_c(snapshot, 0, day, surplus, seed) >= MIN_C:
            hi = 0
        while lo < hi:
            mid = (lo + hi) // 2
            if oracle_final_c(snapshot, mid, day, surplus, seed) >= MIN_C:
                hi = mid
            else:
                lo = mid + 1
        for m in range(MINUTES):
            on = deadline_m - hi <= m < deadline_m
            run.minute(day, m, RATING_W if on and not run.hot else run.divert(surplus[m]),
                       surplus[m])
    return run.result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=0, help="a run of consecutive days")
    ap.add_argument("--sample", type=int, default=14,
                    help="days per season (4 seasons) when --days is 0")
    args = ap.parse_args()
    if args.days:
        days = list(range(args.days))
    else:  # consecutive days from each season, so grey runs and tank history carry over
        days = [d for start in (0, 91, 182, 273) for d in range(start, start + args.sample)]
    t0 = time.perf_counter()
    results = {"ours": run_ours(days, args.seed), "timer": run_timer(days, args.seed),
               "oracle": run_oracle(days, args.seed)}
    print(f"{len(days)} days, seed {args.seed}, tank {SPEC.volume_l:g} L, heater "
          f"{RATING_W:g} W, guarantee {MIN_C:g} °C by {BY_HOUR}:00, timer "
          f"{TIMER_HOURS[0]:g}-{TIMER_HOURS[1]:g} h")
    print(f"{'policy':8} {'missed':>6} {'grid kWh':>9} {'surplus kWh':>12} {'heat kWh':>9}")
    for name, r in results.items():
        print(f"{name:8} {r.misses:6d} {r.grid_wh / 1000:9.1f} {r.surplus_wh / 1000:12.1f} "
              f"{r.heat_wh / 1000:9.1f}")
    ours, oracle, timer = results["ours"], results["oracle"], results["timer"]
    vs_oracle = ours.grid_wh / oracle.grid_wh if oracle.grid_wh else math.inf
    vs_timer = ours.grid_wh / timer.grid_wh if timer.grid_wh else math.inf
    print(f"ours/oracle grid {vs_oracle:.3f} (target <= 1.10), ours/timer grid "
          f"{vs_timer:.3f} (target <= 0.5), ours missed {ours.misses} (target 0)")
    ok = ours.misses == 0 and vs_oracle <= 1.10 and vs_timer <= 0.5
    print(f"targets {'met' if ok else 'NOT met'}  ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
