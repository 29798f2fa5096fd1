"""The history database: SQLite in WAL mode in ``[state] dir``. One writer (the recorder
process), one transaction per minute; readers (the web UI) open it read-only.

Tables: ``minutes`` (1-minute aggregates, kept ``keep_days`` and pruned to ``max_bytes``),
``days`` (daily totals by local date, kept forever) and the long/narrow ``minute_extras``/
``day_extras`` (key, value) for per-load energy and tank temperatures: a new load or tank is a
new key, never a schema change.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from vzdivert.history.minutes import Minute

DB_FILE = "history.sqlite"
SCHEMA_VERSION = 1
ENERGY = ("import_wh", "export_wh", "diverted_wh", "topup_wh")
PRUNE_STEP_S = 7 * 86400  # size pruning drops the oldest minutes a week at a time

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS minutes (
    ts INTEGER PRIMARY KEY,          -- minute start, epoch seconds (UTC)
    grid_w REAL, power_w REAL, duty REAL,
    import_wh REAL NOT NULL, export_wh REAL NOT NULL,
    diverted_wh REAL NOT NULL, topup_wh REAL NOT NULL,
    known_s REAL NOT NULL            -- seconds of the minute with data
);
CREATE TABLE IF NOT EXISTS minute_extras (
    ts INTEGER NOT NULL, key TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (ts, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS days (
    date TEXT PRIMARY KEY,           -- local date YYYY-MM-DD
    import_wh REAL NOT NULL, export_wh REAL NOT NULL,
    diverted_wh REAL NOT NULL, topup_wh REAL NOT NULL,
    grid_sum REAL NOT NULL, grid_n INTEGER NOT NULL,     -- minute means, for the day's mean
    power_sum REAL NOT NULL, power_n INTEGER NOT NULL,
    duty_sum REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS day_extras (
    date TEXT NOT NULL, key TEXT NOT NULL, sum REAL NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (date, key)) WITHOUT ROWID;
"""


def zone(name: str) -> tzinfo | None:
    """The configured time zone; empty: the system's (None, honouring $TZ)."""
    return ZoneInfo(name) if name else None


def local_date(ts: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d")


def day_start(day: date, tz: tzinfo | None) -> int:
    """Epoch seconds of local midnight starting ``day`` (a DST day is 23 or 25 h long)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def day_span(first: date, last: date, tz: tzinfo | None) -> tuple[int, int]:
    """[start, end) epoch seconds covering the local days ``first`` to ``last``."""
    return day_start(first, tz), day_start(last + timedelta(days=1), tz)


def open_writer(path: str | Path) -> sqlite3.Connection:
    """The recorder's connection: creates the file, WAL, full sync (one fsync a minute)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only before the first table
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                 (str(SCHEMA_VERSION),))
    return conn


def open_reader(path: str | Path) -> sqlite3.Connection | None:
    """A read-only connection, or None while no recorder has created the database."""
    path = Path(path)
    if not path.exists():
        return None
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                           isolation_level=None, timeout=5.0, check_same_thread=False)
    conn.execute("PRAGMA query_only=1")
    return conn


