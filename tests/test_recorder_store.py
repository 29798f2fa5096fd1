"""The history database and its queries against known input: daily totals, merging after a
restart, per-load extras, size pruning, DST days, CSV."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from vzdivert.history import query
from vzdivert.history.minutes import Minute
from vzdivert.history.store import (
    day_span,
    open_reader,
    open_writer,
    used_bytes,
    write_minutes,
    zone,
)
from vzdivert.testing.history import synthetic_minutes

UTC = zone("UTC")
BERLIN = zone("Europe/Berlin")
TARIFF = query.Tariff(0.30, 0.08, "€")


def minute(ts: int, grid_w: float = 3600.0, power_w: float = 1800.0, **kw: object) -> Minute:
    return Minute(ts, grid_w, power_w, power_w / 3600.0, max(grid_w, 0) / 60,
                  max(-grid_w, 0) / 60, power_w / 60, 0.0, 60.0, dict(kw))


@pytest.fixture
def db(tmp_path: Path) -> tuple[sqlite3.Connection, Path]:
    path = tmp_path / "history.sqlite"
    conn = open_writer(path)
    yield conn, path
    conn.close()


def test_days_total_the_minutes_and_survive_a_reopen(db) -> None:
    conn, path = db
    start = day_span(date(2026, 11, 29), date(2026, 11, 29), UTC)[0]
    write_minutes(conn, [minute(start + 60 * i) for i in range(1440)], UTC)
    write_minutes(conn, [minute(start + 86400, grid_w=-3600.0, power_w=0.0)], UTC)  # the 30th
    conn.close()
    reader = open_reader(path)
    rows = query.energy(reader, "day", date(2026, 11, 1), date(2026, 11, 29), TARIFF)["rows"]
    assert rows == [{"date": "2026-11-29", "diverted_wh": 43200.0, "import_wh": 86400.0,
                     "export_wh": 0.0, "topup_wh": 0.0, "savings": 9.504}]
    month = query.energy(reader, "month", date(2026, 1, 1), date(2026, 12, 31), TARIFF)
    assert [(r["date"], r["export_wh"]) for r in month["rows"]] == [("2026-11-01", 60.0)]
    with pytest.raises(sqlite3.OperationalError):  # the reader cannot write
        reader.execute("DELETE FROM days")


def test_a_minute_written_twice_is_merged(db) -> None:
    conn, _ = db
    ts = 1_795_000_020
    first = Minute(ts, 1000.0, 500.0, 0.25, 5.0, 0.0, 2.5, 0.0, 18.0, {"load.a.wh": 1.0})
    rest = Minute(ts, -1000.0, 1500.0, 0.75, 0.0, 10.0, 17.5, 0.0, 42.0, {"load.a.wh": 2.0})
    write_minutes(conn, [first], UTC)
    write_minutes(conn, [rest], UTC)
    row = conn.execute("SELECT grid_w, power_w, import_wh, export_wh, diverted_wh, known_s "
                       "FROM minutes").fetchone()
    assert row == pytest.approx((-400.0, 1200.0, 5.0, 10.0, 20.0, 60.0))
    day = conn.execute("SELECT grid_sum, grid_n, diverted_wh FROM days").fetchone()
    assert day == pytest.approx((-400.0, 1, 20.0))
    assert conn.execute("SELECT sum, n FROM day_extras").fetchone() == (3.0, 1)


def test_extras_become_columns_and_daily_sums(db) -> None:
    conn, path = db
    start = day_span(date(2026, 6, 1), date(2026, 6, 1), UTC)[0]
    write_minutes(conn, [minute(start + 60 * i, **{"load.heater.wh": 2.0, "tank.main.c":
                                                   40.0 + i % 2}) for i in range(10)], UTC)
    reader = open_reader(path)
    rows = query.energy(reader, "day", date(2026, 6, 1), date(2026, 6, 1), TARIFF)["rows"]
    assert rows[0]["extras"] == {"load.heater.wh": 20.0, "tank.main.c": 40.5}
    lines = list(query.csv_lines(reader, date(2026, 6, 1), date(2026, 6, 1), "minute", UTC,
                                 TARIFF))
    assert lines[0] == ("time,grid_w,power_w,duty,import_wh,export_wh,diverted_wh,topup_wh,"
                        "load.heater.wh,tank.main.c\n")
    assert lines[2] == "2026-06-01T00:01:00+00:00,3600,1800,0.5,60,0,30,0,2,41\n"


def test_size_pruning_drops_the_oldest_minutes_and_keeps_the_days(db) -> None:
    conn, _ = db
    start = 1_790_000_040
    write_minutes(conn, list(synthetic_minutes(start, 60 * 24 * 60)), UTC)  # 60 days
    full = used_bytes(conn)
    days_before = conn.execute("SELECT * FROM days ORDER BY date").fetchall()
    limit = full // 2
    now = start + 61 * 86400
    dropped = write_minutes(conn, list(synthetic_minutes(now - 60, 1)), UTC,
                            prune=(now, 366, limit))
    assert dropped > 0
    assert used_bytes(conn) <= limit
    first = conn.execute("SELECT MIN(ts) FROM minutes").fetchone()[0]
    assert first > start and (first - start) % (7 * 86400) == 0  # whole weeks, oldest first
    assert conn.execute("SELECT COUNT(*) FROM minutes WHERE ts >= ?", (first,)).fetchone()[0] \
        == (start + 60 * 86400 - first) // 60 + 1  # nothing newer was touched
    days_after = conn.execute("SELECT * FROM days ORDER BY date").fetchall()
    assert days_after[:-1] == days_before  # the daily totals stay
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert Path(conn.execute("PRAGMA database_list").fetchone()[2]).stat().st_size <= limit * 1.1


def test_age_pruning(db) -> None:
    conn, _ = db
    start = 1_790_000_040
    write_minutes(conn, list(synthetic_minutes(start, 3 * 1440)), UTC)
    days = conn.execute("SELECT * FROM days").fetchall()
    now = start + 3 * 86400
    write_minutes(conn, [], UTC, prune=(now, 1, 10**12))
    assert conn.execute("SELECT MIN(ts) FROM minutes").fetchone()[0] == now - 86400
    assert conn.execute("SELECT * FROM days").fetchall() == days


@pytest.mark.parametrize("day,hours", [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25),
                                       (date(2026, 11, 29), 24)])
def test_dst_days_have_23_or_25_hours(db, day: date, hours: int) -> None:
    conn, path = db
    start, end = day_span(day, day, BERLIN)
    assert end - start == hours * 3600
    # a fully recorded local day, plus a minute either side that belongs to other days
    write_minutes(conn, list(synthetic_minutes(start - 60, (end - start) // 60 + 2)), BERLIN)
    reader = open_reader(path)
    lines = list(query.csv_lines(reader, day, day, "minute", BERLIN, TARIFF))
    assert len(lines) == 1 + hours * 60
    assert lines[1].startswith(f"{day}T00:00:00+0")
    assert lines[-1].startswith(f"{day}T23:59:00+0")
    series = query.series(reader, "day", day, BERLIN)
    assert (series["to"] - series["from"], len(series["ts"])) == (hours * 3600, hours * 60)
    rows = query.energy(reader, "day", day, day, TARIFF)["rows"]
    total = conn.execute("SELECT SUM(import_wh) FROM minutes WHERE ts >= ? AND ts < ?",
                         (start, end)).fetchone()[0]
    assert rows[0]["import_wh"] == round(total, 3)


def test_views_and_errors(db) -> None:
    conn, path = db
    start = day_span(date(2026, 1, 1), date(2026, 1, 1), UTC)[0]
    write_minutes(conn, list(synthetic_minutes(start, 40 * 1440)), UTC)
    reader = open_reader(path)
    week = query.series(reader, "week", date(2026, 1, 7), UTC)
    assert len(week["ts"]) == 7 * 144 and week["step_s"] == 600
    month = query.series(reader, "month", date(2026, 1, 31), UTC)
    assert len(month["ts"]) == 31 * 24
    year = query.series(reader, "year", date(2026, 12, 31), UTC)
    assert len(year["ts"]) == 40 and year["diverted_wh"][0] == pytest.approx(
        sum(m.diverted_wh for m in synthetic_minutes(start, 1440)), abs=0.01)
    with pytest.raises(query.QueryError, match="period"):
        query.energy(reader, "week", date(2026, 1, 1), date(2026, 1, 2), TARIFF)
    with pytest.raises(query.QueryError, match="after"):
        query.energy(reader, "day", date(2026, 1, 2), date(2026, 1, 1), TARIFF)
    with pytest.raises(query.QueryError, match="to: expected a date"):
        query.parse_date("2026-13-01", "to", date(2026, 1, 1))
    assert query.energy(None, "day", date(2026, 1, 1), date(2026, 1, 2), TARIFF)["rows"] == []
    assert list(query.csv_lines(None, date(2026, 1, 1), date(2026, 1, 1), "day", UTC,
                                TARIFF)) == ["date,import_wh,export_wh,diverted_wh,topup_wh,"
                                             "savings\n"]


def test_the_system_time_zone_is_used_when_none_is_configured(monkeypatch) -> None:
    import time
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        tz = zone("")
        assert tz is None
        assert day_span(date(2026, 3, 8), date(2026, 3, 8), tz)[1] - \
            day_span(date(2026, 3, 8), date(2026, 3, 8), tz)[0] == 23 * 3600
        assert day_span(date(2026, 11, 1), date(2026, 11, 1), tz)[1] - \
            day_span(date(2026, 11, 1), date(2026, 11, 1), tz)[0] == 25 * 3600
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
