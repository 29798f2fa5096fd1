"""The several-loads bench's causal yardstick (bench/causal_plan.py): a relay policy that
knows the present and the weather's statistics but not the future."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from causal_plan import DEPTHS, EPOCH_S, Policy, Weather, leave, state_of, weather  # noqa: E402

from vzdivert.plant import Scenario  # noqa: E402

RATING_W = 1000.0


def one_relay_cost(surplus_w: float, mask: int) -> float:
    """One relay before a 1 kW PWM load: import below its rating, export above both."""
    taken = RATING_W if mask & 1 else 0.0
    return max(0.0, taken - surplus_w) + max(0.0, surplus_w - taken - 1000.0)


def two_states(cloud_mean_s: float, clear_mean_s: float = 600.0) -> Weather:
    """Clear (1800 W: the relay belongs on) or a cloud (200 W: it imports 800 W)."""
    in_c, out_c = leave(clear_mean_s), leave(cloud_mean_s)
    return Weather(((1800.0,), (200.0,)), (((0, 1 - in_c), (1, in_c)),
                                            ((1, 1 - out_c), (0, out_c))), (0.5,), False)


def test_the_chain_is_the_scenarios_weather() -> None:
    sc = Scenario("t", "", pv_w=6000, base_w=500, cloud_gap_s=120, cloud_len_s=60,
                  cloud_depth=(0.3, 0.7), kettle_w=2000, kettle_gap_s=900)
    wx = weather(sc)
    assert len(wx.surplus) == 2 * (1 + DEPTHS)  # clear + the depths, kettle off / on
    for moves in wx.moves:
        assert sum(p for _, p in moves) == pytest.approx(1.0)
    clear = wx.surplus[state_of(wx, 0.0, False, False)]
    assert clear == (5500.0,)
    kettle = wx.surplus[state_of(wx, 0.0, False, True)]
    assert kettle == (3500.0,)
    deepest = wx.depths[-1]
    assert 0.7 - 0.4 / DEPTHS < deepest < 0.7
    deep = wx.surplus[state_of(wx, 0.7, True, False)]
    assert sum(deep) / len(deep) == pytest.approx(6000 * (1 - deepest) - 500, abs=60)
    # a cloud coming in is judged by the shade it casts so far
    assert state_of(wx, 0.05, True, False) == state_of(wx, 0.3, True, False) != 0


def test_free_relays_follow_the_present_best() -> None:
    """No minimum time, no price: nothing to look ahead for; the present loss decides."""
    policy = Policy(two_states(60.0), 1, 1, one_relay_cost, 0.0)
    assert policy.choose(0, 0, (0,), [800.0, 0.0])[0] == 1
    assert policy.choose(1, 1, (0,), [0.0, 800.0])[0] == 0


@pytest.mark.parametrize(("cloud_mean_s", "off"), [(600.0, True), (10.0, False)])
def test_a_cloud_is_waited_out_only_when_short(cloud_mean_s: float, off: bool) -> None:
    """60 s minimum off: switching off for a cloud pays only if it is expected to last."""
    policy = Policy(two_states(cloud_mean_s), 1, round(60 / EPOCH_S), one_relay_cost, 1.0)
    mask, locks = policy.choose(1, 1, (0,), [0.0, 800.0])
    assert (mask == 0) is off
    if off:
        assert locks == (policy.lock - 1,)  # switched: locked for the minimum time


def test_a_locked_relay_stays() -> None:
    policy = Policy(two_states(600.0), 1, round(60 / EPOCH_S), one_relay_cost, 0.0)
    mask, locks = policy.choose(1, 1, (3,), [0.0, 800.0])
    assert (mask, locks) == (1, (2,))


def test_a_higher_price_switches_less() -> None:
    """At a price above what a cloud can save the relay rides every cloud through."""
    cheap = Policy(two_states(120.0), 1, round(60 / EPOCH_S), one_relay_cost, 0.0)
    dear = Policy(two_states(120.0), 1, round(60 / EPOCH_S), one_relay_cost, 100.0)
    assert cheap.choose(1, 1, (0,), [0.0, 800.0])[0] == 0
    assert dear.choose(1, 1, (0,), [0.0, 800.0])[0] == 1
