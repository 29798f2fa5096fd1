"""A learned correction of the output curve's shape, per band of the output: a module that
does not follow its model (a phase-fired module with an offset input span, another firing
law) gives more power per step in some bands than in others. Pure; owned by the rating
estimator, which hands it each clean move with the span it covered.

Why it looks like this: the bands are equal fifths of the model's power fraction (each a
range of duty through the configured curve), because the controller's moves are in power.
A clean move from model fraction f0 to f1 answers with the true curve's mean slope over the
span, i.e. the overlap-weighted mean of the band slopes it crosses; so every move, narrow or
wide (a thermostat closing from 0 to 100 % fixes the slopes' mean), is one row of a small
least-squares problem for the five slopes, with a prior at the overall rating (the
estimator's median) and weights that shrink with the residual (iterated, close to a
median: a household step that coincided with a move is outvoted, not averaged in). A
band's factor is its slope over the overall rating, left at 1 (the model) until the moves
that lie mostly inside it weigh enough, and bounded to 0.7-1.3: a wrong factor alone then
makes a gain error of 0.77-1.43x, inside the 0.5-1.5x the controller is tested stable for.
The corrected curve is the integral of the factors, normalised to 1 at full output; the
factors are positive, so it is strictly increasing and its inverse exact and monotone.
Full output draws the overall rating times the factors' mean (`scale`). Moves age out
with the estimator's ratios (the mains voltage drifts), so both compare like with like."""

from __future__ import annotations

from typing import Any

from vzdivert.rtworker.curves import Curve, clamp

BANDS = 5             # equal bands of the model's power fraction (each a duty range)
LOW, HIGH = 0.7, 1.3  # bounds of a band's factor, relative to the overall rating
PRIOR_WEIGHT = 0.3    # the model counts like moves worth 30 % of the output
MIN_WEIGHT = 0.4      # a band's moves must weigh this much before its factor leaves 1
IRLS_ROUNDS = 3       # reweightings per update (from the last fit: one move is new) ...
FRESH_ROUNDS = 12     # ... and from scratch (a restart)
WINDOW = 64           # moves restored at most (the estimator's window decides)


class BandMap:
    """The corrected map between the model's fraction f and the true one (0..1 both):
    piecewise linear with slope `factors[i]` in band i, normalised to 1 at f = 1."""

    def __init__(self, bands: int = BANDS) -> None:
        self.factors = [1.0] * bands
        self._cum = [i / bands for i in range(bands + 1)]  # integral at each band's start
        self.identity = True

    @property
    def scale(self) -> float:
        """Full output over the overall rating: the factors' mean."""
        return self._cum[-1]

    def set(self, factors: list[float]) -> None:
        """New factors (in place, no allocation)."""
        n = len(self.factors)
        cum = self._cum
        identity = True
        for i, g in enumerate(factors):
            self.factors[i] = g
            cum[i + 1] = cum[i] + g / n
            identity = identity and g == 1.0
        self.identity = identity

    def true(self, f: float) -> float:
        """The true power fraction at model fraction f."""
        if not 0.0 < f < 1.0:
            return 1.0 if f >= 1.0 else 0.0  # the ends are exact; NaN is off
        if self.identity:
            return f
        n = len(self.factors)
        i = min(int(f * n), n - 1)
        cum = self._cum
        return (cum[i] + self.factors[i] * (f - i / n)) / cum[-1]

    def model(self, fraction: float) -> float:
        """The model fraction at which the true power fraction is `fraction`."""
        if not 0.0 < fraction < 1.0:
            return 1.0 if fraction >= 1.0 else 0.0
        if self.identity:
            return fraction
        cum = self._cum
        target = fraction * cum[-1]
        n = len(self.factors)
        i = 0
        while i < n - 1 and cum[i + 1] <= target:
            i += 1
        f = i / n + (target - cum[i]) / self.factors[i]
        return 0.0 if f <= 0.0 else 1.0 if f >= 1.0 else f


def _solve(m: list[list[float]], v: list[float]) -> list[float]:
    """m x = v by Gaussian elimination (m is symmetric positive definite: the prior)."""
    n = len(v)
    for k in range(n):
        for i in range(k + 1, n):
            f = m[i][k] / m[k][k]
            if f:
                for j in range(k, n):
                    m[i][j] -= f * m[k][j]
                v[i] -= f * v[k]
    x = [0.0] * n
    for i in range(n - 1, -1, -1):
        x[i] = (v[i] - sum(m[i][j] * x[j] for j in range(i + 1, n))) / m[i][i]
    return x


IDENTITY = BandMap()  # never set: the model as it is


