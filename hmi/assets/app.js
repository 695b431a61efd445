// remine HMI: session, live values over server-sent events, and the views.
// Plain JavaScript, no build step. Values carry their quality: a bad value
// is shown in magenta italics with a "?", a stale one struck through; a
// number is never shown as live when it is not.
"use strict";

const STATES = {1: "Idle", 2: "Running", 3: "Complete", 4: "Holding", 5: "Held", 6: "Restarting",
  7: "Stopping", 8: "Stopped", 9: "Aborting", 10: "Aborted", 11: "Resetting"};
// Signals shown on the mimic per unit, in order; others are on the Tags view.
const KEY_SIGNALS = ["PackVoltage", "Current", "SoC", "Energy", "MaxCellTemp", "O2", "LEL", "ChamberTemp",
  "FeedRate", "BeltRate", "Processed", "Temperature", "Extraction", "pH", "FreeAcid", "Level",
  "ProductMass", "Purity"];
const STALE_AFTER_MS = 5000;
const IDLE_TIMEOUT_MS = 15 * 60 * 1000;

const $ = (id) => document.getElementById(id);
let catalogue = new Map();   // tag -> {unit, writable, min, max}
let lastSnapshotAt = 0;
let events = null;
let idleTimer = null;

async function api(path, options = {}) {
  const res = await fetch("/api/v1" + path, {credentials: "same-origin", ...options,
    headers: {"Content-Type": "application/json", ...(options.headers || {})}});
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  const isLogin = path === "/session" && options.method === "POST";
  if (res.status === 401 && !isLogin) { showLogin(); throw new Error("not logged in"); }
  if (!res.ok) throw new Error(body && body.error ? body.error.message : res.statusText);
  return body;
}

function showLogin() {
  if (events) { events.close(); events = null; }
  document.querySelectorAll(".view").forEach((v) => v.hidden = true);
  $("nav").hidden = true; $("logout").hidden = true; $("who").textContent = "";
  $("login-view").hidden = false;
}

async function start() {
  const health = await fetch("/api/v1/health").then((r) => r.json()).catch(() => ({}));
  $("site").textContent = health.site || "";
  try {
    const me = await api("/session");
    await enter(me);
  } catch (_) { showLogin(); }
}

async function enter(me) {
  $("login-view").hidden = true;
  $("nav").hidden = false; $("logout").hidden = false;
  $("who").textContent = `${me.user} (${me.role})`;
  const t = await api("/tags");
  catalogue = new Map(t.tags.map((i) => [i.tag, i]));
  buildMimic([...catalogue.keys()]);
  buildTagTable([...catalogue.keys()]);
  applySnapshot(t.snapshot);
  connectStream();
  route();
  resetIdle();
}

function connectStream() {
  if (events) events.close();
  events = new EventSource("/api/v1/stream");
  events.addEventListener("snapshot", (e) => applySnapshot(JSON.parse(e.data)));
  events.onerror = () => setLink(false);
}

function setLink(live) {
  $("link").textContent = live ? "\u25CF live" : "\u25CF offline";
  $("link").classList.toggle("live", live);
}

function format(tag, value) {
  if (value === null || value === undefined) return "--";
  if (tag.endsWith("/State")) return STATES[value] || `state ${value}`;
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value !== "number") return String(value);
  const a = Math.abs(value);
  return a >= 1000 ? value.toFixed(0) : a >= 100 ? value.toFixed(1) : a >= 1 ? value.toFixed(2) : value.toFixed(3);
}

