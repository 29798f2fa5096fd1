"""The control law on the house simulator: convergence after steps for both curves and
0/1 sample of meter delay, thermostat saturation without a burst, rate independence,
bumpless parameter changes, and output bounds under arbitrary input (Hypothesis)."""

from __future__ import annotations

import dataclasses
import math
import random
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vzdivert.config import validate
from vzdivert.plant import House, Scenario
from vzdivert.rtworker.adaptive import AdaptiveController
from vzdivert.rtworker.controller import Controller, ControlParams, params_from_config
from vzdivert.rtworker.curves import make_curve

SETTLE_SAMPLES = 5        # after a step with the true rating: within SETTLE_BAND_W by then
SETTLE_SAMPLES_RATED = 10  # ... with the rating off by -30 % .. +30 %
SETTLE_BAND_W = 20.0

STEPS = Scenario("steps", "quiet house, load steps", duration_s=160, pv_w=1700, base_w=300,
                 steps=((0, 0), (40.3, 900), (80.6, 0), (120.2, 500)), meter_noise_w=0)


def run(scenario: Scenario, actuator: str = "pfc", delay: float = 1.0, dt_s: float = 1.0,
        rating_error: float = 1.0, params: ControlParams | None = None, seed: int = 1
        ) -> tuple[list[tuple[float, float, float, bool]], House]:
    """Closed loop with the worker's controller (learning the rating): [(t, reading,
    heater_w, saturated)] per sample, and the house."""
    house = House(scenario, seed=seed, dt_s=dt_s, meter_delay_samples=delay,
                  actuator=actuator, rating_w=2000, rating_error=rating_error)
    ctl = AdaptiveController(params or ControlParams())
    curve = make_curve(actuator)
    grid_w, out = house.step(0.0), []
    while not house.finished:
        grid_w = house.step(curve.duty(ctl.step(grid_w, dt_s)))
        out.append((house.t_s, grid_w, house.heater_w, ctl.saturated))
    return out, house


def after(trace: list, t0: float, t1: float) -> list[float]:
    return [y for t, y, _, _ in trace if t0 < t <= t1 + 1e-9]


@pytest.mark.parametrize("actuator", ["linear", "pfc"])
@pytest.mark.parametrize("delay", [0, 1])
@pytest.mark.parametrize("rating_error, samples", [
    (1.0, SETTLE_SAMPLES), (0.7, SETTLE_SAMPLES_RATED), (1.3, SETTLE_SAMPLES_RATED)])
def test_converges_after_load_steps(actuator: str, delay: int, rating_error: float,
                                    samples: int) -> None:
    trace, house = run(STEPS, actuator, delay, rating_error=rating_error)
    events = [*house.events_s, STEPS.duration_s]
    assert len(events) == 4
    for t_event, t_next in pairwise(events):
        readings = after(trace, t_event, t_next)
        assert readings, "no readings between events"
        settled = readings[samples:]
        assert settled and max(abs(y) for y in settled) <= SETTLE_BAND_W, (t_event, readings)


@pytest.mark.parametrize("delay", [0, 0.5, 1])
@pytest.mark.parametrize("gain_error", [0.7, 1.0, 1.3])
def test_step_response_does_not_ring(delay: float, gain_error: float) -> None:
    """With the true rating the correction is monotone: the error never changes sign by
    more than the band after a step (no overshoot, no hunting); with the rating 30 % off
    the first overshoot of a step is at most 30 %."""
    trace, house = run(STEPS, "pfc", delay, rating_error=gain_error)
    for t_event, t_next in pairwise([*house.events_s, STEPS.duration_s]):
        readings = after(trace, t_event, t_next)
        first = next(y for y in readings if abs(y) > SETTLE_BAND_W)
        step_w = max(abs(y) for y in readings)
        overshoot = SETTLE_BAND_W + max(0.0, gain_error - 1.0) * step_w
        assert all(math.copysign(1.0, first) * y >= -overshoot for y in readings), readings


THERMOSTAT = Scenario("thermo", "steady 800 W surplus, thermostat cycles", duration_s=400,
                      pv_w=1100, base_w=300, thermostat_closed_s=100, thermostat_open_s=60,
                      meter_noise_w=2)


