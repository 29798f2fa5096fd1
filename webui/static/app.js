/* vzdivert dashboard: live state over server-sent events, chart (uPlot), settings form.
   Everything comes from the JSON API documented in docs/api.md. */
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
};

const session = { csrf: null, canEdit: false, canView: true, passwordSet: false, user: null };
const BADGES = {
  exporting: "Exporting", importing: "Importing", stale: "Stale data",
  saturated: "Load saturated", full_output: "Full output", output_off: "Output off", manual: "Manual output",
  error: "Output error",
};
const SECTIONS = { control: "Control", load: "Load", output: "Output", watchdog: "Watchdog" };

/* ---------- formatting ---------- */
const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const fmtW = (v) => (v === null || v === undefined ? "–" : nf0.format(Math.round(v)));
const fmtKWh = (wh) => (wh === null || wh === undefined ? "–"
  : Math.abs(wh) >= 1e6 ? nf0.format(wh / 1000) : Math.abs(wh) >= 1e5 ? nf1.format(wh / 1000)
    : nf2.format(wh / 1000));
const fmtAge = (s) => (s === null || s === undefined ? "never" : s < 90 ? `${nf1.format(s)} s ago`
  : s < 5400 ? `${nf0.format(s / 60)} min ago` : `${nf1.format(s / 3600)} h ago`);

/* ---------- API ---------- */
async function api(method, path, body, retried = false) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 403 && method !== "GET" && !retried && path !== "/api/login") {
    await loadSession(); // the session may have ended (UI restarted): fresh token, once
    if (session.csrf) return api(method, path, body, true);
  }
  return { status: res.status, ok: res.ok, data: data || {} };
}

async function loadSession() {
  const r = await api("GET", "/api/session");
  const d = r.data;
  Object.assign(session, {
    csrf: d.csrf, canEdit: !!d.can_edit, canView: !!d.can_view,
    passwordSet: !!d.password_set, user: d.user,
  });
  $("#login-btn").hidden = !(session.passwordSet && !session.canEdit);
  $("#logout-btn").hidden = !(session.passwordSet && session.canEdit);
  $("#who").textContent = session.passwordSet && session.canEdit ? `logged in as ${session.user}` : "";
  document.body.classList.toggle("locked", !session.canView);
  $("#login-card").hidden = session.canView;
  applyEditable();
}

/* ---------- live state ---------- */
let lastState = null;
let lastStateAt = 0;

function renderState(s) {
  lastState = s;
  lastStateAt = Date.now();
  const grid = $("#num-grid");
  grid.classList.toggle("exporting", s.badges.includes("exporting"));
  grid.classList.toggle("importing", s.badges.includes("importing"));
  $("#v-grid").textContent = fmtW(s.grid_w);
  $("#v-grid-sub").textContent = s.grid_w === null ? "no reading yet"
    : s.grid_w < 0 ? "exporting" : s.grid_w > 0 ? "importing" : "balanced";
  $("#v-power").textContent = fmtW(s.power_w);
  const rating = s.settings && s.settings.rating_w;
  $("#v-power-sub").textContent = rating ? `of ${fmtW(rating)} W load` : "";
  $("#v-duty").textContent = nf1.format((s.duty || 0) * 100);
  $("#v-duty-sub").textContent = s.settings && s.settings.curve ? `${s.settings.curve} curve` : "";
  $("#v-target").textContent = fmtW(s.target_w);
  $("#v-today").textContent = fmtKWh(s.energy_today_wh);
  $("#v-total").textContent = fmtKWh(s.energy_wh);

  const badges = $("#badges");
  badges.replaceChildren(...s.badges.map((b) => el("span", {
    class: `badge ${b}`, "data-badge": b, text: BADGES[b] || b,
    title: b === "stale" ? s.stale_reason : b === "error" ? s.error : undefined,
  })));
  renderProcesses(s.processes || {}, s.loop);
  renderIngest(s.ingest || {}, s);
  // changed elsewhere (another browser, the API, MQTT): show it, unless the user is typing
  const editing = document.activeElement && document.activeElement.closest("#settings");
  if (settingsSeen && s.settings && JSON.stringify(s.settings) !== settingsSeen && !editing) {
    refreshSettings();
  }
}

