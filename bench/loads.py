"""Several loads on the house simulator: a PWM heater plus one or two relay stages, driven by
the worker's own core (controller + allocator, on a simulated clock), by a Mk2-style
threshold engine, and by two oracles: one that switches relays freely every second, and one
that honours the same minimum on/off times as ours (dynamic programming with perfect
foresight, bench/relay_plan.py). Prints loss above each oracle, relay switches per hour and
how well a relay thermostat opening while on is seen; then relays that draw other than
configured, with learning on and off; opt-in, a causal yardstick (no foresight, the best
policy for a switch price: bench/causal_plan.py). Run: python bench/control.py --loads
(or python bench/loads.py [--seeds K] [--warm] [--causal])"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from causal_plan import EPOCH_S, Policy, state_of, weather  # noqa: E402
from relay_plan import best_plan  # noqa: E402

from vzdivert.config import validate  # noqa: E402
from vzdivert.output import PWM_NAME, relay_output  # noqa: E402
from vzdivert.plant import House, RelayLoad, Scenario, Tally  # noqa: E402
from vzdivert.rtworker.controller import Controller, params_from_config  # noqa: E402
from vzdivert.rtworker.core import WorkerCore  # noqa: E402
from vzdivert.rtworker.curves import make_curve  # noqa: E402

RATING_W = 2000.0
ACTUATOR = "pfc"
WALL0 = 1_800_000_000.0
HOUR_S = 3600.0
WARM_UP_S = 120.0  # not tallied: every engine starts with its relays off

SCENARIOS: dict[str, tuple[Scenario, tuple[RelayLoad, ...]]] = {
    "midday_5k": (Scenario(
        "midday_5k", "A 5 kW midday surplus (5.8 kW PV swinging +-0.7 kW over the hour), "
        "household noise, fridge, kettle; PWM 2 kW + relays 1 kW and 2 kW",
        duration_s=HOUR_S + WARM_UP_S, pv_w=5800, pv_swing_w=700, pv_swing_period_s=HOUR_S,
        pv_flicker_w=15, base_w=500, base_noise_w=30, fridge_w=110, fridge_on_s=240,
        fridge_off_s=420, kettle_w=2000, kettle_gap_s=900, kettle_len_s=(60, 180)),
        (RelayLoad(1000), RelayLoad(2000))),
    "clouds_5k": (Scenario(
        "clouds_5k", "Clouds taking 30-70 % of 6 kW PV every few minutes, household noise; "
        "PWM 2 kW + relays 1 kW and 2 kW", duration_s=HOUR_S + WARM_UP_S, pv_w=6000,
        pv_flicker_w=15, cloud_gap_s=120, cloud_len_s=60, cloud_depth=(0.3, 0.7), base_w=500,
        base_noise_w=30), (RelayLoad(1000), RelayLoad(2000))),
    "slow_clouds_5k": (Scenario(
        "slow_clouds_5k", "Slow weather: clouds taking 40-80 % of 6 kW PV for ~5 min every "
        "~10 min, household noise; PWM 2 kW + relays 1 kW and 2 kW",
        duration_s=HOUR_S + WARM_UP_S, pv_w=6000, pv_flicker_w=15, cloud_gap_s=600,
        cloud_len_s=300, cloud_depth=(0.4, 0.8), cloud_ramp_s=(20.0, 90.0), base_w=500,
        base_noise_w=30), (RelayLoad(1000), RelayLoad(2000))),
    "relay_thermostat": (Scenario(
        "relay_thermostat", "3.6 kW steady surplus; the 1 kW stage's thermostat opens for "
        "~5 min every ~10 min; PWM 2 kW + relays 1 kW and 2 kW", duration_s=HOUR_S + WARM_UP_S,
        pv_w=4000, pv_flicker_w=10, base_w=400, base_noise_w=20),
        (RelayLoad(1000, thermostat_closed_s=600, thermostat_open_s=300), RelayLoad(2000))),
    "one_relay_clouds": (Scenario(
        "one_relay_clouds", "Clouds on 3.6 kW PV; PWM 2 kW + one 1 kW relay",
        duration_s=HOUR_S + WARM_UP_S, pv_w=3600, pv_flicker_w=10, cloud_gap_s=120, cloud_len_s=60,
        cloud_depth=(0.3, 0.7), base_w=400, base_noise_w=25), (RelayLoad(1000),)),
}
# relays drawing 1.3x and 0.7x what is configured (1000 W and 2000 W): scenario, configured
_CLOUDS = SCENARIOS["clouds_5k"][0]
_MIDDAY = SCENARIOS["midday_5k"][0]
WRONG: dict[str, tuple[Scenario, tuple[RelayLoad, ...]]] = {
    "wrong_clouds": (replace(_CLOUDS, name="wrong_clouds"), (RelayLoad(1300), RelayLoad(1400))),
    "wrong_midday": (replace(_MIDDAY, name="wrong_midday"), (RelayLoad(1300), RelayLoad(1400))),
    "wrong_cycling": (Scenario(
        "wrong_cycling", "5 kW PV; a 4.5 kW appliance (an oven, a heat pump) on for 5 min "
        "every 10 min, household noise, fridge, kettle: the relays switch often",
        duration_s=HOUR_S + WARM_UP_S, pv_w=5000, pv_flicker_w=10, base_w=300,
        base_noise_w=30, steps=((0, 0), (300, 4500)), steps_repeat_s=600, fridge_w=110,
        fridge_on_s=240, fridge_off_s=420, kettle_w=2000, kettle_gap_s=900),
        (RelayLoad(1300), RelayLoad(1400))),
}
CONFIGURED_W = {name: (1000.0, 2000.0) for name in WRONG}
LEARNED_AT_S = 900.0  # the relays' learned ratings are read after this much operation
ENGINES = ("ours", "threshold", "oracle", "oracle_min")
WARM_SEED = 1000  # ours_warm: first an hour of the same weather on seed + this (another day)
MIN_ON_OFF_S = 60.0  # ours: the example's minimum on/off (the threshold engine uses 5 min)


class Ours:
    """The worker's core as it runs in the worker, on the simulator's clock."""

    def __init__(self, relays: tuple[RelayLoad, ...], overrides: dict[str, float],
                 configured_w: tuple[float, ...] | None = None):
        load: dict = {"rating_w": RATING_W, "curve": ACTUATOR}
        load.update({k: v for k, v in overrides.items() if k.startswith("relay_")})
        if "learn_rating" in overrides:
            load["learn_rating"] = bool(overrides["learn_rating"])
        rated = configured_w or tuple(r.rating_w for r in relays)
        cfg = validate({"load": load, "relays": [
            {"name": f"r{i}", "gpio": 20 + i, "rating_w": rated[i],
             "min_on_s": overrides.get("min_on_s", MIN_ON_OFF_S),
             "min_off_s": overrides.get("min_off_s", MIN_ON_OFF_S)}
            for i, r in enumerate(relays)]})
        self.sink = Sink()
        self.core = WorkerCore(cfg, self.sink, 0.0)
        self.core.start(0.0)
        self.names = [relay_output(f"r{i}") for i in range(len(relays))]
        self.relays = relays
        self.drawn_wh = [0.0] * len(relays)  # what each relay's load really took
        self.tests = self.found = 0  # relays switched off to test them; found not drawing
        observe = self.core.allocator.observe

        def counting(surplus_w: float, now: float) -> list[str]:
            confirming = [r._confirm_left for r in self.core.allocator.relays]
            skipped = observe(surplus_w, now)
            self.found += len(skipped)
            self.tests += sum(not c and r._confirm_left > 0 for c, r in
                              zip(confirming, self.core.allocator.relays, strict=True))
            return skipped

        self.core.allocator.observe = counting

    def act(self, grid_w: float, t: float, house: House) -> tuple[float, list[bool]]:
        for i, relay in enumerate(self.relays):
            if house.relays_on[i] and house.relay_closed[i]:
                self.drawn_wh[i] += relay.rating_w * house.dt_s / 3600
        plan = self.core.on_reading(grid_w, WALL0 + t, WALL0 + t, t)
        if plan is not None and not plan.safe:
            self.core.write_ok(plan)
        levels = self.core.levels
        return levels[PWM_NAME], [levels[n] >= 0.5 for n in self.names]

    def learned(self) -> list[float]:
        """The relays' learned ratings (W)."""
        learning = self.core.learning
        assert learning is not None
        return [learning.learned(f"r{i}")[0] for i in range(len(self.names))]

    def reset_tally(self) -> None:
        self.sink.wh.clear()
        self.drawn_wh = [0.0] * len(self.drawn_wh)
        self.tests = self.found = 0


