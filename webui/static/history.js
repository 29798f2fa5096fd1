/* vzdivert history: day/week/month/year chart from the recorder, a calendar of daily
   energy bars, money saved, CSV downloads, and backup/restore of the live settings.
   Uses api(), el(), $(), css(), fmtW(), fmtKWh() from app.js. Every visible string of this
   file is in HISTORY_TEXT (one place to translate). */
"use strict";

const HISTORY_TEXT = {
  day: "Day", week: "Week", month: "Month", year: "Year",
  grid: "Grid", diverted: "Diverted", imported: "Imported", exported: "Exported",
  topup: "Grid top-up", savedToday: "Saved today", savedMonth: "Saved this month",
  savedYear: "Saved this year", noData: "No history recorded for this period yet.",
  noTariff: "Set import_price and feed_in_price in the settings to see savings.",
  csvDays: "CSV (days)", csvMinutes: "CSV (minutes)",
  exportSettings: "Download settings", importSettings: "Upload settings",
  imported_ok: "Settings restored from the file.", importBad: "Not restored:",
  weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
};

const hist = { view: "day", end: null, chart: null, data: [[], [], []], step: 60 };

function isoDate(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function histChart() {
  const box = $("#hchart");
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
  const w = (u, v) => (v == null ? "–" : `${fmtW(v)} W`);
  hist.chart = new uPlot({
    width: Math.max(280, box.clientWidth), height: 260,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, W: { auto: true } },
    series: [
      {},
      { label: HISTORY_TEXT.grid, scale: "W", stroke: css("--c-grid"), width: 1.4, value: w },
      { label: HISTORY_TEXT.diverted, scale: "W", stroke: css("--c-power"), width: 1.4,
        fill: css("--c-power") + "26", value: w },
    ],
    axes: [{ ...axis }, { ...axis, scale: "W", size: 64, values: (u, vals) => vals.map((v) => fmtW(v)) }],
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

const BARS = [["diverted_wh", "--c-power", "diverted"], ["import_wh", "--warn", "imported"],
  ["export_wh", "--good", "exported"], ["topup_wh", "--bad", "topup"]];

async function loadCalendar() {
  const end = new Date(`${hist.end}T12:00:00`);
  const first = new Date(end.getFullYear(), end.getMonth(), 1);
  const last = new Date(end.getFullYear(), end.getMonth() + 1, 0);
  const r = await api("GET", `/api/energy?period=day&from=${isoDate(first)}&to=${isoDate(last)}`);
  if (!r.ok) return;
  const byDate = Object.fromEntries(r.data.rows.map((row) => [row.date, row]));
  const max = Math.max(1, ...r.data.rows.flatMap((row) => BARS.map(([k]) => row[k] || 0)));
  const cells = HISTORY_TEXT.weekdays.map((d) => el("div", { class: "cal-head", text: d }));
  for (let i = 0; i < (first.getDay() + 6) % 7; i++) cells.push(el("div", { class: "cal-day empty" }));
  for (let day = 1; day <= last.getDate(); day++) {
    const date = isoDate(new Date(end.getFullYear(), end.getMonth(), day));
    const row = byDate[date];
    const bars = row ? BARS.map(([k, color, label]) => el("span", {
      class: "bar", "data-kind": k, style: `height:${(100 * (row[k] || 0)) / max}%;background:var(${color})`,
      title: `${HISTORY_TEXT[label]}: ${fmtKWh(row[k])} kWh`,
    })) : [];
    cells.push(el("div", { class: `cal-day${row ? " has-data" : ""}`, "data-date": date },
      el("span", { class: "cal-num", text: String(day) }), el("div", { class: "bars" }, ...bars)));
  }
  $("#calendar").replaceChildren(...cells);
  $("#cal-legend").replaceChildren(...BARS.map(([, color, label]) => el("span", {},
    el("i", { style: `background:var(${color})` }), HISTORY_TEXT[label])));
}

async function loadSavings() {
  const r = await api("GET", "/api/energy/summary");
  if (!r.ok) return;
  const d = r.data;
  const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  for (const [key, label] of [["today", "savedToday"], ["month", "savedMonth"], ["year", "savedYear"]]) {
    $(`#save-${key} label`).textContent = HISTORY_TEXT[label];
    $(`#v-save-${key}`).textContent = money.format(d[key].savings);
    $(`#save-${key} small`).textContent = d.currency;
    $(`#save-${key} .sub`).textContent = `${fmtKWh(d[key].diverted_wh)} kWh ${HISTORY_TEXT.diverted.toLowerCase()}`;
  }
  $("#savings-note").textContent = d.tariff_set ? "" : HISTORY_TEXT.noTariff;
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
    b.textContent = HISTORY_TEXT[b.dataset.view];
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
  $("#csv-days").textContent = HISTORY_TEXT.csvDays;
  $("#csv-minutes").textContent = HISTORY_TEXT.csvMinutes;
  $("#hchart-empty").textContent = HISTORY_TEXT.noData;
  histChart();
  refreshHistory();
  setInterval(() => { if (hist.end === isoDate(new Date())) refreshHistory(); }, 60000);
}

/* ---------- settings backup and restore ---------- */
function setupBackup() {
  const down = $("#settings-export");
  const up = $("#settings-import");
  down.textContent = HISTORY_TEXT.exportSettings;
  $("#settings-import-label").textContent = HISTORY_TEXT.importSettings;
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
      showMsg(HISTORY_TEXT.imported_ok, "ok");
    } else {
      showMsg(`${HISTORY_TEXT.importBad} ${(r.data.errors || [r.status]).join("; ")}`, "bad");
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
