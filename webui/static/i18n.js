/* Translations for the dashboard: JSON catalogues in /static/i18n/<lang>.json (UI strings)
   and /static/i18n/help/<lang>.json (settings help, keyed by section.key; English comes from
   the config schema). The browser's languages choose; the header switch overrides and is
   remembered. How to add a string or a language: docs/translating.md. */
"use strict";

const I18N = {
  LANGUAGES: { en: "English", de: "Deutsch" }, // endonyms, shown in the switch
  STORE_KEY: "vzdivert.lang",
  lang: "en",
  locale: "en", // for Intl: the browser's own variant (de-AT) when it matches the language
  cat: {},
  fallback: {},
  help: {},
  server: [], // [regex, key] for messages the server sends in English
};

function pickLanguage() {
  const wanted = [];
  try { wanted.push(localStorage.getItem(I18N.STORE_KEY)); } catch (e) { /* private mode */ }
  wanted.push(...(navigator.languages || [navigator.language]));
  for (const tag of wanted) {
    const base = (tag || "").toLowerCase().split("-")[0];
    if (Object.hasOwn(I18N.LANGUAGES, base)) return base;
  }
  return "en";
}

async function fetchCatalogue(path) {
  try {
    const r = await fetch(path, { credentials: "same-origin" });
    return r.ok ? await r.json() : {};
  } catch (e) {
    return {};
  }
}

/* Load the catalogues of the chosen language (English underneath for missing keys). */
async function loadLanguage() {
  const lang = pickLanguage();
  I18N.lang = lang;
  I18N.locale = (navigator.languages || []).find(
    (tag) => tag.toLowerCase().split("-")[0] === lang) || lang;
  const [fallback, cat, help] = await Promise.all([
    fetchCatalogue("/static/i18n/en.json"),
    lang === "en" ? Promise.resolve(null) : fetchCatalogue(`/static/i18n/${lang}.json`),
    lang === "en" ? Promise.resolve({}) : fetchCatalogue(`/static/i18n/help/${lang}.json`),
  ]);
  I18N.fallback = fallback;
  I18N.cat = cat || fallback;
  I18N.help = help;
  I18N.server = Object.keys(fallback).filter((k) => k.startsWith("srv.")).map((k) => {
    const names = [];
    const body = k.slice(4).split(/(\{\w+\})/).map((part) => {
      const m = /^\{(\w+)\}$/.exec(part);
      if (m) { names.push(m[1]); return "(.+?)"; }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }).join("");
    return [new RegExp(`^${body}$`, "s"), k, names];
  });
  document.documentElement.lang = lang;
}

/* The text for a catalogue key, with {name} placeholders filled from vars. */
function t(key, vars = {}) {
  let s = Object.hasOwn(I18N.cat, key) ? I18N.cat[key] : I18N.fallback[key];
  if (s === undefined) {
    console.warn(`i18n: no text for ${key}`);
    s = key;
  }
  return s.replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(vars, name) ? String(vars[name]) : m));
}

/* A message the server sent in English, translated when the catalogue knows its shape
   ("srv.<English text with {placeholders}>"); "name: problem" keeps the name. */
function tServer(msg) {
  if (typeof msg !== "string" || !msg) return msg;
  for (const [re, key, names] of I18N.server) {
    const m = re.exec(msg);
    if (m) return t(key, Object.fromEntries(names.map((n, i) => [n, serverPart(n, m[i + 1])])));
  }
  const field = /^([A-Za-z_][\w.]*): (.+)$/s.exec(msg);
  if (field) {
    const rest = tServer(field[2]);
    if (rest !== field[2]) return `${field[1]}: ${rest}`;
  }
  return msg;
}

/* A part of a server message: a decimal number in the page's format ("61.5" → "61,5" in
   German; integers stay as sent), a nested reason ({why}) translated in turn. */
function serverPart(name, value) {
  const dec = /^-?\d+\.(\d+)$/.exec(value);
  if (dec) {
    const digits = dec[1].length;
    return new Intl.NumberFormat(I18N.locale, { minimumFractionDigits: digits,
      maximumFractionDigits: digits, useGrouping: false }).format(Number(value));
  }
  return name === "why" ? tServer(value) : value;
}

/* A unit from the schema: symbols (W, s) stay, words ("readings") have "unit.<word>". */
function tUnit(unit) {
  if (!unit) return "";
  return Object.hasOwn(I18N.fallback, `unit.${unit}`) ? t(`unit.${unit}`) : unit;
}

/* Settings help: the language's catalogue by section.key, else the schema's English. A
   live setting named after its section (guarantee_by) has the key without the prefix
   (guarantee.by). */
function tHelp(section, name, english) {
  const key = name.startsWith(`${section}_`) ? name.slice(section.length + 1) : name;
  return I18N.help[`${section}.${name}`] || I18N.help[`${section}.${key}`] || english;
}

/* Static text in the page: data-i18n (text) and data-i18n-title / -aria-label /
   -placeholder (attributes). */
const I18N_ATTRS = ["title", "aria-label", "placeholder"];
function applyI18n(root = document) {
  for (const e of root.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const attr of I18N_ATTRS) {
    for (const e of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      e.setAttribute(attr, t(e.getAttribute(`data-i18n-${attr}`)));
    }
  }
}

function numberFormat(digits, min = digits) {
  return new Intl.NumberFormat(I18N.locale, { minimumFractionDigits: min,
    maximumFractionDigits: digits });
}

function dateTimeFormat(opts) {
  return new Intl.DateTimeFormat(I18N.locale, opts);
}

/* The header switch: remember the choice and reload, so every view renders anew. */
function setupLanguageSwitch(select) {
  select.replaceChildren(...Object.entries(I18N.LANGUAGES).map(([code, name]) => {
    const o = document.createElement("option");
    o.value = code;
    o.textContent = name;
    return o;
  }));
  select.value = I18N.lang;
  select.addEventListener("change", () => {
    try { localStorage.setItem(I18N.STORE_KEY, select.value); } catch (e) { /* ignore */ }
    location.reload();
  });
}
