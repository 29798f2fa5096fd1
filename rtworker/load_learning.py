"""What each load really draws when there are several (relay stages, a bypass): the PWM load
learns from its own moves as with one load, but only while no relay switched within the
meter's reach; each relay (and the bypass) learns from the meter's answer at its switches.
Pure: one `step()` per reading, no clock, no I/O.

Why it works: at a switch the allocator moves the PWM load by the relay's assumed rating in
the same step, so the meter's step across the switch is the relay's real power minus the
PWM load's real move; with the PWM load's learned rating that leaves the relay's power.
A household step or a cloud edge that coincides spoils one sample: the readings just before
and after the switch must be quiet, a sample outside 0.5-1.5x the configured rating is
dropped (a relay whose thermostat is open answers ~0 W: never taught), and the rating is the
median of recent samples with a prior at the configured rating, so a stray one is outvoted.
The bypass is learned as a factor on the PWM load's rating (what bridging the module adds or
loses), so it follows the PWM load's estimate."""

from __future__ import annotations

import math
from typing import Any

from vzdivert.rtworker.allocator import Allocator
from vzdivert.rtworker.rating import RatingEstimator, weighted_median

SAMPLES = 9          # recent switches kept per load
PRIOR_WEIGHT = 0.9   # the configured rating counts like 0.9 of a switch: the first answer wins,
# from the third on a stray one is outvoted
LOW, HIGH = 0.5, 1.5  # bounds, times the configured rating
QUIET_SHARE = 0.15   # the readings around a switch must move less than this share ...
QUIET_MIN_W = 100.0  # ... (at least this) beyond what the PWM load's own moves explain ...
BEND_SHARE = 0.05    # ... and as a ramp: before and after differ by less than this share ...
BEND_MIN_W = 60.0    # ... (at least this)
TRUST = (0.3, 0.7)   # the PWM load's estimate is used in full from the upper confidence on,
# not below the lower: between the two a weighted mean with the configured rating


class SwitchedRating:
    """The learned power of one switched load, in sample units (W for a relay, a factor on
    the PWM load's rating for the bypass)."""

    def __init__(self, configured_w: float, prior: float) -> None:
        self.configured_w = float(configured_w)  # the state file's key: a change resets
        self.prior = prior
        self.reset()

    def reset(self) -> None:
        self.samples: list[float] = []
        self.value = self.prior
        self.confidence = 0.0
        self.observations = 0

    def add(self, sample: float) -> bool:
        """One switch's answer; False (nothing learned) outside the bounds."""
        if not LOW * self.prior <= sample <= HIGH * self.prior:
            return False
        self.samples = [*self.samples[-(SAMPLES - 1):], sample]
        self.observations += 1
        self._update()
        return True

    def _update(self) -> None:
        """Weighted median of the samples and the prior; confidence as for the PWM load:
        the data's share of the weight times the share agreeing within 5 %."""
        items = sorted([(s, 1.0) for s in self.samples] + [(self.prior, PRIOR_WEIGHT)])
        total = sum(w for _, w in items)
        self.value = median = weighted_median(items)
        n = len(self.samples)
        agree = sum(1 for s in self.samples if abs(s - median) <= 0.05 * median)
        self.confidence = (n / total) * (agree / n) if n else 0.0

    def to_state(self) -> dict[str, Any]:
        return {"configured_w": self.configured_w, "samples": [round(s, 4) for s in
                                                               self.samples],
                "observations": self.observations}

    def load_state(self, data: Any) -> bool:
        try:
            if float(data["configured_w"]) != self.configured_w:
                return False
            samples = [float(s) for s in data["samples"]][-SAMPLES:]
            if any(not LOW * self.prior <= s <= HIGH * self.prior for s in samples):
                return False
            observations = int(data.get("observations", len(samples)))
        except (KeyError, TypeError, ValueError):
            return False
        self.samples, self.observations = samples, observations
        self._update()
        return True


