// Trends: any tags over any period, drawn by hand on a canvas from the
// historian's server-side downsampling (about one bucket per pixel: each
// bucket's min-max band and mean), zoom and pan by re-querying the new
// range, and a live tail from the live-value stream while the range ends
// now. Empty buckets stay gaps; buckets with bad samples are marked.
"use strict";

import {$, api, catalogue, readings, onSnapshot, h, num, say} from "./core.js";

// Pens: dark, distinct and AA-contrast on the light grey background.
const PENS = ["#1f3f8f", "#8a3b00", "#11623a", "#6b2a7a", "#7a1f1f", "#2f2f2f"];
const PAD = {left: 64, right: 16, top: 14, bottom: 30};
let pens = [];            // [{tag, buckets, live: [[t, v]]}]
let range = null;         // {from, to} in ms
let live = true;
let span = 3600 * 1000;
let drag = null;
let loadSeq = 0;
export let lastRender = null; // {tags, ms, buckets, from, to, points, seq}: read by the browser tests

function canvas() { return $("trend-canvas"); }

function fit() {
  const c = canvas();
  const w = Math.max(320, Math.floor(c.parentElement.clientWidth || 1200));
  if (c.width !== w) c.width = w;
}

function plotWidth() { return canvas().width - PAD.left - PAD.right; }

async function load() {
  if (!pens.length) { draw(); return; }
  if (live) range = {from: Date.now() - span, to: Date.now()};
  const seq = ++loadSeq;
  const started = performance.now();
  const points = Math.max(10, Math.min(10000, Math.round(plotWidth())));
  const from = new Date(range.from).toISOString(), to = new Date(range.to).toISOString();
  say($("trend-status"), "loading\u2026");
  try {
    const answers = await Promise.all(pens.map((p) =>
      api(`/history/${p.tag.split("/").map(encodeURIComponent).join("/")}?from=${from}&to=${to}&points=${points}`)));
    if (seq !== loadSeq) return;
    answers.forEach((a, k) => { pens[k].buckets = a.buckets; pens[k].live = []; });
    draw();
    const ms = performance.now() - started;
    const buckets = answers.reduce((n, a) => n + a.buckets.length, 0);
    lastRender = {tags: pens.map((p) => p.tag), ms, buckets, from, to, points, seq};
    canvas().dataset.rendered = String(Date.now());
    say($("trend-status"), `${buckets} buckets in ${ms.toFixed(0)} ms`);
  } catch (e) {
    if (seq === loadSeq) say($("trend-status"), e.message, true);
  }
}

function yRange(p) {
  let lo = Infinity, hi = -Infinity;
  for (const b of p.buckets || []) { lo = Math.min(lo, b.min); hi = Math.max(hi, b.max); }
  for (const [, v] of p.live || []) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!Number.isFinite(lo)) return [0, 1];
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const m = (hi - lo) * 0.05;
  return [lo - m, hi + m];
}

function label(t, spanMs) {
  const d = new Date(t);
  const iso = d.toISOString();
  if (spanMs > 20 * 86400e3) return iso.slice(0, 10);
  if (spanMs > 86400e3) return iso.slice(5, 16).replace("T", " ");
  return iso.slice(11, spanMs < 600e3 ? 19 : 16);
}

