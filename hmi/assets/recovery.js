// Recovery: the year's Ni, Co, Li and Cu recovery against the targets of
// Regulation (EU) 2023/1542 for the end of 2027 and of 2031, with the
// reconciled rate's uncertainty (GET /balance, which reconciles), by month;
// by chemistry and month of receipt, traced to the products so far (GET
// /reports/recovery/cohorts);
// the yearly report as the report service gives it (read defensively: any
// shape is shown as far as it is understood); and the delivery status of
// reports to the platform, when the server has that route.
"use strict";

import {$, api, h, svg, row, num} from "./core.js";

const ELEMENTS = ["Ni", "Co", "Li", "Cu"];
// Annex XII, Part C of Regulation (EU) 2023/1542: material recovery targets in percent.
const TARGETS = {2027: {Ni: 90, Co: 90, Li: 50, Cu: 90}, 2031: {Ni: 95, Co: 95, Li: 80, Cu: 95}};

// /balance gives ratios (product content over input content).
function pct(rec) { return rec === null || rec === undefined ? null : rec * 100; }

function chart(rates) {
  const c = $("recovery-chart"); c.replaceChildren();
  const x = (p) => 120 + (p / 100) * 820;
  for (let p = 0; p <= 100; p += 10) {
    c.append(svg("line", {class: "grid-line", x1: x(p), x2: x(p), y1: 16, y2: 234}), svg("text", {class: "label", x: x(p), y: 252, "text-anchor": "middle"}, `${p}%`));
  }
  c.append(svg("line", {class: "target t2027", x1: 760, x2: 780, y1: 6, y2: 6}), svg("text", {class: "label", x: 784, y: 10}, "2027 target"),
    svg("line", {class: "target t2031", x1: 860, x2: 880, y1: 6, y2: 6}), svg("text", {class: "label", x: 884, y: 10}, "2031 target"));
  ELEMENTS.forEach((el, i) => {
    const y = 24 + i * 52, r = rates[el] || {};
    c.append(svg("text", {class: "unit-name", x: 10, y: y + 20}, el));
    c.append(svg("rect", {class: "track", x: x(0), y, width: x(100) - x(0), height: 28}));
    for (const year of [2027, 2031]) {
      const t = TARGETS[year][el];
      const line = svg("line", {class: `target t${year}`, x1: x(t), x2: x(t), y1: y - 4, y2: y + 32});
      line.append(svg("title", {}, `${el} target for ${year}: ${t} %`));
      c.append(line);
    }
    if (r.rate !== null && r.rate !== undefined) {
      const below = r.rate < TARGETS[2027][el];
      c.append(svg("rect", {class: below ? "bar below" : "bar", x: x(0), y: y + 6, width: Math.max(1, x(Math.min(100, r.rate)) - x(0)), height: 16, "data-element": el}));
      if (r.sigma) {
        const lo = Math.max(0, r.rate - 2 * r.sigma), hi = Math.min(100, r.rate + 2 * r.sigma);
        c.append(svg("line", {class: "whisker", x1: x(lo), x2: x(hi), y1: y + 14, y2: y + 14}), svg("line", {class: "whisker", x1: x(lo), x2: x(lo), y1: y + 8, y2: y + 20}), svg("line", {class: "whisker", x1: x(hi), x2: x(hi), y1: y + 8, y2: y + 20}));
      }
      c.append(svg("text", {class: "value", x: x(Math.min(100, r.rate)) + 6, y: y + 40}, `${num(r.rate, 1)} %` + (r.sigma ? ` \u00b1 ${num(2 * r.sigma, 1)} (2\u03c3)` : "")));
    } else c.append(svg("text", {class: "label", x: x(0) + 6, y: y + 19}, "no input of this element yet"));
  });
}

function rateOf(b, el) {
  const r = (b.recovery || []).find((x) => x.element === el) || {};
  const reconciled = r.reconciled !== null && r.reconciled !== undefined;
  return {rate: pct(reconciled ? r.reconciled : r.recorded), reconciled, sigma: pct(r.sigma), input: r.inputKg, output: r.outputKg, recorded: pct(r.recorded)};
}

