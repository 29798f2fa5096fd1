"""The guarantee planner, pure with the clock injected: latest start, surplus counted,
windows, the thermostat, DST change days, legionella."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vzdivert.guarantee import (
    ALLOWANCE_K,
    WH_PER_L_K,
    Goal,
    Progress,
    latest_start,
    margin_s,
    next_deadline,
    parse_window,
    plan,
    window_intervals,
)

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz=UTC) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def test_margin_is_a_minute_or_a_quarter_of_the_top_up():
    assert margin_s(60) == 60
    assert margin_s(3600) == 900


def test_latest_start_leaves_duration_and_margin_before_the_deadline():
    goal = Goal(by="07:00", min_energy_wh=1000, rating_w=2000)  # 30 min + 7.5 min margin
    progress = Progress()
    p = plan(at("2026-06-01T05:00"), UTC, goal, progress, 0.0, None, False)
    assert p.deadline == at("2026-06-01T07:00")
    assert p.start_at == at("2026-06-01T06:22:30")
    assert not p.topup and p.missing_wh == 1000
    assert not plan(at("2026-06-01T06:22"), UTC, goal, progress, 0.0, None, False).topup
    p = plan(at("2026-06-01T06:23"), UTC, goal, progress, 0.0, None, False)
    assert p.topup and p.power_w == 2000


def test_surplus_delivered_before_the_start_is_counted():
    goal = Goal(by="17:00", min_energy_wh=2000, rating_w=2000)
    progress = Progress()
    plan(at("2026-06-01T08:00"), UTC, goal, progress, 5000.0, None, False)  # period starts
    p = plan(at("2026-06-01T15:00"), UTC, goal, progress, 6500.0, None, False)
    assert p.missing_wh == 500
    assert p.start_at == at("2026-06-01T16:41:15")  # 15 min + a quarter of it
    p = plan(at("2026-06-01T16:00"), UTC, goal, progress, 7000.0, None, False)
    assert p.missing_wh == 0 and not p.topup and p.reason == "met"


def test_once_started_it_runs_until_met_and_stops():
    goal = Goal(by="07:00", min_energy_wh=1000, rating_w=2000)
    progress = Progress()
    assert plan(at("2026-06-01T06:30"), UTC, goal, progress, 0.0, None, False).topup
    # half delivered: the latest start moved later, but a started top-up does not flap
    assert plan(at("2026-06-01T06:45"), UTC, goal, progress, 500.0, None, False).topup
    assert not plan(at("2026-06-01T06:59"), UTC, goal, progress, 1000.0, None, False).topup


def test_a_new_period_counts_from_the_deadline_and_records_the_day():
    goal = Goal(by="07:00", min_energy_wh=1000, rating_w=2000)
    progress = Progress()
    plan(at("2026-06-01T06:58"), UTC, goal, progress, 100.0, None, False)
    p = plan(at("2026-06-01T07:01"), UTC, goal, progress, 400.0, None, False)
    assert p.deadline == at("2026-06-02T07:00") and p.missing_wh == 1000
    assert progress.met == [(at("2026-06-01T07:00"), False)]


def test_windows_move_the_start_into_the_off_peak_hours():
    goal = Goal(by="07:00", min_energy_wh=6000, rating_w=2000, windows=("22:00-02:00",))
    progress = Progress()
    # 3 h + 45 min margin, all inside 22:00-02:00: start at 22:15
    p = plan(at("2026-06-01T12:00"), UTC, goal, progress, 0.0, None, False)
    assert p.start_at == at("2026-06-01T22:15")
    assert plan(at("2026-06-01T22:20"), UTC, goal, progress, 0.0, None, False).topup
    # the window closed with energy missing: no top-up outside it
    p = plan(at("2026-06-02T03:00"), UTC, goal, progress, 5000.0, None, False)
    assert not p.topup and p.missing_wh == 1000


def test_window_spans_wrap_midnight_and_merge():
    spans = window_intervals(("22:00-06:00", "05:00-07:00"), at("2026-06-01T12:00"),
                             at("2026-06-02T12:00"), UTC)
    assert spans == [(at("2026-06-01T22:00"), at("2026-06-02T07:00"))]
    with pytest.raises(ValueError):
        parse_window("22:00")


def test_too_late_to_finish_starts_at_once():
    goal = Goal(by="07:00", min_energy_wh=4000, rating_w=2000)
    p = plan(at("2026-06-01T06:00"), UTC, goal, Progress(), 0.0, None, False)
    assert p.topup and p.start_at is None and "late" in p.reason


def test_an_opened_thermostat_means_the_guarantee_is_met():
    goal = Goal(by="07:00", min_energy_wh=4000, rating_w=2000)
    progress = Progress()
    assert plan(at("2026-06-01T04:30"), UTC, goal, progress, 0.0, None, False).topup
    p = plan(at("2026-06-01T05:00"), UTC, goal, progress, 900.0, None, True)
    assert not p.topup and "thermostat" in p.reason
    assert not plan(at("2026-06-01T05:01"), UTC, goal, progress, 900.0, None, False).topup


def test_temperature_goal_counts_the_tank_and_its_losses():
    goal = Goal(by="17:00", min_c=50, rating_w=2000, volume_l=200, loss_w=40)
    p = plan(at("2026-06-01T15:00"), UTC, goal, Progress(), 0.0, 45.0, False)
    expected = (50 + ALLOWANCE_K - 45) * 200 * WH_PER_L_K + 40 * 2
    assert p.missing_wh == pytest.approx(expected)
    assert plan(at("2026-06-01T15:00"), UTC, goal, Progress(), 0.0, 55.0, False).missing_wh == 0


def test_legionella_is_due_every_n_days():
    goal = Goal(by="17:00", min_c=45, legionella_c=60, legionella_days=7, rating_w=2000,
                volume_l=200)
    progress = Progress()
    plan(at("2026-06-01T10:00"), UTC, goal, progress, 0.0, 61.0, False)  # reached today
    assert progress.last_legionella == at("2026-06-01T10:00")
    p = plan(at("2026-06-03T10:00"), UTC, goal, progress, 0.0, 50.0, False)
    assert p.missing_wh == 0  # 45 °C goal met, legionella not due yet
    p = plan(at("2026-06-08T10:00"), UTC, goal, progress, 0.0, 50.0, False)
    assert p.missing_wh == pytest.approx((60 + ALLOWANCE_K - 50) * 200 * WH_PER_L_K)


def test_guarantee_off_does_nothing():
    assert plan(at("2026-06-01T10:00"), UTC, Goal(), Progress(), 0.0, None, False).reason \
        == "guarantee off"
    assert not Goal(by="07:00").active


# -- DST change days (Europe/Berlin: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)
def test_deadline_on_the_spring_forward_day_is_in_summer_time():
    now = at("2026-03-28T20:00", BERLIN)
    assert next_deadline(now, "07:00", BERLIN) == at("2026-03-29T07:00", BERLIN)
    # 23 h between the deadlines of that day, not 24
    assert at("2026-03-29T07:00", BERLIN) - at("2026-03-28T07:00", BERLIN) == 23 * 3600


def test_skipped_deadline_time_maps_after_the_gap():
    d = next_deadline(at("2026-03-29T00:00", BERLIN), "02:30", BERLIN)
    assert datetime.fromtimestamp(d, BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_latest_start_across_the_autumn_change_uses_real_seconds():
    goal = Goal(by="03:30", min_energy_wh=2000, rating_w=2000)  # 1 h + 15 min margin
    now = at("2026-10-25T00:00", BERLIN)
    p = plan(now, BERLIN, goal, Progress(), 0.0, None, False)
    # 03:30 CET is 02:30 UTC; 75 min before is 01:15 UTC, which is 02:15 CET (second pass)
    assert p.deadline == at("2026-10-25T02:30")
    assert p.start_at == at("2026-10-25T01:15")


def test_window_on_the_spring_forward_night_is_an_hour_shorter():
    spans = window_intervals(("01:00-04:00",), at("2026-03-28T12:00"), at("2026-03-29T12:00"),
                             BERLIN)
    (lo, hi), = spans
    assert hi - lo == 2 * 3600
    assert latest_start(2 * 3600, lo, hi, ("01:00-04:00",), BERLIN) is None
