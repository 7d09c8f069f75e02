// compound dashboard: plain JavaScript, no build step, no outside request.
// The token lives in sessionStorage and goes in an Authorization header, also
// for the event stream and the logs (fetch streams, not EventSource, so the
// token never appears in a URL).
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { token: sessionStorage.getItem("compound-token"), role: null, project: null,
                projects: [], series: {}, jobs: new Map(), events: null, logs: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

function showError(err) {
  const banner = $("#banner");
  if (!err) { banner.hidden = true; banner.textContent = ""; return; }
  banner.hidden = false;
  banner.textContent = err.message + (err.hint ? " — " + err.hint : "");
}

async function api(path, opts = {}) {
  const headers = { Authorization: "Bearer " + state.token, ...(opts.body ? { "Content-Type": "application/json" } : {}) };
  const res = await fetch(path, { ...opts, headers });
  if (res.status === 401) { logout("The token was refused: log in again."); throw new Error("unauthorised"); }
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) { const e = new Error(data.message || res.statusText); e.hint = data.hint; e.status = res.status; throw e; }
  return data;
}

// --- login -----------------------------------------------------------------------------

async function login(token) {
  state.token = token;
  try {
    state.role = (await api("/api/v1/whoami")).role;
  } catch (e) { if (e.message !== "unauthorised") showError(e); return; }
  sessionStorage.setItem("compound-token", token);
  document.body.classList.toggle("readonly", state.role !== "operator");
  $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
  showError(null);
  state.projects = await api("/api/v1/projects");
  renderProjects();
  if (state.projects.length) selectProject(state.projects[0].name);
  else { $("#app").hidden = true; showError({ message: "This server serves no project.", hint: "start it with -f compose.yaml" }); }
  followEvents();
  setInterval(pollMetrics, 3000);
}

function logout(message) {
  sessionStorage.removeItem("compound-token");
  state.token = null;
  $("#login").hidden = false; $("#app").hidden = true; $("#logout").hidden = true;
  if (message) showError({ message });
  $("#token").focus();
}

function renderProjects() {
  const nav = $("#projects");
  nav.replaceChildren(...state.projects.map((p) =>
    el("button", { type: "button", "aria-current": String(p.name === state.project), onclick: () => selectProject(p.name) }, p.name)));
}

function selectProject(name) {
  state.project = name;
  state.series = {};
  renderProjects();
  const select = $("#log-service");
  const services = state.projects.find((p) => p.name === name).services.map((s) => s.name);
  select.replaceChildren(el("option", { value: "" }, "all services"), ...services.map((s) => el("option", { value: s }, s)));
  refreshAll();
  followLogs();
}

const base = () => "/api/v1/projects/" + encodeURIComponent(state.project);

async function refreshAll() {
  await Promise.all([refreshInstances(), refreshAdvice(), refreshHistory(), refreshDrift(), refreshVolumes(), refreshHosts(), pollMetrics()]);
}

async function guarded(fn, target) {
  try { await fn(); } catch (e) { if (e.message !== "unauthorised") target.replaceChildren(el("p", { class: "bad" }, e.message + (e.hint ? " — " + e.hint : ""))); }
}

// --- services and instances ---------------------------------------------------------------

let instancesCache = [];

async function refreshInstances() {
  const tbody = $("#instances tbody");
  try {
    instancesCache = await api(base() + "/instances");
  } catch (e) { if (e.message !== "unauthorised") showError(e); return; }
  $("#instances-empty").hidden = instancesCache.length > 0;
  tbody.replaceChildren(...instancesCache.map((r) => {
    const status = r.status + (r.health ? " (" + r.health + ")" : "") + (r.status === "exited" ? " (" + r.exit_code + ")" : "");
    const good = r.status === "running" && (!r.health || r.health === "healthy");
    return el("tr", { "data-instance": r.name, "data-runtime": r.runtime },
      el("th", { scope: "row" }, r.name),
      el("td", {}, r.service),
      el("td", {}, el("span", { class: "badge " + r.runtime }, r.runtime)),
      el("td", { class: "kernel" }, String(r.kernel)),
      el("td", {}, String(r.accel)),
      el("td", {}, typeof r.boot_time === "number" ? r.boot_time.toFixed(1) + " s" : "-"),
      el("td", { class: good ? "ok" : "bad" }, status),
      el("td", {}, spark(r.name, "cpu")),
      el("td", {}, spark(r.name, "mem")),
      el("td", { class: "operator" },
        ...["restart", "stop", "start"].map((verb) => el("button", { type: "button", class: "small",
          "aria-label": verb + " service " + r.service, onclick: () => act(base() + "/services/" + r.service + "/" + verb, {}) }, verb))));
  }));
}

