// Alarms: the active and unacknowledged alarms in one table (most urgent
// first, ISA-101 colours only for what is abnormal), acknowledge one or the
// page, shelve with a reason and duration, filter and search, CSV export of
// the history, and a sound while anything is unacknowledged: a WebAudio
// beep, muted per console (remembered in localStorage).
"use strict";

import {$, api, h, num, time, may, dialog, say, onAlarmEvent} from "./core.js";

const MUTE_KEY = "remine.alarmSoundMuted";
const RANK = {critical: 0, high: 1, medium: 2, low: 3};
let state = {active: [], shelved: [], outOfService: [], floods: []};
let unsubscribe = null;
let refreshTimer = null;
let beepTimer = null;
let audio = null;
const listeners = new Set();

export function alarmState() { return state; }
export function onAlarms(f) { listeners.add(f); }

function unacknowledged(a) { return /unack/.test(a.status); }

async function refresh() {
  try {
    state = await api("/alarms");
  } catch (e) {
    state = {active: [], shelved: [], outOfService: [], floods: [], error: e.message};
  }
  const unack = state.active.filter(unacknowledged).length;
  const badge = $("alarm-badge");
  badge.hidden = state.active.length === 0;
  badge.textContent = unack ? `${state.active.length} (${unack} new)` : String(state.active.length);
  badge.classList.toggle("unack", unack > 0);
  soundWhile(unack > 0);
  for (const f of listeners) f(state);
  if (!$("alarms-view").hidden) paint();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, 150);
}

/// Starts following the alarms (the events come over core's one stream).
export function start() {
  stop();
  refresh();
  unsubscribe = onAlarmEvent((type, data) => {
    scheduleRefresh();
    if (type === "alarm") appendHistory(JSON.parse(data));
  });
  paintMute();
}

export function stop() {
  if (unsubscribe) { unsubscribe(); unsubscribe = null; }
  soundWhile(false);
}

// ---------------------------------------------------------------- sound

function muted() { return localStorage.getItem(MUTE_KEY) === "1"; }

function paintMute() {
  const b = $("mute");
  b.textContent = muted() ? "Sound muted" : "Sound on";
  b.setAttribute("aria-pressed", String(muted()));
}

function beep() {
  if (muted()) return;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
    osc.connect(gain).connect(audio.destination);
    osc.start(); osc.stop(audio.currentTime + 0.4);
  } catch (_) { /* no audio on this console */ }
}

function soundWhile(on) {
  document.body.classList.toggle("sounding", on && !muted());
  if (on && !beepTimer) { beep(); beepTimer = setInterval(beep, 2000); }
  if (!on && beepTimer) { clearInterval(beepTimer); beepTimer = null; }
}

$("mute").addEventListener("click", () => {
  localStorage.setItem(MUTE_KEY, muted() ? "0" : "1");
  paintMute();
  soundWhile(state.active.some(unacknowledged));
});

// ---------------------------------------------------------------- table

function shown() {
  const q = $("alarm-search").value.trim().toLowerCase();
  const prio = $("alarm-priority").value;
  const unackOnly = $("alarm-unack-only").checked;
  const all = [...state.active, ...state.shelved.map((a) => ({...a, shelvedRow: true})), ...state.outOfService.map((a) => ({...a, oosRow: true}))];
  return all
    .filter((a) => !prio || a.priority === prio)
    .filter((a) => !unackOnly || unacknowledged(a))
    .filter((a) => !q || [a.id, a.description, a.area, a.tag, a.status].join(" ").toLowerCase().includes(q))
    .sort((a, b) => (RANK[a.priority] - RANK[b.priority]) || String(b.since).localeCompare(String(a.since)));
}