class Sink:
    """Energy by load as the worker books it (what the dashboard shows)."""

    def __init__(self) -> None:
        self.wh: dict[str | None, float] = {}

    def add(self, power_w: float, dt_s: float, load: str | None = None) -> None:
        self.wh[load] = self.wh.get(load, 0.0) + power_w * dt_s / 3600


class Threshold:
    """Mk2-style: the PWM load as today (our controller on the grid reading); relays by
    thresholds on the grid power averaged since the last switch, up to 10 min (at least
    1 min): the next stage on at 1000 W export, the last one off at 200 W import, 5 min
    minimum on and off."""

    ON_EXPORT_W, OFF_IMPORT_W, MIN_S, WINDOW_S, MIN_WINDOW_S = 1000.0, 200.0, 300.0, 600.0, 60.0

    def __init__(self, relays: tuple[RelayLoad, ...], overrides: dict[str, float],
                 configured_w: tuple[float, ...] | None = None):
        cfg = validate({"load": {"rating_w": RATING_W, "curve": ACTUATOR}})
        self.ctl = Controller(params_from_config(cfg))
        self.curve = make_curve(ACTUATOR)
        self.on = [False] * len(relays)
        self.since = [-1e9] * len(relays)
        self.window: list[float] = []
        self.last_switch = 0.0

    def act(self, grid_w: float, t: float, house: House) -> tuple[float, list[bool]]:
        duty = self.curve.duty(self.ctl.step(grid_w, house.dt_s))
        self.window.append(grid_w)
        del self.window[:-int(self.WINDOW_S / house.dt_s)]
        if t - self.last_switch >= self.MIN_WINDOW_S:
            avg = sum(self.window) / len(self.window)
            nxt = next((i for i, on in enumerate(self.on) if not on), None)
            last = max((i for i, on in enumerate(self.on) if on), default=None)
            if avg <= -self.ON_EXPORT_W and nxt is not None and \
                    t - self.since[nxt] >= self.MIN_S:
                self._switch(nxt, True, t)
            elif avg >= self.OFF_IMPORT_W and last is not None and \
                    t - self.since[last] >= self.MIN_S:
                self._switch(last, False, t)
        return duty, list(self.on)

    def _switch(self, i: int, on: bool, t: float) -> None:
        self.on[i], self.since[i], self.last_switch = on, t, t
        self.window.clear()


