"""The history card in real headless Chromium against a real `vzdivert run` whose recorder
database holds the last days: chart views, calendar bars, savings, backup upload."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from test_webui_browser import browser, new_page, poll_js  # noqa: F401 (fixture)
from test_webui_i18n_browser import assert_translated, german_page
from webui_help import UISystem

from vzdivert.history.store import DB_FILE, day_span, open_writer, write_minutes, zone
from vzdivert.testing.history import synthetic_minutes

UTC = zone("UTC")
EXTRA = '\n[history]\ntimezone = "UTC"\n\n[tariff]\nimport_price = 0.3\nfeed_in_price = 0.1\n'


@pytest.fixture
def system(tmp_path: Path) -> Iterator[UISystem]:
    ui = UISystem(tmp_path, extra=EXTRA)
    ui.state_dir.mkdir(parents=True, exist_ok=True)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=3)
    start = day_span(first, first, UTC)[0]
    now_minute = int(time.time()) // 60 * 60
    conn = open_writer(ui.state_dir / DB_FILE)
    write_minutes(conn, list(synthetic_minutes(start, (now_minute - start) // 60)), UTC)
    conn.close()
    try:
        yield ui.start()
    finally:
        ui.kill_all()


def test_history_views_render_with_data(browser: Browser, system: UISystem,  # noqa: F811
                                        tmp_path: Path) -> None:
    page = new_page(browser)
    page.goto(system.base)
    points = lambda: int(page.locator("#hchart").get_attribute("data-points") or 0)  # noqa: E731
    poll_js(page, "Number(document.querySelector('#hchart').dataset.points) > 60",
            "the day view's minutes")
    assert points() <= 1440
    expect(page.locator("#hchart-empty")).to_be_hidden()
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(4) if (today - timedelta(days=n)).month
            == today.month]
    for d in days:
        cell = page.locator(f'.cal-day[data-date="{d.isoformat()}"]')
        expect(cell).to_have_class("cal-day has-data")
        expect(cell.locator('.bar[data-kind="import_wh"]')).to_have_count(1)
    expect(page.locator(".cal-day.has-data")).to_have_count(len(days))
    expect(page.locator("#v-save-today")).not_to_have_text("–")
    assert float(page.locator("#v-save-month").inner_text().replace(",", ".")) > 0
    # Intl in English: the symbol before the amount, weeks from Monday
    expect(page.locator("#save-month > div")).to_have_text(re.compile(r"^€\s*\d+\.\d\d$"))
    expect(page.locator(".cal-head").first).to_have_text("Mon")
    for view, least in (("week", 144 * 3), ("month", 24 * 3), ("year", 4)):
        before = page.locator("#hchart").get_attribute("data-points")
        page.locator(f'.views button[data-view="{view}"]').click()
        expect(page.locator(f'.views button[data-view="{view}"]')).to_have_class("on")
        poll_js(page, f"Number(document.querySelector('#hchart').dataset.points) >= {least}"
                f" && document.querySelector('#hchart').dataset.points !== '{before}'",
                f"the {view} view")
    poll_js(page, "hist.chart.series.length === 3 && hist.chart.data[0].length > 0",
            "uPlot holding the data")
    # an earlier month with nothing recorded: the chart says so
    page.locator("#hdate").fill((date(today.year - 2, 1, 31)).isoformat())
    page.locator("#hdate").dispatch_event("change")
    expect(page.locator("#hchart-empty")).to_be_visible()
    expect(page.locator(".cal-day.has-data")).to_have_count(0)
    page.context.close()


def test_settings_download_and_upload(browser: Browser, system: UISystem,  # noqa: F811
                                      tmp_path: Path) -> None:
    page = new_page(browser)
    page.goto(system.base)
    expect(page.locator("#f-target_w")).to_be_enabled()
    with page.expect_download() as info:
        page.locator("#settings-export").click()
    doc = json.loads(Path(info.value.path()).read_text())
    assert doc["settings"]["import_price"] == 0.3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "settings": {**doc["settings"], "target_w": "x"}}))
    page.locator("#settings-import").set_input_files(str(bad))
    expect(page.locator("#settings-msg")).to_contain_text("target_w")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({**doc, "settings": {**doc["settings"], "target_w": -33}}))
    page.locator("#settings-import").set_input_files(str(good))
    expect(page.locator("#settings-msg")).to_contain_text("restored")
    expect(page.locator("#f-target_w")).to_have_value("-33")
    assert system.saved_settings()["target_w"] == -33
    page.context.close()


def test_history_in_german(browser: Browser, system: UISystem,  # noqa: F811
                           tmp_path: Path) -> None:
    """With data on every part of the card (bars and their titles, legend, savings), every
    string comes from the catalogue; money, days and numbers are German."""
    page = german_page(browser, mark=True, timezone_id="UTC")
    page.goto(system.base)
    expect(page.locator(".cal-day.has-data").first).to_be_visible()
    expect(page.locator("#v-save-month")).to_have_text(re.compile(r"^\d+,\d\d$"))
    poll_js(page, "hist.chart.data[0].length > 0", "the day view's minutes")
    page.locator("#hchart").hover()
    assert_translated(page)
    page.context.close()

    page = german_page(browser, timezone_id="UTC")
    page.goto(system.base)
    expect(page.locator("#history-card h2")).to_have_text("Verlauf")
    expect(page.locator('.views button[data-view="month"]')).to_have_text("Monat")
    expect(page.locator("#save-month label")).to_have_text("Diesen Monat gespart")
    expect(page.locator("#save-month > div")).to_have_text(re.compile(r"^\d+,\d\d\s*€$"))
    expect(page.locator("#save-month .sub")).to_have_text(
        re.compile(r"^\d+(,\d+)? kWh Überschuss genutzt$"))
    expect(page.locator(".cal-head").first).to_have_text(re.compile(r"^Mo\.?$"))
    bar = page.locator('.cal-day.has-data .bar[data-kind="import_wh"]').first
    expect(bar).to_have_attribute("title", re.compile(r"^Netzbezug: \d+,\d\d kWh$"))
    expect(page.locator("#cal-legend")).to_contain_text("Nachheizen aus dem Netz")
    # a file that is no settings backup: the server's reason in German
    wrong = tmp_path / "wrong.json"
    wrong.write_text("[1, 2]")
    page.locator("#settings-import").set_input_files(str(wrong))
    expect(page.locator("#settings-msg")).to_have_text(
        "Nicht wiederhergestellt: file: erwartet ein JSON-Objekt (eine Datei aus dem Export"
        " der Einstellungen)")
    page.context.close()