@pytest.mark.parametrize("actuator", ["linear", "pfc"])
@pytest.mark.parametrize("delay", [0, 1])
@pytest.mark.parametrize("gain_error", [0.7, 1.0, 1.3])
def test_thermostat_open_and_close_without_burst(actuator: str, delay: int,
                                                 gain_error: float) -> None:
    trace, house = run(THERMOSTAT, actuator, delay, rating_error=gain_error)
    opened, closed = house.events_s[0::2], house.events_s[1::2]
    assert len(opened) >= 2 and len(closed) >= 2
    for t_open, t_close in zip(opened, closed, strict=False):
        flags = [sat for t, _, _, sat in trace if t_open + 6 < t <= t_close]
        assert flags and all(flags), "saturation not reported while the thermostat is open"
        readings = after(trace, t_close, t_close + 20)
        # the load comes back at the surplus: no import burst, at most a partial sample
        assert max(readings) <= 100.0, readings
        assert not any(sat for t, _, _, sat in trace if t_close + 4 < t <= t_close + 20)
    # the original's law: ~1 Wh here; the first 10 s (the first move meets a rating not
    # learned yet: 30 % too much for two readings) do not count. Meter noise alone spreads
    # this over 0.086-0.106 Wh across seeds (1.3x, one reading of delay)
    import_wh = sum(max(0.0, y) for t, y, _, _ in trace if t > 10.0) / 3600.0
    assert import_wh < 0.11


@pytest.mark.parametrize("draws", [0.86, 1.14])
def test_a_closing_is_seen_though_the_rating_is_off(draws: float) -> None:
    """The load draws 14 % less or more than the rating the controller runs on (a learned
    rating lags a mains voltage that drifts by +-10 %): a closing thermostat still shows
    as the reading rising by about the commanded power, and is recognised at once, not
    by the next probing dip (which met the closing and exported the load's power)."""
    ctl = Controller(ControlParams(rating_w=2400.0))
    fraction, shown, commands = 0.0, -1800.0, []
    for i in range(212):
        closed = i >= 200  # open from the start: found by the start-up test
        drawn = fraction * 2400.0 * draws if closed else 0.0
        reading = drawn - 1800.0 + (7.0 if i % 2 else -7.0)
        fraction = ctl.step(shown, 1.0)
        shown = reading
        if i == 199:
            assert ctl.saturated
        if i >= 202:
            assert not ctl.saturated
            commands.append(ctl.command_w * draws)
    assert min(commands) > 1400.0


def test_thermostat_opening_at_full_power_is_probed() -> None:
    """At 100 % more command cannot show anything: a sharp jump of export by the load's
    power triggers a dip that reveals it; the closing then meets the surplus."""
    sc = dataclasses.replace(THERMOSTAT, pv_w=2600, base_w=300)  # surplus 2.3 kW > rating
    trace, house = run(sc, "pfc", 1)
    t_open, t_close = house.events_s[0], house.events_s[1]
    assert all(sat for t, _, _, sat in trace if t_open + 8 < t <= t_close)
    assert max(after(trace, t_close, t_close + 20)) <= 100.0


@pytest.mark.parametrize("actuator", ["linear", "pfc"])
@pytest.mark.parametrize("mains_swing", [0.0, 0.1])
def test_thermostat_at_full_power_told_from_steps_without_dips(actuator: str,
                                                                mains_swing: float) -> None:
    """The heater draws less than the surplus (0.7x its rating): once the meter showed two
    openings as steps of the load's power, the steps tell openings and closings and no dip
    costs energy while the thermostat is closed, also while the mains voltage drifts."""
    sc = dataclasses.replace(THERMOSTAT, duration_s=1500, pv_w=2100, base_w=300,
                             thermostat_closed_s=90, thermostat_open_s=40,
                             mains_swing=mains_swing)
    trace, house = run(sc, actuator, 1, rating_error=0.7)
    events = house.events_s
    closed = [(events[i], events[i + 1] if i + 1 < len(events) else sc.duration_s)
              for i in range(1, len(events), 2)]
    assert len(closed) >= 8
    for t_close, t_open in closed:
        if t_close < 400.0:
            continue
        drawn = [heater for t, _, heater, _ in trace if t_close + 4 < t <= t_open]
        assert drawn and all(b >= 0.98 * a for a, b in pairwise(drawn)), (t_close, drawn)
    for t_open, t_close in zip(events[0::2], events[1::2], strict=False):
        assert all(sat for t, _, _, sat in trace if t_open + 8 < t <= t_close)


