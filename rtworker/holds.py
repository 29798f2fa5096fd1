"""The worker's hot-water holds, pure (no clock, no I/O; ``now`` is the worker's monotonic
time): a mode command (boost, pause, guarantee top-up) that expires by itself unless the
hot-water process refreshes it, and the tank limit (max_c with hysteresis, and "no
temperature" when a sensor is configured). Stale data outrank all of this in the worker."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("auto", "boost", "pause", "topup")
HOLD_MAX_S = 60.0  # a mode command lasts at most this long without a refresh
BOOST_TARGET_W = 1e6  # full-power boost/top-up: the controller is told import is welcome


@dataclass(frozen=True)
class TankLimits:
    sensor: bool = False          # a sensor is configured: no temperature means no heating
    max_c: float = 60.0
    hysteresis_c: float = 3.0
    timeout_s: float = 120.0


def limits_from_config(cfg: object) -> TankLimits:
    t = cfg.tank  # type: ignore[attr-defined]
    return TankLimits(bool(t.sensor), t.max_c, t.hysteresis_c, t.sensor_timeout_s)


class Holds:
    """``decide(now)`` -> (mode, power_w, held): the mode in force (expired -> auto), its
    power for a boost (0 = full power through the controller), and why heating is held
    ("" when it is not). A held load gets 0 in every mode."""

    def __init__(self, limits: TankLimits):
        self.limits = limits
        self.mode, self.power_w, self.until = "auto", 0.0, 0.0
        self.tank_c: float | None = None
        self.tank_at = -1e18  # when the newest temperature was measured (worker clock)
        self.tank_error = ""
        self.hot = False

    def command(self, mode: str, power_w: float, hold_s: float, now: float) -> None:
        """Set a mode for hold_s (at most HOLD_MAX_S); raises ValueError on nonsense."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0.0 <= power_w <= 1e6 or not 0.0 <= hold_s <= HOLD_MAX_S:
            raise ValueError(f"power_w must be >= 0 and hold_s 0..{HOLD_MAX_S:g}")
        self.mode, self.power_w, self.until = mode, power_w, now + hold_s

    def temperature(self, tank_c: float | None, age_s: float, error: str, now: float) -> None:
        """A reading from the hot-water process (``age_s`` old), or None with the error."""
        if tank_c is not None:
            self.tank_c, self.tank_at = float(tank_c), now - max(0.0, age_s)
        self.tank_error = error

    def decide(self, now: float) -> tuple[str, float, str]:
        if self.mode != "auto" and now >= self.until:
            self.mode, self.power_w = "auto", 0.0
        return self.mode, self.power_w, self.held(now)

    def held(self, now: float) -> str:
        lim = self.limits
        if not lim.sensor:
            return ""
        age = now - self.tank_at
        if self.tank_c is None or age > lim.timeout_s:
            why = f": {self.tank_error}" if self.tank_error else ""
            return (f"no tank temperature for {lim.timeout_s:g} s{why}" if self.tank_c is None
                    else f"no tank temperature for {age:.0f} s{why}")
        if self.tank_c >= lim.max_c:
            self.hot = True
        elif self.tank_c < lim.max_c - lim.hysteresis_c:
            self.hot = False
        if self.hot:
            return (f"tank at {self.tank_c:.1f} °C: max_c {lim.max_c:g}, heating again below "
                    f"{lim.max_c - lim.hysteresis_c:g}")
        return ""

    def tank_age_s(self, now: float) -> float | None:
        return None if self.tank_c is None else now - self.tank_at
