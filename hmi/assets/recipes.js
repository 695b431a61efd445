// Recipes: the master recipes by line and chemistry, each key's version
// history with its signatures, a side-by-side diff of two versions, and an
// editor whose inputs know their unit and the equipment's limits, with
// inline validation (POST /recipes/validate) as you type. Drafts are saved
// by engineers; submit, approve, reject and release are electronic
// signatures: the password is re-entered with a reason.
"use strict";

import {$, api, h, num, time, may, dialog, say, session} from "./core.js";

let records = [];
let current = null;        // {key, version, record}
let draft = null;          // the recipe being edited (a RecipeDto)
let capabilities = new Map();
let validateTimer = null;

const SIGN = {draft: ["submit"], in_review: ["approve", "reject"], approved: ["release"], released: ["obsolete"]};
const SIGN_ROLE = {submit: "engineer", approve: "approve", reject: "approve", release: "approve", obsolete: "approve"};

function keyPath(key) { return key.split("/").map(encodeURIComponent).join("/"); }
function versionsOf(key) { return records.filter((r) => r.key === key).sort((a, b) => a.version - b.version); }

async function list() {
  records = await api("/recipes");
  const keys = [...new Set(records.map((r) => r.key))].sort();
  $("recipe-keys").replaceChildren(...keys.map((k) => {
    const vs = versionsOf(k), last = vs[vs.length - 1];
    return h("tr", {"data-key": k, class: current && current.key === k ? "selected" : ""},
      h("td", {}, h("a", {href: `#recipes/${keyPath(k)}/${last.version}`}, k)), h("td", {class: "num"}, vs.length), h("td", {}, `v${last.version} ${last.status.replace("_", " ")}`));
  }));
}