function draw() {
  fit();
  const c = canvas(), g = c.getContext("2d");
  const W = c.width, H = c.height, pw = plotWidth(), ph = H - PAD.top - PAD.bottom;
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#ececec"; g.fillRect(PAD.left, PAD.top, pw, ph);
  g.strokeStyle = "#9a9a9a"; g.strokeRect(PAD.left, PAD.top, pw, ph);
  g.font = "12px system-ui, sans-serif"; g.fillStyle = "#3d3d3d";
  if (!range) range = {from: Date.now() - span, to: Date.now()};
  const {from, to} = range, dt = to - from;
  const x = (t) => PAD.left + ((t - from) / dt) * pw;
  // Time grid.
  g.textAlign = "center";
  for (let i = 0; i <= 6; i++) {
    const t = from + (dt * i) / 6, gx = x(t);
    g.strokeStyle = "#d0d0d0"; g.beginPath(); g.moveTo(gx, PAD.top); g.lineTo(gx, PAD.top + ph); g.stroke();
    g.fillText(label(t, dt), gx, H - 10);
  }
  $("trend-range").textContent = `${new Date(from).toISOString().slice(0, 19)} \u2013 ${new Date(to).toISOString().slice(0, 19)} UTC`;
  pens.forEach((p, k) => {
    const [lo, hi] = yRange(p);
    const y = (v) => PAD.top + ph - ((v - lo) / (hi - lo)) * ph;
    const colour = PENS[k % PENS.length];
    if (k === 0) {
      g.textAlign = "right"; g.fillStyle = colour;
      for (let i = 0; i <= 4; i++) { const v = lo + ((hi - lo) * i) / 4; g.fillText(num(v), PAD.left - 6, y(v) + 4); }
    }
    // Min-max band, then the mean as a line broken at gaps.
    g.fillStyle = colour + "33";
    for (const b of p.buckets || []) {
      const x0 = x(Date.parse(b.start)), x1 = Math.max(x0 + 1, x(Date.parse(b.end)));
      g.fillRect(x0, y(b.max), x1 - x0, Math.max(1, y(b.min) - y(b.max)));
    }
    g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
    let prevEnd = null;
    for (const b of p.buckets || []) {
      const s = Date.parse(b.start), e = Date.parse(b.end), xm = x((s + e) / 2);
      if (prevEnd !== null && s - prevEnd > (e - s) * 1.5) g.moveTo(xm, y(b.mean)); else if (prevEnd === null) g.moveTo(xm, y(b.mean)); else g.lineTo(xm, y(b.mean));
      prevEnd = e;
    }
    for (const [t, v] of p.live || []) { if (prevEnd === null) { g.moveTo(x(t), y(v)); prevEnd = t; } else g.lineTo(x(t), y(v)); }
    g.stroke();
    // Bad-quality buckets: a mark along the bottom edge.
    g.fillStyle = "#b000b0";
    for (const b of p.buckets || []) if (b.worst !== "good") g.fillRect(x(Date.parse(b.start)), PAD.top + ph - 4, 2, 4);
  });
  paintPens();
}

function paintPens() {
  $("trend-pens").replaceChildren(...pens.map((p, k) => {
    const last = readings.get(p.tag);
    const rm = h("button", {class: "small", "aria-label": `remove ${p.tag}`}, "\u00d7");
    rm.addEventListener("click", () => { pens.splice(k, 1); saveTags(); draw(); });
    const [lo, hi] = yRange(p);
    // Colours through the CSSOM: the page's content security policy
    // refuses style attributes.
    const swatch = h("span", {class: "swatch"});
    swatch.style.background = PENS[k % PENS.length];
    const pen = h("span", {class: "pen"}, swatch, ` ${p.tag} `,
      h("span", {class: "note"}, `${(catalogue.get(p.tag) || {}).unit || ""} (axis ${num(lo)}\u2013${num(hi)})` + (last ? ` now ${num(last.value)}` : "")), rm);
    pen.style.borderColor = PENS[k % PENS.length];
    return pen;
  }));
}

function saveTags() { localStorage.setItem("remine.trendTags", JSON.stringify(pens.map((p) => p.tag))); }

export function addTag(tag) {
  if (!catalogue.has(tag)) { say($("trend-status"), `no tag ${tag}`, true); return; }
  if (!pens.some((p) => p.tag === tag)) pens.push({tag, buckets: [], live: []});
  saveTags();
  load();
}

function setSpan(ms, keepEnd = true) {
  span = Math.max(10e3, Math.min(5 * 365 * 86400e3, ms));
  if (!live && range) {
    const mid = keepEnd ? range.to : (range.from + range.to) / 2;
    range = keepEnd ? {from: mid - span, to: mid} : {from: mid - span / 2, to: mid + span / 2};
  }
  load();
}

