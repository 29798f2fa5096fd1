"""The home battery in the grid reading: battery first (divert only what the grid exports)
or heater first above a state of charge (the battery's charging power above a reserve counts
as surplus). Discharge always counts as import, so the heater never drains the battery.

Who moves first, beside a battery inverter that also regulates to zero (bench/battery.py):
- heater first: we control on ``grid - charge``; the inverter moves power between those two
  terms only, so its moves cancel out of our input, and it follows our heater as one more
  load. Nothing to fight over.
- battery first: we react to export faster than most inverters, so on every cloud edge the
  heater would grab surplus the battery was about to take, and a battery content at 0 W
  never takes it back. While the battery charges, ``give_back_w`` therefore counts as
  import: the heater yields to the battery until the battery stops taking more (full, or
  at its power limit, when the export that remains is the heater's again)."""

from __future__ import annotations

from dataclasses import dataclass

POLICIES = ("battery_first", "heater_first")


@dataclass(frozen=True, slots=True)
class BatteryPolicy:
    policy: str = "battery_first"
    heater_first_above_soc_pct: float = 80.0
    charge_reserve_w: float = 0.0
    soc_hysteresis_pct: float = 2.0
    give_back_w: float = 50.0


class BatteryView:
    """Turns (grid, battery power, state of charge) into the grid power the controller sees.
    Holds only the SoC hysteresis, so a SoC wobbling at the threshold does not toggle."""

    def __init__(self, policy: BatteryPolicy):
        self.policy = policy
        self.heater_first = False

    def control_grid_w(self, grid_w: float, battery_w: float | None,
                       soc_pct: float | None) -> float:
        """``battery_w`` + = charging; None = no (fresh) battery data: the grid alone."""
        if battery_w is None:
            return grid_w
        p = self.policy
        discharge_w = max(0.0, -battery_w)
        if p.policy == "heater_first" and soc_pct is not None:
            if soc_pct >= p.heater_first_above_soc_pct:
                self.heater_first = True
            elif soc_pct < p.heater_first_above_soc_pct - p.soc_hysteresis_pct:
                self.heater_first = False
        else:
            self.heater_first = False  # no SoC (or battery first): never take its charge
        if self.heater_first:
            return grid_w - max(0.0, battery_w - p.charge_reserve_w) + discharge_w
        yield_w = p.give_back_w if battery_w > p.give_back_w else 0.0
        return grid_w + discharge_w + yield_w
