// Line detail: every unit of a line with all its live tags (quality
// visible, stale values struck through), its ISA-88 state, the permissives
// with the reason each false check is false, and the commands. A command
// button is enabled only when the role may operate and the unit's state
// allows it; abort asks for confirmation. The server checks all of it again.
"use strict";

import {$, api, catalogue, readings, paint, h, may, dialog, say} from "./core.js";

const COMMANDS = ["start", "hold", "restart", "stop", "abort", "reset"];
const CHEMISTRIES = ["NMC111", "NMC532", "NMC622", "NMC811", "NCA", "LFP", "LMO"];
let line = "Discharge";
let timer = null;
let unitViews = [];

function tagsOfUnit(prefix) {
  return [...catalogue.keys()].filter((t) => t.startsWith(prefix + "/") && t.split("/").length === 3);
}

function tagTable(prefix) {
  const body = h("tbody");
  for (const tag of tagsOfUnit(prefix)) {
    const info = catalogue.get(tag) || {};
    const value = h("td", {class: "num value", "data-tag": tag}, "--");
    const quality = h("td", {"data-quality-of": tag}, "");
    body.append(h("tr", {}, h("td", {}, tag.split("/")[2], info.writable ? h("span", {class: "rw", title: "writable setpoint"}, " (SP)") : ""), value,
      h("td", {}, info.unit || ""), quality));
  }
  return h("table", {class: "grid compact"}, h("thead", {}, h("tr", {}, h("th", {}, "Signal"), h("th", {class: "num"}, "Value"), h("th", {}, "Unit"), h("th", {}, "Quality"))), body);
}

function permissiveList(u) {
  if (!u.permissives.length) return h("p", {class: "note"}, "no permissives on this unit's commands");
  return h("ul", {class: "permissives"}, u.permissives.map((p) => h("li", {class: p.permitted ? "ok" : "blocked", "data-permissive": p.id},
    h("strong", {}, `${p.command}: ${p.permitted ? "permitted" : "NOT permitted"}`), ` (${p.id})`,
    h("ul", {}, p.checks.map((c) => h("li", {class: c.holds ? "ok" : "blocked"},
      h("span", {class: "mark", "aria-hidden": "true"}, c.holds ? "\u2713 " : "\u2717 "),
      h("span", {class: "sr"}, c.holds ? "holds: " : "false: "), c.description, c.holds ? "" : h("span", {class: "why"}, ` \u2014 ${c.why}`)))))));
}

async function command(u, cmd, button) {
  const fields = [{label: "Reason", name: "reason", required: cmd === "abort"}];
  if (cmd === "start") fields.unshift({label: "Chemistry", name: "chemistry", options: CHEMISTRIES}, {label: "Batch lot id", name: "lot", required: true});
  const values = await dialog({
    title: `${cmd[0].toUpperCase()}${cmd.slice(1)} ${u.path}`,
    text: cmd === "abort" ? `Abort stops ${u.path} at once and ends its batch. This cannot be undone. Are you sure?` : `Send ${cmd} to ${u.path} (now ${u.state || "unknown"}).`,
    fields, ok: cmd === "abort" ? "Abort unit" : cmd, danger: cmd === "abort",
    submit: async (v) => {
      const body = {command: cmd, reason: v.reason};
      if (cmd === "start") { body.chemistry = v.chemistry; body.lot = v.lot; }
      const out = await api(`/units/${encodeURIComponent(u.path.replace("/", "."))}/commands`, {method: "POST", body});
      say($("units-note"), `${out.unit}: ${out.command} sent, ${out.from} \u2192 ${out.to} (audit #${out.auditSeq})`);
    },
  });
  if (values) refresh();
  button.focus();
}

function unitCard(prefix, u) {
  const card = h("article", {class: "card unit-card", "data-unit": prefix, "aria-label": prefix});
  const state = h("span", {class: "value state", "data-tag": `${prefix}/State`}, "--");
  card.append(h("div", {class: "row between"}, h("h2", {}, prefix.split("/")[1]), state));
  card.append(tagTable(prefix));
  if (u) {
    if (u.quality !== "good") card.append(h("p", {class: "q-bad"}, `state quality ${u.quality}: commands refused until the link is good`));
    card.append(h("h3", {}, "Interlocks and permissives"), permissiveList(u));
    const buttons = COMMANDS.map((c) => {
      const allowedByState = u.allowed.includes(c);
      const ok = may("operate") && allowedByState && u.quality === "good";
      const why = !may("operate") ? "your role may not command units" : !allowedByState ? `not allowed in state ${u.state}` : u.quality !== "good" ? "state not known" : "";
      const b = h("button", {class: c === "abort" ? "danger" : "", disabled: !ok, title: why || `${c} ${prefix}`, "data-command": c}, c);
      b.addEventListener("click", () => command(u, c, b));
      return b;
    });
    card.append(h("div", {class: "row commands", role: "group", "aria-label": `Commands to ${prefix}`}, buttons));
  }
  return card;
}

function paintCards() {
  const prefixes = [...new Set([...catalogue.keys()].filter((t) => t.startsWith(line + "/")).map((t) => t.split("/").slice(0, 2).join("/")))]
    .filter((p) => !p.endsWith("/Line"));
  const byPath = new Map(unitViews.map((u) => [u.path, u]));
  const focused = document.activeElement && document.activeElement.dataset ? [document.activeElement.closest("[data-unit]")?.dataset.unit, document.activeElement.dataset.command] : [];
  $("unit-cards").replaceChildren(...prefixes.map((p) => unitCard(p, byPath.get(p))));
  const now = Date.now();
  for (const el of $("unit-cards").querySelectorAll("[data-tag]")) {
    const r = readings.get(el.dataset.tag);
    if (r) paint(el, el.dataset.tag, r, now);
  }
  paintQuality();
  if (focused[0] && focused[1]) {
    const b = $("unit-cards").querySelector(`[data-unit="${CSS.escape(focused[0])}"] [data-command="${focused[1]}"]`);
    if (b) b.focus();
  }
}

function paintQuality() {
  for (const el of $("unit-cards").querySelectorAll("[data-quality-of]")) {
    const r = readings.get(el.dataset.qualityOf);
    el.textContent = r ? r.quality + (r.reason ? `: ${r.reason}` : "") : "no value yet";
    el.className = r && r.quality !== "good" ? "q-bad" : "";
  }
}

async function refresh() {
  try {
    unitViews = await api("/units");
    say($("units-note"), $("units-note").textContent.includes("sent") ? $("units-note").textContent : "");
  } catch (e) {
    unitViews = [];
    say($("units-note"), `units: ${e.message}`, true);
  }
  // Rebuilding would steal focus from an open dialog; wait for it.
  if (!$("dialog").open) paintCards();
}

export function init() {
  for (const b of document.querySelectorAll("#line-tabs button")) {
    b.addEventListener("click", () => { location.hash = `#units/${b.dataset.line}`; });
  }
}

export function show(args) {
  line = ["Discharge", "Mechanical", "Hydromet"].includes(args[0]) ? args[0] : line;
  for (const b of document.querySelectorAll("#line-tabs button")) b.setAttribute("aria-pressed", String(b.dataset.line === line));
  $("units-note").textContent = "";
  refresh();
  clearInterval(timer);
  timer = setInterval(() => { refresh(); }, 2000);
}

export function hide() { clearInterval(timer); }

setInterval(() => { if (!$("units-view").hidden) paintQuality(); }, 1000);