class SwitchedRatings:
    """Every switched load's rating by name, kept together (`[state] dir`/rating-relays.json)."""

    def __init__(self, ratings: dict[str, SwitchedRating]) -> None:
        self.ratings = ratings

    @property
    def observations(self) -> int:
        return sum(r.observations for r in self.ratings.values())

    @property
    def rating_w(self) -> float:  # for the store's log line
        return sum(r.value for r in self.ratings.values())

    def to_state(self) -> dict[str, Any]:
        return {name: r.to_state() for name, r in self.ratings.items()}

    def load_state(self, data: Any) -> bool:
        """Each load takes its own entry if it still fits (another rating: afresh)."""
        if not isinstance(data, dict):
            return False
        taken = [r.load_state(data[name]) for name, r in self.ratings.items() if name in data]
        return any(taken)


class LoadLearning:
    """Feed `step()` once per reading after the allocation, with the PWM load's power
    fraction (0 while bypassed) and which switched loads are on; read the ratings to use
    from `pwm_rating_w()`, `relay_rating_w(name)` and `bypass_rating_w()`."""

    def __init__(self, pwm_configured_w: float, relays: dict[str, float], bypass: str = "",
                 max_delay_samples: int = 1, learn: bool = True) -> None:
        """``relays``: configured rating by name; ``bypass``: the bypass's name ("": none)."""
        self.learn = learn
        self.bypass = bypass
        self.pwm = RatingEstimator(pwm_configured_w, max_delay_samples)
        ratings = {name: SwitchedRating(w, w) for name, w in relays.items()}
        if bypass:
            ratings[bypass] = SwitchedRating(pwm_configured_w, 1.0)
        self.switched = SwitchedRatings(ratings)
        self._names = list(ratings)
        self._start_run()

    def _start_run(self) -> None:
        n = 4 * self.pwm.max_delay + 10
        self._grid: list[float | None] = [None] * n  # readings, newest first
        self._frac = [0.0] * n                       # PWM fraction commanded after each
        self._on: list[tuple[bool, ...]] = [()] * n  # switched loads' states after each
        self._bad = [True] * n                       # PWM load not modelled (saturated)

    def restart(self) -> None:
        """Data stopped, a calibration froze control, everything went off: pair afresh."""
        self._start_run()
        self.pwm.restart()

    def set_configured(self, pwm_configured_w: float, max_delay_samples: int,
                       learn: bool) -> None:
        """Live settings: a new PWM rating means learning it (and the bypass) afresh."""
        self.learn = learn
        if pwm_configured_w != self.pwm.configured_w:
            self.pwm.reset(pwm_configured_w)
            bypass = self.switched.ratings.get(self.bypass)
            if bypass is not None:
                bypass.configured_w = float(pwm_configured_w)
                bypass.reset()
        if max_delay_samples != self.pwm.max_delay:
            self.pwm.set_max_delay(max_delay_samples)
            self._start_run()

    # -- what to use ---------------------------------------------------------------------
    def pwm_rating_w(self) -> float:
        """Beside relays the PWM load moves less often and less freely (it sits at 0 or
        100 % while relays carry the bulk): a few unlucky moves must not retune it."""
        conf = self.pwm.configured_w
        if not self.learn:
            return conf
        lo, hi = TRUST
        trust = min(max((self.pwm.confidence - lo) / (hi - lo), 0.0), 1.0)
        return conf + trust * (self.pwm.rating_w - conf)

    def relay_rating_w(self, name: str) -> float:
        r = self.switched.ratings[name]
        return r.value if self.learn else r.prior

    def bypass_rating_w(self) -> float:
        r = self.switched.ratings.get(self.bypass)
        if r is None or not self.learn:
            return self.pwm_rating_w()
        conf = self.pwm.configured_w
        return min(max(r.value * self.pwm_rating_w(), LOW * conf), HIGH * conf)

    def use(self, alloc: Allocator) -> float:
        """Put the ratings in use into the allocator (the relays' thresholds, the PWM
        load's room and its compensation at a switch, the bypass); returns the capacity."""
        for relay in alloc.relays:
            relay.rating_w = self.relay_rating_w(relay.name)
        alloc.bypass_rating_w = self.bypass_rating_w()
        alloc.pwm_rating_w = self.pwm_rating_w()
        return alloc.capacity_w

    def learned(self, name: str) -> tuple[float, float]:
        """(learned W, confidence) of a load by name, whether or not it is used."""
        if name not in self.switched.ratings:
            return self.pwm.rating_w, self.pwm.confidence
        r = self.switched.ratings[name]
        if name == self.bypass:
            return r.value * self.pwm.rating_w, r.confidence
        return r.value, r.confidence

    # -- learning ------------------------------------------------------------------------
    def step(self, grid_w: float, dt_s: float, pwm_fraction: float,
             on: dict[str, bool], saturated: bool) -> None:
        """One reading and what was commanded after it."""
        if not math.isfinite(grid_w):
            return
        state = tuple(bool(on.get(name, False)) for name in self._names)
        for hist, value in ((self._grid, grid_w), (self._frac, pwm_fraction),
                            (self._on, state), (self._bad, saturated)):
            hist.pop()
            hist.insert(0, value)
        # the PWM load learns only from pairs no switch reaches into
        reach = self.pwm.max_delay + 2
        switching = any(self._on[b] != self._on[b + 1] for b in range(reach))
        self.pwm.step(grid_w, pwm_fraction, dt_s, saturated or switching)
        self._learn_switch()

    def _seen(self, back: int, d: float) -> float:
        """The PWM fraction the reading `back` saw under the meter delay d (readings)."""
        i = int(d)
        f = d - i
        return (1.0 - f) * self._frac[back + 1 + i] + f * self._frac[back + 2 + i]

    def _residual(self, newer: int, older: int, d: float) -> float:
        """The meter's move from reading `older` to `newer` beyond the PWM load's own."""
        g_new, g_old = self._grid[newer], self._grid[older]
        assert g_new is not None and g_old is not None
        return (g_new - g_old) - self.pwm.rating_w * (self._seen(newer, d) - self._seen(older, d))

    def _learn_switch(self) -> None:
        """Judge the switch whose answer the previous reading completed (the newest one
        shows whether the meter was quiet after it)."""
        d = self.pwm.delay_readings
        if d is None:
            return  # which reading shows the switch is not known yet
        i, c = int(d), math.ceil(d)
        at = 2 + c  # the command that switched, counted back from the newest reading
        before = at - i  # the last reading that cannot show it
        oldest = before + 4 + i  # the oldest command a reading in the window sees, + 1
        if self._grid[before + 1] is None or any(self._bad[1:oldest]):
            return
        changes = [b for b in range(1, oldest) if self._on[b] != self._on[b + 1]]
        if changes != [at]:
            return  # none, or several switches in reach: not one load's answer
        new, old = self._on[at], self._on[at + 1]
        which = [k for k in range(len(new)) if new[k] != old[k]]
        if len(which) != 1:
            return
        k = which[0]
        rating = self.switched.ratings[self._names[k]]
        after_w, before_w = self._residual(0, 1, d), self._residual(before, before + 1, d)
        if max(abs(after_w), abs(before_w)) > max(QUIET_SHARE * rating.configured_w,
                                                   QUIET_MIN_W) or \
                abs(after_w - before_w) > max(BEND_SHARE * rating.configured_w, BEND_MIN_W):
            return  # a household step or a cloud edge around the switch
        # a ramp (the sun, the household drifting) goes on across the switch: take it out
        trend_w = 0.5 * (after_w + before_w) * (before - 1)
        step_w = (self._residual(1, before, d) - trend_w) * (1.0 if new[k] else -1.0)
        if self._names[k] == self.bypass:
            rating.add(step_w / self.pwm.rating_w)
        else:
            rating.add(step_w)


def learning_from_config(cfg: Any, bypass: str) -> LoadLearning:
    return LoadLearning(cfg.load.rating_w, {r.name: r.rating_w for r in cfg.relays}, bypass,
                        cfg.control.max_delay_samples, cfg.load.learn_rating)
