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
const SECTIONS = ["control", "load", "output", "watchdog", "tank", "guarantee", "tariff"]; // display order; names: "section.*"

/* ---------- formatting ---------- */
/* in the page's language (i18n.js), set by start() once the catalogues are loaded */
let nf0 = numberFormat(0);
let nf1 = numberFormat(1);
let nf2 = numberFormat(2);
let nfAny = numberFormat(6, 0);
let timeFmt = dateTimeFormat({ hour: "2-digit", minute: "2-digit" });
let secondsFmt = dateTimeFormat({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
let dateTimeFmt = dateTimeFormat({ dateStyle: "short", timeStyle: "medium" });
function setFormats() {
  nf0 = numberFormat(0); nf1 = numberFormat(1); nf2 = numberFormat(2); nfAny = numberFormat(6, 0);
  timeFmt = dateTimeFormat({ hour: "2-digit", minute: "2-digit" });
  secondsFmt = dateTimeFormat({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
  dateTimeFmt = dateTimeFormat({ dateStyle: "short", timeStyle: "medium" });
}
const fmtW = (v) => (v === null || v === undefined ? "–" : nf0.format(Math.round(v)));
const fmtKWh = (wh) => (wh === null || wh === undefined ? "–"
  : Math.abs(wh) >= 1e6 ? nf0.format(wh / 1000) : Math.abs(wh) >= 1e5 ? nf1.format(wh / 1000)
    : nf2.format(wh / 1000));
const fmtAge = (s) => (s === null || s === undefined ? t("age.never")
  : s < 90 ? t("age.s", { n: nf1.format(s) })
    : s < 5400 ? t("age.min", { n: nf0.format(s / 60) }) : t("age.h", { n: nf1.format(s / 3600) }));

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
  $("#who").textContent = session.passwordSet && session.canEdit ? t("login.as", { user: session.user }) : "";
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
  $("#v-grid-sub").textContent = t(s.grid_w === null ? "grid.no_reading"
    : s.grid_w < 0 ? "grid.exporting" : s.grid_w > 0 ? "grid.importing" : "grid.balanced");
  $("#v-power").textContent = fmtW(s.power_w);
  const rating = s.settings && s.settings.rating_w;
  const learned = s.rating_learned_w;
  $("#v-power-sub").textContent = !rating ? ""
    : learned && Math.abs(learned - rating) >= 0.5 && s.settings.learn_rating !== false
      ? t("power.of_load_learned", { w: fmtW(learned), set: fmtW(rating) })
      : t("power.of_load", { w: fmtW(rating) });
  $("#num-rating").hidden = learned === null; // an older worker: nothing to show
  $("#v-rating").textContent = learned ? fmtW(learned) : "–";
  $("#v-rating-sub").textContent = s.rating_confidence === undefined || s.rating_confidence === null
    ? t("rating.full_output")
    : s.settings && s.settings.learn_rating === false ? t("rating.learning_off")
    : t("rating.confidence", { pct: Math.round(s.rating_confidence * 100) });
  $("#v-duty").textContent = nf1.format((s.duty || 0) * 100);
  $("#v-duty-sub").textContent = s.settings && s.settings.curve ? t("duty.curve", { curve: s.settings.curve }) : "";
  $("#v-target").textContent = fmtW(s.target_w);
  $("#v-today").textContent = fmtKWh(s.energy_today_wh);
  $("#v-total").textContent = fmtKWh(s.energy_wh);

  const badges = $("#badges");
  badges.replaceChildren(...s.badges.map((b) => el("span", {
    class: `badge ${b}`, "data-badge": b, text: t(`badge.${b}`),
    title: b === "stale" ? tServer(s.stale_reason) : b === "error" ? tServer(s.error)
      : b === "tank_hold" ? tServer(s.hold_reason) : undefined,
  })));
  renderHotWater(s);
  renderProcesses(s.processes || {}, s.loop);
  renderLoads(s.loads || []);
  renderIngest(s.ingest || {}, s);
  // changed elsewhere (another browser, the API, MQTT): show it, unless the user is typing
  const editing = document.activeElement && document.activeElement.closest("#settings");
  if (settingsSeen && s.settings && JSON.stringify(s.settings) !== settingsSeen && !editing) {
    refreshSettings();
  }
}

const fmtTime = (epoch) => (epoch ? timeFmt.format(new Date(epoch * 1000)) : "–");

/* hot-water modes as the state names them; names: "hw.mode_*" */
const HW_MODES = { auto: "hw.mode_auto", boost: "hw.mode_boost", pause: "hw.mode_pause",
  topup: "hw.mode_topup", manual: "hw.mode_manual", stale: "hw.mode_stale" };

function renderHotWater(s) {
  const g = s.guarantee;
  const mode = s.mode || "auto";
  const modeName = Object.hasOwn(HW_MODES, mode) ? t(HW_MODES[mode]) : mode;
  const tank = s.tank_c === null || s.tank_c === undefined
    ? (s.tank_error ? tServer(s.tank_error) : t("hw.no_sensor"))
    : s.tank_age_s != null ? t("hw.tank_c_age", { c: nf1.format(s.tank_c), age: fmtAge(s.tank_age_s) })
      : t("hw.tank_c", { c: nf1.format(s.tank_c) });
  const facts = [
    ["hw.mode", s.mode_until ? t("hw.mode_until", { mode: modeName, time: fmtTime(s.mode_until) }) : modeName],
    ["hw.tank", tank],
  ];
  if (s.hold_reason) facts.push(["hw.held", tServer(s.hold_reason)]);
  if (g) {
    const reason = tServer(g.reason);
    facts.push(["hw.guarantee", g.deadline ? t("hw.guarantee_by", { time: fmtTime(g.deadline), reason }) : reason]);
  }
  $("#hotwater").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: v })]));
  const held = mode === "boost" || mode === "pause";
  $("#auto-btn").hidden = !held || !session.canEdit;
  for (const b of ["#boost-btn", "#pause-btn"]) $(b).disabled = !session.canEdit;
  $("#auto-btn").dataset.cmd = mode;
}

