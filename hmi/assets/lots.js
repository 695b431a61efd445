// Lots: search by lot id, passport id or GB/T code (a GB/T 34014 code is
// the passport id of a GB/T unit); a lot's detail with its assays and
// stock, the control recipe its batch ran with, the trace to its sources
// with the kg of Ni, Co and Li allocated to each; the genealogy graph
// backward and forward (SVG); and a Sankey of an element's flow from the
// countries of collection to the products (SVG).
"use strict";

import {$, api, h, svg, row, num, time} from "./core.js";

const MAX_GRAPH = 80;
let allLots = [];

const SHOWN = 500;

/// The server searches (GET /lots?q=): every word in the lot id, passport
/// id or GB/T code, label, kind or country; the newest SHOWN are listed.
async function search() {
  const q = $("lot-search").value.trim();
  const found = await api(`/lots?limit=${SHOWN}` + (q ? `&q=${encodeURIComponent(q)}` : ""));
  $("lot-rows").replaceChildren(...(found.length ? found.slice().reverse().map((l) => {
    const a = h("a", {href: `#lots/${encodeURIComponent(l.id)}`}, l.id);
    return h("tr", {"data-lot": l.id}, h("td", {}, a), h("td", {}, l.label), h("td", {class: "num"}, num(l.massKg, 1)),
      h("td", {class: "passport"}, l.passport || ""), h("td", {}, time(l.createdAt)));
  }) : [h("tr", {}, h("td", {colspan: 5, class: "note"}, `no lot matches "${q}"`))]));
  if (q && found.length === 1) location.hash = `#lots/${encodeURIComponent(found[0].id)}`;
}

function elementsTable(obj, caption) {
  const keys = Object.keys(obj || {});
  if (!keys.length) return h("p", {class: "note"}, `${caption}: none`);
  return h("table", {class: "grid compact"}, h("caption", {}, caption),
    h("thead", {}, h("tr", {}, keys.map((k) => h("th", {class: "num"}, k)))),
    h("tbody", {}, h("tr", {}, keys.map((k) => h("td", {class: "num"}, num(obj[k], 3))))));
}

async function detail(id) {
  const box = $("lot-detail");
  box.replaceChildren(h("p", {class: "note"}, `loading ${id}\u2026`));
  let d;
  try { d = await api(`/lots/${encodeURIComponent(id)}`); } catch (e) { box.replaceChildren(h("p", {class: "error"}, e.message)); return; }
  const [acc, recipe, back, fwd] = await Promise.all([
    api(`/lots/${encodeURIComponent(id)}/accounting`).catch((e) => ({error: e.message})),
    api(`/batches/${encodeURIComponent(id)}/recipe`).catch((e) => ({error: e.message})),
    api(`/lots/${encodeURIComponent(id)}/trace?direction=backward`).catch((e) => ({error: e.message})),
    api(`/lots/${encodeURIComponent(id)}/trace?direction=forward`).catch((e) => ({error: e.message})),
  ]);
  const l = d.lot;
  const parts = [
    h("h2", {id: "lot-title"}, `${l.id}`), h("p", {}, `${l.label}, ${num(l.massKg, 2)} kg, content ${l.contentSource}`,
      l.passport ? `, passport ${l.passport}` : "", l.countryOfCollection ? `, collected in ${l.countryOfCollection}` : "", `, created ${time(l.createdAt)}`),
    elementsTable(l.elementsKg, "Element content, kg"),
  ];
  // Assays and balance.
  if (acc.error) parts.push(h("p", {class: "note"}, `accounting: ${acc.error}`));
  else {
    parts.push(h("h3", {}, "Assays and stock"), h("p", {}, `stock ${num(acc.stockKg, 2)} kg` + (acc.measurement ? `, weighed ${num(acc.measurement.dryKg ?? acc.measurement.wetKg, 2)} kg` : ", not weighed")));
    const assays = acc.assays || [];
    parts.push(assays.length ? h("table", {class: "grid compact"}, h("thead", {}, h("tr", {}, ["Sample", "Element", "%", "\u00b1 %", "Method", "Lab"].map((c) => h("th", {}, c)))),
      h("tbody", {}, assays.map((a) => row([a.sample, a.element, num(a.percent, 3), num(a.sigmaPercent, 3), a.method, a.lab], [2, 3])))) : h("p", {class: "note"}, "no assays recorded"));
    if ((acc.combined || []).length) parts.push(h("p", {}, "combined (inverse-variance): " + acc.combined.map((c) => `${c.element} ${num(c.percent, 3)} \u00b1 ${num(c.sigmaPercent, 3)} %`).join(", ")));
  }
  // The control recipe.
  parts.push(h("h3", {}, "Control recipe"));
  if (recipe.error) parts.push(h("p", {class: "note"}, "none recorded for this lot"));
  else parts.push(h("p", {}, `${recipe.key} v${recipe.version} on ${recipe.unit}, downloaded by ${recipe.downloadedBy} at ${time(recipe.downloadedAt)}` +
    (recipe.adjustments.length ? `; adjusted: ${recipe.adjustments.map((a) => `${a.parameter} ${a.from} \u2192 ${a.to} (${a.reason})`).join("; ")}` : "")),
  h("a", {href: `#recipes/${encodeURIComponent(recipe.key)}/${recipe.version}`}, "open the recipe"));
  // The trace to the sources.
  parts.push(h("h3", {}, "Trace to the input units"));
  if (back.error) parts.push(h("p", {class: "note"}, back.error));
  else parts.push(h("table", {class: "grid compact", id: "trace-sources"}, h("thead", {}, h("tr", {}, ["Unit", "Passport", "Country", "kg", "Ni kg", "Co kg", "Li kg"].map((c, k) => h("th", {class: k >= 3 ? "num" : ""}, c)))),
    h("tbody", {}, back.sources.map((s) => row([s.id, s.passport || "", s.country || "", num(s.massKg, 2), num(s.allocatedKg.Ni, 3), num(s.allocatedKg.Co, 3), num(s.allocatedKg.Li, 3)], [3, 4, 5, 6])),
      row([h("strong", {}, "total"), "", "", num(back.totalMassKg, 2), num(back.totalKg.Ni, 3), num(back.totalKg.Co, 3), num(back.totalKg.Li, 3)], [3, 4, 5, 6]))));
  if (!fwd.error && fwd.lots.length) parts.push(h("p", {}, `forward: ${fwd.lots.length} lots made from it (` + fwd.totals.map((t) => `${t.kind} ${num(t.massKg, 1)} kg`).join(", ") + ")"));
  parts.push(h("h3", {}, "Genealogy"), h("p", {class: "note"}, "inputs to the left, lots made from it to the right"));
  const graph = svg("svg", {id: "genealogy", role: "img", "aria-label": `Genealogy of ${l.id}`, viewBox: "0 0 800 200"});
  parts.push(graph);
  box.replaceChildren(...parts);
  drawGenealogy(graph, id).catch((e) => graph.replaceChildren(svg("text", {x: 10, y: 20}, e.message)));
}

