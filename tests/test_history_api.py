"""History, energy, CSV and settings backup over HTTP against a real `vzdivert run`: a known
recorded day in the recorder's database, read through the UI, before and after a restart;
the live chain (meter -> worker -> recorder) across a clean restart; DST days; restore."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests
from syshelp import wait_for
from webui_help import UISystem, local_session

from vzdivert.history.minutes import Minute
from vzdivert.history.store import DB_FILE, day_span, open_writer, write_minutes, zone

BERLIN = zone("Europe/Berlin")
EXTRA = """
[history]
timezone = "Europe/Berlin"

[tariff]
import_price = 0.30
feed_in_price = 0.08
currency = "EUR"
"""
# Known days lie in a past year: the live system records today, which must not fall in a
# queried range whatever the date the suite runs on (2025-10-26 is that year's DST end).
DAY = date(2025, 11, 29)


def known_day(day: date) -> list[Minute]:
    """Import 3600 W until noon, then export 1800 W with 1800 W diverted: exact Wh."""
    start, end = day_span(day, day, BERLIN)
    out = []
    for ts in range(start, end, 60):
        morning = ts < start + 12 * 3600
        grid, power = (3600.0, 0.0) if morning else (-1800.0, 1800.0)
        out.append(Minute(ts, grid, power, power / 3600, max(grid, 0) / 60,
                          max(-grid, 0) / 60, power / 60, 0.0, 60.0))
    return out


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UISystem]:
    ui = UISystem(tmp_path_factory.mktemp("history"), extra=EXTRA, need_worker=True)
    ui.state_dir.mkdir(parents=True, exist_ok=True)
    conn = open_writer(ui.state_dir / DB_FILE)
    write_minutes(conn, known_day(DAY) + known_day(date(2025, 10, 26)), BERLIN)
    conn.close()
    try:
        yield ui.start()
    finally:
        ui.kill_all()


def get(system: UISystem, path: str) -> requests.Response:
    return requests.get(system.url(path), timeout=10)


def check_known_day(system: UISystem) -> None:
    r = get(system, "/api/energy?period=day&from=2025-11-29&to=2025-11-29")
    assert r.status_code == 200
    assert r.json() == {"period": "day", "currency": "EUR", "rows": [
        {"date": "2025-11-29", "diverted_wh": 21600.0, "import_wh": 43200.0,
         "export_wh": 21600.0, "topup_wh": 0.0, "savings": 4.752}]}
    month = get(system, "/api/energy?period=month&from=2025-01-01&to=2025-12-31").json()
    assert [(r["date"], r["diverted_wh"]) for r in month["rows"]] == [
        ("2025-10-01", 23400.0), ("2025-11-01", 21600.0)]  # 25 h: 13 h afternoon
    csv = get(system, "/api/export.csv?from=2025-11-29&to=2025-11-29&resolution=day")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines() == ["date,import_wh,export_wh,diverted_wh,topup_wh,savings",
                                     "2025-11-29,43200,21600,21600,0,4.752"]
    lines = get(system, "/api/export.csv?from=2025-11-29&to=2025-11-29&resolution=minute"
                ).text.splitlines()
    assert lines[0] == "time,grid_w,power_w,duty,import_wh,export_wh,diverted_wh,topup_wh"
    assert len(lines) == 1 + 1440
    assert lines[1] == "2025-11-29T00:00:00+01:00,3600,0,0,60,0,0,0"
    assert lines[-1] == "2025-11-29T23:59:00+01:00,-1800,1800,0.5,0,30,30,0"


def test_a_known_day_before_and_after_a_restart(system: UISystem) -> None:
    check_known_day(system)
    system.restart()
    check_known_day(system)


def test_dst_day_has_25_hours(system: UISystem) -> None:
    lines = get(system, "/api/export.csv?from=2025-10-26&to=2025-10-26&resolution=minute"
                ).text.splitlines()
    assert len(lines) == 1 + 25 * 60
    assert lines[1].startswith("2025-10-26T00:00:00+02:00")
    assert lines[-1].startswith("2025-10-26T23:59:00+01:00")
    r = get(system, "/api/history/range?view=day&date=2025-10-26").json()
    assert r["to"] - r["from"] == 25 * 3600 and len(r["ts"]) == 25 * 60
    year = get(system, "/api/history/range?view=year&date=2025-12-31").json()
    # Oct 26: 13 of its 25 hours at 1800 W
    assert len(year["ts"]) == 2 and year["power_w"][0] == 936.0


@pytest.mark.parametrize("path,problem", [
    ("/api/energy?period=week", "period: expected one of day, month, year"),
    ("/api/energy?from=2026-02-30", "from: expected a date"),
    ("/api/energy?from=2026-03-02&to=2026-03-01", "after"),
    ("/api/export.csv?resolution=second", "resolution"),
    ("/api/history/range?view=decade", "view"),
])
def test_bad_parameters_are_400_naming_them(system: UISystem, path: str, problem: str) -> None:
    r = get(system, path)
    assert r.status_code == 400
    assert problem in r.json()["errors"][0]


def test_live_minutes_survive_a_clean_restart(system: UISystem) -> None:
    """Meter -> ingest -> worker -> recorder, for real: SIGTERM writes the open minute."""
    wait_for(lambda: get(system, "/api/state").json()["processes"]["recorder"]["alive"],
             what="the recorder in the health stream")
    before = get(system, "/api/energy/summary").json()["today"]["import_wh"]
    t_end = time.monotonic() + 3.0
    while time.monotonic() < t_end:
        assert system.post(3600.0) == 204
        time.sleep(0.1)
    system.restart()
    rows = get(system, "/api/energy/summary").json()
    today_row = rows["today"]
    assert 1.0 < today_row["import_wh"] - before < 6.0, today_row  # ~3 s at 3600 W
    assert rows["currency"] == "EUR" and rows["tariff_set"] is True


def test_settings_backup_and_restore(system: UISystem) -> None:
    s, csrf = local_session(system)
    backup = s.get(system.url("/api/settings/export"), timeout=5)
    assert "attachment" in backup.headers["Content-Disposition"]
    doc = backup.json()
    assert doc["format"] == "vzdivert-settings" and doc["settings"]["import_price"] == 0.30
    r = s.put(system.url("/api/settings"), json={"rating_w": 1234.0, "currency": "CHF"},
              headers={"X-CSRF-Token": csrf}, timeout=5)
    assert r.status_code == 200
    saved = (system.state_dir / "settings.json").read_text()
    bad = {**doc, "settings": {**doc["settings"], "rating_w": -1, "nonsense": 3}}
    r = s.post(system.url("/api/settings/import"), data=json.dumps(bad),
               headers={"X-CSRF-Token": csrf}, timeout=5)
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert any("rating_w" in e for e in errors) and any("nonsense" in e for e in errors)
    assert (system.state_dir / "settings.json").read_text() == saved  # nothing changed
    r = s.post(system.url("/api/settings/import"), data=b"not json",
               headers={"X-CSRF-Token": csrf}, timeout=5)
    assert r.status_code == 422 and "not a JSON document" in r.json()["errors"][0]
    r = s.post(system.url("/api/settings/import"), data=json.dumps(doc),
               headers={"X-CSRF-Token": csrf}, timeout=5)
    assert r.status_code == 200
    assert r.json()["settings"] == doc["settings"]
    assert system.saved_settings().get("rating_w") is None  # the file's value again
    r = s.post(system.url("/api/settings/import"), data=json.dumps(doc), timeout=5)
    assert r.status_code == 403  # a browser session without its CSRF token: refused


def test_settings_cli_export_and_import(system: UISystem, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vzdivert.cli", "settings", *args,
                               "--config", str(system.config)], capture_output=True,
                              text=True, timeout=30)

    out = tmp_path / "backup.json"
    assert cli("export", str(out)).returncode == 0
    doc = json.loads(out.read_text())
    doc["settings"]["target_w"] = -42.0
    out.write_text(json.dumps(doc))
    r = cli("import", str(out))
    assert r.returncode == 0, r.stderr
    wait_for(lambda: get(system, "/api/settings").json()["settings"]["target_w"] == -42.0,
             what="the restored setting live")
    doc["settings"]["target_w"] = "much"
    out.write_text(json.dumps(doc))
    r = cli("import", str(out))
    assert r.returncode == 2 and "target_w" in r.stderr and "nothing changed" in r.stderr
    assert get(system, "/api/settings").json()["settings"]["target_w"] == -42.0


def test_a_killed_recorder_is_restarted_and_its_data_kept(system: UISystem) -> None:
    import os
    import signal

    wait_for(lambda: get(system, "/api/state").json()["processes"]["recorder"]["alive"],
             what="the recorder in the health stream")
    before = get(system, "/api/state").json()["processes"]["recorder"]
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(lambda: (lambda p: p["alive"] and p["pid"] != before["pid"] and p)(
        get(system, "/api/state").json()["processes"]["recorder"]), timeout_s=15,
        what="a new recorder")
    assert after["restarts"] == before["restarts"] + 1 and "SIGKILL" in after["last_exit"]
    rows = get(system, "/api/energy?from=2025-10-26&to=2025-10-26").json()["rows"]
    assert (rows[0]["import_wh"], rows[0]["diverted_wh"]) == (43200.0, 23400.0)