def write_minutes(conn: sqlite3.Connection, minutes: list[Minute], tz: tzinfo | None,
                  prune: tuple[float, float, int] | None = None) -> int:
    """One transaction (SD cards wear: one a minute at most): the minutes, their days'
    totals and, with ``prune=(now, keep_days, max_bytes)``, the pruning. A minute already
    stored (a restart inside it) is merged, its means weighted by the seconds each part
    covered. Returns how many minutes pruning dropped."""
    if not minutes and prune is None:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for m in minutes:
            _write_one(conn, m, local_date(m.ts, tz))
        dropped = _prune(conn, *prune) if prune is not None else 0
        if dropped:
            _give_back_free_pages(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return dropped


def _merge_mean(old: float | None, old_s: float, new: float | None, new_s: float):
    if old is None or old_s <= 0:
        return new
    if new is None or new_s <= 0:
        return old
    return (old * old_s + new * new_s) / (old_s + new_s)


def _write_one(conn: sqlite3.Connection, m: Minute, day: str) -> None:
    old = conn.execute("SELECT grid_w, power_w, duty, known_s FROM minutes WHERE ts=?",
                       (m.ts,)).fetchone()
    if old is None:
        conn.execute("INSERT INTO minutes VALUES (?,?,?,?,?,?,?,?,?)",
                     (m.ts, m.grid_w, m.power_w, m.duty, m.import_wh, m.export_wh,
                      m.diverted_wh, m.topup_wh, m.known_s))
        means = (m.grid_w, m.power_w, m.duty)
        old_means: tuple = (None, None, None)
    else:
        means = tuple(_merge_mean(o, old[3], n, m.known_s)
                      for o, n in zip(old[:3], (m.grid_w, m.power_w, m.duty), strict=True))
        old_means = old[:3]
        conn.execute("UPDATE minutes SET grid_w=?, power_w=?, duty=?, import_wh=import_wh+?,"
                     " export_wh=export_wh+?, diverted_wh=diverted_wh+?, topup_wh=topup_wh+?,"
                     " known_s=known_s+? WHERE ts=?",
                     (*means, m.import_wh, m.export_wh, m.diverted_wh, m.topup_wh,
                      m.known_s, m.ts))
    # the day keeps sums of minute means: replace this minute's old mean by its new one
    d_grid = (means[0] or 0.0) - (old_means[0] or 0.0)
    d_grid_n = (means[0] is not None) - (old_means[0] is not None)
    d_power = (means[1] or 0.0) - (old_means[1] or 0.0)
    d_power_n = (means[1] is not None) - (old_means[1] is not None)
    d_duty = (means[2] or 0.0) - (old_means[2] or 0.0)
    conn.execute(
        "INSERT INTO days VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(date) DO UPDATE SET "
        "import_wh=import_wh+excluded.import_wh, export_wh=export_wh+excluded.export_wh, "
        "diverted_wh=diverted_wh+excluded.diverted_wh, topup_wh=topup_wh+excluded.topup_wh, "
        "grid_sum=grid_sum+excluded.grid_sum, grid_n=grid_n+excluded.grid_n, "
        "power_sum=power_sum+excluded.power_sum, power_n=power_n+excluded.power_n, "
        "duty_sum=duty_sum+excluded.duty_sum",
        (day, m.import_wh, m.export_wh, m.diverted_wh, m.topup_wh, d_grid, d_grid_n,
         d_power, d_power_n, d_duty))
    for key, value in m.extras.items():
        summed = key.endswith(".wh")
        prev = conn.execute("SELECT value FROM minute_extras WHERE ts=? AND key=?",
                            (m.ts, key)).fetchone()
        # a level's newer part wins over an older one (only after a restart in the minute)
        new_value = prev[0] + value if prev is not None and summed else value
        conn.execute("INSERT OR REPLACE INTO minute_extras VALUES (?,?,?)", (m.ts, key, new_value))
        d_sum = new_value - (prev[0] if prev is not None else 0.0)
        conn.execute("INSERT INTO day_extras VALUES (?,?,?,?) ON CONFLICT(date, key) DO UPDATE "
                     "SET sum=sum+excluded.sum, n=n+excluded.n",
                     (day, key, d_sum, 0 if prev is not None else 1))


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes the database's live pages take (free pages excluded)."""
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    count = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return (count - free) * page


def _prune(conn: sqlite3.Connection, now: float, keep_days: float, max_bytes: int) -> int:
    """Drop minutes older than ``keep_days``, then the oldest weeks of minutes until the
    database fits ``max_bytes``; daily totals are never dropped."""
    dropped = _delete_before(conn, int(now - keep_days * 86400))
    while used_bytes(conn) > max_bytes:
        oldest = conn.execute("SELECT MIN(ts) FROM minutes").fetchone()[0]
        if oldest is None:
            break
        dropped += _delete_before(conn, oldest + PRUNE_STEP_S)
    return dropped


def _give_back_free_pages(conn: sqlite3.Connection) -> None:
    """Shrink the file by its free pages (auto_vacuum=INCREMENTAL). Python's sqlite3 steps
    a pragma once, which frees one page, hence the loop."""
    while conn.execute("PRAGMA freelist_count").fetchone()[0]:
        conn.execute("PRAGMA incremental_vacuum")


def _delete_before(conn: sqlite3.Connection, ts: int) -> int:
    conn.execute("DELETE FROM minute_extras WHERE ts < ?", (ts,))
    return conn.execute("DELETE FROM minutes WHERE ts < ?", (ts,)).rowcount