class Oracle:
    """Knows the true surplus over the interval the last reading covers and which loads can
    draw; picks the relays and the PWM power that leave the least export and import, with
    no minimum on/off times: a lower bound for any engine, but one that switches relays
    every few seconds in clouds. Records each step's choices for OracleMin."""

    def __init__(self, relays: tuple[RelayLoad, ...], overrides: dict[str, float],
                 configured_w: tuple[float, ...] | None = None):
        self.n = len(relays)
        self.costs: list[list[float]] = []  # per step: loss of each relay set

    def act(self, grid_w: float, t: float, house: House) -> tuple[float, list[bool]]:
        surplus = house.surplus_w
        pwm_cap, relay_caps = house.available_w()
        costs = [_loss(surplus, pwm_cap, relay_caps, mask) for mask in range(1 << self.n)]
        self.costs.append(costs)
        best = min(range(1 << self.n), key=costs.__getitem__)
        return house.duty_for(_pwm(surplus, pwm_cap, relay_caps, best)), _bits(best, self.n)


def _pwm(surplus: float, pwm_cap: float, relay_caps: list[float], mask: int) -> float:
    taken = sum(w for i, w in enumerate(relay_caps) if mask >> i & 1)
    return min(max(surplus - taken, 0.0), pwm_cap)


def _loss(surplus: float, pwm_cap: float, relay_caps: list[float], mask: int) -> float:
    taken = sum(w for i, w in enumerate(relay_caps) if mask >> i & 1)
    pwm = _pwm(surplus, pwm_cap, relay_caps, mask)
    return abs(surplus - taken - pwm) + 1e-3 * mask.bit_count()  # fewer relays on ties


def _bits(mask: int, n: int) -> list[bool]:
    return [bool(mask >> i & 1) for i in range(n)]


class OracleMin:
    """The same knowledge and PWM rule as Oracle, but the relays honour ours' minimum on
    and off times: the relay schedule of least total loss over the whole run, with perfect
    foresight (dynamic programming, bench/relay_plan.py). A lower bound for any engine that
    keeps the configured min_on_s / min_off_s."""

    def __init__(self, relays: tuple[RelayLoad, ...], overrides: dict[str, float],
                 costs: list[list[float]], dt_s: float):
        self.n = len(relays)
        steps = [(math.ceil(overrides.get("min_on_s", MIN_ON_OFF_S) / dt_s),
                  math.ceil(overrides.get("min_off_s", MIN_ON_OFF_S) / dt_s))] * self.n
        self.plan = best_plan(costs, steps) if self.n else [0] * len(costs)
        self.k = 0

    def act(self, grid_w: float, t: float, house: House) -> tuple[float, list[bool]]:
        mask = self.plan[self.k]
        self.k += 1
        pwm_cap, relay_caps = house.available_w()
        return house.duty_for(_pwm(house.surplus_w, pwm_cap, relay_caps, mask)), \
            _bits(mask, self.n)


