"""The dashboard in a real browser: Debian's chromium driven by Playwright against a real
`vzdivert run` (sim output), fed vzlogger-style writes. Fails, never skips, without chromium."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright
from syshelp import reading, vzlogger_post
from webui_help import PASSWORD, UISystem

CHROMIUM = os.environ.get("VZDIVERT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install -y chromium"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def poll_js(page: Page, expr: str, what: str) -> object:
    """Wait until a page expression is truthy (wait_for_function would need eval, which
    the page's Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        value = page.evaluate(expr)
        if value:
            return value
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}: {expr}")


def new_page(browser: Browser, **kw: object) -> Page:
    page = browser.new_context(locale="en-US", **kw).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


@pytest.fixture(scope="module")
def open_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UISystem]:
    system = UISystem(tmp_path_factory.mktemp("browser"))
    try:
        yield system.start()
    finally:
        system.kill_all()


class Poster:
    """Posts the current ``grid_w`` to the ingest every 0.25 s, as vzlogger would."""

    def __init__(self, port: int, grid_w: float):
        self.port, self.grid_w = port, grid_w
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                vzlogger_post(self.port, reading(self.grid_w))
            except OSError:
                pass  # the system may be restarting


@pytest.fixture
def running_system(tmp_path: Path) -> Iterator[tuple[UISystem, Poster]]:
    """The whole system with the control loop running and a meter feeding it."""
    system = UISystem(tmp_path, need_worker=True)
    poster = Poster(system.ingest_port, -800.0)
    try:
        system.start()
        poster.thread.start()
        yield system, poster
    finally:
        poster.stop.set()
        system.kill_all()


def test_dashboard_updates_live(browser: Browser,
                                running_system: tuple[UISystem, Poster]) -> None:
    system, poster = running_system
    page = new_page(browser)
    page.goto(system.base)
    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator("#v-grid")).to_have_text("-800")
    expect(page.locator('[data-channel="grid"]')).to_contain_text("influx")  # per channel
    expect(page.locator('[data-badge="exporting"]')).to_be_visible()
    expect(page.locator("#v-duty")).not_to_have_text("0.0")  # the loop opened the output
    # diverted power shows until the loop sees the load not react (this meter ignores the
    # output, so "saturated" follows within seconds): the chart keeps the moment it did
    poll_js(page, "chart.data[2].some((w) => w > 0)", "diverted power in the chart")
    # the learned rating (this fake meter never answers our moves: it stays the configured)
    expect(page.locator("#v-rating")).to_have_text(re.compile(r"^[\d,.\u202f\u00a0]+$"))
    expect(page.locator('[data-proc="rtworker"]')).to_contain_text("running")
    poll_js(page, "chart.data[0].length >= 3", "1 s samples pushed to the chart")
    n = page.evaluate("chart.data[0].length")
    poster.grid_w = 400.0
    expect(page.locator("#v-grid")).to_have_text("400")
    expect(page.locator('[data-badge="importing"]')).to_be_visible()
    poll_js(page, f"chart.data[0].length > {n}", "more samples")
    poster.stop.set()  # the meter goes quiet: the page says so
    expect(page.locator('[data-badge="stale"]')).to_be_visible()
    page.context.close()


def test_setting_changed_in_the_form_survives_a_restart(browser: Browser,
                                                        open_ui: UISystem) -> None:
    page = new_page(browser)
    page.goto(open_ui.base)
    field = page.locator("#f-target_w")
    expect(field).to_be_enabled()
    field.fill("-25")
    page.locator("#f-curve").select_option("pfc")
    page.locator("#save").click()
    expect(page.locator("#settings-msg")).to_contain_text("Saved")
    expect(page.locator("#changes tbody")).to_contain_text("target_w: 0 → -25")
    assert open_ui.saved_settings() == {"target_w": -25.0, "curve": "pfc"}
    open_ui.restart()
    page.reload()
    expect(page.locator("#f-target_w")).to_have_value("-25")
    expect(page.locator("#f-curve")).to_have_value("pfc")
    expect(page.locator('[data-field="target_w"]')).to_have_class("field changed")
    # and back to the config file's values
    page.locator("#reset").click()
    page.locator("#reset").click()  # the second click confirms
    expect(page.locator("#settings-msg")).to_contain_text("Reset")
    expect(page.locator("#f-target_w")).to_have_value("0")
    assert open_ui.saved_settings() == {}
    page.context.close()


def test_invalid_value_shows_its_message_and_changes_nothing(browser: Browser,
                                                             open_ui: UISystem) -> None:
    before = requests.get(open_ui.url("/api/settings"), timeout=3).json()["settings"]
    page = new_page(browser)
    page.goto(open_ui.base)
    page.locator("#f-target_w").fill("999999")
    page.locator("#f-deadband_w").fill("20")  # valid, but goes with the invalid one
    page.locator("#save").click()
    expect(page.locator("#e-target_w")).to_contain_text("expected a number from -100000 to "
                                                        "100000")
    expect(page.locator('[data-field="target_w"]')).to_have_class("field invalid")
    expect(page.locator("#settings-msg")).to_contain_text("Not saved")
    expect(page.locator("#e-deadband_w")).to_be_empty()
    assert requests.get(open_ui.url("/api/settings"), timeout=3).json()["settings"] == before
    page.locator("#f-curve_points").fill("[[0.5, 0.2], [0.4")  # not even JSON
    page.locator("#save").click()
    expect(page.locator("#e-curve_points")).not_to_be_empty()
    page.locator("#f-curve_points").fill("[]")
    page.locator("#f-stale_after_s").fill("")
    page.locator("#f-target_w").fill("5")
    page.locator("#save").click()
    expect(page.locator("#e-stale_after_s")).to_contain_text("expected a number")
    expect(page.locator("#e-target_w")).to_be_empty()  # its message went when it was fixed
    assert requests.get(open_ui.url("/api/settings"), timeout=3).json()["settings"] == before
    page.context.close()


