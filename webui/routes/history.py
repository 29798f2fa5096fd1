"""History: energy per day/month/year with savings, the chart's long views and CSV
exports, all read-only from the recorder's database; and settings backup/restore (restore
goes through the supervisor, which validates and persists it like any change)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bottle import Bottle, HTTPResponse, request, response

from vzdivert.config import Config
from vzdivert.history import query
from vzdivert.history.store import DB_FILE, open_reader, zone
from vzdivert.settings_backup import backup_document
from vzdivert.webui.context import UI
from vzdivert.webui.jsonhttp import fail

DEFAULT_DAYS = {"day": 31, "month": 366, "year": 3660}
MAX_SETTINGS_FILE_BYTES = 256 * 1024


class HistoryReader:
    """Read-only access to the recorder's database and the live tariff."""

    def __init__(self, cfg: Config, live_settings: Callable[[], dict[str, Any] | None]):
        self.path = Path(cfg.state.dir) / DB_FILE
        self.tz = zone(cfg.history.timezone)
        self.cfg = cfg
        self.live_settings = live_settings  # () -> the newest settings (the health stream)

    def connect(self) -> sqlite3.Connection | None:
        return open_reader(self.path)

    def today(self) -> date:
        return datetime.now(self.tz).date()

    def tariff(self) -> query.Tariff:
        s = {**self.cfg.tunables(), **(self.live_settings() or {})}
        return query.Tariff(float(s["import_price"]), float(s["feed_in_price"]),
                            str(s["currency"]))


def _dates(period_days: int, today: date) -> tuple[date, date]:
    last = query.parse_date(request.query.get("to"), "to", today)
    first = query.parse_date(request.query.get("from"), "from",
                             last - timedelta(days=period_days - 1))
    query.check_range(first, last)
    return first, last


def _closing(conn: sqlite3.Connection | None, lines: Iterator[str]) -> Iterator[bytes]:
    try:
        for line in lines:
            yield line.encode()
    finally:
        if conn is not None:
            conn.close()


def add_routes(app: Bottle, ui: UI) -> None:
    guard = ui.guard
    reader = HistoryReader(ui.cfg, lambda: ui.feed.health.get("settings"))

    def bad(exc: query.QueryError) -> HTTPResponse:
        return fail(400, str(exc))

    @app.get("/api/energy")
    def energy() -> dict[str, Any]:
        guard.viewer()
        period = request.query.get("period", "day")
        conn = reader.connect()
        try:
            first, last = _dates(DEFAULT_DAYS.get(period, 31), reader.today())
            return query.energy(conn, period, first, last, reader.tariff())
        except query.QueryError as exc:
            raise bad(exc) from exc
        finally:
            if conn is not None:
                conn.close()

    @app.get("/api/energy/summary")
    def energy_summary() -> dict[str, Any]:
        guard.viewer()
        conn = reader.connect()
        try:
            tariff = reader.tariff()
            return {**query.summary(conn, reader.today(), tariff),
                    "tariff_set": tariff.import_price > 0,
                    "import_price": tariff.import_price, "feed_in_price": tariff.feed_in_price}
        finally:
            if conn is not None:
                conn.close()

    @app.get("/api/history/range")
    def history_range() -> dict[str, Any]:
        guard.viewer()
        conn = reader.connect()
        try:
            last = query.parse_date(request.query.get("date"), "date", reader.today())
            return query.series(conn, request.query.get("view", "day"), last, reader.tz)
        except query.QueryError as exc:
            raise bad(exc) from exc
        finally:
            if conn is not None:
                conn.close()

    @app.get("/api/export.csv")
    def export_csv() -> Any:
        guard.viewer()
        resolution = request.query.get("resolution", "day")
        conn = reader.connect()
        try:
            first, last = _dates(1 if resolution == "minute" else 31, reader.today())
            lines = query.csv_lines(conn, first, last, resolution, reader.tz, reader.tariff())
        except query.QueryError as exc:
            if conn is not None:
                conn.close()
            raise bad(exc) from exc
        response.content_type = "text/csv; charset=utf-8"
        response.set_header("Content-Disposition", f'attachment; filename="vzdivert-'
                            f'{first}-{last}-{resolution}.csv"')
        return _closing(conn, lines)

    @app.get("/api/settings/export")
    def settings_export() -> Any:
        guard.viewer()
        doc = ui.call_supervisor("get_settings")
        body = backup_document(doc["settings"], doc.get("overrides", {}))
        response.set_header("Content-Disposition",
                            f'attachment; filename="vzdivert-settings-{reader.today()}.json"')
        response.content_type = "application/json"
        return json.dumps(body, indent=1, sort_keys=True) + "\n"

    @app.post("/api/settings/import")
    def settings_import() -> dict[str, Any]:
        who = guard.changer()
        raw = request.body.read(MAX_SETTINGS_FILE_BYTES + 1)
        if len(raw) > MAX_SETTINGS_FILE_BYTES:
            raise fail(413, f"settings file larger than {MAX_SETTINGS_FILE_BYTES} bytes")
        try:
            document = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise fail(422, f"not a JSON document: {exc}", fields={"file": str(exc)}) from exc
        return ui.call_supervisor("import_settings", document=document, who=guard.label(who))