function spark(instance, kind) {
  const points = (state.series[instance] || {})[kind] || [];
  const last = points.length ? points[points.length - 1] : null;
  const label = last === null ? "-" : kind === "cpu" ? (last * 100).toFixed(1) + " %" : (last / 1048576).toFixed(1) + " MiB";
  const max = Math.max(...points, kind === "cpu" ? 0.01 : 1);
  const coords = points.map((v, i) => `${(i / Math.max(points.length - 1, 1)) * 88 + 1},${21 - (v / max) * 20}`).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark"); svg.setAttribute("viewBox", "0 0 90 22"); svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords); svg.append(line);
  return el("span", { class: "metric", "data-kind": kind }, svg, " ", label);
}

// Prometheus text, the few families the sparklines need
async function pollMetrics() {
  if (!state.project) return;
  let text;
  try { text = await api("/metrics"); } catch { return; }
  const now = Date.now() / 1000;
  const re = /^compound_instance_(cpu_seconds_total|memory_bytes)\{([^}]*)\} (\S+)$/gm;
  let m;
  while ((m = re.exec(text))) {
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (labels.project !== state.project) continue;
    const s = (state.series[labels.instance] ||= { cpu: [], mem: [], lastCpu: null });
    const value = parseFloat(m[3]);
    if (m[1] === "memory_bytes") s.mem.push(value);
    else {
      if (s.lastCpu) s.cpu.push(Math.max(0, (value - s.lastCpu.v) / (now - s.lastCpu.t)));
      s.lastCpu = { v: value, t: now };
    }
    s.cpu = s.cpu.slice(-30); s.mem = s.mem.slice(-30);
  }
  for (const row of document.querySelectorAll("#instances tbody tr")) {
    const name = row.dataset.instance;
    for (const cell of row.querySelectorAll(".metric")) cell.replaceWith(spark(name, cell.dataset.kind));
  }
}

// --- actions, jobs, events --------------------------------------------------------------------

async function act(path, body) {
  try {
    const job = await api(path, { method: "POST", body: JSON.stringify(body) });
    trackJob({ ...job, events: [] });
    showError(null);
  } catch (e) { if (e.message !== "unauthorised") showError(e); }
}

function trackJob(job) {
  state.jobs.set(job.id, { ...(state.jobs.get(job.id) || {}), ...job });
  renderJobs();
}

function renderJobs() {
  const jobs = [...state.jobs.values()].filter((j) => j.project === state.project).reverse().slice(0, 8);
  $("#jobs-empty").hidden = jobs.length > 0;
  $("#jobs").replaceChildren(...jobs.map((j) => {
    const last = (j.events || []).slice(-1)[0];
    return el("li", { "data-job": j.id, "data-state": j.state },
      el("b", {}, j.action + (j.target ? " " + j.target : "")), " ",
      el("span", { class: j.state === "succeeded" ? "ok" : j.state === "running" ? "muted" : "bad" }, j.state),
      last ? el("span", { class: "step" }, [last.item, last.status, last.detail, last.note].filter(Boolean).join(" · ")) : "",
      j.error ? el("span", { class: "step bad" }, j.error.message + (j.error.hint ? " — " + j.error.hint : "")) : "");
  }));
}

