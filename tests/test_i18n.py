"""The UI's translation catalogues: every language has every key, every key the page and
scripts use exists, every live setting has a label and German help, every fixed error text
of the web API has a catalogue entry (so the UI can show it translated)."""

from __future__ import annotations

import ast
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from vzdivert.config import KEYS, TUNABLES
from vzdivert.webui.payload import BADGES

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "webui" / "static"
I18N = STATIC / "i18n"
LANGUAGES = sorted(p.stem for p in I18N.glob("*.json"))
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalogue(lang: str) -> dict[str, str]:
    return json.loads((I18N / f"{lang}.json").read_text(encoding="utf-8"))


EN = catalogue("en")


def listing(what: str, items: object) -> str:
    """A failure message naming every offender, one a line (pytest would show only the
    first few), so a merge that adds strings is fixed in one go."""
    return f"{what}:\n  " + "\n  ".join(map(str, items))


class I18nAttrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("data-i18n") and value:
                self.keys.add(value)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
NOT_TEXT = {"script", "style", "title"}
SHOWN_ATTRS = ("title", "aria-label", "placeholder")


class Untranslated(HTMLParser):
    """Text and shown attributes in the page that neither data-i18n nor translate="no"
    covers (hidden elements included, which the browser test cannot see)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool, bool]] = []  # tag, has data-i18n, exempt
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        exempt = (a.get("translate") == "no" or tag in NOT_TEXT
                  or any(e for _, _, e in self.stack))
        if not exempt:
            self.found += [f"<{tag} {name}={a[name]!r}>" for name in SHOWN_ATTRS
                           if a.get(name) and f"data-i18n-{name}" not in a]
        if tag not in VOID:
            self.stack.append((tag, "data-i18n" in a, exempt))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not re.search(r"[^\W\d_]", data) or not self.stack:
            return
        tag, keyed, exempt = self.stack[-1]
        if not keyed and not exempt:
            self.found.append(f"<{tag}>{data.strip()}")


def test_no_untranslated_text_in_the_page() -> None:
    parser = Untranslated()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    assert parser.found == [], listing(
        'index.html: text without data-i18n="<key>" or translate="no"', parser.found)


def test_the_page_check_finds_plain_text() -> None:
    parser = Untranslated()
    parser.feed('<div hidden><button title="Go">Boost</button><b translate="no">W</b>'
                '<input placeholder="x" data-i18n-placeholder="a.b"><i data-i18n="a.c">C</i>'
                '</div>')
    assert parser.found == ["<button title='Go'>", "<button>Boost"]


# text written by script: a literal with letters where text goes (not through t())
LITERAL_TEXT = re.compile(
    r"""(?:\b(?:text|title|label|placeholder|"aria-label")\s*:\s*|"""
    r"""\.(?:textContent|innerText|title)\s*=\s*|showMsg\(\s*)"""
    r"""(["'`])((?:\\.|(?!\1).)*)\1""")


UNITS = re.compile(r"(?<![^\W\d_])(?:W|kW|Wh|kWh|Hz|ms|min|h|s|W/s)(?![^\W\d_])")


def literal_texts(source: str) -> list[str]:
    out = []
    for m in LITERAL_TEXT.finditer(source):
        text = UNITS.sub("", re.sub(r"\$\{[^}]*\}", "", m.group(2)))
        if re.search(r"[^\W\d_]", text):
            out.append(m.group(0))
    return out


def test_no_literal_text_in_scripts() -> None:
    found = []
    for js in STATIC.glob("*.js"):
        found += [f"{js.name}: {m}" for m in literal_texts(js.read_text(encoding="utf-8"))]
    assert found == [], listing("literal text set by script (use t(\"<key>\"))", found)


def test_the_script_check_finds_literals() -> None:
    src = ('el("b", { text: "Boost" }); $("#x").textContent = `${n} left`; showMsg("Done", "ok");'
           'el("i", { text: t("a.b"), title: `${n} %` }); x.textContent = "";'
           'u = { label: "kWh" };')
    assert literal_texts(src) == ['text: "Boost"', ".textContent = `${n} left`",
                                  'showMsg("Done"']


def html_keys() -> set[str]:
    parser = I18nAttrs()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    return parser.keys


def script_keys() -> set[str]:
    """Keys in t("...") calls, and any string literal shaped like a key of a known group
    (keys chosen in a ternary: t(live ? "conn.live" : "conn.offline"))."""
    groups = {k.split(".", 1)[0] for k in EN}
    keys = set()
    for js in STATIC.glob("*.js"):
        text = js.read_text(encoding="utf-8")
        keys |= set(re.findall(r"(?<![\w$.])t\(\s*\"([^\"]+)\"", text))
        keys |= {m for m in re.findall(r"\"([a-z0-9_]+\.[a-z0-9_]+)\"", text)
                 if m.split(".", 1)[0] in groups}
    return keys


def fixed_api_errors() -> set[str]:
    """Constant strings passed to ``fail()`` by the web UI's server code."""
    out = set()
    for py in (REPO / "webui").rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "fail":
                out |= {a.value for a in node.args[1:]
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return out


def test_there_are_at_least_english_and_german() -> None:
    assert {"en", "de"} <= set(LANGUAGES)


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_exactly_the_english_keys(lang: str) -> None:
    other = catalogue(lang)
    missing = sorted(set(EN) - set(other))
    assert missing == [], listing(f"missing in {lang}.json (key: English text)",
                                  [f"{k}: {EN[k]}" for k in missing])
    extra = sorted(set(other) - set(EN))
    assert extra == [], listing(f"in {lang}.json but not in en.json", extra)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_keep_the_placeholders(lang: str) -> None:
    bad = []
    for key, text in catalogue(lang).items():
        if not (isinstance(text, str) and text.strip()):
            bad.append(f"{key}: empty")
        elif key in EN and set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(EN[key])):
            bad.append(f"{key}: {text!r} has not the placeholders of {EN[key]!r}")
    assert bad == [], listing(f"{lang}.json", bad)


def test_server_patterns_translate_to_themselves_in_english() -> None:
    bad = [key for key, text in EN.items() if key.startswith("srv.") and text != key[4:]]
    assert bad == [], listing("en.json srv.* entries whose text is not the key's text", bad)


def test_every_key_the_page_uses_is_in_the_catalogue() -> None:
    used = html_keys() | script_keys()
    assert len(used) > 50  # the scanners found the page's keys at all
    missing = sorted(used - set(EN))
    assert missing == [], listing("keys used in index.html or scripts but not in en.json",
                                  missing)


def test_every_catalogue_key_is_used() -> None:
    dynamic = {f"badge.{b}" for b in BADGES} | {f"section.{k.section}" for k in
                                                 TUNABLES.values()}
    dynamic |= {f"setting.{name}" for name in TUNABLES}
    dynamic |= {f"unit.{k.unit}" for k in TUNABLES.values()}
    unused = {k for k in EN if not k.startswith("srv.")} - html_keys() - script_keys() - dynamic
    assert sorted(unused) == [], listing("catalogue keys nothing uses (remove them)",
                                         sorted(unused))


def test_dynamic_keys_exist() -> None:
    want = {f"badge.{b}": f"badge {b}" for b in BADGES}
    for name, key in TUNABLES.items():
        want[f"setting.{name}"] = f"label of live setting {name}"
        want[f"section.{key.section}"] = f"name of settings section [{key.section}]"
        if UNITS.sub("", key.unit).strip(" /"):  # a word, not a unit symbol
            want[f"unit.{key.unit}"] = f"unit {key.unit!r} of {name}"
    missing = sorted(f"{k}  ({why})" for k, why in want.items() if k not in EN)
    assert missing == [], listing("keys missing in en.json (and every other catalogue)",
                                  missing)


def test_fixed_api_errors_have_entries() -> None:
    errors = fixed_api_errors()
    assert "login required" in errors  # the scanner works
    missing = sorted(f"srv.{e}" for e in errors if f"srv.{e}" not in EN)
    assert missing == [], listing("fixed fail() texts without an entry in en.json", missing)


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_live_setting_has_help_in_the_language(lang: str) -> None:
    help_texts = json.loads((I18N / "help" / f"{lang}.json").read_text(encoding="utf-8"))
    paths = {k.path for k in TUNABLES.values()}
    missing = sorted(paths - set(help_texts))
    assert missing == [], listing(f"help/{lang}.json lacks (section.key: English help)",
                                  [f"{p}: {KEYS[p].help}" for p in missing])
    stale = sorted(set(help_texts) - paths)
    assert stale == [], listing(f"help/{lang}.json has keys that are no live setting", stale)
    untranslated = [p for p, text in help_texts.items()
                    if not text.strip() or text == KEYS[p].help]
    assert untranslated == [], listing(f"help/{lang}.json: empty or still English", untranslated)


def test_languages_offered_have_catalogues() -> None:
    js = (STATIC / "i18n.js").read_text(encoding="utf-8")
    offered = re.search(r"LANGUAGES: \{([^}]*)\}", js)
    assert offered is not None
    codes = set(re.findall(r"(\w+): \"", offered.group(1)))
    assert codes == set(LANGUAGES)
