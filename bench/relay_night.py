"""A night before the sun: a relay's learned shortfall time scale across days.

The several-loads bench's hours start in the sun; a diverter runs for days, and for every
relay the night is one long shortfall. This drives the allocator alone (a 2 kW stage after
a 2 kW PWM load, `relay_on_after_s` 10, `relay_off_after_s` 60) through a night without
surplus, then an hour of 5 kW surplus with clouds taking 70 % for ~60 s every ~3 min
(both exponential, seeded), and prints the relay's switches in that hour and its learned
mean shortfall length every 10 minutes. Run: `python bench/relay_night.py`; with
`--learn-nights` shortfalls of any length are learned, as before `EPISODE_MAX_S`."""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vzdivert.rtworker import allocator  # noqa: E402
from vzdivert.rtworker.allocator import Allocator, Relay  # noqa: E402

SURPLUS_W = 5000.0
SHADE = 0.3  # the surplus left under a cloud
CLOUD_S, CLEAR_S = 60.0, 120.0  # mean cloud and clear spells


def sunny_hour(night_s: float, seed: int) -> tuple[int, list[float]]:
    """Switches in the first sunny hour after `night_s` without surplus, and the learned
    mean shortfall length every 10 minutes of it."""
    relay = Relay("stage 2", 2000.0)
    alloc = Allocator(2000.0, [relay], 0.0, margin_w=100.0, check_readings=2,
                      on_after_s=10.0, off_after_s=60.0)
    t = 0.0
    while t < night_s:
        alloc.split(0.0, t)
        t += 1.0
    rng = random.Random(seed)
    switches, end = relay.switches, t + 3600.0
    cloud_until, next_cloud = -1.0, t + rng.expovariate(1 / CLEAR_S)
    means = []
    while t < end:
        if t >= next_cloud and t >= cloud_until:
            cloud_until = t + rng.expovariate(1 / CLOUD_S)
            next_cloud = cloud_until + rng.expovariate(1 / CLEAR_S)
        alloc.split(SURPLUS_W * (SHADE if t < cloud_until else 1.0), t)
        t += 1.0
        if int(t) % 600 == 0:
            means.append(relay.episode_mean_s)
    return relay.switches - switches, means


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--learn-nights", action="store_true",
                    help="learn shortfalls of any length (the allocator before the cap)")
    args = ap.parse_args(argv)
    if args.learn_nights:
        allocator.EPISODE_MAX_S = math.inf
    print("| night before | switches in the first sunny hour | learned mean shortfall (s) "
          "every 10 min |")
    print("|---:|---:|---|")
    for night_h in (0, 1, 12):
        switches, means = sunny_hour(night_h * 3600.0, args.seed)
        print(f"| {night_h} h | {switches} | {', '.join(f'{m:.0f}' for m in means)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
