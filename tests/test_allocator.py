"""The allocator as a pure unit: the PWM load takes exactly the remainder, priorities,
margins, minimum on and off times, holds, a relay whose load does not draw, the bypass."""

from __future__ import annotations

import pytest

from vzdivert.rtworker.allocator import RETRY_NOT_DRAWING_S, Allocator, Relay


def make(*ratings: float, pwm_w: float = 2000.0, min_s: float = 60.0, margin: float = 100.0,
         priorities: tuple[int, ...] = (), pwm_priority: int = 0,
         bypass_after_s: float | None = None) -> Allocator:
    relays = [Relay(f"r{i}", w, min_s, min_s, priorities[i] if priorities else 0)
              for i, w in enumerate(ratings)]
    return Allocator(pwm_w, relays, now=-1000.0, pwm_priority=pwm_priority, margin_w=margin,
                     bypass_after_s=bypass_after_s)


def on(alloc: Allocator) -> list[str]:
    return [r.name for r in alloc.relays if r.on]


def test_pwm_only_below_its_rating_and_a_relay_fills_beyond() -> None:
    a = make(1000)
    s = a.split(1500, 0)
    assert on(a) == [] and s.pwm_w == 1500 and s.applied_w == 1500
    s = a.split(2050, 1)  # overflow within the margin: the relay stays off, 50 W exported
    assert on(a) == [] and s.pwm_w == 2000 and s.applied_w == 2000
    s = a.split(2600, 2)  # the relay takes 1000, the PWM exactly the rest: no step at the meter
    assert on(a) == ["r0"] and s.pwm_w == 1600 and s.applied_w == 2600
    assert s.changed == ["r0"]


def test_relay_off_when_the_pwm_alone_can_take_it_or_it_no_longer_fits() -> None:
    a = make(1000, min_s=0)
    a.split(2600, 0)
    s = a.split(1950, 1)  # inside the hysteresis band: stays on
    assert on(a) == ["r0"] and s.pwm_w == 950
    s = a.split(1850, 2)  # the PWM load could take it all with the margin to spare
    assert on(a) == [] and s.pwm_w == 1850


def test_a_relay_bigger_than_the_pwm_load() -> None:
    a = make(3000, min_s=0)
    assert a.split(3050, 0).pwm_w == 2000 and on(a) == []  # does not fit with the margin
    s = a.split(3150, 1)
    assert on(a) == ["r0"] and s.pwm_w == 150
    s = a.split(2990, 2)  # would import: off, the PWM load takes what it can
    assert on(a) == [] and s.pwm_w == 2000


def test_min_on_and_min_off() -> None:
    a = make(1000, min_s=60)
    a.split(2600, 0)
    assert on(a) == ["r0"]
    s = a.split(500, 30)  # below its rating, but min_on holds it: the PWM goes to 0
    assert on(a) == ["r0"] and a.relays[0].held == "min-on" and s.pwm_w == 0
    assert s.applied_w == 1000  # the controller is told what really runs
    a.split(500, 60)
    assert on(a) == []
    s = a.split(3000, 100)  # min_off holds it off
    assert on(a) == [] and a.relays[0].held == "min-off" and s.pwm_w == 2000
    a.split(3000, 120)
    assert on(a) == ["r0"]


def test_a_fresh_start_counts_as_a_switch_off() -> None:
    relays = [Relay("r0", 1000, 60, 60)]
    a = Allocator(2000, relays, now=0.0)
    a.split(4000, 10)
    assert on(a) == [] and relays[0].held == "min-off"  # a restart loop cannot chatter it
    a.split(4000, 60)
    assert on(a) == ["r0"]


def test_priorities_order_the_relays_and_the_pwm_load() -> None:
    a = make(1000, 1000, priorities=(2, 1))
    a.split(2600, 0)  # room for one relay: the lower priority number first
    assert on(a) == ["r1"]
    a.split(3200, 1)
    assert on(a) == ["r0", "r1"]
    b = make(1000, priorities=(-1,))  # before the PWM load: fills first
    s = b.split(1200, 0)
    assert on(b) == ["r0"] and s.pwm_w == pytest.approx(200)
    s = b.split(1050, 1)  # fits no more with the margin, but stays on (hysteresis)
    assert on(b) == ["r0"] and s.pwm_w == pytest.approx(50)


def test_margins_give_hysteresis() -> None:
    a = make(1000, min_s=0, margin=300)
    a.split(2250, 0)
    assert on(a) == []
    a.split(2350, 1)
    assert on(a) == ["r0"]
    a.split(1750, 2)
    assert on(a) == ["r0"]
    a.split(1650, 3)
    assert on(a) == []


