"""What the UI and the API ask the history database: energy per day/month/year with the
money saved, the chart's day/week/month/year series and CSV exports. Pure functions of a
read-only connection (None while no database exists: empty answers, not errors)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from vzdivert.history.store import ENERGY, day_span, day_start

PERIODS = {"day": 10, "month": 7, "year": 4}  # period -> length of the date prefix grouped
VIEWS = {"day": (1, 60), "week": (7, 600), "month": (31, 3600), "year": (366, 86400)}
RESOLUTIONS = ("minute", "day")
MAX_MINUTE_CSV_DAYS = 400


class QueryError(ValueError):
    """A parameter out of range; the message names it."""


@dataclass(frozen=True)
class Tariff:
    import_price: float = 0.0
    feed_in_price: float = 0.0
    currency: str = ""

    def savings(self, diverted_wh: float) -> float:
        """Each diverted kWh was not bought (import price) but not sold either (feed-in)."""
        return round(diverted_wh / 1000.0 * (self.import_price - self.feed_in_price), 4)


def parse_date(value: str | None, name: str, default: date) -> date:
    if value is None or value == "":
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}: expected a date YYYY-MM-DD, got {value!r}") from None


def check_range(first: date, last: date) -> None:
    if first > last:
        raise QueryError(f"from ({first}) is after to ({last})")


def energy(conn: sqlite3.Connection | None, period: str, first: date, last: date,
           tariff: Tariff) -> dict:
    """Energy per local day, month or year between two dates (inclusive), with savings.
    A month's ``date`` is its first day, a year's its 1 January."""
    if period not in PERIODS:
        raise QueryError(f"period: expected one of {', '.join(PERIODS)}, got {period!r}")
    check_range(first, last)
    rows: list[dict] = []
    if conn is not None:
        n = PERIODS[period]
        sql = (f"SELECT substr(date, 1, {n}) AS p, SUM(import_wh), SUM(export_wh), "
               f"SUM(diverted_wh), SUM(topup_wh) FROM days WHERE date >= ? AND date <= ? "
               f"GROUP BY p ORDER BY p")
        for p, imp, exp, div, top in conn.execute(sql, (first.isoformat(), last.isoformat())):
            label = p + "-01-01"[len(p) - 4:] if len(p) < 10 else p
            rows.append({"date": label, "diverted_wh": round(div, 3),
                         "import_wh": round(imp, 3), "export_wh": round(exp, 3),
                         "topup_wh": round(top, 3), "savings": tariff.savings(div)})
        extras = _day_extras(conn, n, first, last)
        for row in rows:
            if row["date"][:n] in extras:
                row["extras"] = extras[row["date"][:n]]
    return {"period": period, "currency": tariff.currency, "rows": rows}


def _day_extras(conn: sqlite3.Connection, n: int, first: date,
                last: date) -> dict[str, dict[str, float]]:
    """Per-load energy (``*.wh``, summed) and tank levels (mean of minute means)."""
    out: dict[str, dict[str, float]] = {}
    sql = (f"SELECT substr(date, 1, {n}) AS p, key, SUM(sum), SUM(n) FROM day_extras "
           f"WHERE date >= ? AND date <= ? GROUP BY p, key")
    for p, key, total, count in conn.execute(sql, (first.isoformat(), last.isoformat())):
        value = total if key.endswith(".wh") else total / count if count else None
        out.setdefault(p, {})[key] = None if value is None else round(value, 3)
    return out


def summary(conn: sqlite3.Connection | None, today: date, tariff: Tariff) -> dict:
    """Today, this month and this year for the dashboard."""
    out = {"currency": tariff.currency}
    for name, period, first in (("today", "day", today),
                                ("month", "month", today.replace(day=1)),
                                ("year", "year", today.replace(month=1, day=1))):
        rows = energy(conn, period, first, today, tariff)["rows"]
        out[name] = rows[0] if rows else {"date": first.isoformat(), "diverted_wh": 0.0,
                                          "import_wh": 0.0, "export_wh": 0.0,
                                          "topup_wh": 0.0, "savings": 0.0}
    return out


SERIES = ("grid_w", "power_w", "duty", "diverted_wh", "import_wh", "export_wh")


def series(conn: sqlite3.Connection | None, view: str, last: date,
           tz: tzinfo | None) -> dict:
    """Chart columns for the ``view`` ending with the local day ``last``: day and week from
    the minutes (1 and 10 min steps), month hourly, year one point per day from the daily
    totals (which outlive the minutes). A gap gets a null point so the line breaks."""
    if view not in VIEWS:
        raise QueryError(f"view: expected one of {', '.join(VIEWS)}, got {view!r}")
    days, step = VIEWS[view]
    first = last - timedelta(days=days - 1)
    start, end = day_span(first, last, tz)
    rows: list[tuple] = []
    if conn is not None and view == "year":
        sql = ("SELECT date, grid_sum / NULLIF(grid_n, 0), power_sum / NULLIF(power_n, 0), "
               "duty_sum / NULLIF(power_n, 0), diverted_wh, import_wh, export_wh FROM days "
               "WHERE date >= ? AND date <= ? ORDER BY date")
        rows = [(day_start(date.fromisoformat(d), tz), *rest)
                for d, *rest in conn.execute(sql, (first.isoformat(), last.isoformat()))]
    elif conn is not None and step == 60:
        rows = conn.execute("SELECT ts, grid_w, power_w, duty, diverted_wh, import_wh, "
                            "export_wh FROM minutes WHERE ts >= ? AND ts < ? ORDER BY ts",
                            (start, end)).fetchall()
    elif conn is not None:
        rows = conn.execute(
            "SELECT ts / ?1 * ?1 AS b, AVG(grid_w), AVG(power_w), AVG(duty), SUM(diverted_wh), "
            "SUM(import_wh), SUM(export_wh) FROM minutes WHERE ts >= ?2 AND ts < ?3 "
            "GROUP BY b ORDER BY b", (step, start, end)).fetchall()
    out: dict = {"view": view, "from": start, "to": end, "step_s": step, "ts": [],
                 **{c: [] for c in SERIES}}
    prev = None
    for ts, *values in rows:
        if prev is not None and ts - prev > 2 * step and view != "year":
            out["ts"].append(prev + step)
            for c in SERIES:
                out[c].append(None)
        out["ts"].append(ts)
        for c, v in zip(SERIES, values, strict=True):
            out[c].append(None if v is None else round(v, 4 if c == "duty" else 2))
        prev = ts
    return out


def _fmt(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def csv_lines(conn: sqlite3.Connection | None, first: date, last: date, resolution: str,
              tz: tzinfo | None, tariff: Tariff) -> Iterator[str]:
    """A header line, then one line per minute (local time with its UTC offset) or per
    local day. Per-load and tank keys become extra columns when the range has them."""
    if resolution not in RESOLUTIONS:
        raise QueryError(f"resolution: expected one of {', '.join(RESOLUTIONS)}, "
                         f"got {resolution!r}")
    check_range(first, last)
    if resolution == "minute" and (last - first).days >= MAX_MINUTE_CSV_DAYS:
        raise QueryError(f"resolution=minute: at most {MAX_MINUTE_CSV_DAYS} days at a time")
    if resolution == "day":
        return _csv_days(conn, first, last, tariff)
    return _csv_minutes(conn, first, last, tz)


def _csv_days(conn: sqlite3.Connection | None, first: date, last: date,
              tariff: Tariff) -> Iterator[str]:
    rows = energy(conn, "day", first, last, tariff)["rows"]
    keys = sorted({k for r in rows for k in r.get("extras", {})})
    yield ",".join(["date", *ENERGY, "savings", *keys]) + "\n"
    for r in rows:
        extras = r.get("extras", {})
        yield ",".join([r["date"], *(_fmt(r[c]) for c in ENERGY), _fmt(r["savings"]),
                        *(_fmt(extras.get(k)) for k in keys)]) + "\n"


def _csv_minutes(conn: sqlite3.Connection | None, first: date, last: date,
                 tz: tzinfo | None) -> Iterator[str]:
    start, end = day_span(first, last, tz)
    keys: list[str] = []
    if conn is not None:
        keys = [k for (k,) in conn.execute(
            "SELECT DISTINCT key FROM minute_extras WHERE ts >= ? AND ts < ? ORDER BY key",
            (start, end))]
    yield ",".join(["time", "grid_w", "power_w", "duty", *ENERGY, *keys]) + "\n"
    if conn is None:
        return
    extras: dict[int, dict[str, float]] = {}
    if keys:
        for ts, key, value in conn.execute(
                "SELECT ts, key, value FROM minute_extras WHERE ts >= ? AND ts < ?",
                (start, end)):
            extras.setdefault(ts, {})[key] = value
    cur = conn.execute("SELECT ts, grid_w, power_w, duty, import_wh, export_wh, diverted_wh, "
                       "topup_wh FROM minutes WHERE ts >= ? AND ts < ? ORDER BY ts",
                       (start, end))
    for ts, *values in cur:
        when = datetime.fromtimestamp(ts, tz).astimezone(tz).isoformat(timespec="seconds")
        row = extras.get(ts, {})
        yield ",".join([when, *(_fmt(v) for v in values),
                        *(_fmt(row.get(k)) for k in keys)]) + "\n"
