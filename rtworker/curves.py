"""Output curves: the load's power fraction as a function of PWM duty and its inverse, so
the controller can think in watts while the output speaks duty. Pure; tables are built
once, so a per-sample `duty()` is one bisection plus one interpolation."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

from vzdivert.config import KEYS, MIN_DUTY_STEP, check_table_points

CURVES: tuple[str, ...] = KEYS["load.curve"].choices or ()
E1_DEFAULT, E2_DEFAULT = KEYS["load.curve_e1"].default, KEYS["load.curve_e2"].default
_TWO_PI = 2.0 * math.pi


def clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _clamp01(x: float) -> float:
    return 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x


class Curve:
    """power_fraction(duty) and its inverse duty(fraction), both on [0, 1]."""

    name = "curve"

    def power_fraction(self, duty: float) -> float:
        raise NotImplementedError

    def duty(self, fraction: float) -> float:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class LinearCurve(Curve):
    """A solid-state relay with burst firing: power is proportional to duty."""

    name = "linear"

    def power_fraction(self, duty: float) -> float:
        return _clamp01(duty)

    def duty(self, fraction: float) -> float:
        return _clamp01(fraction)


INVERSE_TOL = 1e-4  # of rating: an inverse off by more than this is refined


class _TabulatedInverse(Curve):
    """Inverse by a table of the forward curve, with nodes uniform in duty (for flat parts)
    and in power (for steep parts, found by bisection): linear interpolation between
    nodes h apart errs by at most h**2 * max|P''| / 8 in power."""

    def __init__(self, nodes: int):
        top = self.power_fraction(1.0)
        duties = {i / nodes for i in range(nodes + 1)}
        for j in range(1, nodes):
            target, lo, hi = top * j / nodes, 0.0, 1.0
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if self.power_fraction(mid) < target else (lo, mid)
            duties.add(hi)
        self._duties = sorted(duties)
        self._powers = [self.power_fraction(d) for d in self._duties]
        for i in range(1, len(self._powers)):  # guard against rounding: keep it monotone
            self._powers[i] = max(self._powers[i], self._powers[i - 1])

    def duty(self, fraction: float) -> float:
        powers = self._powers
        if fraction <= powers[0]:
            return 0.0  # "off" must be really off, also where the curve is flat near 0
        if fraction >= powers[-1]:
            return 1.0
        i = bisect_left(powers, fraction)  # powers[i-1] < fraction <= powers[i]
        p0, p1 = powers[i - 1], powers[i]
        d0, d1 = self._duties[i - 1], self._duties[i]
        d = d0 + (d1 - d0) * (fraction - p0) / (p1 - p0)
        if abs(self.power_fraction(d) - fraction) <= INVERSE_TOL:
            return d
        for _ in range(30):  # a very steep, curved segment (a measured table): bisect it
            d = 0.5 * (d0 + d1)
            p = self.power_fraction(d)
            if abs(p - fraction) <= INVERSE_TOL:
                break
            d0, d1 = (d, d1) if p < fraction else (d0, d)
        return d


class PfcCurve(_TabulatedInverse):
    """A phase-fired controller whose firing angle a is linear in duty (a = pi*(1-duty)):
    P/Pmax = 1 - a/pi + sin(2a)/(2pi) = duty - sin(2 pi duty)/(2 pi). Inverse from 2x256
    nodes: max error below 2pi/8/256**2 = 1.2e-5 of rating, far inside the 0.1 % asked."""

    name = "pfc"

    def __init__(self) -> None:
        super().__init__(256)

    def power_fraction(self, duty: float) -> float:
        d = _clamp01(duty)
        return _clamp01(d - math.sin(_TWO_PI * d) / _TWO_PI)


class ParametricCurve(Curve):
    """The original project's mapping: x = acos(1 - 2u)/pi, duty = (1 - (1 - x)**e1)**e2,
    hand-tuned on one Kemo module. Both directions are closed-form."""

    name = "parametric"

    def __init__(self, e1: float = E1_DEFAULT, e2: float = E2_DEFAULT):
        if not (e1 > 0 and e2 > 0):
            raise ValueError(f"parametric curve: exponents must be > 0, got e1={e1}, e2={e2}")
        self.e1, self.e2 = e1, e2

    def duty(self, fraction: float) -> float:
        u = _clamp01(fraction)
        x = math.acos(1.0 - 2.0 * u) / math.pi
        return _clamp01((1.0 - (1.0 - x) ** self.e1) ** self.e2)

    def power_fraction(self, duty: float) -> float:
        y = _clamp01(duty)
        x = 1.0 - (1.0 - y ** (1.0 / self.e2)) ** (1.0 / self.e1)
        return _clamp01((1.0 - math.cos(math.pi * x)) / 2.0)

    def describe(self) -> str:
        return f"parametric (e1 {self.e1:g}, e2 {self.e2:g})"


def _pchip_slopes(xs: Sequence[float], ys: Sequence[float]) -> list[float]:
    """Fritsch-Carlson slopes: the Hermite interpolant through monotone data stays monotone."""
    n = len(xs)
    h = [xs[i + 1] - xs[i] for i in range(n - 1)]
    delta = [(ys[i + 1] - ys[i]) / h[i] for i in range(n - 1)]
    if n == 2:
        return [delta[0], delta[0]]
    m = [0.0] * n
    for i in range(1, n - 1):
        if delta[i - 1] * delta[i] <= 0:
            m[i] = 0.0
        else:  # weighted harmonic mean (Fritsch-Butland), as in scipy's PCHIP
            w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            m[i] = (w1 + w2) / (w1 / delta[i - 1] + w2 / delta[i])
    ends = ((0, h[0], h[1], delta[0], delta[1]),
            (n - 1, h[-1], h[-2], delta[-1], delta[-2]))
    for i, h0, h1, d0, d1 in ends:  # one-sided three-point estimate, kept shape-preserving
        end = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
        if end * d0 <= 0:
            end = 0.0
        elif d0 * d1 <= 0 and abs(end) > abs(3 * d0):
            end = 3 * d0
        m[i] = end
    return m


class TableCurve(_TabulatedInverse):
    """Measured calibration points (duty, fraction), monotone PCHIP between them; the
    inverse comes from a 512-node table of that interpolant."""

    name = "table"

    def __init__(self, points: Sequence[Sequence[float]]):
        pts = check_table_points(points)
        if pts[0][0] >= MIN_DUTY_STEP:
            pts.insert(0, (0.0, 0.0))
        else:
            pts[0] = (0.0, 0.0)
        if pts[-1][0] < 1.0:
            pts.append((1.0, pts[-1][1]))
        self._xs = [p[0] for p in pts]
        self._ys = [p[1] for p in pts]
        self._ms = _pchip_slopes(self._xs, self._ys)
        self.points = pts
        super().__init__(512)

    def power_fraction(self, duty: float) -> float:
        d = _clamp01(duty)
        xs = self._xs
        i = min(max(bisect_right(xs, d) - 1, 0), len(xs) - 2)
        h = xs[i + 1] - xs[i]
        t = (d - xs[i]) / h
        t2, t3 = t * t, t * t * t
        y = ((2 * t3 - 3 * t2 + 1) * self._ys[i] + (t3 - 2 * t2 + t) * h * self._ms[i]
             + (-2 * t3 + 3 * t2) * self._ys[i + 1] + (t3 - t2) * h * self._ms[i + 1])
        return _clamp01(y)

    def describe(self) -> str:
        return f"table ({len(self.points)} points)"


def make_curve(name: str, **params: Any) -> Curve:
    """A curve by name: linear, pfc, parametric (e1, e2) or table (points)."""
    if name == "linear":
        return LinearCurve()
    if name == "pfc":
        return PfcCurve()
    if name == "parametric":
        return ParametricCurve(params.get("e1", E1_DEFAULT), params.get("e2", E2_DEFAULT))
    if name == "table":
        return TableCurve(params.get("points", ()))
    raise ValueError(f"unknown curve {name!r} (allowed: {', '.join(CURVES)})")


def curve_from_config(cfg: Any) -> Curve:
    """The curve `[load] curve` selects, with its settings from `[load]`."""
    load = cfg.load
    return make_curve(load.curve, e1=load.curve_e1, e2=load.curve_e2, points=load.curve_points)
