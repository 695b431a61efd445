// Audit: the trail of every write, command, signature and login, newest
// first and searchable, and the hash chain's verification status. The
// trail needs the supervisor role; the server refuses others.
"use strict";

import {$, api, h, row, time, may} from "./core.js";

const PAGE = 500;
let entries = [];

function paint() {
  const q = $("audit-search").value.trim().toLowerCase();
  const shown = entries.filter((e) => !q || [e.actor, e.action, e.target, e.old, e.new, e.reason].join(" ").toLowerCase().includes(q));
  $("audit-rows").replaceChildren(...shown.slice(0, 1000).map((e) => {
    const tr = row([e.seq, time(e.at), e.actor, e.action, e.target, e.old || "", e.new || "", e.reason], [0]);
    tr.title = `hash ${e.hash}`;
    return tr;
  }));
}

/// The newest entries: the API pages forward from a sequence number, so
/// the page starts at the chain's length minus what is wanted.
async function load(older = false) {
  if (!may("approve")) {
    $("audit-rows").replaceChildren(h("tr", {}, h("td", {colspan: 8, class: "note"}, "The audit trail needs the supervisor role.")));
    $("audit-verify").textContent = "";
    return;
  }
  const v = await verify();
  const total = v && v.entries ? v.entries : 0;
  const oldest = older && entries.length ? entries[entries.length - 1].seq : total + 1;
  const after = Math.max(0, oldest - 1 - PAGE);
  const page = await api(`/audit?after=${after}&limit=${Math.min(PAGE, oldest - 1 - after)}`);
  entries = (older ? entries : []).concat(page.reverse());
  paint();
}

async function verify() {
  if (!may("approve")) return null;
  try {
    const v = await api("/audit/verify");
    const el = $("audit-verify");
    el.textContent = v.intact ? `chain intact: ${v.entries} entries verified` : `CHAIN BROKEN at entry ${v.brokenAt}: ${v.why}`;
    el.classList.toggle("error", !v.intact);
    el.dataset.intact = String(v.intact);
    return v;
  } catch (e) { $("audit-verify").textContent = e.message; return null; }
}

export function init() {
  $("audit-search").addEventListener("input", paint);
  $("audit-more").addEventListener("click", () => load(true));
  $("audit-reverify").addEventListener("click", verify);
}

export function show() { load().catch((e) => { $("audit-verify").textContent = e.message; }); }