def test_holds_force_a_relay_off_at_once_and_on_after_min_off() -> None:
    a = make(1000)
    a.split(2600, 0)
    a.split(2600, 1, forced={"r0": False})  # off at once, min_on or not
    assert on(a) == []
    a.split(0, 2, forced={"r0": True})
    assert on(a) == [] and a.relays[0].held == "min-off"
    a.split(0, 70, forced={"r0": True})
    assert on(a) == ["r0"]


def test_frozen_keeps_every_relay() -> None:
    a = make(1000, min_s=0)
    a.split(2600, 0)
    s = a.split(0, 1, frozen=True)
    assert on(a) == ["r0"] and s.pwm_w == 0


def test_a_relay_whose_load_does_not_draw_is_skipped_and_retried() -> None:
    a = make(1000, 1000, min_s=0)
    assert a.observe(2600, 0) == []  # the estimate when it switches on is the baseline
    a.split(2600, 0)
    assert on(a) == ["r0"]
    assert a.observe(3600, 1) == []  # the estimate rose by its rating: suspect, off ...
    assert on(a) == [] and a.relays[0].held == "thermostat"
    a.split(3600, 1)
    assert a.observe(2620, 2) == ["r0"]  # ... and it fell back: it did not draw
    s = a.split(2620, 2)  # the next stage takes its place
    assert on(a) == ["r1"] and a.relays[0].held == "thermostat" and s.pwm_w == 1620
    a.split(3600, 1.5 + RETRY_NOT_DRAWING_S)
    assert on(a) == ["r1"]
    s = a.split(3600, 2 + RETRY_NOT_DRAWING_S)  # tried again
    assert on(a) == ["r0", "r1"] and s.pwm_w == 1600


def test_the_sun_coming_out_is_not_a_thermostat() -> None:
    a = make(1000, min_s=0)
    a.observe(2600, 0)
    a.split(2600, 0)
    a.observe(3600, 1)  # suspect: off
    assert on(a) == []
    a.split(3600, 1)
    for t in (2, 3):  # the estimate stays up: the surplus had really risen
        assert a.observe(3600, t) == []
        a.split(3600, t)
    assert a.relays[0].held == "" and on(a) == ["r0"]


def test_a_jump_far_beyond_the_rating_is_the_weather() -> None:
    a = make(1000, min_s=0)
    a.observe(2600, 0)
    a.split(2600, 0)
    a.observe(5000, 1)
    assert on(a) == ["r0"]


def test_a_drawing_relay_passes_the_check() -> None:
    a = make(1000, min_s=0)
    a.observe(2600, 0)
    a.split(2600, 0)
    for t in range(1, 5):
        assert a.observe(2600 + 30 * t, t) == []
    assert on(a) == ["r0"]


def test_rules_must_hold_a_while_and_big_shortfalls_count_faster() -> None:
    relays = [Relay("r0", 1000, 0, 0)]
    a = Allocator(2000, relays, now=0.0, on_after_s=10, off_after_s=60)
    for t in range(1, 10):
        a.split(2600, t)
        assert on(a) == []
    a.split(1500, 10)  # a dip: the count leaks, it does not restart
    for t in range(11, 14):
        a.split(2600, t)
    assert on(a) == ["r0"]
    for t in range(14, 300):  # a small shortfall (250 W of 1000) is ridden through ...
        a.split(750, t)
    assert on(a) == ["r0"]
    for t in range(300, 1000):  # ... for up to 16x off_after_s
        a.split(750, t)
    assert on(a) == []
    a2 = Allocator(2000, [Relay("r0", 1000, 0, 0)], now=0.0, on_after_s=0, off_after_s=60)
    a2.split(2600, 0)
    for t in range(1, 32):  # no surplus at all: twice its rating short counts 4x
        a2.split(-1000, t)
    assert on(a2) == []


def _weather(a: Allocator, t: int, short_s: int, episodes: int = 8) -> int:
    """Shortfalls of half the relay's rating lasting ``short_s``, a minute of surplus
    between them; returns the time after."""
    for _ in range(episodes):
        for _ in range(60):
            a.split(2600, t)
            t += 1
        for _ in range(short_s):
            a.split(500, t)
            t += 1
    for _ in range(60):
        a.split(2600, t)
        t += 1
    return t