function applySnapshot(snap) {
  if (!snap || !snap.readings) return;
  lastSnapshotAt = Date.now();
  setLink(true);
  for (const r of snap.readings) {
    const text = format(r.tag, r.value) + (r.quality === "bad" && r.value !== null ? "?" : "");
    for (const el of document.querySelectorAll(`[data-tag="${CSS.escape(r.tag)}"]`)) {
      el.textContent = text;
      el.classList.toggle("q-bad", r.quality !== "good");
      el.classList.remove("q-stale");
      el.title = r.quality === "good" ? `${r.tag} @ ${r.serverTime}` : `${r.tag}: ${r.quality} (${r.reason || ""})`;
      if (r.tag.endsWith("/State")) el.setAttribute("class", `value state ${STATES[r.value] || ""}` + (r.quality !== "good" ? " q-bad" : ""));
    }
    const row = document.querySelector(`tr[data-row="${CSS.escape(r.tag)}"]`);
    if (row) {
      row.cells[3].textContent = r.quality + (r.reason ? `: ${r.reason}` : "");
      row.cells[4].textContent = r.serverTime ? r.serverTime.slice(11, 23) : "";
    }
  }
}

// A value that has not been refreshed for a while is no longer live.
setInterval(() => {
  if (lastSnapshotAt && Date.now() - lastSnapshotAt > STALE_AFTER_MS) {
    document.querySelectorAll("[data-tag]").forEach((el) => el.classList.add("q-stale"));
    setLink(false);
  }
}, 1000);