def test_unplugged_load_reported_and_command_follows_surplus() -> None:
    sc = Scenario("unplugged", "heater draws nothing", duration_s=60, pv_w=1300, base_w=300,
                  meter_noise_w=2)
    house = House(sc, seed=2, actuator="linear", rating_w=2000, rating_error=0.0)
    ctl = Controller(ControlParams())
    grid_w = house.step(0.0)
    for _ in range(60):
        grid_w = house.step(ctl.step(grid_w, 1.0))
    assert ctl.saturated
    assert ctl.command_w == pytest.approx(1000, abs=30)  # the surplus, not a wound-up 100 %


def test_load_plugged_back_in_is_recognised() -> None:
    ctl = Controller(ControlParams())
    surplus, drawing = 1000.0, False
    heater, grid_w = 0.0, -surplus
    for k in range(80):
        drawing = k >= 40
        fraction = ctl.step(grid_w, 1.0)
        grid_w = (heater if drawing else 0.0) - surplus  # one sample of meter delay
        heater = fraction * 2000
        if k == 39:
            assert ctl.saturated
    assert not ctl.saturated
    assert abs(grid_w) < 5.0


@pytest.mark.parametrize("delay, readings_per_step", [(0, 1), (1, 2)])
def test_learns_a_delay_free_meter(delay: int, readings_per_step: int) -> None:
    """Load steps every 5 readings: a meter without delay is corrected after the first
    reading that shows a step (once the data have shown it has no delay), a meter with one
    reading of delay after two, like the oracle."""
    rng = random.Random(4)
    ctl = Controller(ControlParams())
    heaters, surplus_w, errors = [0.0, 0.0], 1000.0, []
    for k in range(200):
        if k % 5 == 0:
            surplus_w = min(1900.0, max(100.0, surplus_w + rng.choice([-400, -250, 250, 400])))
        grid_w = heaters[-1 - delay] - surplus_w
        errors.append(grid_w)
        heaters.append(ctl.step(grid_w, 1.0) * 2000)
    for k in range(150, 200, 5):  # after learning
        assert abs(errors[k]) >= 250 - 1e-6
        assert all(abs(e) < 1e-6 for e in errors[k + readings_per_step:k + 5]), errors[k:k + 5]


@pytest.mark.parametrize("delay", [0, 1])
def test_a_step_split_over_two_readings_keeps_the_meter_delay_free(delay: int) -> None:
    """Household steps of 1.4-1.8 kW at a random point inside a meter interval: one reading
    shows part of the step, the next the rest. That second reading looks smoother with a
    delay assumed; a meter known to have none is still answered at once (the reading after
    it is on target, as the oracle's would be; deciding on the last reading's evidence
    alone, 22 of these 30 steps were off by 0.2-0.9 kW for one to four readings more), and
    a meter with one reading of delay is still treated as late (on target a reading later,
    no swinging)."""
    rng = random.Random(4)
    ctl = Controller(ControlParams())
    heaters, level, errors = [0.0, 0.0], 1000.0, []
    shows = [-level, -level]  # what each interval's meter reading is, before the heater
    for k in range(400):
        new = level
        if k % 10 == 5:
            new = (1800.0 if level < 1000.0 else 200.0) + rng.uniform(-100.0, 100.0)
        part = rng.uniform(0.3, 0.7) if new != level else 1.0  # of the interval before it
        shows.append(-(part * level + (1 - part) * new))
        level = new
        grid_w = heaters[-1 - delay] + shows[-1 - delay]
        errors.append(grid_w)
        heaters.append(ctl.step(grid_w, 1.0) * 2000)
    for k in range(105 + delay, 400, 10):  # k: the reading that shows a step's first part
        assert abs(errors[k]) > 300 and abs(errors[k + 1]) > 300  # ... and the rest
        assert all(abs(e) < 1e-6 for e in errors[k + 2 + delay:k + 10]), errors[k:k + 10]