class OracleBudget(OracleMin):
    """OracleMin that also keeps to ``per_hour`` relay switches an hour (the issue's cloud
    target for ours): the schedule that minimises loss + a price per switch is the best
    of all schedules with as few switches; the price is raised by bisection until the
    schedule keeps the budget (exact for the switch count it ends with)."""

    def __init__(self, relays: tuple[RelayLoad, ...], overrides: dict[str, float],
                 costs: list[list[float]], dt_s: float, per_hour: float):
        super().__init__(relays, overrides, costs, dt_s)
        budget = per_hour * len(costs) * dt_s / HOUR_S
        if not self.n or _switches(self.plan) <= budget:
            return
        steps = [(math.ceil(overrides.get("min_on_s", MIN_ON_OFF_S) / dt_s),
                  math.ceil(overrides.get("min_off_s", MIN_ON_OFF_S) / dt_s))] * self.n
        lo, hi = 0.0, 3600.0  # W s per switch: 1 Wh
        while _switches(plan := best_plan(costs, steps, hi)) > budget:
            lo, hi = hi, 4 * hi
        self.plan = plan
        for _ in range(5):
            mid = (lo + hi) / 2
            plan = best_plan(costs, steps, mid)
            if _switches(plan) <= budget:
                hi, self.plan = mid, plan
            else:
                lo = mid


_POLICIES: dict[tuple, Policy] = {}  # solved once per scenario, relays, lock and price


class Causal:
    """The causal yardstick: knows the true present surplus, which loads can draw and the
    present weather (clear, or a cloud and how deep it is now; the kettle) like the
    oracles, and the weather's statistics (the scenario's mean spell lengths, exponential;
    depth uniform), but not the future. Its relays follow the Bayes-optimal policy for
    least loss plus ``price_wh`` per switch, honouring the minimum times
    (bench/causal_plan.py; decisions every EPOCH_S); the PWM load takes exactly the rest,
    as with the oracles."""

    def __init__(self, scenario: Scenario, relays: tuple[RelayLoad, ...],
                 overrides: dict[str, float], price_wh: float, dt_s: float):
        self.n = len(relays)
        min_s = max(overrides.get("min_on_s", MIN_ON_OFF_S),
                    overrides.get("min_off_s", MIN_ON_OFF_S))
        lock = max(1, math.ceil(min_s / EPOCH_S - 1e-9))
        ratings = [r.rating_w for r in relays]
        key = (scenario, tuple(ratings), lock, price_wh)
        if key not in _POLICIES:
            _POLICIES[key] = Policy(weather(scenario), self.n, lock,
                                    lambda s, a: _loss(s, RATING_W, ratings, a), price_wh)
        self.policy = _POLICIES[key]
        self.min_s, self.lock = min_s, lock
        self.mask, self.free_at = 0, [-1e9] * self.n

    def act(self, grid_w: float, t: float, house: House) -> tuple[float, list[bool]]:
        surplus = house.surplus_w
        pwm_cap, relay_caps = house.available_w()
        # every step (not only every epoch: a late reaction to a cloud edge costs), with
        # the time each relay is still locked in whole epochs
        loss = [_loss(surplus, pwm_cap, relay_caps, a) for a in range(1 << self.n)]
        w = state_of(self.policy.wx, *house.weather_now())
        locks = tuple(min(self.lock - 1, max(0, math.ceil((f - t) / EPOCH_S - 1e-9)))
                      for f in self.free_at)
        mask, _ = self.policy.choose(w, self.mask, locks, loss)
        for i in range(self.n):
            if (mask ^ self.mask) >> i & 1:
                self.free_at[i] = t + self.min_s
        self.mask = mask
        return house.duty_for(_pwm(surplus, pwm_cap, relay_caps, self.mask)), \
            _bits(self.mask, self.n)


def _switches(plan: list[int]) -> int:
    return sum((a ^ b).bit_count() for a, b in zip(plan, plan[1:], strict=False))


class Engine(Protocol):
    def act(self, grid_w: float, t: float, house: House) -> tuple[float, list[bool]]: ...


@dataclass
class Result:
    loss_wh: float
    exported_wh: float
    import_wh: float
    diverted_wh: float
    ideal_wh: float
    switches_per_h: float
    learned_w: list[float] = field(default_factory=list)  # ours: relays' at LEARNED_AT_S
    learned_end_w: list[float] = field(default_factory=list)  # ... and at the end
    relay_shown_wh: float = 0.0  # ours: relay energy as the worker books it ...
    relay_drawn_wh: float = 0.0  # ... and as the relays' loads really took it
    tests: int = 0  # ours: relays switched off to test whether they draw ...
    found: int = 0  # ... and found not drawing


_RESULTS: dict[tuple, Result] = {}
_COSTS: dict[tuple, list[list[float]]] = {}  # the oracle's per-step losses, for OracleMin