function paint() {
  const rows = shown();
  const canAck = may("operate");
  $("ack-selected").disabled = !canAck;
  $("ack-page").disabled = !canAck;
  $("alarm-rows").replaceChildren(...(rows.length ? rows.map((a) => {
    const cls = ["alarm", `p-${a.priority}`, unacknowledged(a) ? "unack" : "ack", a.conditionActive ? "active" : "cleared",
      a.shelvedRow ? "shelved" : "", a.oosRow ? "oos" : ""].join(" ");
    const ack = h("button", {class: "small", disabled: !canAck || !unacknowledged(a), "data-ack": a.id}, "Ack");
    ack.addEventListener("click", () => acknowledge([a.id]));
    const shelve = a.shelvedRow
      ? h("button", {class: "small", disabled: !canAck, "data-unshelve": a.id}, "Unshelve")
      : h("button", {class: "small", disabled: !canAck || a.oosRow, "data-shelve": a.id}, "Shelve");
    shelve.addEventListener("click", () => (a.shelvedRow ? unshelve(a) : shelveDialog(a)));
    return h("tr", {class: cls, "data-alarm": a.id},
      h("td", {}, h("input", {type: "checkbox", "aria-label": `select ${a.id}`, "data-select": a.id})),
      h("td", {}, h("span", {class: `prio p-${a.priority}`}, a.priority)),
      h("td", {}, time(a.since)),
      h("td", {}, a.id),
      h("td", {}, a.description),
      h("td", {class: "num"}, num(a.value)),
      h("td", {}, a.area),
      h("td", {class: "status"}, a.status.replaceAll("_", " ") + (a.shelvedUntil ? ` until ${time(a.shelvedUntil)}` : "")),
      h("td", {class: "row"}, ack, shelve));
  }) : [h("tr", {}, h("td", {colspan: 9, class: "note"}, state.error ? `alarms: ${state.error}` : "no alarms: the plant is normal"))]));
  $("alarm-all").checked = false;
}

async function askReason(title, text) {
  const v = await dialog({title, text, fields: [{label: "Reason", name: "reason", required: true, value: "seen at the console"}], ok: "Acknowledge"});
  return v && v.reason;
}

async function acknowledge(ids) {
  if (!ids.length) { say($("alarm-msg"), "nothing selected"); return; }
  const reason = await askReason(`Acknowledge ${ids.length} alarm${ids.length > 1 ? "s" : ""}`, ids.join(", "));
  if (!reason) return;
  try {
    const out = await api("/alarms/ack", {method: "POST", body: {ids, reason}});
    const skipped = out.skipped.map((s) => `${s.alarm}: ${s.why}`).join("; ");
    say($("alarm-msg"), `acknowledged ${out.acknowledged.length}` + (skipped ? `; skipped ${skipped}` : ""));
  } catch (e) { say($("alarm-msg"), e.message, true); }
  refresh();
}

async function shelveDialog(a) {
  await dialog({
    title: `Shelve ${a.id}`, text: a.description, ok: "Shelve",
    fields: [{label: "Minutes", name: "minutes", type: "number", min: 1, max: 1440, step: 1, value: 30, required: true},
      {label: "Reason", name: "reason", required: true}],
    submit: async (v) => {
      await api(`/alarms/${encodeURIComponent(a.id)}/shelve`, {method: "POST", body: {minutes: Number(v.minutes), reason: v.reason}});
      say($("alarm-msg"), `${a.id} shelved for ${v.minutes} min`);
    },
  });
  refresh();
}

async function unshelve(a) {
  const v = await dialog({title: `Unshelve ${a.id}`, fields: [{label: "Reason", name: "reason", required: true}], ok: "Unshelve"});
  if (!v) return;
  try { await api(`/alarms/${encodeURIComponent(a.id)}/unshelve`, {method: "POST", body: {reason: v.reason}}); } catch (e) { say($("alarm-msg"), e.message, true); }
  refresh();
}

function appendHistory(e) {
  const body = $("alarm-history");
  body.prepend(historyRow(e));
  while (body.rows.length > 50) body.deleteRow(-1);
}

function historyRow(e) {
  const event = e.event === "transition" ? `${e.from.status} \u2192 ${e.to.status}` : `${e.event} (${e.count})`;
  return h("tr", {}, h("td", {}, time(e.at)), h("td", {}, e.alarm), h("td", {}, e.priority || ""), h("td", {}, event.replaceAll("_", " ")), h("td", {}, e.user || ""), h("td", {}, e.reason || ""));
}

async function loadHistory() {
  try {
    const entries = await api("/alarms/history?limit=50");
    $("alarm-history").replaceChildren(...entries.reverse().map(historyRow));
  } catch (e) { $("alarm-history").replaceChildren(h("tr", {}, h("td", {colspan: 6, class: "note"}, e.message))); }
}

export function init() {
  for (const id of ["alarm-search", "alarm-priority", "alarm-unack-only"]) $(id).addEventListener("input", paint);
  $("alarm-all").addEventListener("change", (e) => document.querySelectorAll("[data-select]").forEach((c) => c.checked = e.target.checked));
  $("ack-selected").addEventListener("click", () => acknowledge([...document.querySelectorAll("[data-select]:checked")].map((c) => c.dataset.select)));
  $("ack-page").addEventListener("click", () => acknowledge(shown().filter(unacknowledged).map((a) => a.id)));
}

export function show() { paint(); loadHistory(); refresh(); }