function renderProcesses(procs, loop) {
  const rows = Object.entries(procs).map(([name, p]) => el("tr", { "data-proc": name },
    el("td", { text: name }),
    el("td", {}, el("span", { class: `dot${p.alive ? " ok" : ""}` }), p.alive ? "running" : "down"),
    el("td", { class: "narrow-hide", text: p.pid ?? "–" }),
    el("td", { text: String(p.restarts ?? 0) }),
    el("td", { class: "wrap", text: p.last_exit || "–" })));
  $("#procs tbody").replaceChildren(...rows);
  const parts = [];
  if (loop && typeof loop === "object") {
    const ms = (v) => (typeof v === "number" ? `${nf1.format(v)} ms` : "–");
    if ("samples" in loop) parts.push(`${nf0.format(loop.samples)} steps`);
    if ("latency_p50_ms" in loop) parts.push(`reading → output ${ms(loop.latency_p50_ms)} median, ${ms(loop.latency_p99_ms)} p99`);
    if ("missed" in loop) parts.push(`${loop.missed} missed`);
  }
  $("#loop").textContent = parts.length ? `Control loop: ${parts.join(" · ")}` : "";
}

function renderIngest(ing, s) {
  const rejects = ing.rejects || {};
  const nRejects = Object.values(rejects).reduce((a, b) => a + b, 0);
  const facts = [
    ["Last reading", fmtAge(ing.last_reading_age_s)],
    ["Writes received", ing.requests ?? "–"],
    ["Points accepted", ing.points ?? "–"],
    ["Rejected", nRejects ? `${nRejects} (${Object.entries(rejects).map(([k, v]) => `${k}: ${v}`).join(", ")})` : "0"],
    ["Unmatched points", ing.unmatched ?? "–"],
    ["Control state", s.stale ? `stale: ${s.stale_reason}` : "fresh"],
  ];
  if (ing.clock_fallback) facts.push(["Logger clock wrong", `${ing.clock_fallback} (arrival time used)`]);
  if (ing.connection_limit) facts.push(["Connection limit reached", `${ing.connection_limit} (idle or too many connections from one address were closed)`]);
  if (ing.header_timeout) facts.push(["Slow requests cut", String(ing.header_timeout)]);
  if (ing.auth_throttled) facts.push(["Auth guesses throttled", String(ing.auth_throttled)]);
  if (ing.forwarded || ing.forward_dropped || ing.forward_failed) {
    facts.push(["Forwarded", `${ing.forwarded} (dropped ${ing.forward_dropped}, failed ${ing.forward_failed})`]);
  }
  $("#ingest").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
}

/* ---------- chart ---------- */
let chart = null;
let minutes = 15;
let lastId = -1;
const data = [[], [], [], [], []]; // ts, grid_w, power_w, target_w, duty %

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

function makeChart() {
  const box = $("#chart");
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
  const opts = {
    width: Math.max(280, box.clientWidth), height: box.clientWidth < 500 ? 240 : 300,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, W: { auto: true }, pct: { range: [0, 100] } },
    legend: { live: true },
    series: [
      {},
      { label: "Grid", scale: "W", stroke: css("--c-grid"), width: 1.6, value: (u, v) => v == null ? "–" : `${fmtW(v)} W` },
      { label: "Diverted", scale: "W", stroke: css("--c-power"), width: 1.6,
        fill: css("--c-power") + "26", value: (u, v) => v == null ? "–" : `${fmtW(v)} W` },
      { label: "Target", scale: "W", stroke: css("--c-target"), width: 1.2, dash: [6, 4],
        value: (u, v) => v == null ? "–" : `${fmtW(v)} W` },
      { label: "Duty", scale: "pct", stroke: css("--c-duty"), width: 1.2,
        value: (u, v) => v == null ? "–" : `${nf1.format(v)} %` },
    ],
    axes: [
      { ...axis },
      { ...axis, scale: "W", size: 64, label: "W", labelSize: 14, labelGap: 0,
        values: (u, vals) => vals.map((v) => fmtW(v)) },
      { ...axis, scale: "pct", side: 1, size: 52, grid: { show: false }, values: (u, vals) => vals.map((v) => `${v}%`) },
    ],
  };
  chart = new uPlot(opts, data, box);
  // while nobody points at the chart, its legend shows the newest values
  box.addEventListener("mouseenter", () => { hovering = true; });
  box.addEventListener("mouseleave", () => showNewest());
  new ResizeObserver(() => {
    const w = Math.max(280, box.clientWidth);
    if (Math.abs(w - chart.width) > 2) chart.setSize({ width: w, height: w < 500 ? 240 : 300 });
  }).observe(box);
}

