"""The dashboard shows each load: a real `vzdivert run` (sim outputs) with a PWM heater and
a relay stage, fed a surplus beyond the heater, in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from test_webui_browser import TIMEOUT_MS, Poster, browser, new_page  # noqa: F401
from test_webui_i18n_browser import assert_translated, german_page
from webui_help import UISystem

RELAY = """
[load]
rating_w = 2000
relay_on_after_s = 0

[[relays]]
name = "stage 2"
gpio = 17
rating_w = 1000
min_on_s = 0
min_off_s = 0
"""


@pytest.fixture
def loads_system(tmp_path: Path) -> Iterator[tuple[UISystem, Poster]]:
    system = UISystem(tmp_path, need_worker=True, extra=RELAY)
    poster = Poster(system.ingest_port, -2600.0)  # the house exports: nothing is on yet
    try:
        system.start()
        poster.thread.start()
        yield system, poster
    finally:
        poster.stop.set()
        system.kill_all()


def test_dashboard_shows_each_load(browser: Browser,  # noqa: F811
                                   loads_system: tuple[UISystem, Poster]) -> None:
    system, poster = loads_system
    page = new_page(browser)
    page.goto(system.url("/"))
    card = page.locator("#loads-card")
    expect(card).to_be_visible(timeout=TIMEOUT_MS)
    heater = page.locator('#loads tr[data-load="heater"]')
    stage = page.locator('#loads tr[data-load="stage 2"]')
    expect(heater.locator("td").nth(1)).to_have_text("pwm")
    expect(stage.locator("td").nth(1)).to_have_text("relay")
    # an open loop keeps exporting 2600 W, so the controller asks for all 3 kW: both on
    expect(stage.locator("td").nth(2)).to_have_text("on", timeout=TIMEOUT_MS)
    expect(stage.locator("td").nth(3)).to_have_text("1,000 W")
    expect(heater.locator("td").nth(2)).not_to_have_text("0.0 %")
    # each load's learned rating: the stage's switch is not seen (open loop): as configured
    expect(page.locator("#loads th").nth(6)).to_have_text("Learned rating")
    expect(stage.locator("td").nth(6)).to_have_text("1,000 W (0 %)")
    expect(heater.locator("td").nth(6)).to_contain_text(" W (")


def test_loads_in_german(browser: Browser,  # noqa: F811
                         loads_system: tuple[UISystem, Poster]) -> None:
    """With the loads card and the relay settings shown, every string comes from the
    catalogue; kinds, on/off and the worker's held reasons are German."""
    system, _poster = loads_system
    page = german_page(browser, mark=True)
    page.goto(system.base)
    stage = page.locator('#loads tr[data-load="stage 2"]')
    expect(stage.locator("td").nth(2)).to_contain_text("ein", timeout=TIMEOUT_MS)
    expect(page.locator("#f-relay_margin_w")).to_be_enabled()
    assert_translated(page)
    page.context.close()

    page = german_page(browser)
    page.goto(system.base)
    expect(page.locator("#loads-card h2")).to_have_text("Lasten", timeout=TIMEOUT_MS)
    expect(page.locator("#loads th").nth(5)).to_have_text("Gesperrt")
    heater = page.locator('#loads tr[data-load="heater"]')
    stage = page.locator('#loads tr[data-load="stage 2"]')
    expect(heater.locator("td").nth(1)).to_have_text("PWM")
    expect(stage.locator("td").nth(1)).to_have_text("Relaisstufe")
    expect(stage.locator("td").nth(2)).to_have_text("ein", timeout=TIMEOUT_MS)
    expect(stage.locator("td").nth(3)).to_have_text("1.000 W")
    held = {r: page.evaluate("(r) => tServer(r)", r)
            for r in ("min-off", "min-on", "thermostat", "paused", "boost at 1500 W")}
    assert held == {"min-off": "Mindest-Aus-Zeit", "min-on": "Mindest-Ein-Zeit",
                    "thermostat": "Thermostat offen", "paused": "pausiert",
                    "boost at 1500 W": "Boost mit 1500 W"}
    page.context.close()
