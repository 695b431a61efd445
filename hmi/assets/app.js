// The HMI's entry: login and logout, the idle timeout, the screens behind
// the hash route (#overview, #units, #alarms, #trends, #lots, #recovery,
// #recipes, #audit, #tags), and the alarm sound. Plain JavaScript modules,
// no build step; everything comes from /api/v1 of the same server.
"use strict";

import {$, api, session, catalogue, connectStream, closeStream, setUnauthenticatedHandler, applySnapshot} from "./core.js";
import * as overview from "./overview.js";
import * as units from "./units.js";
import * as alarms from "./alarms.js";
import * as trends from "./trends.js";
import * as lots from "./lots.js";
import * as recovery from "./recovery.js";
import * as recipes from "./recipes.js";
import * as audit from "./audit.js";
import * as tags from "./tags.js";

const IDLE_TIMEOUT_MS = 15 * 60 * 1000;
const SCREENS = {overview, units, alarms, trends, lots, recovery, recipes, audit, tags};
let idleTimer = null;
let current = null;
let initialised = false;

function showLogin() {
  closeStream();
  alarms.stop();
  session.user = session.role = session.csrf = null;
  document.querySelectorAll(".view").forEach((v) => v.hidden = true);
  $("nav").hidden = true; $("logout").hidden = true; $("mute").hidden = true; $("who").textContent = "";
  $("login-view").hidden = false;
  $("login-user").focus();
}
setUnauthenticatedHandler(showLogin);

async function start() {
  const health = await fetch("/api/v1/health").then((r) => r.json()).catch(() => ({}));
  $("site").textContent = health.site || "";
  try {
    await enter(await api("/session"));
  } catch (_) { showLogin(); }
}

async function enter(me, fresh = false) {
  session.user = me.user; session.role = me.role; session.csrf = me.csrfToken;
  $("login-view").hidden = true;
  $("nav").hidden = false; $("logout").hidden = false; $("mute").hidden = false;
  $("who").textContent = `${me.user} (${me.role})`;
  const t = await api("/tags");
  catalogue.clear();
  for (const i of t.tags) catalogue.set(i.tag, i);
  if (!initialised) for (const s of Object.values(SCREENS)) if (s.init) s.init(t);
  initialised = true;
  applySnapshot(t.snapshot);
  connectStream(fresh);
  alarms.start();
  route();
  resetIdle();
}

function route() {
  const [view, ...rest] = (location.hash || "#overview").slice(1).split("/");
  const name = SCREENS[view] ? view : "overview";
  document.querySelectorAll(".view").forEach((v) => v.hidden = v.id !== `${name}-view`);
  document.querySelectorAll("nav a").forEach((a) => {
    a.classList.toggle("active", a.dataset.view === name);
    if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  if (current && current !== SCREENS[name] && current.hide) current.hide();
  current = SCREENS[name];
  if (current.show) current.show(rest.map(decodeURIComponent));
}
window.addEventListener("hashchange", () => { if (session.user) route(); });

function resetIdle() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => logout("signed out after 15 minutes without input"), IDLE_TIMEOUT_MS);
}
["click", "keydown", "touchstart", "wheel"].forEach((e) => document.addEventListener(e, () => { if (session.user) resetIdle(); }, {passive: true}));

async function logout(why) {
  clearTimeout(idleTimer);
  try { await api("/session", {method: "DELETE"}); } catch (_) { /* already out */ }
  showLogin();
  if (typeof why === "string") $("login-error").textContent = why;
}
$("logout").addEventListener("click", () => logout());

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  try {
    const me = await api("/session", {method: "POST", body: {user: $("login-user").value, password: $("login-password").value}});
    $("login-password").value = "";
    await enter(me, true);
  } catch (err) { $("login-error").textContent = err.message; }
});

start();