let hovering = false;
function showNewest() {
  hovering = false;
  const n = data[0].length;
  if (n) chart.setLegend({ idx: n - 1 });
}

async function loadHistory() {
  const r = await api("GET", `/api/history?minutes=${minutes}`);
  if (!r.ok) return;
  const h = r.data;
  data[0] = h.ts.slice();
  data[1] = h.grid_w.slice();
  data[2] = h.power_w.slice();
  data[3] = h.target_w.slice();
  data[4] = h.duty.map((d) => (d === null ? null : d * 100));
  lastId = Math.max(lastId, h.last_id);
  chart.setData(data);
  if (!hovering) showNewest();
}

function appendSample(s) {
  if (s.id <= lastId) return;
  lastId = s.id;
  const last = data[0].length ? data[0][data[0].length - 1] : -Infinity;
  if (s.ts <= last) return;
  data[0].push(s.ts); data[1].push(s.grid_w); data[2].push(s.power_w);
  data[3].push(s.target_w); data[4].push(s.duty === null ? null : s.duty * 100);
  const cutoff = s.ts - minutes * 60;
  let drop = 0;
  while (drop < data[0].length && data[0][drop] < cutoff) drop++;
  if (drop) for (const col of data) col.splice(0, drop);
  chart.setData(data);
  if (!hovering) showNewest();
}

function setupRanges() {
  for (const b of document.querySelectorAll(".ranges button")) {
    b.addEventListener("click", () => {
      for (const o of document.querySelectorAll(".ranges button")) o.classList.toggle("on", o === b);
      minutes = Number(b.dataset.min);
      loadHistory();
    });
  }
  // long windows hold 20 s buckets: re-fetch now and then instead of piling up 1 s samples
  setInterval(() => { if (minutes > 60) loadHistory(); }, 120000);
}

/* ---------- live stream ---------- */
let source = null;
let pollTimer = null;

function setConn(live) {
  const c = $("#conn");
  c.classList.toggle("live", live);
  c.classList.toggle("down", !live);
  c.textContent = live ? "live" : "offline";
}

function connect() {
  if (source) source.close();
  source = new EventSource(`/api/events?after=${lastId}`);
  source.addEventListener("state", (e) => { setConn(true); renderState(JSON.parse(e.data)); });
  source.addEventListener("sample", (e) => appendSample(JSON.parse(e.data)));
  source.onopen = () => { setConn(true); stopPolling(); };
  source.onerror = () => {
    setConn(false);
    if (source.readyState === EventSource.CLOSED) { // refused (e.g. too many streams): poll
      source.close();
      startPolling();
      setTimeout(connect, 15000);
    }
  };
}

function startPolling() {
  if (pollTimer) return;
  pollTimer = setInterval(async () => {
    const r = await api("GET", "/api/state");
    if (r.ok) renderState(r.data);
  }, 2000);
}
function stopPolling() { clearInterval(pollTimer); pollTimer = null; }

setInterval(() => { if (lastStateAt && Date.now() - lastStateAt > 8000) setConn(false); }, 2000);

/* ---------- settings ---------- */
let settingsDoc = null;
let settingsSeen = null;

