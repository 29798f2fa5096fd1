"""Output curves: forward formulas, exact inverses (round trips, Hypothesis), monotone
table interpolation, validation, selection from the config; the learned per-band correction
keeps every curve monotone and within its bounds."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vzdivert.config import validate
from vzdivert.rtworker.curve_correction import (
    HIGH,
    LOW,
    BandMap,
    CorrectedCurve,
    CurveCorrection,
)
from vzdivert.rtworker.curves import (
    CURVES,
    ParametricCurve,
    PfcCurve,
    TableCurve,
    curve_from_config,
    make_curve,
)

fractions = st.floats(min_value=0.0, max_value=1.0)
TABLE = [[0.0, 0.0], [0.1, 0.0], [0.3, 0.15], [0.5, 0.45], [0.7, 0.8], [0.9, 0.97], [1.0, 1.0]]


def all_curves() -> list:
    return [make_curve("linear"), make_curve("pfc"), make_curve("parametric"),
            make_curve("parametric", e1=0.5, e2=1.3), make_curve("table", points=TABLE)]


def test_pfc_is_the_phase_angle_power_curve() -> None:
    """Domain §3: firing angle a = pi*(1-duty), P/Pmax = 1 - a/pi + sin(2a)/(2 pi)."""
    curve = PfcCurve()
    for i in range(101):
        duty = i / 100
        a = math.pi * (1 - duty)
        assert curve.power_fraction(duty) == pytest.approx(
            1 - a / math.pi + math.sin(2 * a) / (2 * math.pi), abs=1e-12)
    assert curve.power_fraction(0.5) == pytest.approx(0.5)
    assert curve.power_fraction(0.1) < 0.01  # flat near the ends: the S-curve


def test_parametric_is_the_originals_mapping() -> None:
    curve = ParametricCurve()
    for u in (0.0, 0.1, 0.37, 0.5, 0.9, 1.0):
        x = math.acos(1 - 2 * u) / math.pi
        assert curve.duty(u) == pytest.approx((1 - (1 - x) ** 0.67) ** 0.88, abs=1e-12)


@settings(max_examples=300)
@given(fraction=fractions, which=st.integers(0, 4))
def test_inverse_round_trips_within_0_1_percent(fraction: float, which: int) -> None:
    curve = all_curves()[which]
    duty = curve.duty(fraction)
    assert 0.0 <= duty <= 1.0
    assert curve.power_fraction(duty) == pytest.approx(fraction, abs=1e-3)


@settings(max_examples=200)
@given(a=fractions, b=fractions, which=st.integers(0, 4))
def test_curves_are_monotone(a: float, b: float, which: int) -> None:
    curve = all_curves()[which]
    lo, hi = min(a, b), max(a, b)
    assert curve.power_fraction(lo) <= curve.power_fraction(hi) + 1e-12
    assert curve.duty(lo) <= curve.duty(hi) + 1e-12


def test_ends_are_exact() -> None:
    for curve in all_curves():
        assert curve.duty(0.0) == 0.0, curve.name  # off is really off
        assert curve.duty(1.0) == 1.0, curve.name
        assert curve.duty(-0.5) == 0.0 and curve.duty(1.5) == 1.0
        assert curve.power_fraction(0.0) == 0.0 and curve.power_fraction(1.0) == 1.0


def test_table_passes_through_its_points() -> None:
    curve = TableCurve(TABLE)
    for duty, fraction in TABLE:
        assert curve.power_fraction(duty) == pytest.approx(fraction, abs=1e-12)
    assert curve.duty(0.0) == 0.0  # flat start (dead zone): fraction 0 is duty 0
    assert curve.duty(0.45) == pytest.approx(0.5, abs=1e-3)


@st.composite
def monotone_points(draw: st.DrawFn) -> list[list[float]]:
    n = draw(st.integers(2, 9))
    duties = sorted(set(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))))
    assume(len(duties) >= 2 and min(b - a for a, b in pairwise(duties)) > 1e-3)
    start = 0.0 if duties[0] < 1e-3 else draw(st.floats(0, 0.5))
    steps = draw(st.lists(st.floats(0, 1), min_size=len(duties) - 1, max_size=len(duties) - 1))
    total = sum(steps)
    assume(total > 1e-3)
    level, points = start, [[duties[0], start]]
    for duty, step in zip(duties[1:], steps, strict=True):
        level = min(1.0, level + (1.0 - start) * step / total)
        points.append([duty, level])
    return points


@settings(max_examples=100, deadline=None)
@given(points=monotone_points(), probe=st.lists(fractions, min_size=20, max_size=20))
def test_table_interpolation_is_monotone_and_invertible(points: list, probe: list) -> None:
    curve = TableCurve(points)
    grid = [curve.power_fraction(i / 200) for i in range(201)]
    assert all(b >= a - 1e-12 for a, b in pairwise(grid))  # PCHIP keeps it monotone
    top = curve.power_fraction(1.0)
    for fraction in probe:
        target = fraction * top
        assert curve.power_fraction(curve.duty(target)) == pytest.approx(target, abs=1e-3)


@pytest.mark.parametrize("points, fragment", [
    ([], "at least 2"),
    ([[0.5, 0.5]], "at least 2"),
    ([[0.2, 0.1], [0.1, 0.5]], "duty must increase"),
    ([[0.1, 0.5], [0.2, 0.4]], "must not decrease"),
    ([[0.1, 0.5], [1.2, 0.9]], "in [0, 1]"),
    ([[0.1, 0.2], [0.5, 0.2]], "never rises"),
    ([[0.0, 0.2], [0.5, 0.5]], "must be off"),
    ([[0.1, "x"], [0.5, 0.2]], "[duty, fraction]"),
    ([[0.1, True], [0.5, 0.2]], "[duty, fraction]"),
])
def test_bad_table_points_refused(points: list, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        TableCurve(points)


def test_make_curve_names() -> None:
    assert {make_curve(n, points=TABLE).name for n in CURVES} == set(CURVES)
    with pytest.raises(ValueError, match="unknown curve"):
        make_curve("cubic")
    with pytest.raises(ValueError, match="exponents"):
        make_curve("parametric", e1=0)


def test_curve_from_config() -> None:
    assert curve_from_config(validate({})).name == "linear"
    cfg = validate({"load": {"curve": "parametric", "curve_e1": 0.5, "curve_e2": 1.2}})
    curve = curve_from_config(cfg)
    assert isinstance(curve, ParametricCurve) and (curve.e1, curve.e2) == (0.5, 1.2)
    cfg = validate({"load": {"curve": "table", "curve_points": TABLE}})
    assert curve_from_config(cfg).power_fraction(0.5) == pytest.approx(0.45)
    assert "table" in curve_from_config(cfg).describe()


factors = st.lists(st.floats(min_value=0.7, max_value=1.3), min_size=5, max_size=5)


class Owner:
    """What CorrectedCurve asks for the map in use (in the worker: the controller)."""

    def __init__(self, band_map: BandMap) -> None:
        self.band_map = band_map


@settings(max_examples=200)
@given(gains=factors, a=fractions, b=fractions, which=st.integers(0, 4))
def test_corrected_curve_is_monotone_and_invertible(gains: list, a: float, b: float,
                                                     which: int) -> None:
    """Any learned band factors: the corrected curve stays monotone both ways, keeps its
    ends and round-trips like the model does."""
    band_map = BandMap()
    band_map.set(gains)
    curve = CorrectedCurve(all_curves()[which], Owner(band_map))
    lo, hi = min(a, b), max(a, b)
    assert band_map.true(lo) <= band_map.true(hi) + 1e-12
    assert band_map.model(lo) <= band_map.model(hi) + 1e-12
    assert band_map.model(band_map.true(a)) == pytest.approx(a, abs=1e-9)
    assert curve.power_fraction(lo) <= curve.power_fraction(hi) + 1e-12
    assert curve.duty(lo) <= curve.duty(hi) + 1e-12
    assert curve.power_fraction(curve.duty(a)) == pytest.approx(a, abs=1e-3)
    assert curve.duty(0.0) == 0.0 and curve.duty(1.0) == 1.0
    assert curve.power_fraction(0.0) == 0.0 and curve.power_fraction(1.0) == 1.0


@settings(max_examples=100, deadline=None)
@given(moves=st.lists(st.tuples(st.floats(1000.0, 3000.0), st.floats(0.01, 1.0),
                                fractions, fractions), max_size=40),
       overall=st.floats(1000.0, 3000.0))
def test_learned_factors_stay_within_their_bounds(moves: list, overall: float) -> None:
    corr = CurveCorrection()
    for k, (ratio, weight, f0, f1) in enumerate(moves):
        corr.add(ratio, weight, f0, f1, float(k), 48, 900.0, 8)
        corr.update(overall)
        corr.follow(0.5)
        assert all(LOW <= g <= HIGH for g in corr.targets)
        assert all(LOW <= g <= HIGH for g in corr.factors)
        assert corr.true(0.0) == 0.0 and corr.true(1.0) == pytest.approx(1.0)
        assert all(x < y for x, y in pairwise(corr.true(i / 20) for i in range(21)))