async function hotWater(cmd, minutes) {
  const r = await api("POST", `/api/${cmd}`, { minutes });
  const m = $("#hotwater-msg");
  m.textContent = r.ok ? "" : (r.data.errors || [t("hw.failed", { status: r.status })]).map(tServer).join("; ");
  m.className = `msg ${r.ok ? "" : "bad"}`;
  if (r.ok) renderState(r.data);
}

/* kinds of load as the state names them; names: "loads.kind_*" */
const LOAD_KINDS = { pwm: "loads.kind_pwm", relay: "loads.kind_relay", bypass: "loads.kind_bypass" };

/* several loads (PWM, relay stages, bypass): one row each, shown when there is more than one;
   a load's name is data, why it is held (min-on, thermostat, a hold's reason) is translated */
function renderLoads(loads) {
  $("#loads-card").hidden = loads.length < 2;
  const rows = loads.map((l) => el("tr", { "data-load": l.name },
    el("td", { text: l.name, translate: "no" }),
    Object.hasOwn(LOAD_KINDS, l.kind) ? el("td", { text: t(LOAD_KINDS[l.kind]) })
      : el("td", { text: l.kind, translate: "no" }),
    el("td", {}, el("span", { class: `dot${l.on ? " ok" : ""}` }),
      l.kind === "pwm" ? `${nf1.format((l.duty || 0) * 100)} %` : t(l.on ? "loads.on" : "loads.off")),
    el("td", { text: `${fmtW(l.power_w)} W` }),
    el("td", { class: "narrow-hide", text: `${fmtKWh(l.energy_today_wh)} kWh` }),
    el("td", { class: "wrap", text: tServer(l.held) || "–" }),
    el("td", { class: "narrow-hide", text: learnedText(l) })));
  $("#loads tbody").replaceChildren(...rows);
}

/* what a load was learned to draw and how sure that is: "1,290 W (52 %)" */
function learnedText(l) {
  if (l.rating_learned_w === undefined || l.rating_learned_w === null) return "–";
  return `${fmtW(l.rating_learned_w)} W (${Math.round((l.rating_confidence || 0) * 100)} %)`;
}

function renderProcesses(procs, loop) {
  const rows = Object.entries(procs).map(([name, p]) => el("tr", { "data-proc": name },
    el("td", { text: name, translate: "no" }),
    el("td", {}, el("span", { class: `dot${p.alive ? " ok" : ""}` }), t(p.alive ? "procs.running" : "procs.down")),
    el("td", { class: "narrow-hide", text: p.pid ?? "–" }),
    el("td", { text: nf0.format(p.restarts ?? 0) }),
    el("td", { class: "wrap", text: tServer(p.last_exit) || "–" })));
  $("#procs tbody").replaceChildren(...rows);
  const parts = [];
  if (loop && typeof loop === "object") {
    const ms = (v) => (typeof v === "number" ? `${nf1.format(v)} ms` : "–");
    if ("samples" in loop) parts.push(t("loop.steps", { n: nf0.format(loop.samples) }));
    if ("latency_p50_ms" in loop) {
      parts.push(t("loop.latency", { p50: ms(loop.latency_p50_ms), p99: ms(loop.latency_p99_ms) }));
    }
    if ("missed" in loop) parts.push(t("loop.missed", { n: nf0.format(loop.missed) }));
  }
  $("#loop").textContent = parts.length ? t("loop.summary", { parts: parts.join(" · ") }) : "";
}