def run(name: str, engine: str, seed: int = 1, overrides: dict[str, float] | None = None
        ) -> Result:
    overrides = overrides or {}
    key = (name, engine, seed, tuple(sorted(overrides.items())))
    if key not in _RESULTS:
        _RESULTS[key] = _run(name, engine, seed, overrides)
    return _RESULTS[key]


def _run(name: str, engine: str, seed: int, overrides: dict[str, float]) -> Result:
    scenario, relays = SCENARIOS[name] if name in SCENARIOS else WRONG[name]
    house = House(scenario, seed=seed, dt_s=1.0, meter_delay_samples=1, actuator=ACTUATOR,
                  rating_w=RATING_W, relays=relays)
    if engine.startswith("oracle_"):
        if (name, seed) not in _COSTS:
            run(name, "oracle", seed)
        costs = _COSTS[(name, seed)]
        eng = OracleMin(relays, overrides, costs, house.dt_s) if engine == "oracle_min" \
            else OracleBudget(relays, overrides, costs, house.dt_s, float(engine[7:]))
    elif engine.startswith("causal_"):
        eng = Causal(scenario, relays, overrides, float(engine[7:]), house.dt_s)
    elif engine == "ours_warm":
        eng = Ours(relays, overrides, CONFIGURED_W.get(name))
        before = Ours(relays, overrides, CONFIGURED_W.get(name))
        _drive(House(scenario, seed=seed + WARM_SEED, dt_s=1.0, meter_delay_samples=1,
                     actuator=ACTUATOR, rating_w=RATING_W, relays=relays), before)
        for mine, theirs in zip(eng.core.allocator.relays, before.core.allocator.relays,
                                strict=True):
            mine.shortfalls = copy.deepcopy(theirs.shortfalls)
    else:
        eng = {"ours": Ours, "threshold": Threshold, "oracle": Oracle}[engine](
            relays, overrides, CONFIGURED_W.get(name))
    learned = _drive(house, eng)
    if isinstance(eng, Oracle):
        _COSTS[(name, seed)] = eng.costs
    tally = house.tally
    hours = (house.t_s - WARM_UP_S) / HOUR_S
    res = Result(tally.loss_wh, tally.exported_wh, tally.caused_import_wh, tally.diverted_wh,
                 tally.ideal_wh, house.relay_switches / hours, learned,
                 eng.learned() if isinstance(eng, Ours) else [])
    if isinstance(eng, Ours):
        res.relay_shown_wh = sum(eng.sink.wh.get(f"r{i}", 0.0) for i in range(len(relays)))
        res.relay_drawn_wh = sum(eng.drawn_wh)
        res.tests, res.found = eng.tests, eng.found
    return res


def _drive(house: House, eng: Engine) -> list[float]:
    """Run the house to its end, tallying from WARM_UP_S; ours' learned relay ratings at
    LEARNED_AT_S."""
    grid_w = house.step(0.0, [False] * len(house.relays_on))
    warm = False
    learned: list[float] = []
    while not house.finished:
        duty, on = eng.act(grid_w, house.t_s, house)
        grid_w = house.step(duty, on)
        if not warm and house.t_s >= WARM_UP_S - 1e-6:  # start-up min_off is behind us
            house.tally, house.relay_switches, warm = Tally(), 0, True
            if isinstance(eng, Ours):
                eng.reset_tally()
        if isinstance(eng, Ours) and not learned and house.t_s >= LEARNED_AT_S - 1e-6:
            learned = eng.learned()
    return learned


def totals(seed: int, overrides: dict[str, float]) -> dict[str, float]:
    """Loss summed over the scenarios by engine, and the clouds_5k switches per hour."""
    out = {e: sum(run(n, e, seed, overrides).loss_wh for n in SCENARIOS) for e in ENGINES}
    out["switches"] = run("clouds_5k", "ours", seed, overrides).switches_per_h
    out["switches_min"] = run("clouds_5k", "oracle_min", seed, overrides).switches_per_h
    return out


def ratios(tot: dict[str, float]) -> tuple[float, float]:
    """Ours' loss above each oracle / the threshold engine's above the same oracle."""
    return tuple((tot["ours"] - tot[o]) / (tot["threshold"] - tot[o])
                 for o in ("oracle", "oracle_min"))  # type: ignore[return-value]