function history(key) {
  return h("table", {class: "grid compact", id: "recipe-history"},
    h("thead", {}, h("tr", {}, ["Version", "Status", "By", "Created", "Signatures", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, versionsOf(key).map((r) => h("tr", {class: current && r.version === current.version ? "selected" : "", "data-version": r.version},
      h("td", {}, h("a", {href: `#recipes/${keyPath(key)}/${r.version}`}, `v${r.version}`)), h("td", {class: `status s-${r.status}`}, r.status.replace("_", " ")),
      h("td", {}, r.createdBy), h("td", {}, time(r.createdAt)),
      h("td", {}, r.signatures.map((s) => `${s.meaning} by ${s.user} ${time(s.at)}${s.reason ? ` (${s.reason})` : ""}`).join("; ")),
      h("td", {}, r.version > 1 ? h("a", {href: `#recipes/${keyPath(key)}/${r.version}/diff/${r.version - 1}`}, `diff v${r.version - 1}`) : "")))));
}

async function loadCapabilities(line) {
  try { capabilities = new Map((await api(`/recipes/catalogue/${encodeURIComponent(line)}`)).map((c) => [c.name, c])); } catch (_) { capabilities = new Map(); }
}

/// The editor: one row per parameter with a number input in its unit,
/// the recipe's and the equipment's ranges, and the findings beside it.
function editor(record, editable) {
  draft = structuredClone(record.recipe);
  const rows = [];
  draft.phases.forEach((ph, pi) => {
    rows.push(h("tr", {class: "phase"}, h("th", {colspan: 5, scope: "colgroup"}, `${ph.unitProcedure} / ${ph.operation} / ${ph.phase}`)));
    ph.parameters.forEach((p, k) => {
      const cap = capabilities.get(p.name);
      const id = `param-${pi}-${k}`;
      const input = h("input", {id, type: "number", step: "any", value: p.value, min: p.min, max: p.max, disabled: !editable,
        "data-param": p.name, "aria-describedby": `${id}-finding`, inputmode: "decimal"});
      input.addEventListener("input", () => {
        const v = input.valueAsNumber;
        p.value = Number.isFinite(v) ? v : NaN;
        const local = !Number.isFinite(v) ? "not a number" : v < p.min || v > p.max ? `outside the recipe's range ${p.min}\u2013${p.max} ${p.unit}` : "";
        $(`${id}-finding`).textContent = local;
        input.setAttribute("aria-invalid", String(!!local));
        clearTimeout(validateTimer);
        validateTimer = setTimeout(validate, 250);
      });
      rows.push(h("tr", {"data-param-row": p.name},
        h("td", {}, h("label", {for: id}, p.name)),
        h("td", {class: "num"}, h("span", {class: "with-unit"}, input, h("span", {class: "unit"}, p.unit === "1" ? "" : p.unit))),
        h("td", {class: "note"}, `recipe ${p.min}\u2013${p.max}`),
        h("td", {class: "note"}, cap ? `equipment ${cap.min}\u2013${cap.max} ${cap.unit}${cap.tag ? ` \u2192 ${cap.tag}` : ""}` : ""),
        h("td", {class: "finding", id: `${id}-finding`, role: "status"}, "")));
    });
  });
  return h("table", {class: "grid compact editor", id: "recipe-editor"}, h("thead", {}, h("tr", {}, ["Parameter", "Value", "Recipe range", "Equipment", "Findings"].map((c) => h("th", {}, c)))), h("tbody", {}, rows));
}

function showFindings(findings) {
  document.querySelectorAll("#recipe-editor .finding").forEach((f) => { if (!f.dataset.local) f.textContent = ""; });
  const general = [];
  for (const f of findings) {
    const input = f.parameter && document.querySelector(`#recipe-editor [data-param="${CSS.escape(f.parameter.split(".").pop())}"]`);
    if (input) $(`${input.id}-finding`).textContent = f.message;
    else general.push(f.message);
  }
  const box = $("recipe-findings");
  if (box) { box.textContent = findings.length ? `${findings.length} finding(s)${general.length ? ": " + general.join("; ") : ""}` : "no findings: the recipe fits the equipment and the process rules"; box.classList.toggle("error", findings.length > 0); }
}

async function validate() {
  try { showFindings(await api("/recipes/validate", {method: "POST", body: draft})); }
  catch (e) { const box = $("recipe-findings"); if (box) { box.textContent = e.message; box.classList.add("error"); } }
}

async function save(record) {
  const v = await dialog({title: record.status === "draft" ? `Save draft v${record.version}` : `New draft from v${record.version}`,
    fields: [{label: "Reason for the change", name: "reason", required: true}], ok: "Save",
    submit: async (x) => {
      const out = record.status === "draft"
        ? await api(`/recipes/${keyPath(record.key)}/${record.version}`, {method: "PUT", body: {recipe: draft, reason: x.reason}})
        : await api("/recipes", {method: "POST", body: {recipe: draft, reason: x.reason}});
      location.hash = `#recipes/${keyPath(out.key)}/${out.version}`;
      say($("recipe-msg"), `saved ${out.key} v${out.version} (${out.status})`);
    }});
  if (v) await list();
}

async function sign(record, step) {
  await dialog({
    title: `Sign: ${step} ${record.key} v${record.version}`,
    text: `Your electronic signature (${session.user}) means "${step}". Re-enter your password.`,
    fields: [{label: "Password", name: "password", type: "password", required: true}, {label: "Reason", name: "reason", required: true}],
    ok: `Sign and ${step}`,
    submit: async (v) => {
      const out = await api(`/recipes/${keyPath(record.key)}/${record.version}/${step}`, {method: "POST", body: {password: v.password, reason: v.reason}});
      say($("recipe-msg"), `${out.key} v${out.version} is now ${out.status.replace("_", " ")}`);
    }});
  await list();
  open(record.key, record.version);
}

async function open(key, version) {
  const box = $("recipe-detail");
  const record = await api(`/recipes/${keyPath(key)}/${version}`);
  current = {key, version: record.version, record};
  await loadCapabilities(record.recipe.line);
  const editable = may("engineer");
  const buttons = [];
  if (editable) {
    const b = h("button", {id: "recipe-save"}, record.status === "draft" ? "Save draft" : "New draft from this version");
    b.addEventListener("click", () => save(record));
    buttons.push(b);
  }
  for (const step of SIGN[record.status] || []) {
    const b = h("button", {"data-sign": step, disabled: !may(SIGN_ROLE[step]), title: may(SIGN_ROLE[step]) ? "" : `needs ${SIGN_ROLE[step] === "approve" ? "supervisor" : "engineer"}`}, step);
    b.addEventListener("click", () => sign(record, step));
    buttons.push(b);
  }
  box.replaceChildren(
    h("h2", {id: "recipe-title"}, `${record.key} v${record.version}`, " ", h("span", {class: `status s-${record.status}`, id: "recipe-status"}, record.status.replace("_", " "))),
    h("p", {}, record.recipe.description),
    h("div", {class: "row"}, buttons, h("span", {id: "recipe-msg", class: "note", role: "status"})),
    h("p", {id: "recipe-findings", class: "note", role: "status"}),
    editor(record, editable),
    h("h3", {}, "Version history"), history(key));
  showFindings(record.findings || []);
  document.querySelectorAll("#recipe-keys tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.key === key));
}

/// Two versions side by side, the changed parameters marked.
async function diff(key, a, b) {
  const [from, to] = [Math.min(a, b), Math.max(a, b)];
  const [changes, ra, rb] = await Promise.all([api(`/recipes/${keyPath(key)}/diff?from=${from}&to=${to}`),
    api(`/recipes/${keyPath(key)}/${from}`), api(`/recipes/${keyPath(key)}/${to}`)]);
  const changed = new Map(changes.map((c) => [c.parameter, c.change]));
  const params = (r) => new Map(r.recipe.phases.flatMap((ph) => ph.parameters.map((p) => [p.name, p])));
  const pa = params(ra), pb = params(rb);
  const names = [...new Set([...pa.keys(), ...pb.keys()])];
  const cell = (p) => p ? `${num(p.value)} ${p.unit === "1" ? "" : p.unit} (${p.min}\u2013${p.max})` : "\u2014";
  $("recipe-detail").replaceChildren(
    h("h2", {}, `${key}: v${from} \u2194 v${to}`), h("p", {}, h("a", {href: `#recipes/${keyPath(key)}/${to}`}, `back to v${to}`)),
    h("p", {}, changes.length ? `${changes.length} change(s)` : "no differences"),
    h("table", {class: "grid compact diff", id: "recipe-diff"}, h("thead", {}, h("tr", {}, h("th", {}, "Parameter"), h("th", {}, `v${from}`), h("th", {}, `v${to}`), h("th", {}, "Change"))),
      h("tbody", {}, names.map((n) => h("tr", {class: changed.has(n) ? `changed c-${changed.get(n)}` : ""}, h("td", {}, n), h("td", {}, cell(pa.get(n))), h("td", {}, cell(pb.get(n))), h("td", {}, changed.get(n) || ""))))),
    h("ul", {class: "note"}, changes.map((c) => h("li", {}, c.text))));
}

export async function show(args) {
  await list().catch((e) => $("recipe-keys").replaceChildren(h("tr", {}, h("td", {class: "error"}, e.message))));
  if (args.length >= 3) {
    const key = `${args[0]}/${args[1]}`, version = Number(args[2]);
    if (args[3] === "diff" && args[4]) diff(key, version, Number(args[4])).catch((e) => $("recipe-detail").replaceChildren(h("p", {class: "error"}, e.message)));
    else open(key, version).catch((e) => $("recipe-detail").replaceChildren(h("p", {class: "error"}, e.message)));
  }
}