function svg(tag, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function unitsOf(tags, line) {
  const units = new Map();
  for (const t of tags) {
    const [l, u, s] = t.split("/");
    if (l !== line) continue;
    if (!units.has(u)) units.set(u, []);
    units.get(u).push(s);
  }
  return units;
}

// The mimic: one panel per line, left to right in the flow of material;
// inside, a box per unit (2 columns) with its state and key signals.
const LINES = [["Discharge", "Discharge"], ["Mechanical", "Mechanical (shredding under N2)"], ["Hydromet", "Hydrometallurgy"]];
const BOX_W = 196, ROW_H = 18, GAP = 10, PANEL_PAD = 12, PANEL_GAP = 48;

function unitBox(line, unit, signals, x, y) {
  const shown = KEY_SIGNALS.filter((s) => signals.includes(s)).slice(0, 5);
  const h = 26 + ROW_H * shown.length;
  const box = svg("g", {transform: `translate(${x},${y})`});
  box.append(svg("rect", {class: "unit-box", width: BOX_W, height: h, rx: 4}));
  box.append(svg("text", {class: "unit-name", x: 8, y: 17}, unit));
  if (signals.includes("State")) box.append(svg("text", {class: "value state", x: BOX_W - 8, y: 17, "text-anchor": "end", "data-tag": `${line}/${unit}/State`}, "--"));
  shown.forEach((s, k) => {
    const ty = 36 + k * ROW_H, tag = `${line}/${unit}/${s}`;
    box.append(svg("text", {class: "label", x: 8, y: ty}, s));
    box.append(svg("text", {class: "value", x: BOX_W - 54, y: ty, "text-anchor": "end", "data-tag": tag}, "--"));
    box.append(svg("text", {class: "label", x: BOX_W - 48, y: ty}, (catalogue.get(tag) || {}).unit || ""));
  });
  return [box, h];
}

function buildMimic(tags) {
  const g = $("lines"); g.replaceChildren();
  let x = 10, tallest = 0;
  const panels = [];
  for (const [line, title] of LINES) {
    const units = [...unitsOf(tags, line)].filter(([, s]) => s.includes("State") || KEY_SIGNALS.some((k) => s.includes(k)));
    const panel = svg("g", {transform: `translate(${x},10)`});
    const width = PANEL_PAD * 2 + BOX_W * 2 + GAP;
    const colY = [40, 40];
    const content = svg("g", {});
    for (const [unit, signals] of units) {
      const col = colY[0] <= colY[1] ? 0 : 1;
      const [box, h] = unitBox(line, unit, signals, PANEL_PAD + col * (BOX_W + GAP), colY[col]);
      content.append(box);
      colY[col] += h + GAP;
    }
    const height = Math.max(colY[0], colY[1]) + PANEL_PAD - GAP;
    const rect = svg("rect", {class: "line-box", width, height, rx: 6});
    panel.append(rect, svg("text", {class: "line-title", x: 14, y: 26}, title), content);
    g.append(panel);
    panels.push([x, width, rect]);
    tallest = Math.max(tallest, height);
    x += width + PANEL_GAP;
  }
  for (const [px, w, rect] of panels) rect.setAttribute("height", tallest);
  for (let i = 0; i + 1 < panels.length; i++) {
    const from = panels[i][0] + panels[i][1], y = 10 + tallest / 2;
    g.append(svg("path", {class: "flow", d: `M ${from} ${y} L ${from + PANEL_GAP - 4} ${y}`, "marker-end": "url(#arrow)"}));
  }
  $("mimic").setAttribute("viewBox", `0 0 ${x - PANEL_GAP + 20} ${tallest + 20}`);
}

function buildTagTable(tags) {
  const body = $("tag-rows"); body.replaceChildren();
  for (const t of tags) {
    const tr = document.createElement("tr"); tr.dataset.row = t;
    const info = catalogue.get(t) || {};
    tr.innerHTML = `<td></td><td class="num" data-tag=""></td><td></td><td></td><td></td>`;
    tr.cells[0].textContent = t; tr.cells[1].dataset.tag = t; tr.cells[2].textContent = info.unit || "";
    body.append(tr);
  }
}

$("tag-filter").addEventListener("input", (e) => {
  const q = e.target.value.toLowerCase();
  document.querySelectorAll("#tag-rows tr").forEach((tr) => tr.hidden = !tr.dataset.row.toLowerCase().includes(q));
});

async function showLots() {
  const lots = await api("/lots");
  const body = $("lot-rows"); body.replaceChildren();
  for (const l of lots) {
    const tr = document.createElement("tr");
    const cells = [l.id, l.label, l.massKg.toFixed(1), (l.elementsKg.Ni || 0).toFixed(2),
      (l.elementsKg.Co || 0).toFixed(2), (l.elementsKg.Li || 0).toFixed(2), l.contentSource, l.createdAt.slice(0, 19)];
    cells.forEach((c, k) => { const td = document.createElement("td"); td.textContent = c; if (k >= 2 && k <= 5) td.className = "num"; tr.append(td); });
    body.append(tr);
  }
}

async function showRecovery() {
  const input = $("recovery-year");
  if (!input.value) input.value = new Date().getFullYear();
  const r = await api(`/reports/recovery?year=${input.value}`);
  const body = $("recovery-rows"); body.replaceChildren();
  for (const e of r.elements) {
    const tr = document.createElement("tr");
    const t = (y) => { const x = e.targets.find((t) => t.byEndOf === y); return x ? `${x.targetPct} % ${x.met ? "met" : "not met"}` : ""; };
    const cells = [e.element, e.inputKg.toFixed(2), e.outputKg.toFixed(2), e.rRmPct === null ? "--" : e.rRmPct.toFixed(1),
      e.sigmaPct === null ? "" : e.sigmaPct.toFixed(1), t(2027), t(2031)];
    cells.forEach((c, k) => { const td = document.createElement("td"); td.textContent = c; if (k >= 1 && k <= 4) td.className = "num"; if (k >= 5 && c.includes("not met")) td.className = "fail"; tr.append(td); });
    body.append(tr);
  }
}
$("recovery-year").addEventListener("change", showRecovery);

function route() {
  const view = (location.hash || "#overview").slice(1);
  document.querySelectorAll(".view").forEach((v) => v.hidden = v.id !== `${view}-view`);
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  if (view === "lots") showLots().catch(() => {});
  if (view === "recovery") showRecovery().catch(() => {});
}
window.addEventListener("hashchange", () => { if (!$("nav").hidden) route(); });

function resetIdle() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => logout(), IDLE_TIMEOUT_MS);
}
["click", "keydown", "touchstart"].forEach((e) => document.addEventListener(e, () => { if (!$("nav").hidden) resetIdle(); }));

async function logout() {
  try { await api("/session", {method: "DELETE"}); } catch (_) { /* already out */ }
  showLogin();
}
$("logout").addEventListener("click", logout);

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    const me = await api("/session", {method: "POST", body: JSON.stringify({user: $("login-user").value, password: $("login-password").value})});
    $("login-password").value = "";
    await enter(me);
  } catch (err) { $("login-error").textContent = err.message; }
});

start();
