/* vzdivert history: day/week/month/year chart from the recorder, a calendar of daily
   energy bars, money saved, CSV downloads, and backup/restore of the live settings.
   Uses api(), el(), $(), css(), fmtW(), fmtKWh(), the formatters from app.js and t() from
   i18n.js: texts are catalogue keys "history.*" / "backup.*", dates, day names and money
   come from Intl in the page's language. */
"use strict";

// a currency symbol as the settings hold it ("€") -> ISO code, so Intl can place and round it
const CURRENCY_CODES = { "€": "EUR", "$": "USD", "£": "GBP" };

const hist = { view: "day", end: null, chart: null, data: [[], [], []], step: 60 };

function isoDate(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function histChart() {
  const box = $("#hchart");
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
  const w = (u, v) => (v == null ? "–" : `${fmtW(v)} W`);
  const dayFmt = dateTimeFormat({ day: "numeric", month: "short" });
  const monthFmt = dateTimeFormat({ month: "short", year: "numeric" });
  const tick = (v, incr) => {
    const d = new Date(v * 1000);
    if (incr >= 28 * 86400) return monthFmt.format(d);
    if (incr >= 86400 || (d.getHours() === 0 && d.getMinutes() === 0)) return dayFmt.format(d);
    return timeFmt.format(d);
  };
  hist.chart = new uPlot({
    width: Math.max(280, box.clientWidth), height: 260,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, W: { auto: true } },
    series: [
      { label: t("chart.time"), value: (u, v) => (v == null ? "–" : dateTimeFmt.format(new Date(v * 1000))) },
      { label: t("chart.grid"), scale: "W", stroke: css("--c-grid"), width: 1.4, value: w },
      { label: t("chart.diverted"), scale: "W", stroke: css("--c-power"), width: 1.4,
        fill: css("--c-power") + "26", value: w },
    ],
    axes: [{ ...axis, space: 60, values: (u, vals, ax, space, incr) => vals.map((v) => tick(v, incr)) }, { ...axis, scale: "W", size: 64, values: (u, vals) => vals.map((v) => fmtW(v)) }],
  }, hist.data, box);
  new ResizeObserver(() => {
    const width = Math.max(280, box.clientWidth);
    if (Math.abs(width - hist.chart.width) > 2) hist.chart.setSize({ width, height: 260 });
  }).observe(box);
}

async function loadSeries() {
  const r = await api("GET", `/api/history/range?view=${hist.view}&date=${hist.end}`);
  if (!r.ok) return;
  const d = r.data;
  hist.data = [d.ts, d.grid_w, d.power_w];
  hist.step = d.step_s;
  hist.chart.setData(hist.data);
  hist.chart.setScale("x", { min: d.from, max: d.to });
  $("#hchart-empty").hidden = d.ts.length > 0;
  $("#hchart").dataset.points = String(d.ts.length);
}

const BARS = [["diverted_wh", "--c-power", "history.diverted"], ["import_wh", "--warn", "history.imported"],
  ["export_wh", "--good", "history.exported"], ["topup_wh", "--bad", "history.topup"]];

// Monday first; 2024-01-01 was a Monday. Intl names them in the page's language.
function weekdayNames() {
  const fmt = dateTimeFormat({ weekday: "short" });
  return Array.from({ length: 7 }, (_, i) => fmt.format(new Date(2024, 0, 1 + i)));
}

async function loadCalendar() {
  const end = new Date(`${hist.end}T12:00:00`);
  const first = new Date(end.getFullYear(), end.getMonth(), 1);
  const last = new Date(end.getFullYear(), end.getMonth() + 1, 0);
  const r = await api("GET", `/api/energy?period=day&from=${isoDate(first)}&to=${isoDate(last)}`);
  if (!r.ok) return;
  const byDate = Object.fromEntries(r.data.rows.map((row) => [row.date, row]));
  const max = Math.max(1, ...r.data.rows.flatMap((row) => BARS.map(([k]) => row[k] || 0)));
  const cells = weekdayNames().map((d) => el("div", { class: "cal-head", text: d, translate: "no" }));
  for (let i = 0; i < (first.getDay() + 6) % 7; i++) cells.push(el("div", { class: "cal-day empty" }));
  for (let day = 1; day <= last.getDate(); day++) {
    const date = isoDate(new Date(end.getFullYear(), end.getMonth(), day));
    const row = byDate[date];
    const bars = row ? BARS.map(([k, color, label]) => el("span", {
      class: "bar", "data-kind": k, style: `height:${(100 * (row[k] || 0)) / max}%;background:var(${color})`,
      title: `${t(label)}: ${fmtKWh(row[k])} kWh`,
    })) : [];
    cells.push(el("div", { class: `cal-day${row ? " has-data" : ""}`, "data-date": date },
      el("span", { class: "cal-num", text: String(day) }), el("div", { class: "bars" }, ...bars)));
  }
  $("#calendar").replaceChildren(...cells);
  $("#cal-legend").replaceChildren(...BARS.map(([, color, label]) => el("span", {},
    el("i", { style: `background:var(${color})` }), t(label))));
}

