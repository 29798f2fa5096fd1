"""History queries on a year of synthetic 1-minute rows: the year views and exports as a
ratio to a one-day query in the same run (target: year queries under 200 ms on a Pi 4 class
machine). Also how long building the year takes and how big the database gets.

Usage: python bench/history.py [--days 365] [--repeat 7] [--db PATH]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from vzdivert.history import query
from vzdivert.history.store import (
    day_span,
    open_reader,
    open_writer,
    used_bytes,
    write_minutes,
    zone,
)
from vzdivert.testing.history import synthetic_minutes

TZ = zone("Europe/Berlin")
TARIFF = query.Tariff(0.32, 0.08, "€")


def build(path: Path, last: date, days: int) -> tuple[float, int]:
    """A year of full minutes, one transaction per day to build it quickly (the recorder
    writes one minute per transaction); returns seconds taken and the database's bytes."""
    conn = open_writer(path)
    start = day_span(last - timedelta(days=days - 1), last, TZ)[0]
    t0 = time.perf_counter()
    for d in range(days):
        write_minutes(conn, list(synthetic_minutes(start + d * 86400, 1440,
                                                   loads=("heater",))), TZ)
    took = time.perf_counter() - t0
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = used_bytes(conn)
    conn.close()
    return took, size


def timed_ms(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--db", default="", help="reuse/keep the database here")
    args = parser.parse_args()
    last = date(2026, 11, 29)
    first = last - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "history.sqlite"
        if not path.exists():
            took, size = build(path, last, args.days)
            print(f"built {args.days} days x 1440 minutes in {took:.1f} s "
                  f"({took / args.days * 1000:.1f} ms per day's transaction), "
                  f"{size / 1e6:.1f} MB ({size / (args.days * 1440):.0f} B/minute)")
        conn = open_reader(path)
        cases = {
            "one day: chart (1440 minutes)": lambda: query.series(conn, "day", last, TZ),
            "one day: energy": lambda: query.energy(conn, "day", last, last, TARIFF),
            "one day: CSV minutes": lambda: list(query.csv_lines(conn, last, last, "minute",
                                                                 TZ, TARIFF)),
            "week: chart (10 min)": lambda: query.series(conn, "week", last, TZ),
            "month: chart (hourly)": lambda: query.series(conn, "month", last, TZ),
            "year: chart (daily)": lambda: query.series(conn, "year", last, TZ),
            "year: energy period=day": lambda: query.energy(conn, "day", first, last, TARIFF),
            "year: energy period=month": lambda: query.energy(conn, "month", first, last,
                                                              TARIFF),
            "year: dashboard summary": lambda: query.summary(conn, last, TARIFF),
            "year: CSV days": lambda: list(query.csv_lines(conn, first, last, "day", TZ,
                                                           TARIFF)),
            "year: CSV minutes (export)": lambda: list(query.csv_lines(
                conn, first, last, "minute", TZ, TARIFF)),
        }
        base = None
        print(f"{'query':32} {'median ms':>10} {'x one-day chart':>16}")
        for name, fn in cases.items():
            ms = timed_ms(fn, 1 if "export" in name else args.repeat)
            base = base or ms
            print(f"{name:32} {ms:10.2f} {ms / base:16.2f}")
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
