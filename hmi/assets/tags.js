// All tags: every signal of the plant with its value, unit, quality and
// the server time of its last update, filterable.
"use strict";

import {$, catalogue, readings, onSnapshot, paint, h} from "./core.js";

export function init() {
  const body = $("tag-rows"); body.replaceChildren();
  for (const [t, info] of catalogue) {
    body.append(h("tr", {"data-row": t}, h("td", {}, t), h("td", {class: "num", "data-tag": t}, "--"), h("td", {}, info.unit || ""), h("td", {}), h("td", {})));
  }
  $("tag-filter").addEventListener("input", (e) => {
    const q = e.target.value.toLowerCase();
    document.querySelectorAll("#tag-rows tr").forEach((tr) => tr.hidden = !tr.dataset.row.toLowerCase().includes(q));
  });
  onSnapshot((snap) => {
    if ($("tags-view").hidden) return;
    for (const r of snap.readings) {
      const tr = document.querySelector(`tr[data-row="${CSS.escape(r.tag)}"]`);
      if (!tr) continue;
      tr.cells[3].textContent = r.quality + (r.reason ? `: ${r.reason}` : "");
      tr.cells[4].textContent = r.serverTime ? r.serverTime.slice(11, 23) : "";
    }
  });
}

export function show() {
  const now = Date.now();
  for (const el of $("tag-rows").querySelectorAll("[data-tag]")) {
    const r = readings.get(el.dataset.tag);
    if (r) paint(el, el.dataset.tag, r, now);
  }
}
