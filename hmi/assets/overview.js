// The plant overview: the three lines as an SVG mimic, left to right in
// the flow of material, each unit with its state and key signals live; the
// active alarms counted by priority per line; the lots in process.
"use strict";

import {$, api, catalogue, readings, paint, svg, h, row, num, time} from "./core.js";
import {alarmState, onAlarms} from "./alarms.js";

// Signals shown on the mimic per unit, in order; every signal is on the Lines screen.
const KEY_SIGNALS = ["PackVoltage", "Current", "SoC", "Energy", "MaxCellTemp", "O2", "LEL", "ChamberTemp",
  "FeedRate", "BeltRate", "Processed", "Temperature", "Extraction", "pH", "FreeAcid", "Level",
  "ProductMass", "Purity"];
export const LINES = [["Discharge", "Discharge"], ["Mechanical", "Mechanical (shredding under N2)"], ["Hydromet", "Hydrometallurgy"]];
const PRIORITIES = ["critical", "high", "medium", "low"];
const BOX_W = 196, ROW_H = 18, GAP = 10, PANEL_PAD = 12, PANEL_GAP = 48;

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

function unitBox(line, unit, signals, x, y) {
  const shown = KEY_SIGNALS.filter((s) => signals.includes(s)).slice(0, 5);
  const hgt = 26 + ROW_H * shown.length;
  const box = svg("g", {transform: `translate(${x},${y})`, class: "unit", "data-unit": `${line}/${unit}`});
  const link = svg("a", {href: `#units/${line}`, "aria-label": `${line} ${unit}: open the line detail`});
  link.append(svg("rect", {class: "unit-box", width: BOX_W, height: hgt, rx: 4}));
  link.append(svg("text", {class: "unit-name", x: 8, y: 17}, unit));
  box.append(link);
  if (signals.includes("State")) box.append(svg("text", {class: "value state", x: BOX_W - 8, y: 17, "text-anchor": "end", "data-tag": `${line}/${unit}/State`}, "--"));
  shown.forEach((s, k) => {
    const ty = 36 + k * ROW_H, tag = `${line}/${unit}/${s}`;
    box.append(svg("text", {class: "label", x: 8, y: ty}, s));
    box.append(svg("text", {class: "value", x: BOX_W - 54, y: ty, "text-anchor": "end", "data-tag": tag}, "--"));
    box.append(svg("text", {class: "label", x: BOX_W - 48, y: ty}, (catalogue.get(tag) || {}).unit || ""));
  });
  return [box, hgt];
}

function buildMimic(tags) {
  const g = $("lines"); g.replaceChildren();
  let x = 10, tallest = 0;
  const panels = [];
  for (const [line, title] of LINES) {
    const units = [...unitsOf(tags, line)].filter(([, s]) => s.includes("State") || KEY_SIGNALS.some((k) => s.includes(k)));
    const panel = svg("g", {transform: `translate(${x},10)`});
    const width = PANEL_PAD * 2 + BOX_W * 2 + GAP;
    const colY = [58, 58];
    const content = svg("g", {});
    for (const [unit, signals] of units) {
      const col = colY[0] <= colY[1] ? 0 : 1;
      const [box, hgt] = unitBox(line, unit, signals, PANEL_PAD + col * (BOX_W + GAP), colY[col]);
      content.append(box);
      colY[col] += hgt + GAP;
    }
    const height = Math.max(colY[0], colY[1]) + PANEL_PAD - GAP;
    const rect = svg("rect", {class: "line-box", width, height, rx: 6});
    const counts = svg("text", {class: "line-alarms", x: width - 14, y: 26, "text-anchor": "end", "data-line-alarms": line}, "no alarms");
    panel.append(rect, svg("text", {class: "line-title", x: 14, y: 26}, title), counts,
      svg("text", {class: "label", x: 14, y: 46, "data-line-lot": line}, ""), content);
    g.append(panel);
    panels.push([x, width, rect]);
    tallest = Math.max(tallest, height);
    x += width + PANEL_GAP;
  }
  for (const [, , rect] of panels) rect.setAttribute("height", tallest);
  for (let i = 0; i + 1 < panels.length; i++) {
    const from = panels[i][0] + panels[i][1], y = 10 + tallest / 2;
    g.append(svg("path", {class: "flow", d: `M ${from} ${y} L ${from + PANEL_GAP - 4} ${y}`, "marker-end": "url(#arrow)"}));
  }
  $("mimic").setAttribute("viewBox", `0 0 ${x - PANEL_GAP + 20} ${tallest + 20}`);
  const now = Date.now();
  for (const el of $("mimic").querySelectorAll("[data-tag]")) {
    const r = readings.get(el.dataset.tag);
    if (r) paint(el, el.dataset.tag, r, now);
  }
}

function paintAlarmCounts() {
  const {active} = alarmState();
  const total = Object.fromEntries(PRIORITIES.map((p) => [p, 0]));
  const byLine = {};
  for (const a of active) {
    if (a.status === "normal") continue;
    total[a.priority] = (total[a.priority] || 0) + 1;
    const line = (a.unit || a.tag || a.area || "").split("/")[0] || a.area;
    byLine[line] = byLine[line] || {};
    byLine[line][a.priority] = (byLine[line][a.priority] || 0) + 1;
  }
  $("alarm-counts").replaceChildren(...PRIORITIES.map((p) =>
    h("a", {href: "#alarms", class: `count p-${p}` + (total[p] ? " on" : ""), "data-priority": p}, `${p} ${total[p]}`)));
  for (const el of document.querySelectorAll("[data-line-alarms]")) {
    const c = byLine[el.dataset.lineAlarms] || {};
    const parts = PRIORITIES.filter((p) => c[p]).map((p) => `${c[p]} ${p}`);
    el.textContent = parts.length ? `alarms: ${parts.join(", ")}` : "no alarms";
    el.classList.toggle("alarming", parts.length > 0);
    el.classList.toggle("critical", !!c.critical);
  }
}

/// The lots in process: intermediate lots (neither an input unit nor a
/// product) that nothing has been made from yet, newest first.
async function paintLots() {
  const lots = await api("/lots");
  const candidates = lots.filter((l) => l.kind !== "input-unit" && !/^product/.test(l.kind)).slice(-12);
  const details = await Promise.all(candidates.map((l) => api(`/lots/${encodeURIComponent(l.id)}`).catch(() => null)));
  const open = details.filter((d) => d && d.outputs.length === 0).map((d) => d.lot).reverse();
  $("running-lots").replaceChildren(...(open.length ? open.map((l) =>
    row([h("a", {href: `#lots/${encodeURIComponent(l.id)}`}, l.id), l.label, num(l.massKg, 1), time(l.createdAt)], [2]))
    : [h("tr", {}, h("td", {colspan: 4, class: "note"}, "no lot in process"))]));
  for (const el of document.querySelectorAll("[data-line-lot]")) {
    const line = el.dataset.lineLot;
    const mine = open.find((l) => (line === "Mechanical" && /black/.test(l.label)) || (line === "Hydromet" && /leach/i.test(l.label + l.kind)));
    el.textContent = mine ? `lot ${mine.id}` : "";
  }
}

let lotTimer = null;

export function init(t) {
  buildMimic(t.tags.map((i) => i.tag));
  onAlarms(paintAlarmCounts);
}

export function show() {
  paintAlarmCounts();
  paintLots().catch(() => {});
  clearInterval(lotTimer);
  lotTimer = setInterval(() => paintLots().catch(() => {}), 10000);
}

export function hide() { clearInterval(lotTimer); }