function renderIngest(ing, s) {
  const rejects = ing.rejects || {};
  const nRejects = Object.values(rejects).reduce((a, b) => a + b, 0);
  const n = (v) => (typeof v === "number" ? nf0.format(v) : "–");
  const facts = [
    ["ingest.last_reading", fmtAge(ing.last_reading_age_s)],
    ["ingest.writes", n(ing.requests)],
    ["ingest.points", n(ing.points)],
    ["ingest.rejected", nRejects ? t("ingest.rejected_detail", { n: n(nRejects),
      detail: Object.entries(rejects).map(([k, v]) => `${k}: ${n(v)}`).join(", ") }) : n(0)],
    ["ingest.unmatched", n(ing.unmatched)],
    ["ingest.control_state", s.stale ? t("ingest.stale", { reason: tServer(s.stale_reason) })
      : t("ingest.fresh")],
  ];
  if (ing.clock_fallback) facts.push(["ingest.clock_wrong", t("ingest.clock_wrong_detail", { n: n(ing.clock_fallback) })]);
  if (ing.connection_limit) facts.push(["ingest.connection_limit", t("ingest.connection_limit_detail", { n: n(ing.connection_limit) })]);
  if (ing.header_timeout) facts.push(["ingest.slow_requests", n(ing.header_timeout)]);
  if (ing.auth_throttled) facts.push(["ingest.auth_throttled", n(ing.auth_throttled)]);
  if (ing.forwarded || ing.forward_dropped || ing.forward_failed) {
    facts.push(["ingest.forwarded", t("ingest.forwarded_detail", { n: n(ing.forwarded),
      dropped: n(ing.forward_dropped), failed: n(ing.forward_failed) })]);
  }
  const bat = ing.battery || {};
  if (bat.policy) {
    const w = typeof bat.battery_w === "number" ? `${nf0.format(bat.battery_w)} W` : t("battery.no_data");
    const soc = typeof bat.soc_pct === "number" ? `, ${nf0.format(bat.soc_pct)} %` : "";
    facts.push(["ingest.battery", t("battery.line", { w: `${w}${soc}`,
      first: t(bat.heater_first ? "battery.heater_first" : "battery.battery_first"),
      meter: fmtW(bat.meter_grid_w), control: fmtW(bat.control_grid_w) })]);
  }
  if (ing.problem) {
    facts.push(["ingest.last_problem", t("ingest.problem_age", { problem: tServer(ing.problem), age: fmtAge(ing.problem_age_s) })]);
  }
  $("#ingest").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: String(v) })]));
  renderChannels(ing.channels || {});
}

/* what a channel's value is for ([[ingest.channels]] role); names: "channel.role_*" */
const CHANNEL_ROLES = { grid: "channel.role_grid", battery_w: "channel.role_battery_w",
  battery_soc: "channel.role_battery_soc" };

function renderChannels(channels) {
  const rows = Object.entries(channels).map(([name, c]) => {
    const rejects = Object.entries(c.rejects || {});
    const role = c.role && c.role !== "grid" ? ` (${c.role})` : "";
    const roleName = Object.hasOwn(CHANNEL_ROLES, c.role || "grid") ? t(CHANNEL_ROLES[c.role || "grid"]) : undefined;
    return el("tr", { "data-channel": name },
      el("td", { text: name + role, translate: "no", title: roleName }),
      el("td", { class: "narrow-hide", text: c.source || "influx", translate: "no" }),
      el("td", { text: typeof c.value === "number" ? nf1.format(c.value) : "–" }),
      el("td", { text: fmtAge(c.age_s) }),
      el("td", { class: "narrow-hide", translate: "no",
        text: rejects.length ? rejects.map(([k, v]) => `${k}: ${nf0.format(v)}`).join(", ") : nf0.format(0) }),
      el("td", { class: "wrap", text: c.error ? tServer(c.error) : "–" }));
  });
  $("#channels").hidden = rows.length === 0;
  $("#channels tbody").replaceChildren(...rows);
}

/* ---------- chart ---------- */
let chart = null;
let minutes = 15;
let lastId = -1;
const data = [[], [], [], [], [], []]; // ts, grid_w, power_w, target_w, duty %, tank °C

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