function zoom(factor) {
  if (!range) return;
  const mid = (range.from + range.to) / 2;
  span = Math.max(10e3, (range.to - range.from) * factor);
  if (live && factor < 1) { load(); return; }
  setLive(false);
  range = {from: mid - span / 2, to: Math.min(Date.now(), mid + span / 2)};
  load();
}

function pan(fraction) {
  if (!range) return;
  const d = (range.to - range.from) * fraction;
  setLive(false);
  range = {from: range.from + d, to: range.to + d};
  if (range.to >= Date.now()) { setLive(true); }
  load();
}

function setLive(on) {
  live = on;
  $("trend-live").setAttribute("aria-pressed", String(on));
}

export function init() {
  // For the browser tests: what the last query drew and how long it took.
  window.__trend = () => ({lastRender});
  const tags = [...catalogue.keys()];
  $("tag-list").replaceChildren(...tags.map((t) => h("option", {value: t})));
  $("trend-add").addEventListener("click", () => addTag($("trend-tag").value.trim()));
  $("trend-tag").addEventListener("keydown", (e) => { if (e.key === "Enter") addTag($("trend-tag").value.trim()); });
  for (const b of document.querySelectorAll("#trend-periods button")) b.addEventListener("click", () => { setLive(true); setSpan(Number(b.dataset.s) * 1000); });
  $("trend-zoom-in").addEventListener("click", () => zoom(0.5));
  $("trend-zoom-out").addEventListener("click", () => zoom(2));
  $("trend-left").addEventListener("click", () => pan(-0.25));
  $("trend-right").addEventListener("click", () => pan(0.25));
  $("trend-live").addEventListener("click", () => { setLive(!live); load(); });
  const c = canvas();
  c.addEventListener("keydown", (e) => {
    const k = {ArrowLeft: () => pan(-0.1), ArrowRight: () => pan(0.1), "+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2)}[e.key];
    if (k) { e.preventDefault(); k(); }
  });
  c.addEventListener("wheel", (e) => { e.preventDefault(); zoom(e.deltaY < 0 ? 0.8 : 1.25); }, {passive: false});
  c.addEventListener("pointerdown", (e) => { drag = {x: e.clientX, range: {...range}}; c.setPointerCapture(e.pointerId); });
  c.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dt = ((e.clientX - drag.x) / plotWidth()) * (drag.range.to - drag.range.from);
    range = {from: drag.range.from - dt, to: drag.range.to - dt};
    setLive(false); draw();
  });
  c.addEventListener("pointerup", () => { if (drag) { drag = null; load(); } });
  window.addEventListener("resize", () => { if (!$("trends-view").hidden) load(); });
  // The live tail: appended between re-queries while the range ends now.
  onSnapshot((snap) => {
    if (!live || $("trends-view").hidden || !pens.length) return;
    const t = snap.at ? Date.parse(snap.at) : Date.now();
    for (const p of pens) {
      const r = snap.readings.find((x) => x.tag === p.tag);
      if (r && r.quality === "good" && typeof r.value === "number") p.live.push([t, r.value]);
    }
    range = {from: Date.now() - span, to: Date.now()};
    draw();
  });
  const saved = JSON.parse(localStorage.getItem("remine.trendTags") || "[]").filter((t) => catalogue.has(t));
  pens = (saved.length ? saved : tags.filter((t) => /Leach\/Temperature$|Shredder\/O2$/.test(t))).map((tag) => ({tag, buckets: [], live: []}));
}

export function show(args) {
  // A link names its tags: the trend shows those.
  if (args[0]) { pens = args[0].split(",").filter((t) => catalogue.has(t)).map((tag) => ({tag, buckets: [], live: []})); saveTags(); }
  if (args[1]) { setLive(false); const [f, t] = args[1].split("..").map(Number); if (f && t) { range = {from: f, to: t}; span = t - f; } }
  load();
}
