// What every screen of the HMI shares: the API client (session cookie plus
// the CSRF header on state-changing requests), the session and its role,
// the live values from the server-sent events of /api/v1/stream with their
// quality and staleness, a modal dialog, and formatting.
"use strict";

export const $ = (id) => document.getElementById(id);

export const STATES = {1: "Idle", 2: "Running", 3: "Complete", 4: "Holding", 5: "Held", 6: "Restarting",
  7: "Stopping", 8: "Stopped", 9: "Aborting", 10: "Aborted", 11: "Resetting"};
/// States that are not a calm, normal operation: shown in colour.
export const ABNORMAL_STATES = new Set(["Holding", "Held", "Stopping", "Stopped", "Aborting", "Aborted"]);
/// A value older than this (server time) is not live any more.
export const STALE_AFTER_MS = 5000;

const ROLE_RANK = {viewer: 0, operator: 1, engineer: 2, supervisor: 3, admin: 4};
const LEAST = {view: "viewer", operate: "operator", recordLot: "operator", engineer: "engineer", approve: "supervisor"};

export const session = {user: null, role: null, csrf: null};

/// Whether the session's role may do `action` (the server checks anyway;
/// the page only mirrors it to grey out what would be refused).
export function may(action) {
  return session.role !== null && ROLE_RANK[session.role] >= ROLE_RANK[LEAST[action]];
}

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(f) { onUnauthenticated = f; }

/// A call to /api/v1. Bodies are JSON; state-changing calls carry the
/// session's CSRF token, and are retried once with a fresh one when the
/// server was restarted (its CSRF keys are per process).
export async function api(path, options = {}, retried = false) {
  const method = (options.method || "GET").toUpperCase();
  const headers = {...(options.headers || {})};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-Remine-CSRF"] = session.csrf;
  const res = await fetch("/api/v1" + path, {credentials: "same-origin", ...options, method, headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body)});
  const type = res.headers.get("content-type") || "";
  const body = res.status === 204 ? null : type.includes("json") ? await res.json().catch(() => null) : await res.text();
  const isLogin = path === "/session" && method === "POST";
  if (res.status === 401 && !isLogin) { onUnauthenticated(); throw new ApiError(401, "unauthenticated", "not logged in"); }
  const message = body && body.error ? body.error.message : res.statusText;
  if (res.status === 403 && !retried && /X-Remine-CSRF/i.test(message || "")) {
    const me = await api("/session");
    session.csrf = me.csrfToken;
    return api(path, options, true);
  }
  if (!res.ok) throw new ApiError(res.status, body && body.error ? body.error.code : "", message);
  return body;
}

// ---------------------------------------------------------------- live values

/// tag -> {unit, writable, min, max}
export const catalogue = new Map();
/// tag -> the latest reading {value, quality, reason, serverTime}
export const readings = new Map();
const listeners = new Set();
let lastSnapshotAt = 0;
let events = null;
let shared = null;

const alarmListeners = new Set();

export function onSnapshot(f) { listeners.add(f); return () => listeners.delete(f); }
/// `f(type, data)` for the alarm events of the one stream ("alarm" with the
/// history entry, "lagged" when the server dropped some for this client).
export function onAlarmEvent(f) { alarmListeners.add(f); return () => alarmListeners.delete(f); }

/// The live values and the alarms come over one server-sent-events stream
/// (/api/v1/stream?alarms=true), held for every tab of this browser by a
/// shared worker: a browser opens at most six connections to one server,
/// so a stream per tab would stall the seventh tab. Without shared workers
/// the tab opens its own stream. `fresh`: just logged in, so the worker's
/// stream (opened with an older session, perhaps) starts again.
export function connectStream(fresh = false) {
  closeStream();
  if (typeof SharedWorker === "function") {
    try {
      shared = new SharedWorker("/assets/stream-worker.js", {name: "remine-stream"});
      shared.port.onmessage = (e) => dispatch(e.data.type, e.data.data);
      shared.port.start();
      shared.port.postMessage(fresh ? "restart" : "connect");
      return;
    } catch (_) { shared = null; }
  }
  events = new EventSource("/api/v1/stream?alarms=true");
  for (const type of ["snapshot", "alarm", "lagged"]) events.addEventListener(type, (e) => dispatch(type, e.data));
  events.onopen = () => dispatch("open", "");
  events.onerror = () => dispatch("error", "");
}

function dispatch(type, data) {
  if (type === "snapshot") applySnapshot(JSON.parse(data));
  else if (type === "error") setLink(false);
  // After a reconnect, alarm events of the gap are gone: re-read them.
  else if (type === "open") { for (const f of alarmListeners) f("lagged", ""); }
  else for (const f of alarmListeners) f(type, data);
}

export function closeStream() {
  if (events) { events.close(); events = null; }
  if (shared) { shared.port.postMessage("close"); shared.port.close(); shared = null; }
}

function setLink(live) {
  const link = $("link");
  link.textContent = live ? "\u25CF live" : "\u25CF offline";
  link.classList.toggle("live", live);
}

export function format(tag, value) {
  if (value === null || value === undefined) return "--";
  if (tag && tag.endsWith("/State")) return STATES[value] || `state ${value}`;
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value !== "number") return String(value);
  return num(value);
}

export function num(value, digits) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "--";
  if (digits !== undefined) return value.toFixed(digits);
  const a = Math.abs(value);
  return a >= 1000 ? value.toFixed(0) : a >= 100 ? value.toFixed(1) : a >= 1 ? value.toFixed(2) : value.toFixed(3);
}

