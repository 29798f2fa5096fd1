"""The pure minute aggregation: energies are the exact integral of the held values, split at
minute boundaries; stale time and silences count toward nothing."""

from __future__ import annotations

from vzdivert.history.minutes import Accumulator, extras_of

T0 = 1_795_000_020  # a minute start (divisible by 60)


def state(ts: float, grid_w: float | None, power_w: float = 0.0, duty: float = 0.0,
          stale: bool = False, **extra: object) -> dict:
    return {"ts": ts, "grid_w": grid_w, "power_w": power_w, "duty": duty, "stale": stale,
            **extra}


def feed(acc: Accumulator, msgs: list[dict]) -> list:
    out = []
    for m in msgs:
        out += acc.add(m)
    return out


def test_known_input_gives_exact_minutes() -> None:
    # 3600 W held 1 s is exactly 1 Wh: every sum below is exact in binary floating point
    msgs = [state(T0 + i, 3600.0, 1800.0, 0.5) for i in range(60)]
    msgs += [state(T0 + 60 + i, -7200.0, 3600.0, 1.0) for i in range(60)]
    msgs += [state(T0 + 120, 0.0)]
    minutes = feed(Accumulator(), msgs)
    assert [m.ts for m in minutes] == [T0, T0 + 60]
    a, b = minutes
    assert (a.grid_w, a.power_w, a.duty, a.known_s) == (3600.0, 1800.0, 0.5, 60.0)
    assert (a.import_wh, a.export_wh, a.diverted_wh, a.topup_wh) == (60.0, 0.0, 30.0, 0.0)
    assert (b.grid_w, b.import_wh, b.export_wh, b.diverted_wh) == (-7200.0, 0.0, 120.0, 60.0)


def test_a_sample_across_a_boundary_is_split_exactly() -> None:
    acc = Accumulator()
    minutes = feed(acc, [state(T0 + 30, 3600.0), state(T0 + 62, 0.0), state(T0 + 120, 0.0)])
    # ... but 32 s exceeds the hold limit, so nothing is counted: a worker gone that long
    assert minutes == []
    acc = Accumulator()
    minutes = feed(acc, [state(T0 + 58, 3600.0), state(T0 + 62, 0.0), state(T0 + 120, 0.0)])
    # 2 s on each side of the boundary; the 58 s of silence after T0 + 62 count nothing
    assert [(m.ts, m.import_wh, m.known_s, m.grid_w) for m in minutes] == [
        (T0, 2.0, 2.0, 3600.0), (T0 + 60, 2.0, 2.0, 3600.0)]


def test_stale_time_counts_nothing() -> None:
    msgs = [state(T0 + i, 3600.0, 1800.0, 0.75, stale=i >= 30) for i in range(60)]
    minutes = feed(Accumulator(), msgs + [state(T0 + 60, 0.0)])
    m = minutes[0]
    assert (m.import_wh, m.known_s) == (30.0, 60.0)  # 30 s known grid, 30 s stale
    assert m.diverted_wh == 15.0
    assert (m.grid_w, m.power_w, m.duty) == (3600.0, 900.0, 0.375)  # output: 0 while stale


def test_topup_and_extras_are_recorded() -> None:
    loads = {"heater": {"power_w": 1800.0}, "pool": {"power_w": 3600.0}}
    msgs = [state(T0 + i, 0.0, topup_w=3600.0, loads=loads, tank_c=50.0 + (i >= 30))
            for i in range(60)]
    m = feed(Accumulator(), msgs + [state(T0 + 60, 0.0)])[0]
    assert m.topup_wh == 60.0
    assert m.extras == {"load.heater.wh": 30.0, "load.pool.wh": 60.0, "tank.main.c": 50.5}
    assert extras_of({"loads": "junk", "tank_c": float("nan")}) == {}


def test_clock_set_back_drops_the_open_minute() -> None:
    acc = Accumulator()
    feed(acc, [state(T0 + i, 3600.0) for i in range(30)])
    minutes = feed(acc, [state(T0 - 600 + i, 3600.0) for i in range(61)])
    assert [(m.ts, m.import_wh) for m in minutes] == [(T0 - 600, 60.0)]


def test_silence_closes_the_minute_after_the_hold_limit() -> None:
    acc = Accumulator()
    feed(acc, [state(T0 + i, 3600.0) for i in range(10)])
    assert acc.flush_until(T0 + 64) == []
    minutes = acc.flush_until(T0 + 70)
    assert [(m.ts, m.import_wh) for m in minutes] == [(T0, 9.0)]
    assert acc.flush_until(T0 + 200) == []  # nothing open any more
