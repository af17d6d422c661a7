"use strict";
// The dashboard talks to the same JSON API as curl does. Every value from the API is put on the
// page with textContent: URLs and tags come from the outside world and must never become markup.
const TOKEN_KEY = "caje-admin-token";
const $ = (id) => document.getElementById(id);
let nextCursor = null;

class Refused extends Error {}

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers.Authorization = "Bearer " + token;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = { error: "the answer was not JSON (HTTP " + response.status + ")" };
  }
  if (response.status === 401 || response.status === 403) {
    showLogin(data && data.error);
    throw new Refused(data && data.error);
  }
  return { status: response.status, data };
}

function showLogin(reason) {
  $("login").hidden = false;
  $("admin").hidden = true;
  if (reason) $("login-reason").textContent = reason;
}

function showAdmin() {
  $("login").hidden = true;
  $("admin").hidden = false;
}

function say(text, failed) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("failed", Boolean(failed));
}

function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
}

function duration(seconds) {
  const sign = seconds < 0 ? "-" : "";
  let left = Math.abs(seconds);
  if (left < 120) return sign + left + " s";
  left = Math.floor(left / 60);
  if (left < 120) return sign + left + " min";
  left = Math.floor(left / 60);
  return left < 48 ? sign + left + " h" : sign + Math.floor(left / 24) + " d";
}

async function loadHealth() {
  const { data } = await api("GET", "/_caje/health");
  $("node").textContent = data.node;
  $("uptime").textContent = duration(data.uptime_seconds);
  const requests = data.cache.requests;
  if (requests) {
    $("hit-ratio").textContent =
      requests.hit_ratio === null ? "–" : (requests.hit_ratio * 100).toFixed(1) + " %";
    $("requests").textContent =
      requests.hit + " hit · " + requests.stale + " stale · " + requests.miss + " miss · " +
      requests.bypass + " bypass";
  }
  $("manifest-state").textContent = !data.manifest.enabled
    ? "disabled"
    : data.ok ? "ok" : "failing";
  $("manifest-state").title = data.problems.join("\n");
}

async function loadPolicies() {
  const { data } = await api("GET", "/_caje/policies");
  const body = $("policies").tBodies[0];
  body.replaceChildren();
  for (const module of data.modules) {
    const row = document.createElement("tr");
    row.dataset.file = module.file;
    cell(row, module.file);
    cell(row, module.state, module.state === "active" ? "" : "stale");
    cell(row, module.failure_mode);
    for (const count of [module.calls, module.traps, module.timeouts, module.invalid_decisions]) {
      cell(row, String(count), "num");
    }
    cell(row, module.loaded_at || "");
    cell(row, module.error || "", "stale");
    body.appendChild(row);
  }
  $("policies-empty").hidden = data.modules.length > 0;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function addRows(entries) {
  const body = $("entries").tBodies[0];
  for (const entry of entries) {
    const row = document.createElement("tr");
    row.dataset.url = entry.url;
    row.dataset.key = entry.key;
    cell(row, entry.url, "url");
    cell(row, entry.origin);
    cell(row, String(entry.status), "num");
    cell(row, size(entry.size), "num");
    cell(row, duration(entry.ttl), entry.ttl < 0 ? "num stale" : "num");
    cell(row, entry.in_manifest ? (entry.soft_purged ? "soft-purged" : "yes") : "no");
    cell(row, entry.on_disk ? "yes" : "no");
    cell(row, entry.tags.join(", "));
    const button = document.createElement("button");
    button.type = "button";
    button.className = "purge-row";
    button.textContent = "Purge";
    button.addEventListener("click", () => act("POST", "/_caje/purge", { url: entry.url }));
    cell(row, "").appendChild(button);
    body.appendChild(row);
  }
}

async function loadEntries(fresh) {
  if (fresh) {
    $("entries").tBodies[0].replaceChildren();
    nextCursor = null;
  }
  const params = new URLSearchParams();
  const prefix = $("prefix").value.trim();
  if (prefix) params.set("prefix", prefix);
  // Follow the cursor through empty disk pages, a bounded number of times per click.
  for (let pages = 0; pages < 20; pages += 1) {
    if (nextCursor) params.set("cursor", nextCursor);
    const { status, data } = await api("GET", "/_caje/list?" + params.toString());
    if (status !== 200) {
      say("listing failed: " + data.error, true);
      return;
    }
    addRows(data.entries);
    nextCursor = data.next;
    if (!nextCursor || data.entries.length > 0) break;
  }
  $("more-button").hidden = !nextCursor;
  $("list-end").textContent = nextCursor
    ? ""
    : $("entries").tBodies[0].rows.length + " pages listed";
}

async function refresh() {
  await loadHealth();
  showAdmin();
  await Promise.all([loadEntries(true), loadPolicies()]);
}

async function act(method, path, body) {
  say("working…");
  try {
    const { status, data } = await api(method, path, body);
    $("result").textContent = JSON.stringify(data, null, 2);
    const ok = status === 200;
    say(ok ? path.replace("/_caje/", "") + " done" : path.replace("/_caje/", "") + " answered " +
      status + (data.error ? ": " + data.error : ""), !ok);
    await refresh();
  } catch (error) {
    if (!(error instanceof Refused)) say(String(error), true);
  }
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("Token forgotten.");
  });
  $("purge-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { [$("purge-kind").value]: $("purge-value").value.trim() };
    if ($("purge-soft").checked) body.soft = true;
    act("POST", "/_caje/purge", body);
  });
  $("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadEntries(true).catch(fail);
  });
  $("more-button").addEventListener("click", () => loadEntries(false).catch(fail));
  $("populate-button").addEventListener("click", () => act("POST", "/_caje/populate"));
  $("clear-fs-button").addEventListener("click", () => {
    if (confirm("Remove every cached file of this node?")) act("POST", "/_caje/clear-fs");
  });
  $("clear-db-button").addEventListener("click", () => {
    if (confirm("Delete every row of the shared manifest (all nodes)?")) {
      act("POST", "/_caje/clear-db");
    }
  });
}

function fail(error) {
  if (!(error instanceof Refused)) say(String(error), true);
}

function start() {
  refresh().catch(fail);
}

wire();
start();
