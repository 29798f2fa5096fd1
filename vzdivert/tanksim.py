"""The hot-water tank of the plant simulator: a mixed tank with standing losses, hot-water
draws (morning and evening profiles), the heater's own thermostat and a DS18B20-like sensor.
Pure and deterministic for a seed; used by bench/hotwater.py, the tests and the demo."""

from __future__ import annotations

import random
from dataclasses import dataclass

from vzdivert.guarantee import WH_PER_L_K


@dataclass(frozen=True)
class TankSpec:
    volume_l: float = 200.0
    start_c: float = 45.0
    ambient_c: float = 20.0
    cold_c: float = 10.0               # mains water replacing what is drawn
    loss_w_per_k: float = 1.6          # ~1.5 kWh a day at 60 °C in a 20 °C room
    thermostat_c: float = 65.0         # the heater's own thermostat opens here ...
    thermostat_band_k: float = 5.0     # ... and closes this much lower
    # (start hour, minutes, litres per day at that hour): a shower morning, an evening bath
    draws: tuple[tuple[float, float, float], ...] = ((6.75, 20, 60.0), (19.5, 40, 80.0))
    draw_spread: float = 0.3           # day-to-day variation of the litres (fraction)
    sensor_noise_c: float = 0.05
    sensor_step_c: float = 0.0625      # DS18B20 12-bit resolution


# the demo's tank: small, so heating and the max_c hold show within minutes; a 15 L draw at
# the start of every hour
DEMO_TANK = TankSpec(volume_l=50.0, start_c=50.0,
                     draws=tuple((float(h), 10.0, 15.0) for h in range(24)), draw_spread=0.0)
DEMO_W1_DEVICE = "28-00000000d3e0"


def w1_slave_text(temp_c: float) -> str:
    """What the kernel's w1_slave file shows for a DS18B20 reading (CRC checked: YES)."""
    milli = round(temp_c * 16) * 1000 // 16
    raw = round(temp_c * 16) & 0xFFFF
    regs = f"{raw & 0xFF:02x} {raw >> 8:02x} 4b 46 7f ff 0c 10 1c"
    return f"{regs} : crc=1c YES\n{regs} t={milli}\n"


class Tank:
    """``step(dt_s, heater_w, hour)`` runs the tank for dt_s with the heater offered
    heater_w and returns the power the heater really drew (0 while its thermostat is open)."""

    def __init__(self, spec: TankSpec = TankSpec(), seed: int = 0):
        self.spec = spec
        self.temp_c = spec.start_c
        self.thermostat_closed = True
        self.seed = seed
        self.rng = random.Random(f"{seed}:sensor")
        self.day = -1
        self.today_l: list[float] = []
        self.drawn_l = 0.0

    @property
    def wh_per_k(self) -> float:
        return self.spec.volume_l * WH_PER_L_K

    def _litres(self, day: int) -> list[float]:
        if day != self.day:
            self.day = day
            s, rng = self.spec.draw_spread, random.Random(f"{self.seed}:draws:{day}")
            self.today_l = [litres * rng.uniform(1 - s, 1 + s)
                            for _, _, litres in self.spec.draws]
        return self.today_l

    def draw_lpm(self, day: int, hour: float) -> float:
        """Litres per minute drawn at this time of day."""
        total = 0.0
        for (start_h, minutes, _), litres in zip(self.spec.draws, self._litres(day),
                                                 strict=True):
            if start_h <= hour < start_h + minutes / 60.0:
                total += litres / minutes
        return total

    def step(self, dt_s: float, heater_w: float, day: int, hour: float) -> float:
        sp = self.spec
        if self.temp_c >= sp.thermostat_c:
            self.thermostat_closed = False
        elif self.temp_c <= sp.thermostat_c - sp.thermostat_band_k:
            self.thermostat_closed = True
        drawn = heater_w if self.thermostat_closed else 0.0
        loss_w = sp.loss_w_per_k * (self.temp_c - sp.ambient_c)
        self.temp_c += (drawn - loss_w) * dt_s / 3600.0 / self.wh_per_k
        litres = min(self.draw_lpm(day, hour) * dt_s / 60.0, sp.volume_l)
        if litres > 0:
            self.drawn_l += litres
            self.temp_c += (sp.cold_c - self.temp_c) * litres / sp.volume_l
        return drawn

    def sensor_c(self) -> float:
        """What a DS18B20 at the tank would report."""
        sp = self.spec
        value = self.temp_c + self.rng.gauss(0.0, sp.sensor_noise_c)
        return round(value / sp.sensor_step_c) * sp.sensor_step_c
