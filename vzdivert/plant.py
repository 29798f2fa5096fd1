"""The house simulator (the plant) for the demo, the tests and bench/control.py: PV with
clouds, a household with noise and appliances, a heater with a thermostat behind a
phase-fired or linear actuator, and a meter that averages and reports late. Pure and
deterministic for a seed; the house runs on a fixed 50 ms grid whatever the meter interval,
so the same seed gives the same weather and appliances at 0.25 s, 1 s or 4 s."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

SUBSTEP_S = 0.05


@dataclass(frozen=True)
class Scenario:
    """One simulated situation. Powers in W, times in s; 0 switches a feature off."""

    name: str
    description: str
    duration_s: float | None = 900.0  # None: runs for ever (the demo)
    pv_w: float = 2500.0              # PV output under a clear sky
    pv_swing_w: float = 0.0           # slow sinusoidal change of the clear-sky PV ...
    pv_swing_period_s: float = 3600.0  # ... with this period
    pv_flicker_w: float = 0.0         # fast PV noise (standard deviation)
    cloud_gap_s: float = 0.0          # mean clear time between clouds; 0 = no clouds
    cloud_len_s: float = 40.0         # mean time a cloud stays
    cloud_depth: tuple[float, float] = (0.4, 0.8)  # fraction of PV a cloud takes away
    cloud_ramp_s: tuple[float, float] = (3.0, 20.0)  # how long a cloud edge takes
    cloud_texture: float = 0.12       # a cloud's shade wanders by this (std dev, of its depth)
    base_w: float = 300.0             # household base load
    base_noise_w: float = 0.0         # household noise (Ornstein-Uhlenbeck, std dev) ...
    base_noise_tau_s: float = 3.0     # ... with this correlation time
    steps: tuple[tuple[float, float], ...] = ()  # (t_s, load_w): load level from t on
    steps_repeat_s: float = 0.0       # repeat the step pattern with this period
    fridge_w: float = 0.0             # compressor power ...
    fridge_on_s: float = 300.0        # ... runs this long ...
    fridge_off_s: float = 600.0       # ... then rests this long
    fridge_start_w: float = 500.0     # inrush for the first half second
    kettle_w: float = 0.0             # kettle (or any big appliance) power ...
    kettle_gap_s: float = 300.0       # ... switched on after this mean gap ...
    kettle_len_s: tuple[float, float] = (60.0, 180.0)  # ... for this long
    thermostat_closed_s: float = 0.0  # heater thermostat cycle; 0 = never opens
    thermostat_open_s: float = 60.0
    rating_error: float = 1.0         # true heater rating / configured rating
    mains_swing: float = 0.0          # mains voltage drifts sinusoidally by this fraction ...
    mains_period_s: float = 3600.0    # ... over this period (power goes with its square)
    meter_noise_w: float = 1.0        # meter resolution and noise (std dev)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("load_steps", "Load steps of 0.4-1.4 kW every 30 s, also into import; quiet "
             "otherwise", pv_w=2600, base_w=300, base_noise_w=5,
             steps=((0, 0), (30, 700), (60, 1400), (90, 400), (120, 0), (150, 1200),
                    (180, 2600), (210, 600), (240, 0)), steps_repeat_s=270),
    Scenario("cloud_ramps", "Clouds taking 40-80 % of 3.2 kW PV with 3-20 s edges; true "
             "rating 6 % below the configured one", pv_w=3200, pv_flicker_w=10,
             cloud_gap_s=50, cloud_len_s=35, base_w=500, base_noise_w=10, rating_error=0.94),
    Scenario("household", "Household noise (40 W), fridge with inrush, kettle 2 kW; steady "
             "PV", pv_w=2400, pv_flicker_w=5, base_w=350, base_noise_w=40,
             base_noise_tau_s=2, fridge_w=110, fridge_on_s=180, fridge_off_s=240,
             kettle_w=2000, kettle_gap_s=150, kettle_len_s=(40, 120)),
    Scenario("thermostat", "Heater thermostat opens for ~40 s every ~90 s; true rating 5 % "
             "above the configured one", pv_w=2100, pv_flicker_w=5, base_w=300,
             base_noise_w=15, thermostat_closed_s=90, thermostat_open_s=40,
             rating_error=1.05),
    Scenario("low_surplus", "Surplus around zero: 0.9 kW PV with clouds against a noisy "
             "0.6 kW household", pv_w=900, pv_flicker_w=5, cloud_gap_s=60, cloud_len_s=40,
             cloud_depth=(0.3, 0.6), base_w=600, base_noise_w=30),
    Scenario("demo_day", "A lively day for the demo: clouds, household noise, fridge, "
             "kettle, a thermostat that opens now and then; runs for ever", duration_s=None,
             pv_w=2900, pv_swing_w=600, pv_swing_period_s=1800, pv_flicker_w=8,
             cloud_gap_s=90, cloud_len_s=45, base_w=350, base_noise_w=25, fridge_w=110,
             fridge_on_s=240, fridge_off_s=420, kettle_w=2000, kettle_gap_s=240,
             kettle_len_s=(45, 150), thermostat_closed_s=600, thermostat_open_s=90),
)}


ACTUATORS = ("pfc", "linear", "pfc_span", "pfc_kemo")


def actuator_fraction(actuator: str, duty: float) -> float:
    """True power fraction of the actuator at a duty: `pfc` fires at angle pi*(1-duty)
    (domain §3), `linear` is an SSR with burst firing. Two modules that do not follow the
    pfc model, for the curve-correction bench: `pfc_span` is a pfc module whose input spans
    only 10-90 % of the duty (a 1-9 V input on a 0-10 V module: nothing below, full above),
    `pfc_kemo` fires as the original project's hand-tuned Kemo curve says (acos mapping,
    exponents 0.67 and 0.88)."""
    d = 0.0 if duty <= 0.0 else 1.0 if duty >= 1.0 else duty
    if actuator == "linear":
        return d
    if actuator == "pfc_span":
        d = min(1.0, max(0.0, (d - 0.1) / 0.8))
    elif actuator == "pfc_kemo":
        x = 1.0 - (1.0 - d ** (1.0 / 0.88)) ** (1.0 / 0.67)
        return (1.0 - math.cos(math.pi * x)) / 2.0
    return max(0.0, min(1.0, d - math.sin(2.0 * math.pi * d) / (2.0 * math.pi)))


@dataclass(frozen=True)
class RelayLoad:
    """A load on a relay (a second heating element, a heat pump's SG-ready contact): draws
    ``rating_w`` while on, unless its own thermostat is open (0 = it never opens)."""

    rating_w: float
    thermostat_closed_s: float = 0.0
    thermostat_open_s: float = 60.0


@dataclass
class Tally:
    """Energy over the run, at the 50 ms resolution (Wh)."""

    exported_wh: float = 0.0       # export the heater could have absorbed (it had headroom)
    caused_import_wh: float = 0.0  # import that would not have happened with the heater off
    diverted_wh: float = 0.0       # energy into the heater
    ideal_wh: float = 0.0          # what a perfect diverter would have put into the heater

    @property
    def loss_wh(self) -> float:
        return self.exported_wh + self.caused_import_wh


@dataclass
class _Window:
    """The meter's view of a quantity: mean over one interval, `lag` substeps ago."""

    n_win: int
    n_lag: int
    buf: deque = field(default_factory=deque)

    def push(self, value: float) -> None:
        self.buf.append(value)
        if len(self.buf) > self.n_win + self.n_lag:
            self.buf.popleft()

    def mean(self) -> float:
        vals = list(self.buf)[: self.n_win]
        return sum(vals) / len(vals)


class House:
    """grid = household + heater - PV (positive = import). `step(duty)` holds the duty for
    one meter interval and returns what the meter then reports."""

    def __init__(self, scenario: str | Scenario, seed: int = 0, dt_s: float = 1.0,
                 meter_delay_samples: float = 1.0, actuator: str = "pfc",
                 rating_w: float = 2000.0, rating_error: float | None = None,
                 relays: tuple[RelayLoad, ...] = ()):
        self.scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
        if actuator not in ACTUATORS:
            raise ValueError(f"actuator must be one of {', '.join(ACTUATORS)}, got "
                             f"{actuator!r}")
        if not 0.05 <= dt_s <= 60:
            raise ValueError(f"dt_s must be within 0.05..60 s, got {dt_s}")
        sc = self.scenario
        self.dt_s, self.actuator = dt_s, actuator
        self.rating_w = rating_w
        self.true_rating_w = rating_w * (sc.rating_error if rating_error is None else rating_error)
        self.substeps = max(1, round(dt_s / SUBSTEP_S))
        lag = max(0, round(meter_delay_samples * dt_s / SUBSTEP_S))
        self._grid = _Window(self.substeps, lag)
        self._surplus = _Window(self.substeps, lag)
        self._cap = _Window(self.substeps, lag)
        # one generator per component, so adding a kettle does not move the clouds
        self._rng = {k: random.Random(f"{seed}:{k}") for k in
                     ("cloud", "pv", "base", "kettle", "thermo", "meter", "fridge", "relays")}
        self.t_s = 0.0
        self.events_s: list[float] = []  # when a step, kettle or thermostat changed things
        self.tally = Tally()
        self.duty = 0.0
        self.heater_w = 0.0
        self.thermostat_closed = True
        self.relays = relays
        self.relays_on = [False] * len(relays)
        self.relay_closed = [True] * len(relays)  # each relay load's own thermostat
        self.relay_switches = 0
        self._relay_next = [self._jitter("relays", r.thermostat_closed_s)
                            if r.thermostat_closed_s else math.inf for r in relays]
        self._cloud_f = self._cloud_base = self._cloud_to = 1.0
        self._edge_t0, self._edge_s, self._edge_from, self._texture = 0.0, 1.0, 1.0, 0.0
        self._cloud_next = self._rng["cloud"].expovariate(1 / sc.cloud_gap_s) \
            if sc.cloud_gap_s else math.inf
        self._noise = 0.0
        self._kettle_on = False
        self._kettle_next = self._rng["kettle"].expovariate(1 / sc.kettle_gap_s) \
            if sc.kettle_w else math.inf
        self._fridge_phase = self._rng["fridge"].uniform(0, sc.fridge_on_s + sc.fridge_off_s)
        self._thermo_next = self._jitter("thermo", sc.thermostat_closed_s) \
            if sc.thermostat_closed_s else math.inf
        self._step_level = self._steps_level(0.0)
        self._surplus_now = self._pv() - self._base()
        cap0 = self.true_rating_w + sum(r.rating_w for r in relays)
        for _ in range(self.substeps + lag):  # a steady past with the heater off
            self._grid.push(-self._surplus_now)
            self._surplus.push(self._surplus_now)
            self._cap.push(cap0)

    # -- public ------------------------------------------------------------------------
    def step(self, duty: float, relays_on: tuple[bool, ...] | list[bool] = ()) -> float:
        """Run one meter interval at `duty` (0..1) with the relay loads switched as in
        `relays_on`; return the meter's reading (W). Loads are all loads together: the
        tally's capacity is what every load could draw."""
        self.duty = 0.0 if duty <= 0.0 else 1.0 if duty >= 1.0 else duty
        rating_w = self.rating_now_w
        heater_full_w = rating_w * actuator_fraction(self.actuator, self.duty)
        for i, on in enumerate(relays_on):
            if bool(on) != self.relays_on[i]:
                self.relays_on[i] = bool(on)
                self.relay_switches += 1
        h_wh = SUBSTEP_S / 3600.0
        tally = self.tally
        for _ in range(self.substeps):
            self._advance()
            surplus = self._surplus_now
            cap = rating_w if self.thermostat_closed else 0.0
            heater = heater_full_w if self.thermostat_closed else 0.0
            for i, relay in enumerate(self.relays):
                if self.relay_closed[i]:
                    cap += relay.rating_w
                    heater += relay.rating_w if self.relays_on[i] else 0.0
            grid = heater - surplus
            grid_off = -surplus
            tally.exported_wh += min(max(0.0, -grid), cap - heater) * h_wh
            tally.caused_import_wh += (max(0.0, grid) - max(0.0, grid_off)) * h_wh
            tally.diverted_wh += heater * h_wh
            tally.ideal_wh += min(max(0.0, surplus), cap) * h_wh
            self.heater_w = heater
            self._grid.push(grid)
            self._surplus.push(surplus)
            self._cap.push(cap)
        noise = self._rng["meter"].gauss(0.0, self.scenario.meter_noise_w)
        return self._grid.mean() + noise

    @property
    def finished(self) -> bool:
        d = self.scenario.duration_s
        return d is not None and self.t_s >= d - 1e-9

    @property
    def surplus_w(self) -> float:
        """True surplus (PV - household) over the interval the last reading covers."""
        return self._surplus.mean()

    @property
    def capacity_w(self) -> float:
        """What the heater could draw (0 while its thermostat is open), same interval."""
        return self._cap.mean()

    @property
    def rating_now_w(self) -> float:
        """What the heater draws at full output now (the mains voltage may drift)."""
        sc = self.scenario
        if not sc.mains_swing:
            return self.true_rating_w
        v = 1.0 + sc.mains_swing * math.sin(2 * math.pi * self.t_s / sc.mains_period_s)
        return self.true_rating_w * v * v

    def weather_now(self) -> tuple[float, bool, bool]:
        """The present weather, for the bench's causal yardstick (which knows the present
        but not the future): the shade a cloud casts now without its texture (0: clear
        sky), whether a cloud is coming or there (False once its leaving edge began), and
        whether the kettle is on."""
        return 1.0 - self._cloud_base, self._cloud_to < 1.0, self._kettle_on

    def available_w(self) -> tuple[float, list[float]]:
        """What the PWM heater and each relay load could draw right now (0: thermostat
        open), for the oracle."""
        return (self.rating_now_w if self.thermostat_closed else 0.0,
                [r.rating_w if closed else 0.0 for r, closed in zip(self.relays,
                                                                     self.relay_closed,
                                                                     strict=True)])

    def duty_for(self, power_w: float) -> float:
        """The duty at which this heater really draws `power_w` (for the oracle)."""
        frac = max(0.0, min(1.0, power_w / self.rating_now_w))
        if self.actuator == "linear":
            return frac
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            if actuator_fraction(self.actuator, mid) < frac:
                lo = mid
            else:
                hi = mid
        return hi

    # -- the world ---------------------------------------------------------------------
    def _jitter(self, rng: str, mean_s: float) -> float:
        return self.t_s + mean_s * self._rng[rng].uniform(0.7, 1.3)

    def _steps_level(self, t: float) -> float:
        sc = self.scenario
        if not sc.steps:
            return 0.0
        if sc.steps_repeat_s:
            t = t % sc.steps_repeat_s
        level = 0.0
        for t0, w in sc.steps:
            if t >= t0:
                level = w
        return level

    def _pv(self) -> float:
        sc = self.scenario
        pv = sc.pv_w
        if sc.pv_swing_w:
            pv += sc.pv_swing_w * math.sin(2 * math.pi * self.t_s / sc.pv_swing_period_s)
        if sc.pv_flicker_w:
            pv += self._rng["pv"].gauss(0.0, sc.pv_flicker_w)
        return max(0.0, pv * self._cloud_f)

    def _base(self) -> float:
        sc = self.scenario
        load = sc.base_w + self._noise + self._step_level
        if sc.fridge_w:
            period = sc.fridge_on_s + sc.fridge_off_s
            phase = (self.t_s + self._fridge_phase) % period
            if phase < sc.fridge_on_s:
                load += sc.fridge_w + (sc.fridge_start_w if phase < 0.5 else 0.0)
        if self._kettle_on:
            load += sc.kettle_w
        return max(0.0, load)

    def _advance(self) -> None:
        sc = self.scenario
        h = SUBSTEP_S
        self.t_s = t = self.t_s + h
        if t >= self._cloud_next:  # a cloud edge begins: S-shaped, of random length
            rng = self._rng["cloud"]
            self._edge_s = rng.uniform(*sc.cloud_ramp_s)
            self._edge_t0, self._edge_from = t, self._cloud_base
            if self._cloud_to >= 1.0:
                self._cloud_to = 1.0 - rng.uniform(*sc.cloud_depth)
                self._cloud_next = t + self._edge_s + rng.expovariate(1 / sc.cloud_len_s)
            else:
                self._cloud_to = 1.0
                self._cloud_next = t + self._edge_s + rng.expovariate(1 / sc.cloud_gap_s)
        x = (t - self._edge_t0) / self._edge_s
        self._cloud_base = self._cloud_to if x >= 1.0 else self._edge_from + (
            self._cloud_to - self._edge_from) * (1 - math.cos(math.pi * x)) / 2
        if sc.cloud_gap_s and sc.cloud_texture:  # a cloud's shade wanders while it is there
            a = h / 4.0
            self._texture += -self._texture * a + sc.cloud_texture * math.sqrt(2 * a) * \
                self._rng["cloud"].gauss(0.0, 1.0)
        self._cloud_f = min(1.0, max(0.0, self._cloud_base
                                     + (1.0 - self._cloud_base) * self._texture))
        if sc.base_noise_w:  # Ornstein-Uhlenbeck: correlated household noise
            a = h / sc.base_noise_tau_s
            self._noise += -self._noise * a + sc.base_noise_w * math.sqrt(2 * a) * \
                self._rng["base"].gauss(0.0, 1.0)
        level = self._steps_level(t)
        if level != self._step_level:
            self._step_level = level
            self.events_s.append(t)
        if t >= self._kettle_next:
            rng = self._rng["kettle"]
            self._kettle_on = not self._kettle_on
            self._kettle_next = t + (rng.uniform(*sc.kettle_len_s) if self._kettle_on
                                     else rng.expovariate(1 / sc.kettle_gap_s))
            self.events_s.append(t)
        if t >= self._thermo_next:
            self.thermostat_closed = not self.thermostat_closed
            self._thermo_next = self._jitter("thermo", sc.thermostat_closed_s
                                             if self.thermostat_closed else sc.thermostat_open_s)
            self.events_s.append(t)
        for i, relay in enumerate(self.relays):
            if t >= self._relay_next[i]:
                closed = self.relay_closed[i] = not self.relay_closed[i]
                self._relay_next[i] = self._jitter(
                    "relays", relay.thermostat_closed_s if closed else relay.thermostat_open_s)
                self.events_s.append(t)
        self._surplus_now = self._pv() - self._base()