def test_slow_weather_switches_off_early_fast_weather_rides_through() -> None:
    slow = Allocator(2000, [Relay("r0", 1000, 0, 0)], now=0.0, on_after_s=10, off_after_s=60)
    t = _weather(slow, 0, short_s=600)  # shortfalls lasting 10 min: learned
    assert on(slow) == ["r0"]
    for s in range(t, t + 20):  # half the rating short: expected to last, off at once
        slow.split(500, s)
    assert on(slow) == []  # the squared rule alone would wait 4x off_after_s
    assert slow.relays[0].episode_mean_s > 300
    fast = Allocator(2000, [Relay("r0", 1000, 0, 0)], now=0.0, on_after_s=10, off_after_s=60)
    t = _weather(fast, 0, short_s=20)  # shortfalls of 20 s: switching would not pay
    assert fast.relays[0].episode_mean_s < 60
    for s in range(t, t + 200):
        fast.split(500, s)
    assert on(fast) == ["r0"]  # ridden through at the squared rule's pace (240 s)


def test_a_night_is_not_a_cloud() -> None:
    """A diverter runs for days: the night is one long shortfall for every relay. Learned
    as weather, it made the next morning's short clouds look hours long, and the relay
    went off at each of them."""
    a = Allocator(2000, [Relay("r0", 1000, 0, 0)], now=0.0, on_after_s=10, off_after_s=60)
    t = 0
    for t in range(0, 12 * 3600, 10):  # twelve hours without surplus
        a.split(-300, t)
    t = _weather(a, t + 10, short_s=20, episodes=3)  # the morning's fast clouds ...
    assert on(a) == ["r0"]
    assert a.relays[0].episode_mean_s < 60
    for s in range(t, t + 100):  # ... a short shortfall is ridden through, as without
        a.split(500, s)          # the night
    assert on(a) == ["r0"]


def test_a_few_slow_shortfalls_suffice_and_a_long_one_raises_the_expected_rest() -> None:
    """Slow weather shows only a few shortfalls an hour: three of 10 min are enough to
    switch off early, and a shortfall too shallow for that at its start becomes worth it
    as it goes on (lengths memoryless: its time so far is evidence of a longer scale)."""
    a = Allocator(2000, [Relay("r0", 1000, 0, 0)], now=0.0, on_after_s=10, off_after_s=60)
    t = _weather(a, 0, short_s=600, episodes=3)
    for s in range(t, t + 20):  # half the rating short: off at once
        a.split(500, s)
    assert on(a) == []
    b = Allocator(2000, [Relay("r0", 1000, 0, 0)], now=0.0, on_after_s=10, off_after_s=60)
    t = _weather(b, 0, short_s=600, episodes=3)
    for s in range(t, t + 500):  # 0.2 of the rating short: ridden through at first ...
        b.split(800, s)
    assert on(b) == ["r0"]
    for s in range(t + 500, t + 620):  # ... off long before the squared rule (1500 s) would
        b.split(800, s)
    assert on(b) == []


def test_bypass_after_a_long_run_at_full_and_open_below_the_rating() -> None:
    a = make(pwm_w=2000, bypass_after_s=60, margin=100)
    for t in range(0, 60, 10):
        s = a.split(2500, t)
        assert not s.bypass and s.pwm_w == 2000
    s = a.split(2500, 60)
    assert s.bypass and s.pwm_w == 0 and s.applied_w == 2000
    assert a.split(1950, 61).bypass  # within the margin: no flapping
    s = a.split(1850, 62)
    assert not s.bypass and s.pwm_w == 1850  # the PWM takes over in the same step
    assert not a.split(2500, 100).bypass  # the 60 s start again


def test_all_off_opens_everything() -> None:
    a = make(1000, bypass_after_s=1, min_s=600)
    a.split(4000, 0)
    a.split(4000, 2)
    assert on(a) == ["r0"] and a.bypass
    a.all_off(3)
    assert on(a) == [] and not a.bypass


def feed(a: Allocator, estimate, t0: int, t1: int) -> None:
    """Readings t0..t1-1: the controller's estimate (it commands what it estimates)."""
    for t in range(t0, t1):
        a.observe(estimate(t), t)
        a.split(estimate(t), t)


