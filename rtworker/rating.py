"""Online estimate of what a load really draws at full output (`rating_learned_w`), from
the controller's own moves and the meter's answers. Pure: one `step()` per reading, no
clock, no I/O; one instance per load.

Why it looks like this: grid = P * seen_fraction - surplus, so a move of the fraction by dF
shows as a change of the reading by P * dF, if the surplus stood still meanwhile. It often
does not: the controller moves *because* the surplus moved, and a household step that lands
inside a meter interval shows half in one reading and half in the next, i.e. in the same
reading as our answer. So a pair of readings counts only if it follows neither a single
unexplained change (the end of a split step would be in it) nor a run of more than two
(clouds: the surplus moves with us), we are not chasing something, the load was not
saturated around it, the move is well above the surplus's jitter, and the next pair agrees
with the ratio. A thermostat closing counts as a clean move from 0 to the held fraction.
The estimate is the weighted median of recent ratios with a prior at the configured rating,
so coinciding steps and misjudged thermostat edges are outvoted rather than averaged in;
old ratios age out (the mains voltage drifts). The meter's delay (0..max_delay readings,
half steps for meters that average across two intervals) is the hypothesis that explains
the readings with any plausible rating, so a wrong estimate cannot pick a wrong delay. The
value follows the median with a time constant, within 0.5-1.5x the configured rating; a
ratio does not depend on the estimate, so the estimate cannot ring. `doubt` says how far
off it may still be: 30 % before any move, less as moves agree about it."""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate
from typing import Any

from vzdivert.rtworker.curve_correction import CurveCorrection

WINDOW = 48            # ratios kept ...
MAX_AGE_S = 900.0      # ... but older ones are dropped (mains voltage drifts) ...
MIN_KEEP = 8           # ... unless fewer than this would be left (nothing new to learn from)
LOW, HIGH = 0.5, 1.5   # bounds, times the configured rating
PRIOR_WEIGHT = 0.3     # the configured rating counts like moves worth 30 % of it
TAU_S = 20.0           # the estimate follows the median with this time constant
MIN_MOVE = 0.08        # smallest usable move, fraction of the rating ...
NOISE_MOVES = 8.0      # ... and times the surplus jitter per reading
QUIET_AFTER_SATURATION = 3  # readings after saturation ends (or starts) before we learn
BUSY_WINDOW, BUSY_MOVES = 10, 4  # more moves than this in this many readings: no learning
BELOW = 0.7            # a ratio under this share of the estimate says 'less' (small moves
                       # in a wandering surplus read up to ~28 % low at the right rating)
DOUBT = 0.3            # how far off a configured rating commonly is (fraction), before data
_DELAY_TAU = 120.0     # evidence about the meter's delay fades with this (s)


def weighted_median(items: list[tuple[float, float]]) -> float:
    """The value at half the total weight of (value, weight) pairs sorted by value."""
    cumulative = list(accumulate(w for _, w in items))
    return items[bisect_left(cumulative, 0.5 * cumulative[-1])][0]