async function showYear(year) {
  $("recovery-status").textContent = "reconciling\u2026";
  const [b, rep] = await Promise.all([api(`/balance?year=${year}`), api(`/reports/recovery?year=${year}`).catch(() => null)]);
  const rates = Object.fromEntries(ELEMENTS.map((el) => [el, rateOf(b, el)]));
  // Where the balance leaves the masses open, the yearly report's recorded ones.
  for (const e of (rep && Array.isArray(rep.elements) ? rep.elements : [])) {
    const r = rates[e.element];
    if (!r) continue;
    if (r.input === null || r.input === undefined) r.input = e.inputKg;
    if (r.output === null || r.output === undefined) r.output = e.outputKg;
  }
  chart(rates);
  $("recovery-rows").replaceChildren(...ELEMENTS.map((el) => {
    const r = rates[el];
    const met = (y) => r.rate === null ? "--" : `${TARGETS[y][el]} % ${r.rate >= TARGETS[y][el] ? "met" : "not met"}`;
    // Where the balance cannot reconcile an element (a flow it cannot
    // determine), the recorded rate is shown and said to be recorded.
    const basis = r.rate === null ? "--" : r.reconciled ? "reconciled" : "recorded (not reconciled)";
    const tr = row([el, num(r.input, 2), num(r.output, 2), num(r.rate, 1), basis, num(r.sigma, 2), met(2027), met(2031)], [1, 2, 3, 5]);
    tr.dataset.element = el;
    tr.dataset.basis = r.reconciled ? "reconciled" : "recorded";
    [6, 7].forEach((k) => { if (tr.cells[k].textContent.includes("not met")) tr.cells[k].className = "fail"; });
    return tr;
  }));
  $("recovery-status").textContent = `balance ${b.converged ? "reconciled" : "NOT converged"}; global test ${b.globalTest && b.globalTest.passed ? "passed" : "failed"}`;
  months(year).catch(() => {});
}

async function months(year) {
  const now = new Date();
  const last = year < now.getUTCFullYear() ? 12 : year === now.getUTCFullYear() ? now.getUTCMonth() + 1 : 0;
  $("recovery-month-head").replaceChildren(h("tr", {}, h("th", {}, "Month"), ELEMENTS.map((el) => h("th", {class: "num"}, `${el} %`))));
  const rows = [];
  for (let m = 1; m <= last; m++) {
    const from = new Date(Date.UTC(year, m - 1, 1)).toISOString(), to = new Date(Date.UTC(year, m, 1)).toISOString();
    const b = await api(`/balance?from=${from}&to=${to}`).catch(() => null);
    if (!b) continue;
    const cells = ELEMENTS.map((el) => { const r = rateOf(b, el); return r.rate === null ? "--" : `${num(r.rate, 1)} \u00b1 ${num(r.sigma || 0, 1)}`; });
    if (cells.every((c) => c === "--")) continue;
    rows.push(row([from.slice(0, 7), ...cells], [1, 2, 3, 4]));
  }
  $("recovery-months").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", {colspan: 5, class: "note"}, "no month with input yet"))]));
}

/// Recovery by chemistry (the year) and by chemistry and month of receipt:
/// of what the units held, the part the products' traces reach so far.
async function cohorts(year) {
  const basis = $("recovery-cohort-basis");
  let d;
  try { d = await api(`/reports/recovery/cohorts?year=${year}`); } catch (e) { basis.textContent = `not available: ${e.message}`; return; }
  basis.textContent = `Basis: ${d.basis}. A recent month's rate grows while its material is still in process; units processed together (blended) share one rate, as proportional allocation gives each the same part of its content.`;
  const cell = (input, out, el) => (input[el] > 0 ? `${num((100 * out[el]) / input[el], 1)} %` : "--");
  const head = (first) => h("tr", {}, first.map((c) => h("th", {}, c)), h("th", {class: "num"}, "Units"),
    ELEMENTS.map((el) => h("th", {class: "num"}, `${el} in products`)));
  const byChem = new Map();
  for (const c of d.cohorts) {
    const k = c.chemistry || "unknown";
    const t = byChem.get(k) || {units: 0, input: {}, out: {}};
    t.units += c.units;
    for (const el of ELEMENTS) {
      t.input[el] = (t.input[el] || 0) + (c.inputKg[el] || 0);
      t.out[el] = (t.out[el] || 0) + (c.inProductsKg[el] || 0);
    }
    byChem.set(k, t);
  }
  $("recovery-chem-head").replaceChildren(head(["Chemistry"]));
  $("recovery-chemistries").replaceChildren(...(byChem.size ? [...byChem].map(([k, t]) => {
    const tr = row([k, String(t.units), ...ELEMENTS.map((el) => cell(t.input, t.out, el))], [1, 2, 3, 4, 5]);
    tr.dataset.chemistry = k;
    return tr;
  }) : [h("tr", {}, h("td", {colspan: 6, class: "note"}, "no unit received this year"))]));
  $("recovery-cohort-head").replaceChildren(head(["Month", "Chemistry"]));
  $("recovery-cohorts").replaceChildren(...d.cohorts.map((c) =>
    row([c.month, c.chemistry || "unknown", String(c.units), ...ELEMENTS.map((el) => cell(c.inputKg, c.inProductsKg, el))], [2, 3, 4, 5, 6])));
}

