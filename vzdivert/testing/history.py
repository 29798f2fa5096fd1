"""Synthetic history for tests and benchmarks: a plausible day of PV surplus per minute."""

from __future__ import annotations

import math
from collections.abc import Iterator

from vzdivert.history.minutes import Minute


def synthetic_minutes(start_ts: int, count: int, rating_w: float = 2000.0,
                      loads: tuple[str, ...] = ()) -> Iterator[Minute]:
    """``count`` full minutes from ``start_ts`` (a minute start): import at night, export
    soaked up by the load around noon (UTC), deterministic."""
    for i in range(count):
        ts = start_ts + 60 * i
        hour = (ts % 86400) / 3600.0
        sun = max(0.0, math.sin((hour - 6.0) / 12.0 * math.pi))
        surplus_w = 3000.0 * sun - 400.0
        power_w = min(max(surplus_w, 0.0), rating_w)
        grid_w = power_w - surplus_w
        extras = {f"load.{name}.wh": power_w / 60.0 / len(loads) for name in loads}
        yield Minute(ts, grid_w, power_w, power_w / rating_w,
                     max(grid_w, 0.0) / 60.0, max(-grid_w, 0.0) / 60.0, power_w / 60.0, 0.0,
                     60.0, extras)