/// Walks the genealogy from `id` both ways (breadth first, at most
/// MAX_GRAPH lots) and draws it in columns by distance.
async function drawGenealogy(graph, id) {
  const depth = new Map([[id, 0]]), edges = new Map(), info = new Map();
  let frontier = [[id, 0]];
  while (frontier.length && depth.size < MAX_GRAPH) {
    const next = [];
    const details = await Promise.all(frontier.map(([lot]) => api(`/lots/${encodeURIComponent(lot)}`).catch(() => null)));
    details.forEach((d, k) => {
      if (!d) return;
      const [lot, dep] = frontier[k];
      info.set(lot, d.lot);
      const walk = (list, dir) => {
        for (const e of list) {
          edges.set(`${e.from}>${e.to}`, e);
          const other = dir < 0 ? e.from : e.to;
          // Only walk away from the start: backward from inputs, forward from outputs.
          if (!depth.has(other) && (dep === 0 || Math.sign(dep) === dir) && depth.size < MAX_GRAPH) { depth.set(other, dep + dir); next.push([other, dep + dir]); }
        }
      };
      walk(d.inputs, -1); walk(d.outputs, 1);
    });
    frontier = next;
  }
  const cols = new Map();
  for (const [lot, d] of depth) { if (!cols.has(d)) cols.set(d, []); cols.get(d).push(lot); }
  const keys = [...cols.keys()].sort((a, b) => a - b);
  const colW = 230, rowH = 34, boxW = 200, boxH = 26;
  const tallest = Math.max(...keys.map((k) => cols.get(k).length));
  const pos = new Map();
  keys.forEach((k, ci) => cols.get(k).forEach((lot, ri) => pos.set(lot, [10 + ci * colW, 10 + ri * rowH])));
  graph.setAttribute("viewBox", `0 0 ${keys.length * colW + 10} ${tallest * rowH + 20}`);
  graph.replaceChildren();
  for (const e of edges.values()) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a[0] + boxW, y1 = a[1] + boxH / 2, x2 = b[0], y2 = b[1] + boxH / 2;
    graph.append(svg("path", {class: "edge", d: `M ${x1} ${y1} C ${x1 + 15} ${y1}, ${x2 - 15} ${y2}, ${x2} ${y2}`}, ""));
    graph.lastChild.append(svg("title", {}, `${e.from} \u2192 ${e.to}: ${num(e.massKg, 2)} kg`));
  }
  for (const [lot, [x, y]] of pos) {
    const l = info.get(lot) || allLots.find((a) => a.id === lot) || {label: ""};
    const a = svg("a", {href: `#lots/${encodeURIComponent(lot)}`, class: lot === id ? "node self" : "node"});
    a.append(svg("rect", {x, y, width: boxW, height: boxH, rx: 3}), svg("text", {x: x + 6, y: y + 17}, `${l.label || ""} ${lot.length > 22 ? lot.slice(0, 21) + "\u2026" : lot}`));
    a.append(svg("title", {}, `${lot} (${l.label || ""}, ${num(l.massKg, 2)} kg)`));
    graph.append(a);
  }
}