async function followEvents() {
  const live = $("#live");
  for (;;) {
    try {
      const res = await fetch("/api/v1/events", { headers: { Authorization: "Bearer " + state.token } });
      if (!res.ok) throw new Error(res.statusText);
      live.textContent = "live"; live.classList.add("on");
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch { /* the server went away: say so, then try again */ }
    live.textContent = "reconnecting"; live.classList.remove("on");
    if (!state.token) return;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

let refreshTimer = null;
function refreshSoon() { clearTimeout(refreshTimer); refreshTimer = setTimeout(() => { refreshInstances(); }, 300); }

function onEvent(ev) {
  if (ev.type.startsWith("job.")) {
    const job = state.jobs.get(ev.job) || { id: ev.job, project: ev.project, action: ev.action, target: "", events: [], state: "running" };
    if (ev.type === "job.progress") job.events = [...(job.events || []), ev];
    if (ev.type === "job.finished") {
      job.state = ev.state;
      api("/api/v1/jobs/" + ev.job).then((full) => trackJob(full)).catch(() => {});
      refreshAll();
      if (ev.project === state.project) followLogs();  // instances may have been replaced
    }
    trackJob(job);
  }
  if (ev.project === state.project) refreshSoon();
}

// --- advice, history, drift, volumes, hosts ------------------------------------------------

async function refreshAdvice() {
  const box = $("#advice");
  await guarded(async () => {
    const data = await api(base() + "/advice");
    box.replaceChildren(...data.services.map((s) => el("div", { class: "advice" },
      el("b", {}, s.service), ` (declared ${s.declared_runtime}): advised `, el("span", { class: "badge " + s.runtime }, s.runtime),
      ` on ${s.host_class} (confidence ${Number(s.confidence).toFixed(2)})`,
      el("ul", { class: "factors" },
        ...s.factors.map((f) => el("li", {}, `${f.why} → ${f.toward}`)),
        ...(s.would_change || []).map((w) => el("li", {}, "would change: " + w))))));
    if (!data.services.length) box.replaceChildren(el("p", { class: "empty" }, "No service."));
  }, box);
}

async function refreshHistory() {
  const list = $("#history");
  await guarded(async () => {
    const revisions = await api(base() + "/history?limit=15");
    $("#history-empty").hidden = revisions.length > 0;
    list.replaceChildren(...revisions.map((r) => el("li", { "data-revision": r.revision },
      el("b", {}, "rev " + r.revision), r.live ? el("span", { class: "ok" }, " (live)") : "", " ",
      new Date(r.started * 1000).toLocaleTimeString(), " ", r.command, " — ",
      el("span", { class: r.outcome === "succeeded" ? "ok" : "bad" }, r.outcome),
      r.live && r.revision > 1 ? el("button", { type: "button", class: "small operator rollback", onclick: () => confirmRollback(r) }, "Roll back…") : "")));
  }, list);
}

function confirm(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

async function confirmRollback(rev) {
  // what that revision changed goes back; the services it left alone stay
  const services = ((rev.plan || {}).services || []).filter((s) => s.summary !== "unchanged").map((s) => s.service);
  if (await confirm(`Roll back ${services.join(", ") || "every service"} of ${state.project} to what ran before revision ${rev.revision}?`))
    act(base() + "/rollback", { services });
}

async function refreshDrift() {
  const box = $("#drift");
  await guarded(async () => {
    const d = await api(base() + "/drift");
    const files = d.instances.filter((i) => i.drifted);
    if (!files.length && !d.config.length) { box.replaceChildren(el("p", { class: "empty" }, "No drift: what runs is what the file says.")); return; }
    box.replaceChildren(el("ul", {},
      ...files.map((f) => el("li", {}, el("b", {}, f.instance), ": ", f.changes.slice(0, 5).map((c) => c.kind + " " + c.path).join(", ") + (f.changes.length > 5 ? " …" : ""))),
      ...d.config.map((c) => el("li", {}, el("b", {}, c.instance || c.service), ": ", c.reason))));
  }, box);
}

async function refreshVolumes() {
  const box = $("#volumes");
  await guarded(async () => {
    const data = await api(base() + "/volumes");
    if (!data.volumes.length) { box.replaceChildren(el("p", { class: "empty" }, "This project has no volume.")); return; }
    box.replaceChildren(
      el("ul", {}, ...data.volumes.map((v) => el("li", {}, el("b", {}, v.key || v.name), " ", v.exists ? (v.services || []).join(", ") : "(not created)", " ",
        v.key ? el("button", { type: "button", class: "small operator", onclick: () => act(base() + "/volumes/" + v.key + "/backup", {}) }, "Back up") : ""))),
      data.backups.length ? el("ul", {}, ...data.backups.map((b) => el("li", {}, b.archive, " ", el("span", { class: "muted" }, (b.bytes / 1024).toFixed(1) + " KiB"))))
                          : el("p", { class: "empty" }, "No backup made here yet."));
  }, box);
}

async function refreshHosts() {
  const box = $("#hosts");
  await guarded(async () => {
    const hosts = await api("/api/v1/hosts");
    const used = instancesCache.reduce((sum, r) => sum + (((state.series[r.name] || {}).mem || []).slice(-1)[0] || 0), 0);
    box.replaceChildren(...hosts.map((h) => el("div", {},
      el("b", {}, h.name), ` ${h.cpus} CPUs, ${(h.memory / 1073741824).toFixed(1)} GiB, KVM ${h.kvm_usable ? "usable" : "not usable"}`,
      el("div", { class: "bar", role: "img", "aria-label": "memory used by this project" }, el("span", { style: `width:${Math.min(100, (used / h.memory) * 100).toFixed(1)}%` })),
      el("span", { class: "muted" }, `this project: ${(used / 1048576).toFixed(0)} MiB`))));
  }, box);
}

// --- logs -------------------------------------------------------------------------------

async function followLogs() {
  if (state.logs) state.logs.abort();
  const controller = new AbortController();
  state.logs = controller;
  const pre = $("#logs");
  pre.textContent = "";
  const service = $("#log-service").value;
  const url = base() + "/logs?follow=true&tail=50" + (service ? "&service=" + encodeURIComponent(service) : "");
  try {
    const res = await fetch(url, { headers: { Authorization: "Bearer " + state.token }, signal: controller.signal });
    if (!res.ok) { pre.textContent = "logs unavailable: " + res.statusText; return; }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = (pre.textContent + decoder.decode(value, { stream: true })).slice(-100000);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
  } catch { /* aborted: another service was chosen */ }
}

// --- wiring -------------------------------------------------------------------------------

$("#login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("#token").value.trim()); });
$("#logout").addEventListener("click", () => logout());
$("#up").addEventListener("click", () => act(base() + "/up", { force_recreate: $("#force").checked }));
$("#down").addEventListener("click", async () => {
  if (await confirm(`Remove every instance of ${state.project}? Volumes are kept.`)) act(base() + "/down", {});
});
$("#log-service").addEventListener("change", followLogs);
if (state.token) login(state.token); else $("#token").focus();