/* Money in the page's locale: the currency symbol placed and rounded by Intl when it is known
   (an ISO code or a common symbol), else the symbol as configured after a 2-decimal number. */
function moneyParts(amount, currency) {
  const code = CURRENCY_CODES[currency] || (/^[A-Z]{3}$/.test(currency) ? currency : null);
  if (code) {
    try {
      const parts = new Intl.NumberFormat(I18N.locale, { style: "currency", currency: code,
        currencyDisplay: "narrowSymbol" }).formatToParts(amount);
      const at = parts.findIndex((p) => p.type === "currency");
      const number = parts.filter((p) => p.type !== "currency" && p.type !== "literal");
      return { number: number.map((p) => p.value).join(""), symbol: parts[at].value,
        symbolFirst: at < parts.findIndex((p) => p.type === "integer") };
    } catch (e) { /* not a currency Intl knows: plain number below */ }
  }
  return { number: nf2.format(amount), symbol: currency, symbolFirst: false };
}

async function loadSavings() {
  const r = await api("GET", "/api/energy/summary");
  if (!r.ok) return;
  const d = r.data;
  for (const key of ["today", "month", "year"]) {
    const m = moneyParts(d[key].savings, d.currency);
    const value = $(`#v-save-${key}`);
    const symbol = $(`#save-${key} small`);
    value.textContent = m.number;
    symbol.textContent = m.symbol;
    if (m.symbolFirst) value.before(symbol); else value.after(symbol);
    $(`#save-${key} .sub`).textContent = t("history.diverted_kwh", { kwh: fmtKWh(d[key].diverted_wh) });
  }
  $("#savings-note").textContent = d.tariff_set ? "" : t("history.no_tariff");
}

function updateCsvLinks() {
  const end = new Date(`${hist.end}T12:00:00`);
  const from = isoDate(new Date(end.getFullYear(), end.getMonth(), 1));
  $("#csv-days").href = `/api/export.csv?from=${from}&to=${hist.end}&resolution=day`;
  $("#csv-minutes").href = `/api/export.csv?from=${hist.end}&to=${hist.end}&resolution=minute`;
}

async function refreshHistory() {
  updateCsvLinks();
  await Promise.all([loadSeries(), loadCalendar(), loadSavings()]);
}

function setupHistory() {
  hist.end = isoDate(new Date());
  for (const b of document.querySelectorAll(".views button")) {
    b.addEventListener("click", () => {
      for (const o of document.querySelectorAll(".views button")) o.classList.toggle("on", o === b);
      hist.view = b.dataset.view;
      loadSeries();
    });
  }
  const pick = $("#hdate");
  pick.value = hist.end;
  pick.max = hist.end;
  pick.addEventListener("change", () => { if (pick.value) { hist.end = pick.value; refreshHistory(); } });
  histChart();
  refreshHistory();
  setInterval(() => { if (hist.end === isoDate(new Date())) refreshHistory(); }, 60000);
}

/* ---------- settings backup and restore ---------- */
function setupBackup() {
  const up = $("#settings-import");
  up.addEventListener("change", async () => {
    const file = up.files[0];
    if (!file) return;
    let body;
    try { body = JSON.parse(await file.text()); } catch (e) { body = await file.text(); }
    up.value = "";
    const r = await api("POST", "/api/settings/import", body);
    if (r.ok) {
      settingsDoc = r.data;
      settingsSeen = JSON.stringify(r.data.settings);
      fillForm(r.data, true);
      showMsg(t("backup.restored"), "ok");
    } else {
      showMsg(t("backup.not_restored", { why: (r.data.errors || [r.status]).map(tServer).join("; ") }), "bad");
    }
  });
}

// app.js calls this once the user may view (at load, or after logging in)
let historyStarted = false;
window.onDashboardStart = () => {
  if (historyStarted) { refreshHistory(); return; }
  historyStarted = true;
  setupHistory();
  setupBackup();
};