def test_without_login_a_change_is_refused(browser: Browser, tmp_path: Path) -> None:
    system = UISystem(tmp_path, password=PASSWORD,
                      webui=f'password = "{PASSWORD}"\nread_only_view = true')
    try:
        system.start()
        page = new_page(browser)
        page.goto(system.base)
        expect(page.locator("#settings-note")).to_contain_text("read-only")
        expect(page.locator("#f-target_w")).to_be_disabled()
        expect(page.locator("#save")).to_be_hidden()
        status = page.evaluate("""async () => (await fetch('/api/settings', {method: 'PUT',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({target_w: 7})})).status""")
        assert status == 401
        assert requests.get(system.url("/api/settings"), timeout=3).json()[
            "settings"]["target_w"] == 0.0
        page.locator("#login-btn").click()
        page.locator("#login-password").fill("wrong")
        page.locator("#login-form button").click()
        expect(page.locator("#login-msg")).to_contain_text("wrong password")
        page.locator("#login-password").fill(PASSWORD)
        page.locator("#login-form button").click()
        expect(page.locator("#f-target_w")).to_be_enabled()
        expect(page.locator("#who")).to_contain_text("admin")
        page.locator("#f-target_w").fill("7")
        page.locator("#save").click()
        expect(page.locator("#settings-msg")).to_contain_text("Saved")
        assert system.saved_settings() == {"target_w": 7.0}
        page.context.close()
    finally:
        system.kill_all()


def test_login_required_to_view_when_no_read_only_view(browser: Browser,
                                                       tmp_path: Path) -> None:
    system = UISystem(tmp_path, password=PASSWORD, webui=f'password = "{PASSWORD}"')
    try:
        system.start()
        page = new_page(browser)
        page.goto(system.base)
        expect(page.locator("#login-card")).to_be_visible()
        expect(page.locator("#dashboard")).to_be_hidden()
        page.locator("#login-password").fill(PASSWORD)
        page.locator("#login-password").press("Enter")
        expect(page.locator("#dashboard")).to_be_visible()
        expect(page.locator("#f-target_w")).to_be_enabled()
        page.context.close()
    finally:
        system.kill_all()


def test_page_works_at_phone_width(browser: Browser, open_ui: UISystem) -> None:
    page = new_page(browser, viewport={"width": 375, "height": 740}, device_scale_factor=2,
                    is_mobile=True, has_touch=True)
    page.goto(open_ui.base)
    expect(page.locator("#f-target_w")).to_be_visible()
    poll_js(page, "chart !== null && chart.width > 0", "the chart")
    widths = page.evaluate("""() => ({doc: document.documentElement.scrollWidth,
        view: window.innerWidth, chart: chart.width,
        nums: [...document.querySelectorAll('.num')].map(e => e.getBoundingClientRect().right),
        field: document.querySelector('#f-target_w').getBoundingClientRect().right})""")
    assert widths["doc"] <= widths["view"] == 375  # no sideways scrolling
    assert widths["chart"] <= 375 and widths["field"] <= 375
    assert max(widths["nums"]) <= 375
    # two big numbers side by side, not one squeezed column and not six
    tops = page.evaluate("[...document.querySelectorAll('.num')].map(e => "
                         "Math.round(e.getBoundingClientRect().top))")
    assert tops[0] == tops[1] != tops[2]
    page.context.close()


def test_boost_and_pause_are_one_click(browser: Browser,
                                       running_system: tuple[UISystem, Poster]) -> None:
    """The Hot water card: Boost 30 min shows boost with its end time and a way back;
    Pause 60 min likewise; the chart range buttons are not theirs."""
    system, _ = running_system
    page = new_page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(system.base)
    expect(page.locator("#conn")).to_have_text("live")
    facts = page.locator("#hotwater")
    expect(facts).to_contain_text("auto")
    expect(page.locator("#auto-btn")).to_be_hidden()
    page.click("#boost-btn")
    expect(facts).to_contain_text("boost until")
    expect(page.locator('[data-badge="boost"]')).to_be_visible()
    assert requests.get(f"{system.base}/api/state", timeout=5).json()["mode"] == "boost"
    page.click("#auto-btn")
    expect(facts).to_contain_text("auto")
    page.click("#pause-btn")
    expect(facts).to_contain_text("pause until")
    expect(page.locator('[data-badge="pause"]')).to_be_visible()
    page.click("#auto-btn")
    expect(page.locator("#auto-btn")).to_be_hidden()
    assert page.evaluate("minutes") == 15  # the chart's range did not move
    assert not errors, errors