function fieldLabel(name) {
  const s = name.replace(/(_w_per_s|_per_s|_hz|_w|_s)$/, "").replaceAll("_", " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const JSON_TYPES = ["list", "dict"]; // edited as JSON text, e.g. curve_points

function rangeText(meta) {
  if (meta.choices) return `one of ${meta.choices.join(", ")}`;
  if (JSON_TYPES.includes(meta.type)) return "";
  const unit = meta.unit ? ` ${meta.unit}` : "";
  if (meta.min !== null && meta.max !== null) return `${meta.min} … ${meta.max}${unit}`;
  if (meta.min !== null) return `≥ ${meta.min}${unit}`;
  if (meta.max !== null) return `≤ ${meta.max}${unit}`;
  return "";
}

function buildForm(doc) {
  const fields = $("#fields");
  const groups = {};
  for (const [name, meta] of Object.entries(doc.schema)) (groups[meta.section] ||= []).push([name, meta]);
  const order = Object.keys(groups).sort((a, b) =>
    (Object.keys(SECTIONS).indexOf(a) + 1 || 99) - (Object.keys(SECTIONS).indexOf(b) + 1 || 99));
  const out = [];
  for (const section of order) {
    out.push(el("h3", { class: "section-title", text: SECTIONS[section] || section }));
    for (const [name, meta] of groups[section]) {
      const id = `f-${name}`;
      let input;
      if (meta.choices) {
        input = el("select", { id, name }, ...meta.choices.map((c) => el("option", { value: c, text: c })));
      } else if (meta.type === "bool") {
        input = el("input", { id, name, type: "checkbox" });
      } else if (JSON_TYPES.includes(meta.type)) {
        input = el("input", { id, name, type: "text", class: "json", spellcheck: "false",
          autocomplete: "off", placeholder: meta.type === "list" ? "[ ]" : "{ }" });
      } else {
        input = el("input", {
          id, name, type: "number", inputmode: "decimal",
          step: meta.type === "int" ? "1" : "any", min: meta.min ?? undefined, max: meta.max ?? undefined,
        });
      }
      input.dataset.type = meta.type;
      const edited = () => { input.dataset.dirty = "1"; clearFieldError(name); };
      input.addEventListener("input", edited);
      input.addEventListener("change", edited);
      const help = [meta.help, rangeText(meta) && `Allowed: ${rangeText(meta)}.`,
        `Default: ${JSON.stringify(doc.defaults[name])}${meta.unit ? " " + meta.unit : ""}.`]
        .filter(Boolean).join(" ");
      out.push(el("div", { class: "field", "data-field": name },
        el("label", { for: id }, fieldLabel(name), el("code", { text: name })),
        el("div", { class: "inp" }, input, el("span", { class: "unit", text: meta.unit || "" })),
        el("p", { class: "err", id: `e-${name}`, role: "alert" }),
        el("p", { class: "help", text: help })));
    }
  }
  fields.replaceChildren(...out);
}

// a refresh (another browser, the API, a late first load) never overwrites what the user
// has typed but not saved yet; saving or resetting fills everything (force)
function fillForm(doc, force = false) {
  for (const [name, value] of Object.entries(doc.settings)) {
    const input = document.getElementById(`f-${name}`);
    if (!input || (input.dataset.dirty && !force)) continue;
    delete input.dataset.dirty;
    if (input.type === "checkbox") input.checked = !!value;
    else if (JSON_TYPES.includes(input.dataset.type)) input.value = JSON.stringify(value);
    else input.value = String(value);
    input.closest(".field").classList.toggle("changed", name in (doc.overrides || {}));
  }
  renderChanges(doc.changes || []);
  applyEditable();
}

function applyEditable() {
  const can = session.canEdit;
  for (const e of document.querySelectorAll("#settings input, #settings select")) e.disabled = !can;
  $("#save").hidden = !can;
  $("#reset").hidden = !can;
  $("#settings-note").textContent = can ? "changes apply live and are kept across restarts"
    : session.passwordSet ? "read-only: log in to change settings" : "";
}

function clearFieldError(name) {
  const f = document.querySelector(`[data-field="${name}"]`);
  if (f) f.classList.remove("invalid");
  const e = document.getElementById(`e-${name}`);
  if (e) e.textContent = "";
}

function showMsg(text, kind) {
  const m = $("#settings-msg");
  m.textContent = text;
  m.className = `msg ${kind || ""}`;
}

function renderChanges(changes) {
  const rows = changes.slice().reverse().map((c) => el("tr", {},
    el("td", { text: new Date(c.ts * 1000).toLocaleString() }),
    el("td", { text: c.who }),
    el("td", { class: "wrap", text: Object.entries(c.changes).map(([k, [a, b]]) => `${k}: ${a} → ${b}`).join(", ") })));
  $("#changes tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: "no changes yet" }))]));
}

async function refreshSettings() {
  const r = await api("GET", "/api/settings");
  if (!r.ok) {
    if (r.status !== 401) showMsg((r.data.errors || ["settings unavailable"]).join("; "), "bad");
    return;
  }
  settingsSeen = JSON.stringify(r.data.settings);
  const schemaKey = JSON.stringify(Object.keys(r.data.schema));
  if (!settingsDoc || JSON.stringify(Object.keys(settingsDoc.schema)) !== schemaKey) buildForm(r.data);
  settingsDoc = r.data;
  fillForm(r.data);
}

function formChanges() {
  const out = {};
  for (const [name, current] of Object.entries(settingsDoc.settings)) {
    const input = document.getElementById(`f-${name}`);
    if (!input) continue;
    let v;
    if (input.type === "checkbox") v = input.checked;
    else if (input.tagName === "SELECT") v = input.value;
    else if (JSON_TYPES.includes(input.dataset.type)) {
      try { v = JSON.parse(input.value || "null"); } catch (e) { v = input.value; } // server explains
      if (JSON.stringify(v) === JSON.stringify(current)) continue;
    }
    else {
      const raw = input.value.trim();
      // a number the browser could not read is sent as typed: the server says what is wrong
      v = raw === "" || Number.isNaN(Number(raw)) ? (input.validity.badInput ? "not a number" : raw) : Number(raw);
    }
    if (v !== current) out[name] = v;
  }
  return out;
}

async function saveSettings(ev) {
  ev.preventDefault();
  for (const name of Object.keys(settingsDoc.schema)) clearFieldError(name);
  const changes = formChanges();
  if (!Object.keys(changes).length) { showMsg("Nothing changed.", ""); return; }
  showMsg("Saving…", "");
  const r = await api("PUT", "/api/settings", changes);
  if (r.ok) {
    settingsDoc = r.data;
    settingsSeen = JSON.stringify(r.data.settings);
    fillForm(r.data, true);
    showMsg(r.data.applied === false ? "Saved; applies when the control loop is back."
      : "Saved and applied.", "ok");
  } else if (r.status === 422) {
    const fields = r.data.fields || {};
    const other = [];
    for (const [name, problem] of Object.entries(fields)) {
      const f = document.querySelector(`[data-field="${name}"]`);
      if (f) f.classList.add("invalid");
      const e = document.getElementById(`e-${name}`);
      if (e) e.textContent = problem;
      else other.push(`${name}: ${problem}`);  // a setting without a field in this form
    }
    if (!Object.keys(fields).length) other.push(...(r.data.errors || []));
    showMsg(other.length ? other.join("; ") : "Not saved: please correct the marked field.", "bad");
  } else {
    if (r.status === 401) await loadSession();
    showMsg(`Not saved: ${(r.data.errors || [r.status]).join("; ")}`, "bad");
  }
}

let resetArmed = null;
async function resetSettings() {
  const b = $("#reset");
  if (!resetArmed) {
    b.textContent = "Click again to reset";
    b.classList.add("danger");
    resetArmed = setTimeout(() => { resetArmed = null; b.textContent = "Reset to defaults"; b.classList.remove("danger"); }, 4000);
    return;
  }
  clearTimeout(resetArmed);
  resetArmed = null;
  b.textContent = "Reset to defaults";
  b.classList.remove("danger");
  const r = await api("POST", "/api/settings/reset", {});
  if (r.ok) {
    settingsDoc = r.data;
    settingsSeen = JSON.stringify(r.data.settings);
    for (const name of Object.keys(r.data.schema)) clearFieldError(name);
    fillForm(r.data, true);
    showMsg("Reset to the config file's values.", "ok");
  } else {
    showMsg(`Not reset: ${(r.data.errors || [r.status]).join("; ")}`, "bad");
  }
}

/* ---------- login ---------- */
async function login(ev) {
  ev.preventDefault();
  const r = await api("POST", "/api/login", { password: $("#login-password").value });
  if (r.ok) {
    $("#login-password").value = "";
    $("#login-msg").textContent = "";
    $("#login-card").hidden = true;
    await start();
  } else {
    $("#login-msg").textContent = (r.data.errors || ["login failed"]).join("; ");
  }
}

async function logout() {
  await api("POST", "/api/logout", {});
  await loadSession();
  await refreshSettings();
}

/* ---------- start ---------- */
let started = false;
async function start() {
  await loadSession();
  if (!session.canView) return;
  if (!started) {
    started = true;
    makeChart();
    setupRanges();
  }
  await loadHistory();
  const r = await api("GET", "/api/state");
  if (r.ok) renderState(r.data);
  await refreshSettings();
  connect();
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", login);
  $("#login-btn").addEventListener("click", () => {
    $("#login-card").hidden = false;
    $("#login-password").focus();
  });
  $("#logout-btn").addEventListener("click", logout);
  $("#settings").addEventListener("submit", saveSettings);
  $("#reset").addEventListener("click", resetSettings);
  start();
});