def test_same_trajectory_in_time_at_1hz_and_4hz() -> None:
    """Weather and appliances are the same at both rates; with one sample of delay the
    faster meter only helps. Compare the load's power at every whole second."""
    sc = Scenario("ramps", "clouds and steps", duration_s=300, pv_w=2600, cloud_gap_s=40,
                  cloud_len_s=30, cloud_texture=0.0, base_w=400,
                  steps=((0, 0), (70.3, 700), (150.6, 0)), meter_noise_w=1)
    slow, _ = run(sc, "pfc", 1, dt_s=1.0, rating_error=0.9)
    fast, _ = run(sc, "pfc", 1, dt_s=0.25, rating_error=0.9)
    fast_at = {round(t, 2): heater for t, _, heater, _ in fast}
    diffs = [abs(heater - fast_at[round(t, 2)]) for t, _, heater, _ in slow]
    assert len(diffs) >= 290
    diffs.sort()
    assert diffs[len(diffs) // 2] <= 20.0     # most of the time within 1 % of rating
    assert diffs[int(0.9 * len(diffs))] <= 250.0  # ramps and steps: the 1 s loop is later


@pytest.mark.parametrize("param", ["response_up_s", "slew_w_per_s"])
def test_time_constants_are_in_seconds(param: str) -> None:
    """A time constant or slew limit gives the same ramp in time at 1 Hz and 4 Hz."""
    value = {"response_up_s": 3.0, "slew_w_per_s": 200.0}[param]
    params = dataclasses.replace(ControlParams(), **{param: value})

    def command_at_whole_seconds(dt_s: float) -> list[float]:
        ctl, out, heater = Controller(params), [], 0.0
        for k in range(int(10 / dt_s)):
            heater = ctl.step(heater - 1500.0, dt_s) * 2000  # delay-free plant
            if abs(((k + 1) * dt_s) % 1.0) < 1e-9:
                out.append(heater)
        return out

    slow, fast = command_at_whole_seconds(1.0), command_at_whole_seconds(0.25)
    assert len(slow) == len(fast) == 10
    for a, b in zip(slow, fast, strict=True):
        assert a == pytest.approx(b, abs=0.03 * 1500)
    assert slow[0] < 1000 and slow[-1] > 1400  # it really is a ramp, and it gets there


def test_bumpless_parameter_change() -> None:
    ctl = Controller(ControlParams())
    heater = 0.0
    for _ in range(10):
        fraction = ctl.step(heater - 900.0, 1.0)
        heater = fraction * 2000
    assert heater == pytest.approx(900, abs=1)
    before = fraction
    ctl.update_params(ControlParams(rating_w=2500, response_up_s=5, response_down_s=2,
                                    deadband_w=10, slew_w_per_s=100, max_delay_samples=2,
                                    saturation_w=300))
    for _ in range(5):  # the true power at this fraction did not change: nor does the output
        assert ctl.step(heater - 900.0, 1.0) == pytest.approx(before, abs=1e-9)
    ctl.update_params(ControlParams(target_w=-100))
    assert ctl.step(heater - 900.0, 1.0) * 2000 == pytest.approx(heater - 100, abs=1)


def test_reset_restarts_from_zero() -> None:
    ctl = Controller(ControlParams())
    for _ in range(5):
        ctl.step(-1500.0, 1.0)
    assert ctl.command_w > 1000
    ctl.reset()
    assert ctl.command_w == 0.0 and not ctl.saturated
    # the output was off while the data were stale, so the reading is the whole surplus
    assert ctl.step(-700.0, 1.0) * 2000 == pytest.approx(700, abs=1)


def test_deadband_holds_small_errors() -> None:
    ctl = Controller(ControlParams(deadband_w=30))
    heater = 0.0
    for _ in range(5):
        heater = ctl.step(heater - 1000.0, 1.0) * 2000
    for noise in (20.0, -25.0, 10.0, -5.0):
        assert ctl.step(heater - 1000.0 + noise, 1.0) * 2000 == pytest.approx(heater)


def test_params_from_config() -> None:
    cfg = validate({"control": {"target_w": -15, "deadband_w": 5, "max_delay_samples": 2},
                    "load": {"rating_w": 1650}})
    p = params_from_config(cfg)
    assert (p.target_w, p.deadband_w, p.max_delay_samples, p.rating_w) == (-15, 5, 2, 1650)
    defaults = params_from_config(validate({}))
    assert defaults == ControlParams(rating_w=2000.0)  # schema defaults = tuned defaults


def test_invalid_params_refused() -> None:
    with pytest.raises(ValueError, match="rating_w"):
        ControlParams(rating_w=0)
    with pytest.raises(ValueError, match="max_delay_samples"):
        ControlParams(max_delay_samples=-1)


readings = st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
                     st.sampled_from([math.nan, math.inf, -math.inf, 1e12]))