def table(seed: int, overrides: dict[str, float]) -> None:
    print("| scenario | engine | export | caused import | loss | diverted/ideal | "
          "relay switches/h |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in SCENARIOS:
        for e in ENGINES:
            r = run(name, e, seed, overrides)
            print(f"| {name} | {e} | {r.exported_wh:.1f} | {r.import_wh:.1f} | {r.loss_wh:.1f} | "
                  f"{100 * r.diverted_wh / r.ideal_wh:.1f} % | {r.switches_per_h:.0f} |")
    tot = totals(seed, overrides)
    free, held = ratios(tot)
    print(f"\nLoss above the oracle that honours min_on_s/min_off_s (oracle_min, "
          f"{tot['oracle_min']:.1f} Wh): ours {tot['ours'] - tot['oracle_min']:.1f} Wh = "
          f"{held:.3f} x the threshold engine's {tot['threshold'] - tot['oracle_min']:.1f} Wh "
          f"(target <= 0.25: {'met' if held <= 0.25 else 'MISSED'}).")
    print(f"Loss above the free oracle (no minimum times, {tot['oracle']:.1f} Wh): ours "
          f"{tot['ours'] - tot['oracle']:.1f} Wh = {free:.3f} x the threshold engine's "
          f"{tot['threshold'] - tot['oracle']:.1f} Wh.")
    print(f"Relay switches per hour in clouds_5k, ours: {tot['switches']:.0f} (target <= 6: "
          f"{'met' if tot['switches'] <= 6 else 'MISSED'}).")
    print("\nRelay thermostats (ours): energy the worker books for the relays vs what their "
          "loads took; relays switched off to test whether they draw, and found not drawing:\n")
    print("| scenario | relay energy shown | drawn | tests | found not drawing |")
    print("|---|---:|---:|---:|---:|")
    for name in SCENARIOS:
        r = run(name, "ours", seed, overrides)
        print(f"| {name} | {r.relay_shown_wh:.0f} | {r.relay_drawn_wh:.0f} | {r.tests} | "
              f"{r.found} |")


def seed_rows(seeds: int, overrides: dict[str, float], first: int = 1) -> None:
    print(f"\nThe targets over seeds {first}..{first + seeds - 1} (loss in Wh summed over "
          "the scenarios; ratio = ours above the oracle / the threshold engine above the same "
          "oracle):\n")
    print("| seed | ours | threshold | oracle | oracle_min | ratio (oracle) | "
          "ratio (oracle_min) | clouds_5k switches/h: ours, oracle_min |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    pooled = dict.fromkeys(ENGINES, 0.0)
    met = 0
    for seed in range(first, first + seeds):
        tot = totals(seed, overrides)
        free, held = ratios(tot)
        print(f"| {seed} | {tot['ours']:.1f} | {tot['threshold']:.1f} | {tot['oracle']:.1f} | "
              f"{tot['oracle_min']:.1f} | {free:.3f} | {held:.3f} | {tot['switches']:.0f}, "
              f"{tot['switches_min']:.0f} |")
        met += held <= 0.25 and tot["switches"] <= 6
        for e in ENGINES:
            pooled[e] += tot[e]
    free, held = ratios(pooled)
    print(f"\nPooled over the {seeds} seeds (loss summed over seeds and scenarios): ours above "
          f"oracle_min {pooled['ours'] - pooled['oracle_min']:.1f} Wh = {held:.3f} x the "
          f"threshold engine's {pooled['threshold'] - pooled['oracle_min']:.1f} Wh (above the "
          f"free oracle {free:.3f}); both targets met on {met} of the {seeds} seeds alone.")


def budget_rows(seeds: int, per_hour: int, overrides: dict[str, float]) -> None:
    """The target against an oracle that keeps the same minimum times and ours' switch
    budget: what perfect foresight is still worth."""
    engine = f"oracle_{per_hour}"
    print(f"\nAgainst {engine}: min_on_s/min_off_s and at most {per_hour} relay switches an "
          "hour, perfect foresight (loss in Wh summed over the scenarios; clouds_5k alone "
          "in the last column):\n")
    print(f"| seed | ours | threshold | {engine} | ratio ({engine}) | clouds_5k: ours, "
          f"threshold, {engine}, its switches/h |")
    print("|---:|---:|---:|---:|---:|---:|")
    for seed in range(1, seeds + 1):
        tot = {e: sum(run(n, e, seed, overrides).loss_wh for n in SCENARIOS)
               for e in ("ours", "threshold", engine)}
        ratio = (tot["ours"] - tot[engine]) / (tot["threshold"] - tot[engine])
        c = {e: run("clouds_5k", e, seed, overrides) for e in ("ours", "threshold", engine)}
        print(f"| {seed} | {tot['ours']:.1f} | {tot['threshold']:.1f} | {tot[engine]:.1f} | "
              f"{ratio:.3f} | {c['ours'].loss_wh:.1f}, {c['threshold'].loss_wh:.1f}, "
              f"{c[engine].loss_wh:.1f}, {c[engine].switches_per_h:.0f} |")


CAUSAL_PRICES_WH = tuple(float(p) for p in range(0, 21, 2))  # switch prices, then bisected
CAUSAL_BUDGET = 6.0  # relay switches an hour in clouds_5k, as for ours


def causal_price(seed: int, overrides: dict[str, float], fixed: float | None = None) -> float:
    """The switch price (Wh) for the causal yardstick on this seed: the prices of the grid,
    refined by bisection where clouds_5k crosses CAUSAL_BUDGET switches an hour; of those
    within the budget there, the one of least loss over all scenarios (chosen after the
    fact, per seed: if anything, this flatters the yardstick)."""
    if fixed is not None:
        return fixed

    def switches(p: float) -> float:
        return run("clouds_5k", f"causal_{p:g}", seed, overrides).switches_per_h

    prices = list(CAUSAL_PRICES_WH)
    over = [p for p in prices if switches(p) > CAUSAL_BUDGET]
    within = [p for p in prices if switches(p) <= CAUSAL_BUDGET]
    if over and within and max(over) < min(within):
        lo, hi = max(over), min(within)
        for _ in range(4):
            mid = (lo + hi) / 2
            prices.append(mid)
            lo, hi = (mid, hi) if switches(mid) > CAUSAL_BUDGET else (lo, mid)
    fits = [(sum(run(n, f"causal_{p:g}", seed, overrides).loss_wh for n in SCENARIOS), p)
            for p in sorted(prices) if switches(p) <= CAUSAL_BUDGET]
    return min(fits)[1] if fits else max(prices)


def causal_rows(seeds: int, overrides: dict[str, float], fixed: float | None = None) -> None:
    """Is the target reachable without foresight? The causal yardstick at the switch price
    that keeps clouds_5k within the budget, against ours, over the seeds."""
    chosen = (f"{fixed:g} Wh on every seed" if fixed is not None else
              f"chosen per seed from {CAUSAL_PRICES_WH[0]:g}..{CAUSAL_PRICES_WH[-1]:g} Wh as "
              f"the least loss of those with <= {CAUSAL_BUDGET:g} switches an hour in "
              f"clouds_5k")
    print(f"\nCausal yardstick (true present surplus and weather, the weather's statistics, "
          f"no foresight; the best relay policy for loss + a price per switch, the price "
          f"{chosen}; loss in Wh summed over the scenarios; ratio = above oracle_min / the "
          f"threshold engine above oracle_min):\n")
    print("| seed | ours | threshold | oracle_min | causal | ratio ours | ratio causal | "
          "price (Wh) | clouds_5k: ours, causal, its switches/h | slow_clouds_5k: ours, "
          "causal |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_scenario: dict[str, list[tuple[float, float]]] = {n: [] for n in SCENARIOS}
    for seed in range(1, seeds + 1):
        causal = f"causal_{causal_price(seed, overrides, fixed):g}"
        tot = {e: sum(run(n, e, seed, overrides).loss_wh for n in SCENARIOS)
               for e in ("ours", "threshold", "oracle_min", causal)}
        for n in SCENARIOS:
            per_scenario[n].append((run(n, "ours", seed, overrides).loss_wh,
                                    run(n, causal, seed, overrides).loss_wh))
        base = tot["threshold"] - tot["oracle_min"]
        c = {e: run("clouds_5k", e, seed, overrides) for e in ("ours", causal)}
        sc = {e: run("slow_clouds_5k", e, seed, overrides) for e in ("ours", causal)}
        print(f"| {seed} | {tot['ours']:.1f} | {tot['threshold']:.1f} | "
              f"{tot['oracle_min']:.1f} | {tot[causal]:.1f} | "
              f"{(tot['ours'] - tot['oracle_min']) / base:.3f} | "
              f"{(tot[causal] - tot['oracle_min']) / base:.3f} | {causal[7:]} | "
              f"{c['ours'].loss_wh:.1f}, {c[causal].loss_wh:.1f}, "
              f"{c[causal].switches_per_h:.0f} | {sc['ours'].loss_wh:.1f}, "
              f"{sc[causal].loss_wh:.1f} |")
    print("\nBy scenario, loss of ours - causal (Wh; > 0: ours loses more), seeds 1..:\n")
    print("| scenario | " + " | ".join(str(k) for k in range(1, seeds + 1)) + " |")
    print("|---|" + "---:|" * seeds)
    for n, pairs in per_scenario.items():
        print(f"| {n} | " + " | ".join(f"{o - c:+.1f}" for o, c in pairs) + " |")


def warm_rows(seeds: int, overrides: dict[str, float], first: int = 1) -> None:
    """Ours' first hour (the tables above) against the same hour after an hour of the same
    weather on another day (seed + WARM_SEED): the relays' learned shortfall time scale
    carried over, as in a worker that has run since the morning."""
    clouds = ("clouds_5k", "slow_clouds_5k", "one_relay_clouds")
    print(f"\nOurs in its first hour vs after an hour of the same weather (seed + {WARM_SEED}) "
          "taught the relays' shortfall time scale; loss in Wh / relay switches an hour; "
          "ratio vs oracle_min over all scenarios:\n")
    print("| seed | " + " | ".join(f"{n}: first, after" for n in clouds) +
          " | ratio: first, after |")
    print("|---:|" + "---:|" * (len(clouds) + 1))
    for seed in range(first, first + seeds):
        tot = totals(seed, overrides)
        warm = dict(tot, ours=sum(run(n, "ours_warm", seed, overrides).loss_wh
                                  for n in SCENARIOS))
        cells = []
        for n in clouds:
            a, b = run(n, "ours", seed, overrides), run(n, "ours_warm", seed, overrides)
            cells.append(f"{a.loss_wh:.1f} / {a.switches_per_h:.0f}, "
                         f"{b.loss_wh:.1f} / {b.switches_per_h:.0f}")
        print(f"| {seed} | " + " | ".join(cells) +
              f" | {ratios(tot)[1]:.3f}, {ratios(warm)[1]:.3f} |")


def wrong_rows(seeds: int, overrides: dict[str, float]) -> None:
    """Relays drawing 1.3x and 0.7x their configured ratings: loss above the oracle with
    learning on and off, and what was learned after LEARNED_AT_S."""
    print(f"\nRelays drawing 1300 W and 1400 W, configured 1000 W and 2000 W (1.3x, 0.7x); "
          f"loss above the oracle in Wh; learned relay ratings after {LEARNED_AT_S:g} s "
          f"and at the end of the hour (learning on):\n")
    print("| scenario | seed | learning on | learning off | threshold | on / off | "
          "learned r0 (1300) | learned r1 (1400) | switches/h |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    total = {"on": 0.0, "off": 0.0}
    for name in WRONG:
        for seed in range(1, seeds + 1):
            oracle = run(name, "oracle", seed).loss_wh
            on = run(name, "ours", seed, {**overrides, "learn_rating": 1.0})
            off = run(name, "ours", seed, {**overrides, "learn_rating": 0.0})
            thr = run(name, "threshold", seed).loss_wh - oracle
            above_on, above_off = on.loss_wh - oracle, off.loss_wh - oracle
            total["on"] += above_on
            total["off"] += above_off
            print(f"| {name} | {seed} | {above_on:.1f} | {above_off:.1f} | {thr:.1f} | "
                  f"{above_on / above_off:.3f} | {on.learned_w[0]:.0f} / {on.learned_end_w[0]:.0f} "
                  f"| {on.learned_w[1]:.0f} / {on.learned_end_w[1]:.0f} "
                  f"| {on.switches_per_h:.0f} |")
    print(f"\nSum above the oracle: learning on {total['on']:.1f} Wh, off {total['off']:.1f} Wh "
          f"({total['on'] / total['off']:.3f}x).")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=5, help="check the targets on seeds 1..K")
    ap.add_argument("--first-seed", type=int, default=1, metavar="F",
                    help="the targets' rows on seeds F..F+K-1 (held-out seeds: F = 7)")
    ap.add_argument("--budget", type=int, default=0, metavar="N",
                    help="also: an oracle with min times and at most N relay switches an "
                         "hour, over the seeds (slow: a dynamic programme per bisection step)")
    ap.add_argument("--warm", action="store_true",
                    help="also: ours after an hour of the same weather (the learned shortfall "
                         "time scale carried over) over the seeds")
    ap.add_argument("--causal", action="store_true",
                    help="also: the causal yardstick (no foresight, a priced switch policy) "
                         "over the seeds (slow: a switch-price sweep per seed)")
    ap.add_argument("--causal-price", type=float, default=None, metavar="WH",
                    help="with --causal: this switch price on every seed instead of the sweep")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override: relay_margin_w, min_on_s, min_off_s (experiments)")
    args = ap.parse_args(argv)
    overrides = {k: float(v) for k, _, v in (s.partition("=") for s in args.set)}
    t0 = time.perf_counter()
    print(f"Several-loads bench: PWM heater {RATING_W:g} W ({ACTUATOR} module) + relays, meter "
          f"every 1 s with 1 reading of delay, {HOUR_S:g} s per scenario, seed {args.seed}; "
          f"ours with min_on_s = min_off_s = {MIN_ON_OFF_S:g} s and default [load] relay "
          f"settings {overrides or ''}; energies in Wh.\n")
    table(args.seed, overrides)
    if args.seeds:
        seed_rows(args.seeds, overrides, args.first_seed)
    wrong_rows(max(args.seeds, 1), overrides)
    if args.warm:
        warm_rows(args.seeds or 1, overrides, args.first_seed)
    if args.causal:
        causal_rows(args.seeds or 1, overrides, args.causal_price)
    if args.budget:
        budget_rows(args.seeds or 1, args.budget, overrides)
    print(f"\n(ran in {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
