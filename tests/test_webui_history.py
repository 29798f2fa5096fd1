"""The UI's chart memory (1 s and 20 s rings) and the /api/state document it serves."""

from __future__ import annotations

import math

import pytest

from vzdivert.webui.history import History, Ring, columns
from vzdivert.webui.payload import badges, state_payload


def state(ts: float, grid_w: float | None = -100.0, power_w: float = 50.0, duty: float = 0.25,
          target_w: float = 0.0) -> dict:
    return {"ts": ts, "grid_w": grid_w, "power_w": power_w, "duty": duty, "target_w": target_w}


def test_ring_averages_each_bucket_and_closes_on_the_next() -> None:
    r = Ring(1.0, 10)
    assert r.add(100.1, (1.0, 2.0, 3.0, 4.0)) is None
    assert r.add(100.9, (3.0, math.nan, 5.0, 4.0)) is None
    closed = r.add(101.2, (9.0, 9.0, 9.0, 9.0))
    assert closed == (100.0, (2.0, 2.0, 4.0, 4.0))  # NaN (unknown) is left out of the mean
    assert r.rows() == [(0, 100.0, 2.0, 2.0, 4.0, 4.0)]


def test_ring_wraps_and_keeps_the_newest() -> None:
    r = Ring(1.0, 5)
    for t in range(20):
        r.add(float(t), (float(t),) * 4)
    rows = r.rows()
    assert [row[1] for row in rows] == [14.0, 15.0, 16.0, 17.0, 18.0]  # 19 still open
    assert [row[0] for row in rows] == [14, 15, 16, 17, 18]
    assert [row[0] for row in r.rows(after_count=16)] == [17, 18]
    assert [row[1] for row in r.rows(since_ts=17.0)] == [17.0, 18.0]


def test_clock_set_back_clears_the_ring() -> None:
    r = Ring(1.0, 5)
    for t in (100.0, 101.0, 102.0):
        r.add(t, (1.0,) * 4)
    r.add(50.0, (1.0,) * 4)
    assert r.rows() == []


def test_columns_break_lines_at_gaps_and_null_unknowns() -> None:
    rows = [(0, 10.0, 1.0, 2.0, 0.123456, 0.0), (1, 11.0, math.nan, 2.0, 0.5, 0.0),
            (2, 20.0, 3.0, 2.0, 0.5, 0.0)]
    c = columns(rows, 1.0)
    assert c["ts"] == [10.0, 11.0, 12.0, 20.0]
    assert c["grid_w"] == [1.0, None, None, 3.0]
    assert c["duty"][0] == 0.1235


def test_history_fine_for_an_hour_coarse_for_a_day() -> None:
    h = History()
    t0 = 1_700_000_000.0
    for i in range(3 * 3600):  # three hours of one state a second, grid -i W
        h.add_state(state(t0 + i, grid_w=-float(i)))
    now = t0 + 3 * 3600
    fine = h.window(15, now)
    assert fine["step_s"] == 1.0
    assert len(fine["ts"]) == pytest.approx(900, abs=2)
    assert fine["grid_w"][-1] == -(3 * 3600 - 2)
    day = h.window(24 * 60, now)
    assert day["step_s"] == 20.0
    assert len(day["ts"]) == pytest.approx(3 * 3600 / 20, abs=2)
    assert day["grid_w"][0] == pytest.approx(-9.5)  # mean of -0..-19
    assert h.fine.count == 3 * 3600 - 1
    assert all(b > a for a, b in zip(day["ts"], day["ts"][1:], strict=False))


def test_history_memory_is_bounded() -> None:
    h = History()
    for i in range(30 * 3600, 0, -7):
        h.add_state(state(2_000_000_000.0 - i))
    assert len(h.fine.ts) == History.FINE_SLOTS
    assert len(h.coarse.ts) == History.COARSE_SLOTS
    assert len(h.window(24 * 60, 2_000_000_000.0)["ts"]) <= History.COARSE_SLOTS * 2


def test_state_before_first_reading_has_unknown_grid() -> None:
    h = History()
    h.add_state(state(10.0, grid_w=None))
    h.add_state(state(11.0))
    assert h.window(15, 12.0)["grid_w"] == [None]


FULL_STATE = {"ts": 1.0, "seq": 7, "grid_w": -350.0, "target_w": -20.0, "duty": 0.4,
              "power_w": 800.0, "energy_wh": 1234.5, "energy_today_wh": 321.0, "stale": False,
              "stale_reason": "", "saturated": False, "error": "", "t": "state", "v": 1}
HEALTH = {"processes": {"rtworker": {"alive": True, "pid": 12, "restarts": 1, "last_exit": ""}},
          "settings": {"target_w": -20.0}}


def test_state_payload_carries_the_contract_fields() -> None:
    p = state_payload(FULL_STATE, HEALTH, {"requests": 3, "t": "ingest_stats", "v": 1},
                      {"state": 0.1, "health": 0.5, "ingest_stats": 0.2}, silent_after_s=3)
    for key in ("grid_w", "duty", "power_w", "energy_wh", "stale", "target_w", "processes"):
        assert key in p
    assert (p["grid_w"], p["duty"], p["power_w"], p["stale"]) == (-350.0, 0.4, 800.0, False)
    assert p["processes"]["rtworker"]["restarts"] == 1
    assert p["badges"] == ["exporting"]
    assert p["ingest"] == {"requests": 3, "age_s": 0.2}


def test_a_silent_worker_makes_the_state_stale() -> None:
    p = state_payload(FULL_STATE, HEALTH, {}, {"state": 9.0}, silent_after_s=3)
    assert p["stale"] and "9 s" in p["stale_reason"] and p["power_w"] == 0.0
    assert "stale" in p["badges"] and "exporting" not in p["badges"]
    nothing = state_payload({}, {}, {}, {}, silent_after_s=3)
    assert nothing["stale"] and nothing["duty"] == 0.0 and nothing["grid_w"] is None
    assert nothing["processes"] == {} and nothing["badges"] == ["stale", "output_off"]


def test_badges() -> None:
    base = {"stale": False, "grid_w": 50.0, "duty": 1.0, "saturated": True, "error": ""}
    assert badges(base) == ["importing", "saturated", "full_output"]
    assert badges({**base, "grid_w": 0.0, "duty": 0.0, "saturated": False,
                   "error": "write failed"}) == ["output_off", "error"]