/// The yearly report (schemas/recycling-report.schema.json): each input
/// stream's totals per element against the targets, its rRE, the warnings
/// printed in the report, and links to the CSV and the printable page.
async function report(year) {
  const box = $("recovery-report");
  try {
    const r = await api(`/reports/recovery?year=${year}&provisional=true`);
    const parts = [];
    for (const s of r.streams || []) {
      const t = s.total || {};
      parts.push(h("h3", {}, `${s.batteryChemistry || "stream"}: ${t.inputUnits ?? "?"} input units, ${num(t.mInputTonnes, 3)} t; rRE ${num(t.rRE, 1)} %`));
      parts.push(h("table", {class: "grid compact"},
        h("thead", {}, h("tr", {}, ["Element", "Input t", "Output EU t", "Output outside EU t", "Credited (x+1, x+2) t", "rRM %", "\u00b1 1\u03c3 (pp)", "basis", "2027", "2031"].map((c) => h("th", {}, c)))),
        h("tbody", {}, (t.rows || []).map((e) => {
          const target = (by) => {
            const x = (e.targets || []).find((q) => q.byEndOf === by);
            return x ? `${x.targetPct} % ${x.met ? "met" : "not met"}` : "no target";
          };
          return row([e.element, num(e.mInputTonnes, 3), num(e.mOutputEUTonnes, 3), num(e.mOutputNonEUTonnes, 3), num(e.mOutputCreditedTonnes, 3),
            num(e.rRM, 1), num(e.rRMSigma, 2), e.uncertaintyBasis || "", target(2027), target(2031)], [1, 2, 3, 4, 5, 6]);
        }))));
    }
    const warnings = r.warnings || [];
    parts.push(h("h3", {}, `Warnings in the report (${warnings.length})`));
    parts.push(warnings.length ? h("ul", {}, warnings.slice(0, 50).map((w) => h("li", {}, `${w.code}: ${w.message}`))) : h("p", {}, "none"));
    parts.push(h("p", {}, h("a", {href: `/api/v1/reports/recovery?year=${year}&format=html`, target: "_blank"}, "printable report"), " \u00b7 ",
      h("a", {href: `/api/v1/reports/recovery?year=${year}&format=csv`}, "CSV")));
    box.replaceChildren(...parts);
  } catch (e) { box.replaceChildren(h("p", {}, `not available: ${e.message}`)); }
}

async function deliveries() {
  const box = $("deliveries");
  try {
    const d = await api("/reports/deliveries?state=parked");
    const counts = d.counts || {};
    const parts = [h("p", {}, ["pending", "in_flight", "delivered", "parked"].map((k) => `${k.replace("_", " ")}: ${counts[k] ?? 0}`).join(" \u00b7 "))];
    const list = d.deliveries || [];
    parts.push(list.length ? h("table", {class: "grid compact"},
      h("thead", {}, h("tr", {}, ["Document", "Platform", "Attempts", "Parked", "HTTP", "Reason"].map((c) => h("th", {}, c)))),
      h("tbody", {}, list.map((x) => row([x.document, x.target, String(x.attempts), x.parkedAt || "", x.httpStatus == null ? "" : String(x.httpStatus), x.reason || ""]))))
      : h("p", {}, "no parked delivery"));
    box.replaceChildren(...parts);
  } catch (e) {
    box.replaceChildren(h("p", {"data-deliveries": "unavailable"}, `Delivery status: not available (${e.message}).`));
  }
}

export function init() {
  $("recovery-year").addEventListener("change", () => show());
}

export function show() {
  const input = $("recovery-year");
  if (!input.value) input.value = new Date().getUTCFullYear();
  const year = Number(input.value);
  showYear(year).catch((e) => { $("recovery-status").textContent = e.message; });
  report(year);
  cohorts(year);
  deliveries();
}
