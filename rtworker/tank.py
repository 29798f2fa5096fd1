"""The tank limit, pure (``now`` is the worker's monotonic clock): no heating at or above
max_c until the tank falls below max_c - hysteresis_c, and, when a sensor is configured, no
heating without a temperature younger than sensor_timeout_s. It holds the load off in every
mode (boost and guarantee included); the hot-water process only feeds it readings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TankLimits:
    sensor: bool = False          # a sensor is configured: no temperature means no heating
    max_c: float = 60.0
    hysteresis_c: float = 3.0
    timeout_s: float = 120.0


def limits_from_config(cfg: Any) -> TankLimits:
    t = cfg.tank
    return TankLimits(bool(t.sensor), t.max_c, t.hysteresis_c, t.sensor_timeout_s)


class TankLimit:
    """``held(now)`` -> why heating is held ("" when it is not)."""

    def __init__(self, limits: TankLimits):
        self.limits = limits
        self.tank_c: float | None = None
        self.measured_at = 0.0  # worker clock of the newest temperature's measurement
        self.error = ""
        self.hot = False

    def reading(self, tank_c: float | None, age_s: float, error: str, now: float) -> None:
        """A temperature measured ``age_s`` ago, or None with the sensor's error."""
        if tank_c is not None:
            if not -55.0 <= tank_c <= 125.0:
                raise ValueError(f"tank_c {tank_c!r} is not a water temperature")
            self.tank_c, self.measured_at = float(tank_c), now - max(0.0, age_s)
        self.error = error

    def held(self, now: float) -> str:
        lim = self.limits
        if not lim.sensor:
            return ""
        why = f" ({self.error})" if self.error else ""
        if self.tank_c is None:
            return f"no tank temperature yet{why}"
        age = now - self.measured_at
        if age > lim.timeout_s:
            return f"no tank temperature for {age:.0f} s{why}"
        if self.tank_c >= lim.max_c:
            self.hot = True
        elif self.tank_c < lim.max_c - lim.hysteresis_c:
            self.hot = False
        if self.hot:
            return (f"tank at {self.tank_c:.1f} °C (max_c {lim.max_c:g}; heating again below "
                    f"{lim.max_c - lim.hysteresis_c:g} °C)")
        return ""

    def age_s(self, now: float) -> float | None:
        return None if self.tank_c is None else now - self.measured_at