class RatingEstimator:
    """Feed `step(grid_w, fraction, dt_s, saturated)` once per reading with the fraction the
    controller commands after it. `rating_w` is the estimate, `confidence` 0..1."""

    def __init__(self, configured_w: float, max_delay_samples: int = 1) -> None:
        self.configured_w = float(configured_w)
        self.max_delay = int(max_delay_samples)
        self.curve = CurveCorrection()  # the curve's shape per band, from the same moves
        self.reset()

    # -- public ------------------------------------------------------------------------
    def reset(self, configured_w: float | None = None) -> None:
        """Forget everything learned (a new configured rating, or the user asked)."""
        if configured_w is not None:
            self.configured_w = float(configured_w)
        self.rating_w = self.configured_w
        self.confidence = 0.0
        self.doubt = DOUBT  # how far off the estimate may still be (fraction)
        self.below = 0.0  # share of the data's weight far under the estimate
        self.ratios: list[tuple[float, float]] = []  # (W per unit fraction, weight)
        self._born: list[float] = []  # when each ratio was taken (our own clock, s)
        self._clock_s = 0.0
        self.observations = 0
        self.curve.reset()
        self._start_run()

    def _start_run(self) -> None:
        """Forget the recent past only (stale data, a restart): the ratios stay."""
        n = 2 * self.max_delay + 3
        self._frac = [0.0] * n       # commanded fractions, newest first
        self._grid: float | None = None
        self._older: float | None = None  # the reading before self._grid
        self._hyp = [0.5 * i for i in range(2 * self.max_delay + 1)]  # delay hypotheses
        self._cost = [0.0] * len(self._hyp)
        self._big = [False, False, False]   # unexplained change in the last two pairs
        self._quiet = 0
        self._noise_w = 0.02 * self.configured_w
        self._target = self.rating_w
        self._pending: tuple[float, float] | None = None  # a pair awaiting its judge
        self._pending_span = (0.0, 0.0)  # the fractions the meter saw it move between
        self._moves = [False] * BUSY_WINDOW  # our significant moves, newest first

    def restart(self) -> None:
        """The data stopped or the output was held by someone else: keep what was learned,
        start the pairing afresh."""
        self._start_run()

    @property
    def delay_readings(self) -> float | None:
        """The meter's delay (readings) that explains the moves best so far; None while
        no move has told the hypotheses apart."""
        cost = self._cost
        if len(cost) > 1 and max(cost) - min(cost) < 1.0:
            return None
        return self._hyp[min(range(len(cost)), key=cost.__getitem__)]

    def set_max_delay(self, max_delay_samples: int) -> None:
        if int(max_delay_samples) != self.max_delay:
            self.max_delay = int(max_delay_samples)
            self._start_run()

    def step(self, grid_w: float, fraction: float, dt_s: float, saturated: bool,
             closing: bool = False) -> float:
        """One reading (W) and the fraction commanded after it; returns the estimate (W).
        `closing`: this reading showed the load drawing again (the thermostat closed)."""
        frac = self._frac
        if not -1e9 < grid_w < 1e9 or not 0.0 <= fraction <= 1.0:
            return self.rating_w
        dt = dt_s if 1e-3 < dt_s < 3600.0 else 1.0
        self._clock_s += dt
        if closing and self._older is not None:
            self._closed(grid_w - self._older)
        self._older = self._grid
        if saturated:
            self._quiet = QUIET_AFTER_SATURATION + self.max_delay
            self._pending = None
        elif self._grid is not None:
            self._observe(grid_w - self._grid, dt)
        self._grid = grid_w
        frac.pop()
        frac.insert(0, fraction)
        a = min(1.0, dt / TAU_S)
        self.rating_w += a * (self._target - self.rating_w)
        self.curve.follow(a)
        return self.rating_w

    # -- persistence -------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"configured_w": self.configured_w, "rating_w": round(self.rating_w, 2),
                "ratios": [[round(r, 2), round(w, 5)] for r, w in self.ratios],
                "observations": self.observations, "curve": self.curve.to_state()}

    def load_state(self, data: Any) -> bool:
        """Take a saved state if it belongs to this configured rating; False (and nothing
        changed) if it does not or is malformed."""
        try:
            if float(data["configured_w"]) != self.configured_w:
                return False
            lo, hi = LOW * self.configured_w, HIGH * self.configured_w
            ratios = [(float(r), float(w)) for r, w in data["ratios"]][-WINDOW:]
            rating = float(data["rating_w"])
            if not lo <= rating <= hi or any(not (lo <= r <= hi and 0 < w <= 1)
                                             for r, w in ratios):
                return False
        except (KeyError, TypeError, ValueError):
            return False
        self.ratios = ratios
        self._born = [self._clock_s] * len(ratios)
        self.observations = int(data.get("observations", len(ratios)))
        self.rating_w = rating
        self._update_target()
        self.rating_w = self._target  # it was at rest when saved, more or less
        if "curve" in data:  # files from before the curve correction have none
            self.curve.load_state(data["curve"], self._target, lo, hi, self._clock_s)
        return True

    # -- learning ----------------------------------------------------------------------
    def _seen(self, d: float, back: int) -> float:
        """The fraction reading `back` (0 = this one) saw under delay hypothesis d."""
        i = int(d)
        f = d - i
        frac = self._frac
        return (1.0 - f) * frac[back + i] + f * frac[back + i + 1]

    def _observe(self, d_grid: float, dt: float) -> None:
        """Judge the pair before this one, now that the residual after it is known too (a
        ramp shows on both sides of a pair, a step's end on one side only)."""
        hyp, cost = self._hyp, self._cost
        p = self.rating_w
        lo, hi = LOW * self.configured_w, HIGH * self.configured_w
        fade = math.exp(-dt / _DELAY_TAU)
        best, best_cost = 0, math.inf
        for k, d in enumerate(hyp):
            d_frac = self._seen(d, 0) - self._seen(d, 1)
            # how far the reading moved outside what any plausible rating would give
            # under this delay: independent of our estimate, which may be wrong yet
            a, b = lo * d_frac, hi * d_frac
            a, b = (a, b) if a <= b else (b, a)
            miss = a - d_grid if d_grid < a else d_grid - b if d_grid > b else 0.0
            cost[k] = cost[k] * fade + miss
            if cost[k] < best_cost - 1e-9:
                best, best_cost = k, cost[k]
        d = hyp[best]
        d_frac = self._seen(d, 0) - self._seen(d, 1)
        residual = d_grid - p * d_frac
        # the surplus's own jitter per reading, from the small residuals only (steps, clouds
        # and our own errors would inflate it and open the gates below): what is "big"
        if abs(residual) < 3.0 * self._noise_w:
            self._noise_w += 0.02 * (abs(residual) - self._noise_w)
            self._noise_w = max(self._noise_w, 1.0)
        big = abs(residual) > 4.0 * self._noise_w + 0.01 * self.configured_w
        min_move = max(MIN_MOVE, NOISE_MOVES * self._noise_w / self.configured_w)
        moves = self._moves
        moves.pop()
        moves.insert(0, abs(self._frac[0] - self._frac[1]) >= 0.5 * min_move)
        pend = self._pending
        self._pending = None
        if pend is not None and self._quiet == 0:
            self._judge(*pend, d_grid, d_frac, 4.0 * self._noise_w + 0.01 * self.configured_w)
        # a step shows in one or two pairs (split by the meter's interval): after a single
        # big pair its end may be in this one; more than two in a row is a wandering surplus
        b = self._big
        suspect = b[0] and (not b[1] or b[2])
        b[2], b[1], b[0] = b[1], b[0], big
        if self._quiet > 0:
            self._quiet -= 1
            return
        busy = sum(moves) > BUSY_MOVES  # chasing clouds: the surplus moves with us
        if not suspect and not busy and abs(d_frac) >= min_move:
            self._pending = (d_grid, d_frac)
            self._pending_span = (self._seen(d, 1), self._seen(d, 0))

    def _closed(self, jump_w: float) -> None:
        """The thermostat closed: the reading rose by what the load draws at the fraction
        held while it was open (two readings back, so a closing split over two intervals
        counts whole; the command follows the surplus then, so it barely moved)."""
        seen = self._frac[: self.max_delay + 1]
        fraction = sum(seen) / len(seen)
        if fraction < MIN_MOVE or max(seen) - min(seen) > 0.1 * fraction:
            return
        ratio = jump_w / fraction
        if LOW * self.configured_w <= ratio <= HIGH * self.configured_w:
            self._add(ratio, fraction, (0.0, fraction))

    def opened(self, jump_w: float, fraction: float) -> None:
        """The thermostat opened (a test confirmed it) while the load drew `fraction`, and
        the export jumped by `jump_w` with it: a clean move from the held fraction to 0."""
        if fraction < MIN_MOVE:
            return
        ratio = jump_w / fraction
        if LOW * self.configured_w <= ratio <= HIGH * self.configured_w:
            self._add(ratio, fraction, (0.0, fraction))

    def _add(self, ratio: float, weight: float, span: tuple[float, float]) -> None:
        """A clean move over the model fractions `span`: for the rating and the curve."""
        self.curve.add(ratio, min(1.0, weight), *span, self._clock_s, WINDOW, MAX_AGE_S,
                       MIN_KEEP)
        self.ratios.append((ratio, min(1.0, weight)))
        self._born.append(self._clock_s)
        while len(self.ratios) > WINDOW or (len(self.ratios) > MIN_KEEP
                                            and self._clock_s - self._born[0] > MAX_AGE_S):
            del self.ratios[0]
            del self._born[0]
        self.observations += 1
        self._update_target()

    def _judge(self, d_grid: float, d_frac: float, next_grid: float, next_frac: float,
               tolerance_w: float) -> None:
        """Take the ratio if the next pair agrees with it (a ramp or a new event would
        show there) and it is a plausible rating at all."""
        ratio = d_grid / d_frac
        lo, hi = LOW * self.configured_w, HIGH * self.configured_w
        if not lo <= ratio <= hi or abs(next_grid - ratio * next_frac) > tolerance_w:
            return
        self._add(ratio, abs(d_frac), self._pending_span)

    def _update_target(self) -> None:
        """Weighted median of the ratios and the prior; confidence from the data's weight
        and how many of them agree within 5 %; `below`: the share of the data's weight
        far under it (the moves say the load draws less, though too few to outvote the
        prior yet)."""
        items = sorted([*self.ratios, (self.configured_w, PRIOR_WEIGHT)])
        total = sum(w for _, w in items)
        median = weighted_median(items)
        data_w = total - PRIOR_WEIGHT
        agree = sum(w for r, w in self.ratios if abs(r - median) <= 0.05 * median)
        self.confidence = (data_w / total) * (agree / data_w if data_w > 0 else 0.0)
        under = sum(w for r, w in self.ratios if r < BELOW * median)
        self.below = under / data_w if data_w > 0 else 0.0
        self._target = median
        self.doubt = self._doubt(median)
        self.curve.update(median)

    def _doubt(self, median: float) -> float:
        """How far off the median may be: the prior's DOUBT combined with the data, whose
        spread about the median (ratios far from it count, a prior outvoting them too)
        shrinks with their number."""
        if not self.ratios:
            return DOUBT
        mad = weighted_median(sorted((abs(r - median) / median, w) for r, w in self.ratios))
        spread = max(0.05, 1.4826 * mad)
        return 1.0 / math.sqrt(1.0 / DOUBT ** 2 + len(self.ratios) / spread ** 2)