intervals = st.one_of(st.floats(0.0, 30.0), st.sampled_from([math.nan, math.inf, -1.0]))
param_sets = st.builds(
    ControlParams, target_w=st.floats(-500, 500), rating_w=st.floats(100, 10_000),
    response_up_s=st.sampled_from([0.0, 0.5, 5.0]), response_down_s=st.sampled_from([0.0, 2.0]),
    deadband_w=st.sampled_from([0.0, 20.0]), slew_w_per_s=st.sampled_from([0.0, 50.0]),
    max_delay_samples=st.integers(0, 3), saturation_w=st.floats(10, 1000),
    probe_every_s=st.sampled_from([0.0, 5.0, 120.0]), ramp_lead=st.sampled_from([0.0, 1.0, 2.0]))


@settings(max_examples=200, deadline=None)
@given(params=param_sets, data=st.lists(st.tuples(readings, intervals), min_size=1,
                                       max_size=60),
       change_at=st.integers(0, 60), reset_at=st.integers(0, 60))
def test_output_always_within_0_and_1(params: ControlParams, data: list, change_at: int,
                                      reset_at: int) -> None:
    ctl = Controller(params)
    for i, (grid_w, dt_s) in enumerate(data):
        if i == change_at:
            ctl.update_params(dataclasses.replace(params, rating_w=params.rating_w * 1.5,
                                                  max_delay_samples=1))
        if i == reset_at:
            ctl.reset()
        fraction = ctl.step(grid_w, dt_s)
        assert 0.0 <= fraction <= 1.0
        assert math.isfinite(ctl.command_w) and math.isfinite(ctl.surplus_w)


@settings(max_examples=60, deadline=None)
@given(surplus_w=st.floats(0, 1800), rating_error=st.floats(0.5, 1.5),
       delay=st.sampled_from([0, 1]), lead=st.sampled_from([0.0, 1.0]))
def test_converges_for_any_steady_surplus(surplus_w: float, rating_error: float, delay: int,
                                          lead: float) -> None:
    """Simple plant: heater = rating_error * command, delay 0 or 1 sample, steady surplus:
    the grid ends within 1 W of the target, without growing swings on the way."""
    ctl = Controller(ControlParams(ramp_lead=lead))
    heaters = [0.0, 0.0]
    errors = []
    for _ in range(40):
        grid_w = heaters[-1 - delay] - surplus_w
        errors.append(abs(grid_w))
        heaters.append(ctl.step(grid_w, 1.0) * 2000 * rating_error)
    unreachable = max(0.0, surplus_w - 2000 * rating_error)
    assert errors[-1] <= unreachable + 1.0
    assert max(errors[10:]) <= max(errors[:10]) + 1e-6