/// The Sankey of one element: countries of collection (left) to the
/// product lots' labels (right), by the kg the backward traces of the
/// product lots allocate; what the input units held but no product got is
/// "not in a product" (side fractions, losses, still in process).
async function sankey() {
  const el = $("sankey-element").value;
  const chart = $("sankey");
  chart.replaceChildren();
  if (!allLots.length) allLots = await api("/lots");
  const products = allLots.filter((l) => /^product/.test(l.kind) || /SO4|CO3|Li2|NiSO|CoSO/.test(l.label));
  const traces = await Promise.all(products.map((p) => api(`/lots/${encodeURIComponent(p.id)}/trace`).catch(() => null)));
  const flows = new Map(), inByCountry = new Map();
  for (const u of allLots.filter((l) => l.kind === "input-unit")) {
    const c = u.countryOfCollection || "unknown";
    inByCountry.set(c, (inByCountry.get(c) || 0) + ((u.elementsKg || {})[el] || 0));
  }
  traces.forEach((t, k) => {
    if (!t) return;
    for (const s of t.sources) {
      const key = `${s.country || "unknown"}>${products[k].label}`;
      flows.set(key, (flows.get(key) || 0) + ((s.allocatedKg || {})[el] || 0));
    }
  });
  for (const [c, kg] of inByCountry) {
    const used = [...flows].filter(([k]) => k.startsWith(c + ">")).reduce((n, [, v]) => n + v, 0);
    if (kg - used > 1e-6) flows.set(`${c}>not in a product`, kg - used);
  }
  const left = [...new Set([...flows.keys()].map((k) => k.split(">")[0]))].sort();
  const right = [...new Set([...flows.keys()].map((k) => k.split(">")[1]))].sort((a, b) => (a === "not in a product") - (b === "not in a product") || a.localeCompare(b));
  const total = [...flows.values()].reduce((a, b) => a + b, 0);
  if (total <= 0) { chart.append(svg("text", {x: 20, y: 40, class: "label"}, `no ${el} recorded yet`)); return; }
  const H = 320, gap = 8, scale = (H - gap * Math.max(left.length, right.length)) / total;
  const place = (names, side) => {
    const m = new Map(); let y = 20;
    for (const n of names) {
      const v = [...flows].filter(([k]) => k.split(">")[side] === n).reduce((a, [, b]) => a + b, 0);
      m.set(n, {y, h: Math.max(1, v * scale), v, used: 0}); y += Math.max(1, v * scale) + gap;
    }
    return m;
  };
  const L = place(left, 0), R = place(right, 1);
  const x0 = 200, x1 = 900, w = 14;
  for (const [k, v] of [...flows].sort()) {
    const [a, b] = k.split(">"), la = L.get(a), rb = R.get(b), th = v * scale;
    const ya = la.y + la.used + th / 2, yb = rb.y + rb.used + th / 2;
    la.used += th; rb.used += th;
    const p = svg("path", {class: b === "not in a product" ? "flow-link loss" : "flow-link", d: `M ${x0 + w} ${ya} C ${(x0 + x1) / 2} ${ya}, ${(x0 + x1) / 2} ${yb}, ${x1} ${yb}`, "stroke-width": Math.max(1, th)});
    p.append(svg("title", {}, `${a} \u2192 ${b}: ${num(v, 3)} kg ${el}`));
    chart.append(p);
  }
  for (const [n, m] of L) chart.append(svg("rect", {class: "sankey-node", x: x0, y: m.y, width: w, height: m.h}), svg("text", {class: "label", x: x0 - 6, y: m.y + m.h / 2 + 4, "text-anchor": "end"}, `${n} ${num(m.v, 2)} kg`));
  for (const [n, m] of R) chart.append(svg("rect", {class: "sankey-node", x: x1, y: m.y, width: w, height: m.h}), svg("text", {class: "label", x: x1 + w + 6, y: m.y + m.h / 2 + 4}, `${n} ${num(m.v, 2)} kg`));
  chart.setAttribute("viewBox", `0 0 1200 ${Math.max(...[...L.values(), ...R.values()].map((m) => m.y + m.h)) + 20}`);
}

export function init() {
  $("lot-search-form").addEventListener("submit", (e) => { e.preventDefault(); search().then(sankey).catch(() => {}); });
  $("sankey-element").addEventListener("change", () => sankey().catch(() => {}));
}

export async function show(args) {
  await search().catch((e) => $("lot-rows").replaceChildren(h("tr", {}, h("td", {colspan: 5, class: "error"}, e.message))));
  if (args[0]) detail(args[0]);
  sankey().catch(() => {});
}
