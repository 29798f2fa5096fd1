"""The dashboard in German and English in real Chromium: the browser's language chooses,
the switch overrides and is remembered, numbers and dates follow the locale, and no
visible string escapes translation (checked with marked catalogues)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from test_webui_browser import Poster, browser, poll_js  # noqa: F401  (fixture)
from webui_help import UISystem

REPO = Path(__file__).resolve().parent.parent
I18N = REPO / "webui" / "static" / "i18n"
OPEN, CLOSE = "\u27e6", "\u27e7"  # ⟦ ⟧ around every catalogue text in the marked run

# Every visible text node and title/aria-label/placeholder outside translate="no" must be
# catalogue text (marked) or data: digits, signs, punctuation and unit symbols.
UNTRANSLATED_JS = r"""() => {
  const unit = /(^|[^\p{L}])(W|kW|Wh|kWh|Hz|%|s|ms|min|h|W\/s)(?=$|[^\p{L}])/gu;
  const isData = (s) => !/\p{L}/u.test(s.replace(unit, "$1"));
  const unmarked = (s) => {
    let prev;
    do { prev = s; s = s.replace(/⟦[^⟦⟧]*⟧/g, " "); } while (s !== prev);
    return s;
  };
  const shown = (e) => e && e.getClientRects().length > 0
    && getComputedStyle(e).visibility !== "hidden";
  const exempt = (e) => e.closest('[translate="no"], script, style') !== null;
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const s = n.nodeValue.trim();
    const p = n.parentElement;
    if (s && shown(p) && !exempt(p) && !isData(unmarked(s))) bad.push(s);
  }
  for (const attr of ["title", "aria-label", "placeholder"]) {
    for (const e of document.querySelectorAll(`[${attr}]`)) {
      const s = e.getAttribute(attr);
      if (s && shown(e) && !exempt(e) && !isData(unmarked(s))) bad.push(`${attr}=${s}`);
    }
  }
  return bad;
}"""


def marked(path: Path) -> str:
    return json.dumps({k: f"{OPEN}{v}{CLOSE}" for k, v in
                       json.loads(path.read_text(encoding="utf-8")).items()})


def german_page(browser: Browser, mark: bool = False,  # noqa: F811
                timezone_id: str = "Europe/Berlin") -> Page:
    page = browser.new_context(locale="de-DE", timezone_id=timezone_id).new_page()
    page.set_default_timeout(20_000)
    if mark:
        def serve(route: Route, path: Path) -> None:
            route.fulfill(status=200, content_type="application/json", body=marked(path))
        page.route("**/static/i18n/de.json", lambda r: serve(r, I18N / "de.json"))
        page.route("**/static/i18n/help/de.json", lambda r: serve(r, I18N / "help" / "de.json"))
    return page


@pytest.fixture(scope="module")
def live_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UISystem]:
    """Everything running with a meter feeding it, so every card has content."""
    system = UISystem(tmp_path_factory.mktemp("i18n"), need_worker=True)
    poster = Poster(system.ingest_port, -800.0)
    try:
        system.start()
        poster.thread.start()
        yield system
    finally:
        poster.stop.set()
        system.kill_all()


def untranslated(page: Page) -> list[str]:
    return page.evaluate(UNTRANSLATED_JS)


def assert_translated(page: Page) -> None:
    """Every visible string marked, else a message listing each one (not just the first)."""
    bad = list(dict.fromkeys(untranslated(page)))  # each once
    assert bad == [], "visible text not from the German catalogue (add a key, use t()):\n  " + \
        "\n  ".join(bad)


def wait_filled(page: Page) -> None:
    expect(page.locator('[data-proc="rtworker"]')).to_be_visible()
    expect(page.locator("#v-grid")).to_have_text("-800")
    expect(page.locator("#loop")).not_to_be_empty()
    expect(page.locator("#f-target_w")).to_be_enabled()
    poll_js(page, "chart.data[0].length >= 2", "samples in the chart")


def test_every_visible_string_is_translated(browser: Browser,  # noqa: F811
                                            live_system: UISystem) -> None:
    page = german_page(browser, mark=True)
    page.goto(live_system.base)
    wait_filled(page)
    page.locator("#chart").hover()  # the legend shows the hovered values
    assert_translated(page)
    # messages after actions: a refused value (the server's text), then a saved one
    page.locator("#f-target_w").fill("999999")
    page.locator("#save").click()
    expect(page.locator("#e-target_w")).to_contain_text(OPEN)
    assert_translated(page)
    page.locator("#f-target_w").fill("-5")
    page.locator("#save").click()
    expect(page.locator("#settings-msg")).to_contain_text("Gespeichert")
    expect(page.locator("#changes tbody tr")).to_have_count(1)
    page.locator("#reset").click()  # armed: the button asks to confirm
    expect(page.locator("#reset")).to_contain_text(OPEN)
    assert_translated(page)
    page.locator("#reset").click()
    expect(page.locator("#settings-msg")).to_contain_text("zurückgesetzt")
    page.context.close()


def test_the_marked_check_catches_an_english_string(browser: Browser,  # noqa: F811
                                                    live_system: UISystem) -> None:
    """The check itself: a string added without the catalogue is reported."""
    page = german_page(browser, mark=True)
    page.goto(live_system.base)
    wait_filled(page)
    # into the card around the meter facts, not into their list: the list is rebuilt from
    # every state update, which could drop the string before the check reads the page
    page.evaluate("""() => {
        document.querySelector('#ingest').parentElement.append(Object.assign(
            document.createElement('p'), {textContent: 'Boost for 1 h'}));
        document.querySelector('#save').title = 'Save now';
    }""")
    assert untranslated(page) == ["Boost for 1 h", "title=Save now"]
    page.context.close()


def test_german_browser_gets_german_and_the_switch_is_remembered(
        browser: Browser, live_system: UISystem) -> None:  # noqa: F811
    page = german_page(browser)
    page.goto(live_system.base)
    wait_filled(page)
    assert page.evaluate("document.documentElement.lang") == "de"
    expect(page.locator("#settings-card h2")).to_have_text("Einstellungen")
    expect(page.locator('[data-badge="exporting"]')).to_have_text("Einspeisung")
    expect(page.locator('[data-field="target_w"] .help')).to_contain_text(
        "Sollwert der Netzleistung")
    expect(page.locator('[data-field="target_w"] label')).to_contain_text("Sollwert")
    # numbers and dates in the German format: decimal comma, day.month.year, 24 h clock
    expect(page.locator("#v-duty")).to_have_text(re.compile(r"^\d+,\d$"))
    expect(page.locator('[data-field="curve_e1"] .help')).to_contain_text("Standard: 0,67.")
    page.locator("#f-deadband_w").fill("3")
    page.locator("#save").click()
    expect(page.locator("#settings-msg")).to_have_text("Gespeichert und übernommen.")
    when = page.locator("#changes tbody tr").first.locator("td").first.inner_text()
    assert re.fullmatch(r"\d\d\.\d\d\.\d\d, \d\d:\d\d:\d\d", when), when
    page.locator("#f-target_w").fill("999999")
    page.locator("#save").click()
    expect(page.locator("#e-target_w")).to_have_text(
        "erwartet eine Zahl von -100000 bis 100000, erhalten 999999")
    # the switch: English, and it stays English after a reload in this German browser
    page.locator("#lang").select_option("en")
    expect(page.locator("#settings-card h2")).to_have_text("Settings")
    assert page.evaluate("document.documentElement.lang") == "en"
    page.reload()
    expect(page.locator("#settings-card h2")).to_have_text("Settings")
    expect(page.locator("#lang")).to_have_value("en")
    expect(page.locator("#v-duty")).to_have_text(re.compile(r"^\d+\.\d$"))
    page.locator("#lang").select_option("de")
    expect(page.locator("#settings-card h2")).to_have_text("Einstellungen")
    page.context.close()


def test_hot_water_and_meter_texts_in_german(browser: Browser,  # noqa: F811
                                             live_system: UISystem) -> None:
    """The hot-water card and the server's hold and guarantee reasons (fixed patterns,
    decimals in the German format, a nested reason translated too)."""
    page = german_page(browser)
    page.goto(live_system.base)
    wait_filled(page)
    expect(page.locator("#hotwater-card h2")).to_have_text("Warmwasser")
    expect(page.locator("#boost-btn")).to_have_text("Boost 30 min")
    expect(page.locator("#hotwater")).to_contain_text("Betriebsart")
    expect(page.locator('#channels th').first).to_have_text("Kanal")
    said = page.evaluate("""() => [
        "tank at 61.5 °C (max_c 60; heating again below 55 °C)",
        "no tank temperature for 130 s (w1_slave: CRC check failed (loose wire or long bus?))",
        "1250 Wh missing; top-up from 03:10 unless surplus covers it",
        "1250 Wh missing; top-up from now unless surplus covers it",
        "topping up 800 Wh (late: cannot finish before the deadline)",
        "met: the thermostat opened (tank full)",
        "something new",
    ].map(tServer)""")
    assert said == [
        "Speicher hat 61,5 °C (max_c 60; heizt wieder unter 55 °C)",
        "seit 130 s keine Speichertemperatur (w1_slave: CRC-Prüfung fehlgeschlagen "
        "(Wackelkontakt oder zu langer Bus?))",
        "1250 Wh fehlen; Nachheizen aus dem Netz ab 03:10, falls der Überschuss nicht reicht",
        "1250 Wh fehlen; Nachheizen aus dem Netz ab sofort, falls der Überschuss nicht reicht",
        "Nachheizen aus dem Netz: 800 Wh (zu spät: bis zur Frist nicht mehr zu schaffen)",
        "erfüllt: der Thermostat hat abgeschaltet (Speicher voll)",
        "something new",
    ]
    page.context.close()
