"""What a scenario can teach about the load's rating, passively (issue 15's learning
target). For each seed and heater factor, a cold start of 15 minutes (1 s readings, one
reading of delay, linear actuator) with our controller, printing:
- the usable moves our estimator took and where it ended (learned / true);
- every reading pair instead, regressed: the reading's change on the commanded change a
  reading earlier (the meter's delay known), least squares over all pairs; and the same
  with the command's change one or two readings earlier as an instrument (free of the
  feedback, if it were strong enough);
- what is at stake: loss in the first 10 minutes, ours as it is and with the rating
  configured right (learning on from there).
Run: `python bench/learnability.py` (`--scenario household` etc. for another scenario)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import control  # noqa: E402

from vzdivert.plant import SCENARIOS, House  # noqa: E402


def _closed_loop(scenario: str, factor: float, seed: int
                 ) -> tuple[list[float], list[float], float, control.Ours]:
    """Readings and commanded fractions (index = reading), the true rating, the controller."""
    sc = dataclasses.replace(SCENARIOS[scenario], duration_s=900.0)
    house = House(sc, seed=seed, dt_s=1.0, meter_delay_samples=1, actuator="linear",
                  rating_w=control.RATING_W, rating_error=factor)
    ours = control.Ours("linear", control.default_params())
    grid = house.step(0.0)
    readings, fractions = [grid], [0.0]
    while not house.finished:
        u = ours.duty(grid, 1.0, house)
        grid = house.step(u)
        readings.append(grid)
        fractions.append(u)
    return readings, fractions, house.true_rating_w, ours


def regressed(readings: list[float], fractions: list[float], instrument_lag: int = 0) -> float:
    """sum(z dG) / sum(z dF) over every pair: dG the reading's change, dF the change of
    the fraction the meter shows in it, z = dF (least squares) or dF `instrument_lag`
    readings earlier (an instrument)."""
    num = den = 0.0
    for t in range(3 + instrument_lag, len(readings)):
        d_grid = readings[t] - readings[t - 1]
        d_frac = fractions[t - 1] - fractions[t - 2]
        k = t - 1 - instrument_lag
        z = fractions[k] - fractions[k - 1]
        num += z * d_grid
        den += z * d_frac
    return num / den if den else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default="low_surplus", choices=sorted(SCENARIOS))
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"{args.scenario}, cold start, 1 s readings one late, linear; ratings as a share "
          "of the true one; loss in Wh over the first 10 minutes.\n")
    print("| seed | heater | usable moves | learned | least squares, all pairs | "
          "instrument 1 back | instrument 2 back | loss ours | loss, rating right |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cold = dict(delay=1, dt_s=1.0, count_s=600.0, duration_s=900.0)
    for seed in range(1, args.seeds + 1):
        for factor in (0.7, 1.3):
            readings, fractions, true_w, ours = _closed_loop(args.scenario, factor, seed)
            learned = ours.ctl.rating_learned_w / true_w
            fits = [regressed(readings, fractions, lag) / true_w for lag in (0, 1, 2)]
            loss = control.run(args.scenario, "linear", "ours", seed=seed,
                               rating_error=factor, **cold).loss_wh
            right = dataclasses.replace(control.default_params(),
                                        rating_w=control.RATING_W * factor)
            loss_right = control.run(args.scenario, "linear", "ours", seed=seed,
                                     rating_error=factor, params=right, **cold).loss_wh
            print(f"| {seed} | {factor:g}x | {ours.ctl.estimator.observations} | "
                  f"{learned:.3f} | {fits[0]:.2f} | {fits[1]:.2f} | {fits[2]:.2f} | "
                  f"{loss:.3f} | {loss_right:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