def _cloud_edge(s0: float, s1: float, edge_s: float, dt_s: float = 2.0,
                ramp_lead: float = 1.0, drawn: float = 1.0, doubt: float = 0.0
                ) -> list[tuple[float, float, bool, float]]:
    """Closed loop over an S-shaped cloud edge (s0 -> s1 W over edge_s from t = 60 s): a
    linear 2.6 kW load that draws what it is told (times `drawn`), a meter that averages
    each interval and reports it one interval late. [(t, commanded W, saturated, Wh the
    load drew off what it could draw of the surplus in the interval before)] per reading."""
    ctl = Controller(ControlParams(rating_w=2600.0, ramp_lead=ramp_lead))
    ctl.rating_doubt = doubt
    full = 2600.0 * drawn

    def surplus(t: float) -> float:
        x = min(1.0, max(0.0, (t - 60.0) / edge_s))
        return s0 + (s1 - s0) * (1.0 - math.cos(math.pi * x)) / 2.0

    sub = round(dt_s / 0.1)
    t, fraction, shown, out = 0.0, 0.0, -s0, []
    while t < 120.0:
        now = [surplus(t + (i + 0.5) * dt_s / sub) for i in range(sub)]
        mean = sum(fraction * full - s for s in now) / sub
        off_wh = sum(abs(fraction * full - min(full, s)) for s in now) / sub * dt_s / 3600
        t += dt_s
        fraction = ctl.step(shown, dt_s)
        shown = mean
        out.append((t, ctl.command_w, ctl.saturated, off_wh))
    return out


@pytest.mark.parametrize("s0, s1, edge_s", [(600, 2600, 12), (600, 2600, 14), (500, 1900, 12)])
def test_rising_cloud_edge_is_not_taken_for_an_opening_thermostat(s0: float, s1: float,
                                                                  edge_s: float) -> None:
    """At 2 s readings a rising edge can lift the export by about the power we command
    within the jump's window while we raise the command as fast: a jump is tested only
    once the export holds at its new level, which an opening does and an edge does not."""
    assert not any(sat for _, _, sat, _ in _cloud_edge(s0, s1, edge_s))


@pytest.mark.parametrize("s0, s1, limit_w", [(2700, 850, 300), (500, 1900, 230)])
def test_ramp_lead_does_not_overshoot_a_slowing_cloud_edge(s0: float, s1: float,
                                                          limit_w: float) -> None:
    """An S-shaped edge is slowing when three increments agree: the lead past its end
    stays small (the median increment led to 0.36 kW below a falling edge's end)."""
    cmds = [c for t, c, _, _ in _cloud_edge(s0, s1, 20.0) if t > 60.0]
    overshoot = min(cmds) - s1 if s1 < s0 else s1 - max(cmds)
    assert -limit_w <= overshoot


@pytest.mark.parametrize("s0, s1, edge_s, share", [
    (2700, 850, 9, 0.97), (2700, 850, 12, 0.85), (2500, 600, 9, 0.97), (600, 2500, 14, 0.9)])
def test_ramp_lead_follows_the_s_shape_of_a_fast_cloud_edge(s0: float, s1: float,
                                                            edge_s: float, share: float) -> None:
    """At 2 s readings one late, a fast edge is over in a few readings: the lead must start
    while it accelerates and stop at its end. Against no lead at all (the delay-limited
    answer), it takes energy off the edge; leading by the smallest of three increments
    started late and overshot the end (1.09-1.10x the no-lead error on falling edges)."""
    with_lead = sum(e for t, *_, e in _cloud_edge(s0, s1, edge_s) if t > 50.0)
    without = sum(e for t, *_, e in _cloud_edge(s0, s1, edge_s, ramp_lead=0.0) if t > 50.0)
    assert with_lead <= share * without


@pytest.mark.parametrize("s0, s1, edge_s, dt_s", [
    (2600, 600, 10, 1.0), (1200, 300, 10, 1.0), (1800, 500, 20, 2.0), (1200, 300, 20, 2.0)])
def test_a_doubted_rating_keeps_our_own_moves_out_of_the_ramp_lead(s0: float, s1: float,
                                                                    edge_s: float,
                                                                    dt_s: float) -> None:
    """A load drawing 30 % less than the controller believes puts 30 % of each of our
    moves into the surplus estimate as if the sun moved: on a falling edge the lead fed
    on our own moves, went far below the edge's end and rang. While the rating is in
    doubt by that much, only what stands under every plausible rating is led on."""
    def follow(doubt: float) -> tuple[float, float]:
        out = _cloud_edge(s0, s1, edge_s, dt_s, drawn=0.7, doubt=doubt)
        drawn = [(t, 0.7 * c) for t, c, _, _ in out if t > 60.0]
        below_end = s1 - min(w for _, w in drawn)
        ringing = max(abs(w - s1) for t, w in drawn if t > 60.0 + edge_s + 4.0)
        return below_end, ringing
    below_end, ringing = follow(0.3)
    assert below_end < 0.5 * follow(0.0)[0]
    assert ringing <= 20.0