/// Whether a reading is live: good quality, and its server time recent.
export function isLive(r, now = Date.now()) {
  return r && r.quality === "good" && r.value !== null && now - Date.parse(r.serverTime) < STALE_AFTER_MS;
}

/// Paints one element bound to a tag with the reading's value and quality:
/// a bad value keeps its number with a "?" in the bad style, a stale one
/// is struck through; neither looks live.
export function paint(el, tag, r, now = Date.now()) {
  if (!r) { if (el.textContent !== "--") el.textContent = "--"; return; }
  const bad = r.quality !== "good";
  const stale = !bad && r.value !== null && now - Date.parse(r.serverTime) >= STALE_AFTER_MS;
  const text = format(tag, r.value) + (bad && r.value !== null ? "?" : "");
  // Only what changed is written: twenty consoles repaint little.
  if (el.textContent !== text) el.textContent = text;
  el.classList.toggle("q-bad", bad);
  el.classList.toggle("q-stale", stale);
  if (tag.endsWith("/State")) {
    const name = STATES[r.value] || "";
    el.classList.toggle("abnormal", ABNORMAL_STATES.has(name));
    el.classList.toggle("running", name === "Running");
  }
  const quality = bad ? "bad" : stale ? "stale" : "good";
  if (el.dataset.quality !== quality) {
    el.dataset.quality = quality;
    el.setAttribute("aria-label", `${tag.split("/").pop()} ${text}${bad ? ", bad quality, not live" : stale ? ", stale" : ""}`);
  }
  const title = bad ? `${tag}: ${r.quality} (${r.reason || "no reason given"}), last value, not live`
    : stale ? `${tag}: stale, last update ${r.serverTime}` : tag;
  if (el.getAttribute("title") !== title) el.setAttribute("title", title);
}

export function applySnapshot(snap) {
  if (!snap || !snap.readings) return;
  lastSnapshotAt = Date.now();
  setLink(true);
  const now = Date.now();
  const bound = new Map();
  for (const el of document.querySelectorAll("[data-tag]")) {
    const list = bound.get(el.dataset.tag);
    if (list) list.push(el); else bound.set(el.dataset.tag, [el]);
  }
  for (const r of snap.readings) {
    readings.set(r.tag, r);
    for (const el of bound.get(r.tag) || []) paint(el, r.tag, r, now);
  }
  for (const f of listeners) f(snap);
}

// A page that stops hearing from the server shows every value as stale.
setInterval(() => {
  if (lastSnapshotAt && Date.now() - lastSnapshotAt > STALE_AFTER_MS) {
    document.querySelectorAll("[data-tag]").forEach((el) => { el.classList.add("q-stale"); el.dataset.quality = "stale"; });
    setLink(false);
  }
}, 1000);

// ---------------------------------------------------------------- DOM helpers

/// An element: h("td", {class: "num"}, "12.3", child...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function svg(tag, attrs = {}, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

export function row(cells, numeric = []) {
  return h("tr", {}, cells.map((c, k) => h("td", numeric.includes(k) ? {class: "num"} : {}, c)));
}

export function time(s) { return s ? s.replace("T", " ").slice(0, 19) : ""; }

/// A modal dialog with `fields` (label, name, type, required, value,
/// options); resolves to the entered values, or null when cancelled. The
/// `submit` callback may throw to keep the dialog open with the message.
export function dialog({title, text, fields = [], ok = "OK", danger = false, submit}) {
  const d = $("dialog"), body = $("dialog-body");
  $("dialog-title").textContent = title;
  $("dialog-error").textContent = "";
  body.replaceChildren();
  if (text) body.append(h("p", {}, text));
  const inputs = {};
  for (const f of fields) {
    let input;
    if (f.options) input = h("select", {name: f.name}, f.options.map((o) => h("option", {value: o}, o)));
    else if (f.type === "textarea") input = h("textarea", {name: f.name, rows: 3});
    else input = h("input", {name: f.name, type: f.type || "text", required: f.required, min: f.min, max: f.max, step: f.step,
      autocomplete: f.type === "password" ? "current-password" : "off"});
    if (f.value !== undefined) input.value = f.value;
    if (f.required) input.required = true;
    inputs[f.name] = input;
    body.append(h("label", {}, f.label, input));
  }
  const okButton = $("dialog-ok");
  okButton.textContent = ok;
  okButton.classList.toggle("danger", danger);
  return new Promise((resolve) => {
    const form = $("dialog-form");
    const done = (value) => { form.onsubmit = null; d.onclose = null; d.close(); resolve(value); };
    form.onsubmit = async (e) => {
      e.preventDefault();
      if (e.submitter && e.submitter.value === "cancel") { done(null); return; }
      const values = Object.fromEntries(Object.entries(inputs).map(([k, i]) => [k, i.value]));
      for (const f of fields) if (f.required && !values[f.name].trim()) { $("dialog-error").textContent = `${f.label} is required`; return; }
      if (submit) {
        okButton.disabled = true;
        try { await submit(values); } catch (err) { $("dialog-error").textContent = err.message; okButton.disabled = false; return; }
        okButton.disabled = false;
      }
      done(values);
    };
    d.onclose = () => { form.onsubmit = null; resolve(null); };
    d.showModal();
    const first = Object.values(inputs)[0];
    (first || okButton).focus();
  });
}

/// Shows a message in a status element for a while.
export function say(el, text, bad = false) {
  el.textContent = text;
  el.classList.toggle("error", bad);
}
