"""The home battery beside the diverter, on the house simulator: a battery inverter that
regulates the grid to zero (its own meter, a lag, power and capacity limits) and our
controller fed by the ingest's battery policy (ingest/battery.py), for battery_first and
heater_first (above 80 % SoC, 200 W reserve). Prints energies, the state of charge, and how
much the two regulators fight (battery power reversals, grid spread).

Run: .venv/bin/python bench/battery.py [--minutes 120] [--seed 1]"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not bench/: bench/ingest.py would shadow the ingest package

from vzdivert.config import validate  # noqa: E402
from vzdivert.ingest.battery import BatteryPolicy, BatteryView  # noqa: E402
from vzdivert.plant import SCENARIOS, House  # noqa: E402
from vzdivert.rtworker.controller import Controller, params_from_config  # noqa: E402

CLOUDS = replace(SCENARIOS["cloud_ramps"], name="battery_day", duration_s=None, pv_w=3500,
                 base_w=450, cloud_gap_s=300, rating_error=1.0)
STEADY = replace(CLOUDS, name="battery_steady", cloud_gap_s=0.0)


@dataclass
class Battery:
    """An AC battery inverter that regulates its own grid reading to zero: each second it
    moves ``gain`` of the way (a real one settles in a few seconds), within its limits."""

    capacity_wh: float = 5000.0
    soc_pct: float = 50.0
    max_w: float = 3000.0
    gain: float = 0.5
    power_w: float = 0.0  # + = charging

    def step(self, grid_w: float, dt_s: float) -> None:
        want = self.power_w - self.gain * grid_w  # export (grid < 0) -> charge more
        if self.soc_pct >= 100.0:
            want = min(want, 0.0)
        if self.soc_pct <= 5.0:
            want = max(want, 0.0)
        self.power_w = max(-self.max_w, min(self.max_w, want))
        self.soc_pct += self.power_w * dt_s / 3600.0 / self.capacity_wh * 100.0
        self.soc_pct = max(0.0, min(100.0, self.soc_pct))


def run(policy: BatteryPolicy | None, minutes: float, seed: int,
        scenario=CLOUDS) -> dict[str, float]:
    """One policy (None: no diverter, the baseline for the battery's own movement)."""
    cfg = validate({"load": {"rating_w": 2000}})
    house = House(scenario, seed=seed, dt_s=1.0, actuator="linear", rating_w=2000)
    controller, battery = Controller(params_from_config(cfg)), Battery()
    view = BatteryView(policy or BatteryPolicy())
    out = {"heater_kwh": 0.0, "charge_kwh": 0.0, "export_kwh": 0.0, "import_kwh": 0.0,
           "soc80_min": float("nan")}
    duty, powers, grids = 0.0, [], []
    for k in range(int(minutes * 60)):
        grid_w = house.step(duty) + battery.power_w  # what the grid meter shows
        control_w = view.control_grid_w(grid_w, battery.power_w, battery.soc_pct)
        duty = controller.step(control_w, 1.0) if policy is not None else 0.0
        battery.step(grid_w, 1.0)
        out["heater_kwh"] += house.heater_w / 3.6e6
        out["charge_kwh"] += max(0.0, battery.power_w) / 3.6e6
        out["export_kwh"] += max(0.0, -grid_w) / 3.6e6
        out["import_kwh"] += max(0.0, grid_w) / 3.6e6
        if battery.soc_pct >= 80 and out["soc80_min"] != out["soc80_min"]:
            out["soc80_min"] = k / 60
        powers.append(battery.power_w)
        grids.append(grid_w)
    steps = [b - a for a, b in zip(powers, powers[1:], strict=False) if abs(b - a) > 20]
    reversals = sum(1 for a, b in zip(steps, steps[1:], strict=False) if a * b < 0)
    out.update(soc_end=battery.soc_pct, reversals_per_min=reversals / minutes,
               grid_sd_w=statistics.pstdev(grids))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=120)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{args.minutes:g} min of 3.5 kW PV, 450 W household, 2 kW heater, 5 kWh battery "
          f"from 50 % (3 kW, regulating to 0 W), seed {args.seed}; energies in kWh")
    for title, scenario in (("with clouds", CLOUDS), ("steady sun", STEADY)):
        print(f"\n{title}")
        table(scenario, args.minutes, args.seed)
    return 0


def table(scenario, minutes: float, seed: int) -> None:
    print(f"{'policy':<36} {'heater':>7} {'charge':>7} {'export':>7} {'import':>7} "
          f"{'SoC end':>8} {'80% at':>7} {'bat rev/min':>11} {'grid sd W':>9}")
    for name, policy in (
            ("no diverter (baseline)", None),
            ("battery_first", BatteryPolicy("battery_first")),
            ("heater_first >= 80 %, 200 W reserve", BatteryPolicy("heater_first", 80, 200)),
            ("heater_first >= 0 % (always)", BatteryPolicy("heater_first", 0, 0))):
        r = run(policy, minutes, seed, scenario)
        print(f"{name:<36} {r['heater_kwh']:7.2f} {r['charge_kwh']:7.2f} {r['export_kwh']:7.2f} "
              f"{r['import_kwh']:7.2f} {r['soc_end']:7.1f}% {r['soc80_min']:6.0f}m "
              f"{r['reversals_per_min']:11.2f} {r['grid_sd_w']:9.0f}")


if __name__ == "__main__":
    raise SystemExit(main())