def test_a_dip_in_an_edge_is_texture_not_an_s_shape() -> None:
    """An S-shaped edge's increments rise, then fall; a middle one smaller than both
    neighbours is the cloud's texture. Fitted as an S it reads as still accelerating, and
    the lead ran on (at 2 s readings one late: seed 6 `cloud_ramps`, the command 881 W
    below the surplus estimate, 606 W below where the edge stopped)."""
    ctl = Controller(ControlParams(rating_w=2600.0))
    levels = [2600.0] * 120 + [2460.0, 2082.0, 1659.0, 1473.0, 1154.0] + [1154.0] * 8
    fraction, shown, commands = 0.0, -levels[0], []
    for surplus in levels:
        reading = fraction * 2600.0 - surplus  # shown one reading late
        fraction = ctl.step(shown, 2.0)
        shown = reading
        commands.append(ctl.command_w)
    assert min(commands) >= 1154.0 - 100.0
    assert commands[-1] == pytest.approx(1154.0, abs=1.0)


def _surplus_seen(increment_w: float, dt_s: float, ramp_lead: float) -> float:
    """The controller's surplus estimate after a surplus that jittered by +-20 W for 80
    readings, then rose three times by `increment_w`: a linear load drawing its rating
    exactly, a meter without delay."""
    ctl = Controller(ControlParams(max_delay_samples=0, ramp_lead=ramp_lead))
    fraction = 0.0
    surplus = [500.0 + (20.0 if i % 2 else -20.0) for i in range(80)]
    surplus += [surplus[-1] + increment_w * (k + 1) for k in range(3)]
    for s in surplus:
        fraction = ctl.step(fraction * 2000.0 - s, dt_s)
    return ctl.surplus_w


@pytest.mark.parametrize("dt_s, small_w", [(1.0, 30.0), (2.5, 50.0)])
def test_ramp_lead_ignores_increments_within_the_jitter(dt_s: float, small_w: float) -> None:
    """Three agreeing increments no bigger than the surplus's jitter per reading (40 W
    here; 1.5x that where the lead spans seconds) are household noise, not a ramp: no
    lead (leading on them passed the noise on and made `low_surplus` at 1.3x worse than
    the original law). A real ramp is still led."""
    def lead(increment_w: float) -> float:
        return _surplus_seen(increment_w, dt_s, 1.0) - _surplus_seen(increment_w, dt_s, 0.0)
    assert lead(small_w) == pytest.approx(0.0, abs=1e-6)
    assert lead(150.0) == pytest.approx(150.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_meter_shown_late_is_read_at_its_delayed_end(seed: int) -> None:
    """Once the moves have shown the meter one whole reading late (not half: the mixture
    would be as rough as the newest end), each reading gives the surplus with the command
    a reading old, exactly, not the point of the delay interval nearest the last estimate:
    on a rising edge with texture that point stalled (up to 49 W off here; at 2 s readings
    into full output, ours fell behind the edge and lost to the original law)."""
    ctl = Controller(ControlParams(rating_w=2600.0))
    rng = random.Random(seed)
    levels = [900.0 if (i // 6) % 2 else 400.0 for i in range(60)] + [600.0] * 6
    for _ in range(20):
        levels.append(levels[-1] + 100.0 + rng.uniform(-150.0, 150.0))
    fraction, shown, errors = 0.0, -levels[0], []
    for i, surplus in enumerate(levels):
        reading = fraction * 2600.0 - surplus  # shown one reading late
        fraction = ctl.step(shown, 1.0)
        shown = reading
        if i >= 66:
            errors.append(abs(ctl.surplus_seen_w - levels[i - 1]))
    assert max(errors) < 1.0