// x-axis ticks on whole seconds and minutes, labelled by Intl in the page's language
const TIME_INCRS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, 86400];

function makeChart() {
  const box = $("#chart");
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
  const opts = {
    width: Math.max(280, box.clientWidth), height: box.clientWidth < 500 ? 240 : 300,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, W: { auto: true }, pct: { range: [0, 100] }, C: { range: [0, 100] } },
    legend: { live: true },
    series: [
      { label: t("chart.time"), value: (u, v) => (v == null ? "–" : dateTimeFmt.format(new Date(v * 1000))) },
      { label: t("chart.grid"), scale: "W", stroke: css("--c-grid"), width: 1.6, value: (u, v) => v == null ? "–" : `${fmtW(v)} W` },
      { label: t("chart.diverted"), scale: "W", stroke: css("--c-power"), width: 1.6,
        fill: css("--c-power") + "26", value: (u, v) => v == null ? "–" : `${fmtW(v)} W` },
      { label: t("chart.target"), scale: "W", stroke: css("--c-target"), width: 1.2, dash: [6, 4],
        value: (u, v) => v == null ? "–" : `${fmtW(v)} W` },
      { label: t("chart.duty"), scale: "pct", stroke: css("--c-duty"), width: 1.2,
        value: (u, v) => v == null ? "–" : `${nf1.format(v)} %` },
      { label: t("chart.tank"), scale: "C", stroke: css("--c-tank"), width: 1.4,
        value: (u, v) => v == null ? "–" : t("hw.tank_c", { c: nf1.format(v) }) },
    ],
    axes: [
      { ...axis, space: 70, incrs: TIME_INCRS_S, values: (u, vals, ax, space, incr) => vals.map((v) =>
        (incr < 60 ? secondsFmt : timeFmt).format(new Date(v * 1000))) },
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
  data[5] = (h.tank_c || []).slice();
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
  data[5].push(s.tank_c ?? null);
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
  c.textContent = t(live ? "conn.live" : "conn.offline");
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

/* "setting.<name>" in the catalogue; without one, the name made readable (untranslated) */
function settingLabel(name) {
  if (Object.hasOwn(I18N.cat, `setting.${name}`) || Object.hasOwn(I18N.fallback, `setting.${name}`)) {
    return t(`setting.${name}`);
  }
  const s = name.replace(/(_w_per_s|_per_s|_hz|_w|_s)$/, "").replaceAll("_", " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const JSON_TYPES = ["list", "dict"]; // edited as JSON text, e.g. curve_points

function rangeText(meta) {
  if (meta.choices) return t("range.one_of", { choices: meta.choices.join(", ") });
  if (JSON_TYPES.includes(meta.type)) return "";
  const unit = meta.unit ? ` ${tUnit(meta.unit)}` : "";
  const num = (v) => nfAny.format(v);
  if (meta.min !== null && meta.max !== null) return `${num(meta.min)} … ${num(meta.max)}${unit}`;
  if (meta.min !== null) return `≥ ${num(meta.min)}${unit}`;
  if (meta.max !== null) return `≤ ${num(meta.max)}${unit}`;
  return "";
}

function buildForm(doc) {
  const fields = $("#fields");
  const groups = {};
  for (const [name, meta] of Object.entries(doc.schema)) (groups[meta.section] ||= []).push([name, meta]);
  const order = Object.keys(groups).sort((a, b) =>
    (SECTIONS.indexOf(a) + 1 || 99) - (SECTIONS.indexOf(b) + 1 || 99));
  const out = [];
  for (const section of order) {
    out.push(el("h3", { class: "section-title", text: t(`section.${section}`) }));
    for (const [name, meta] of groups[section]) {
      const id = `f-${name}`;
      let input;
      if (meta.choices) {
        input = el("select", { id, name, translate: "no" }, ...meta.choices.map((c) => el("option", { value: c, text: c })));
      } else if (meta.type === "bool") {
        input = el("input", { id, name, type: "checkbox" });
      } else if (meta.type === "str") {
        input = el("input", { id, name, type: "text", autocomplete: "off" });
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
      const dflt = doc.defaults[name];
      // one text node per part, so a missing translation of one part stays visible
      const help = [tHelp(meta.section, name, meta.help),
        rangeText(meta) && t("settings.allowed", { range: rangeText(meta) }),
        t("settings.default", { value: (typeof dflt === "number" ? nfAny.format(dflt) : JSON.stringify(dflt))
          + (meta.unit ? " " + tUnit(meta.unit) : "") })]
        .filter(Boolean).flatMap((part, i) => (i ? [" ", part] : [part]));
      out.push(el("div", { class: "field", "data-field": name },
        el("label", { for: id }, settingLabel(name), el("code", { text: name, translate: "no" })),
        el("div", { class: "inp" }, input, el("span", { class: "unit", text: tUnit(meta.unit), translate: "no" })),
        el("p", { class: "err", id: `e-${name}`, role: "alert" }),
        el("p", { class: "help" }, ...help)));
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
  $("#settings-note").textContent = can ? t("settings.note_live")
    : session.passwordSet ? t("settings.note_read_only") : "";
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
    el("td", { text: dateTimeFmt.format(new Date(c.ts * 1000)) }),
    el("td", { text: c.who, translate: "no" }),
    el("td", { class: "wrap", text: Object.entries(c.changes).map(([k, [a, b]]) => `${k}: ${a} → ${b}`).join(", "), translate: "no" })));
  $("#changes tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: t("changes.none") }))]));
}

async function refreshSettings() {
  const r = await api("GET", "/api/settings");
  if (!r.ok) {
    if (r.status !== 401) showMsg((r.data.errors || [t("settings.unavailable")]).map(tServer).join("; "), "bad");
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
    else if (input.tagName === "SELECT" || input.dataset.type === "str") v = input.value;
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
  if (!Object.keys(changes).length) { showMsg(t("settings.nothing_changed"), ""); return; }
  showMsg(t("settings.saving"), "");
  const r = await api("PUT", "/api/settings", changes);
  if (r.ok) {
    settingsDoc = r.data;
    settingsSeen = JSON.stringify(r.data.settings);
    fillForm(r.data, true);
    showMsg(t(r.data.applied === false ? "settings.saved_later" : "settings.saved"), "ok");
  } else if (r.status === 422) {
    const fields = r.data.fields || {};
    const other = [];
    for (const [name, problem] of Object.entries(fields)) {
      const f = document.querySelector(`[data-field="${name}"]`);
      if (f) f.classList.add("invalid");
      const e = document.getElementById(`e-${name}`);
      if (e) e.textContent = tServer(problem);
      else other.push(`${name}: ${problem}`);  // a setting without a field in this form
    }
    if (!Object.keys(fields).length) other.push(...(r.data.errors || []));
    showMsg(other.length ? other.map(tServer).join("; ") : t("settings.correct_marked"), "bad");
  } else {
    if (r.status === 401) await loadSession();
    showMsg(t("settings.not_saved", { why: (r.data.errors || [r.status]).map(tServer).join("; ") }), "bad");
  }
}

let resetArmed = null;
async function resetSettings() {
  const b = $("#reset");
  if (!resetArmed) {
    b.textContent = t("settings.reset_confirm");
    b.classList.add("danger");
    resetArmed = setTimeout(() => { resetArmed = null; b.textContent = t("settings.reset"); b.classList.remove("danger"); }, 4000);
    return;
  }
  clearTimeout(resetArmed);
  resetArmed = null;
  b.textContent = t("settings.reset");
  b.classList.remove("danger");
  const r = await api("POST", "/api/settings/reset", {});
  if (r.ok) {
    settingsDoc = r.data;
    settingsSeen = JSON.stringify(r.data.settings);
    for (const name of Object.keys(r.data.schema)) clearFieldError(name);
    fillForm(r.data, true);
    showMsg(t("settings.reset_done"), "ok");
  } else {
    showMsg(t("settings.not_reset", { why: (r.data.errors || [r.status]).map(tServer).join("; ") }), "bad");
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
    $("#login-msg").textContent = (r.data.errors || [t("login.failed")]).map(tServer).join("; ");
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
  if (window.onDashboardStart) window.onDashboardStart(); // history.js
}

document.addEventListener("DOMContentLoaded", async () => {
  await loadLanguage();
  setFormats();
  applyI18n();
  setupLanguageSwitch($("#lang"));
  $("#login-form").addEventListener("submit", login);
  $("#login-btn").addEventListener("click", () => {
    $("#login-card").hidden = false;
    $("#login-password").focus();
  });
  $("#logout-btn").addEventListener("click", logout);
  $("#settings").addEventListener("submit", saveSettings);
  $("#reset").addEventListener("click", resetSettings);
  for (const b of ["#boost-btn", "#pause-btn"]) {
    $(b).addEventListener("click", (e) => hotWater(e.target.dataset.cmd, Number(e.target.dataset.minutes)));
  }
  $("#auto-btn").addEventListener("click", (e) => hotWater(e.target.dataset.cmd, 0));
  start();
});