def test_a_thermostat_opening_while_on_is_tested_after_min_on_and_skipped() -> None:
    a = make(1000, min_s=60)
    r0 = a.relays[0]
    feed(a, lambda t: 2600, 0, 30)
    assert on(a) == ["r0"]
    # its thermostat opens at t=30: the estimate still counts it, so it jumps by 1000 W
    feed(a, lambda t: 3600, 30, 59)
    assert on(a) == ["r0"] and r0._suspect  # min_on (60 s) holds it on meanwhile
    feed(a, lambda t: 3600, 59, 61)
    assert on(a) == [] and r0.held == "thermostat"  # switched off to test it
    # it did not draw: the estimate falls back by its rating
    assert a.observe(2600, 61) + a.observe(2600, 62) == ["r0"]
    s = a.split(2600, 62)
    assert on(a) == [] and r0.held == "thermostat" and s.pwm_w == 2000
    feed(a, lambda t: 2600, 63, 60 + int(RETRY_NOT_DRAWING_S))
    assert on(a) == [] and r0.held == "thermostat"


def test_a_household_step_that_pairs_with_an_earlier_one_is_not_a_thermostat() -> None:
    a = make(1000, min_s=60)
    feed(a, lambda t: 3300, 0, 100)
    feed(a, lambda t: 2300, 100, 200)  # an appliance of 1 kW switches on (import step) ...
    feed(a, lambda t: 3300, 200, 300)  # ... and off again: an export step of r0's rating
    assert on(a) == ["r0"] and a.relays[0].switches == 1 and a.relays[0].held == ""
    assert not a.relays[0]._suspect


def test_an_unpaired_household_step_is_tested_and_the_relay_comes_back() -> None:
    a = make(1000, 1000, min_s=60)
    feed(a, lambda t: 2600, 0, 100)
    assert on(a) == ["r0"]
    feed(a, lambda t: 3550, 100, 104)  # a load that ran before we started goes off
    assert on(a) == ["r1"]  # r0 switched off to test it (r1 takes the new surplus) ...
    feed(a, lambda t: 3550, 104, 110)  # ... but the estimate stays: it drew
    assert a.relays[0].held == "min-off" and a.relays[0].skip_until < 0
    feed(a, lambda t: 3550, 110, 170)
    assert on(a) == ["r0", "r1"] and a.relays[0].held == ""


def test_cloud_edges_and_noise_are_no_steps() -> None:
    a = make(1000, min_s=0)
    feed(a, lambda t: 2600, 0, 10)
    # the sun comes out over 8 s (1.5 kW), noise of +-40 W: no test switch
    feed(a, lambda t: 2600 + min(max(t - 10, 0), 8) * 190 + (40 if t % 2 else -40), 10, 60)
    assert on(a) == ["r0"] and a.relays[0].switches == 1


def test_a_thermostat_closing_again_clears_the_suspicion() -> None:
    a = make(1000, min_s=60)
    feed(a, lambda t: 2600, 0, 10)
    feed(a, lambda t: 3600, 10, 30)
    assert a.relays[0]._suspect
    feed(a, lambda t: 2600, 30, 90)  # it closed before min_on ended: it draws again
    assert on(a) == ["r0"] and not a.relays[0]._suspect and a.relays[0].switches == 1


def test_a_step_that_shows_over_two_readings_is_seen() -> None:
    a = make(1000, min_s=60)
    feed(a, lambda t: 2600, 0, 100)
    # inside a meter interval: half of it in one reading, the rest in the next
    feed(a, lambda t: 3400 if t == 100 else 3600, 100, 105)
    assert on(a) == [] and a.relays[0].held == "thermostat"


def test_a_rise_over_more_readings_than_a_step_takes_is_no_step() -> None:
    a = make(1000, min_s=0)
    feed(a, lambda t: 2600, 0, 100)
    # the sun coming out within 3 s (250, 500, 250 W a reading): 750 W in two readings,
    # like a step split over a meter interval, but still rising in the third
    rise = {100: 250, 101: 750}
    feed(a, lambda t: 2600 + rise.get(t, 1000), 100, 110)
    assert on(a) == ["r0"] and a.relays[0].switches == 1 and not a.relays[0]._suspect


def test_a_relay_switched_on_while_the_sun_rises_passes_the_check() -> None:
    a = make(1000, min_s=0)
    # rising 400 W a reading; it switches on at 2200 W and the rise goes on at that pace
    feed(a, lambda t: min(1000 + 400 * max(t - 10, 0), 3800), 0, 30)
    assert on(a) == ["r0"] and a.relays[0].switches == 1 and a.relays[0].held == ""
    # one that does not draw shows its rating on top of the rise: still found
    b = make(1000, min_s=0)
    r0 = b.relays[0]
    feed(b, lambda t: min(1000 + 300 * max(t - 10, 0), 3800) + 1000 * r0.on, 0, 30)
    assert on(b) == [] and r0.held == "thermostat" and r0.switches == 2