class CurveCorrection(BandMap):
    """Collects moves per band (`add`), computes each band's target factor against the
    overall rating (`update`), and follows it slowly (`follow`), like the rating does."""

    def __init__(self, bands: int = BANDS) -> None:
        super().__init__(bands)
        self.reset()

    def reset(self) -> None:
        self.set([1.0] * len(self.factors))
        self.targets = [1.0] * len(self.factors)
        self._flat = True  # every target at 1
        self._slopes: list[float] | None = None  # the last fit (W per unit), to start from
        # (ratio, weight, f0, f1, ((band, share of the move's span), ...))
        self.moves: list[tuple[float, float, float, float, tuple[tuple[int, float], ...]]] = []
        self._born: list[float] = []

    def add(self, ratio: float, weight: float, f0: float, f1: float, now_s: float,
            window: int, max_age_s: float, min_keep: int) -> None:
        """A clean move over model fractions f0..f1 answered with `ratio` W per unit; kept
        as the estimator keeps its ratios (the same ones, so both see the same voltage)."""
        lo, hi = (f0, f1) if f0 <= f1 else (f1, f0)
        lo, hi = max(0.0, lo), min(1.0, hi)
        if hi - lo <= 0.0:
            return
        n = len(self.factors)
        span = tuple((i, (min(hi, (i + 1) / n) - max(lo, i / n)) / (hi - lo))
                     for i in range(int(lo * n), min(n, int(hi * n) + 1))
                     if min(hi, (i + 1) / n) > max(lo, i / n))
        self.moves.append((ratio, weight, lo, hi, span))
        self._born.append(now_s)
        while len(self.moves) > window or (len(self.moves) > min_keep
                                           and now_s - self._born[0] > max_age_s):
            del self.moves[0]
            del self._born[0]

    def update(self, overall_w: float, rounds: int = IRLS_ROUNDS) -> None:
        """Each band's slope from all moves at once: a move's ratio is the mean of the
        slopes it spans, weighted by overlap, so the slopes are a small least-squares
        problem, with a prior pulling each slope to the overall rating and weights that
        shrink with the residual (iterated: close to a median, so a coinciding step is
        outvoted, not averaged in). A band's factor is its slope over the overall
        rating, once its moves weigh enough."""
        n = len(self.factors)
        cover = [0.0] * n
        for _, weight, _, _, span in self.moves:
            for i, a in span:
                if a >= 0.5:  # mostly in this band: tells its slope, not just the mean
                    cover[i] += weight * a
        slopes = self._slopes or [overall_w] * n
        floor = 0.02 * overall_w
        for _ in range(rounds):
            m = [[0.0] * n for _ in range(n)]
            v = [0.0] * n
            for i in range(n):  # the prior is one more observation, reweighted alike
                w = PRIOR_WEIGHT * floor / max(abs(slopes[i] - overall_w), floor)
                m[i][i] = w
                v[i] = w * overall_w
            for ratio, weight, _, _, span in self.moves:
                res = ratio
                for i, a in span:
                    res -= a * slopes[i]
                w = weight * floor / max(abs(res), floor)  # L1-like: a median, not a mean
                for i, a in span:
                    v[i] += w * a * ratio
                    row = m[i]
                    for j, b in span:
                        row[j] += w * a * b
            slopes = _solve(m, v)
        self._slopes = slopes
        for i in range(n):
            g = slopes[i] / overall_w if cover[i] >= MIN_WEIGHT else 1.0
            self.targets[i] = clamp(g, LOW, HIGH)
        self._flat = all(t == 1.0 for t in self.targets)

    def follow(self, a: float) -> None:
        """Move the factors a part `a` (0..1) of the way to their targets."""
        if self.identity and self._flat:
            return
        n = len(self.factors)
        cum = self._cum
        identity = True
        for i in range(n):
            g = self.factors[i]
            t = self.targets[i]
            g = t if abs(t - g) < 1e-6 else g + a * (t - g)
            self.factors[i] = g
            cum[i + 1] = cum[i] + g / n
            identity = identity and g == 1.0
        self.identity = identity

    # -- persistence -------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"bands": len(self.factors), "factors": [round(g, 4) for g in self.factors],
                "moves": [[round(r, 2), round(w, 5), round(lo, 4), round(hi, 4)]
                          for r, w, lo, hi, _ in self.moves]}

    def load_state(self, data: Any, overall_w: float, lo_w: float, hi_w: float,
                   now_s: float) -> bool:
        """Take saved moves (and follow them at once); False (nothing changed) if they are
        malformed or for another number of bands."""
        try:
            if int(data["bands"]) != len(self.factors):
                return False
            moves = [(float(r), float(w), float(a), float(b))
                     for r, w, a, b in data["moves"]][-WINDOW:]
        except (KeyError, TypeError, ValueError):
            return False
        if any(not (lo_w <= r <= hi_w and 0 < w <= 1 and 0 <= a < b <= 1)
               for r, w, a, b in moves):
            return False
        self.moves, self._born = [], []
        for r, w, a, b in moves:
            self.add(r, w, a, b, now_s, WINDOW, 0.0, WINDOW)
        self._slopes = None
        self.update(overall_w, FRESH_ROUNDS)
        self.set(self.targets)
        return True


class CorrectedCurve(Curve):
    """The configured curve seen through the band map its owner uses now (the learned
    correction, or the model as it is): what the worker converts duty and power with."""

    def __init__(self, base: Curve, owner: Any) -> None:
        self.base = base.base if isinstance(base, CorrectedCurve) else base
        self.name = self.base.name
        self._owner = owner  # has `band_map` (an AdaptiveController)

    def power_fraction(self, duty: float) -> float:
        return self._owner.band_map.true(self.base.power_fraction(duty))

    def duty(self, fraction: float) -> float:
        return self.base.duty(self._owner.band_map.model(fraction))

    def describe(self) -> str:
        return self.base.describe()
