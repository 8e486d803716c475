// The staff dashboard: arrivals with context, tasks, the store map, device health.
import { api, ago, el, liveStream, signInForm, token } from "/web/common.js";

const params = new URLSearchParams(location.search);
const state = { store: params.get("store"), alerts: new Map(), tasks: new Map(), health: new Map(), deadletters: 0 };
const $ = (id) => document.getElementById(id);

const STATUS_TEXT = { on_floor: "on the floor", stockroom_only: "stockroom only", not_in_store: "not in this store" };

function cardLine(card) {
  const where = card.status === "not_in_store"
    ? (card.nearest_store ? `nearest: ${card.nearest_store}` : "not in store")
    : [card.zone_name || card.zone, card.rack].filter(Boolean).join(" · ") + (card.count ? ` (${card.count})` : "");
  return el("li", {},
    el("span", { class: "name" }, card.name),
    card.size ? el("span", { class: "badge" }, card.size) : null,
    el("span", { class: `status-${card.status}` }, STATUS_TEXT[card.status] || card.status),
    el("span", { class: "where" }, where));
}

function renderAlerts() {
  const list = [...state.alerts.values()].filter((a) => a.status !== "closed")
    .sort((a, b) => b.created_at.localeCompare(a.created_at));
  $("arrivals-count").textContent = list.length;
  if (!list.length) { $("arrivals").replaceChildren(el("p", { class: "empty" }, "No one has arrived yet.")); return; }
  $("arrivals").replaceChildren(...list.map((a) => keyed(a, () => {
    const e = a.alert;
    return el("article", { class: `alert ${a.status}`, "data-testid": "arrival-card", "data-alert": a.id, "data-visit": a.visit_id || e.visit_id },
      el("div", { class: "top" },
        el("span", { class: "who" }, e.shopper_label || "Shopper"),
        e.tier ? el("span", { class: "badge tier" }, e.tier) : null,
        (e.click_and_collect || []).length ? el("span", { class: "badge cc" }, `click & collect ×${e.click_and_collect.length}`) : null,
        el("span", { class: "when" }, `${e.zone ? `in ${e.zone} · ` : ""}${ago(a.created_at)}`)),
      (e.cards || []).length
        ? el("ul", {}, e.cards.map(cardLine))
        : el("p", { class: "empty" }, "No recent online views."),
      el("div", { class: "actions" },
        el("button", { class: "primary", disabled: a.status !== "open", onclick: () => transition("alerts", a.id, "claim") }, a.status === "open" ? "Claim" : `Claimed${a.claimed_by ? ` by ${a.claimed_by}` : ""}`),
        el("button", { disabled: a.status === "acknowledged", onclick: () => transition("alerts", a.id, "acknowledge") }, "Acknowledge"),
        el("button", { onclick: () => transition("alerts", a.id, "close") }, "Done")));
  })));
}

// Re-rendering keeps the node of an unchanged alert, so a finger (or a test)
// pressing its button never has it replaced underneath.
const nodes = new Map();
function keyed(a, build) {
  const sig = JSON.stringify([a.status, a.claimed_by, a.alert, ago(a.created_at)]);
  const old = nodes.get(a.id);
  if (old && old.sig === sig) return old.node;
  const node = build();
  nodes.set(a.id, { sig, node });
  return node;
}

function renderTasks() {
  const list = [...state.tasks.values()].filter((t) => t.status !== "closed")
    .sort((a, b) => b.created_at.localeCompare(a.created_at));
  $("tasks-count").textContent = list.length;
  if (!list.length) { $("tasks").replaceChildren(el("p", { class: "empty" }, "Nothing to do.")); return; }
  $("tasks").replaceChildren(...list.map((t) => el("div", { class: "task", "data-testid": "task" },
    el("span", { class: "badge kind" }, t.task.replaceAll("_", " ")),
    el("span", { class: "text" }, t.text, t.zone_id ? el("small", {}, ` · ${t.zone_id}`) : null),
    el("button", { disabled: t.status !== "open", onclick: () => transition("tasks", t.id, "claim") }, t.status === "open" ? "Claim" : t.status),
    el("button", { onclick: () => transition("tasks", t.id, "close") }, "Done"))));
}

async function transition(kind, id, action) {
  try {
    const updated = await api(`/v1/staff/${kind}/${encodeURIComponent(id)}/${action}`, { method: "POST" });
    (kind === "alerts" ? state.alerts : state.tasks).set(updated.id, updated);
  } catch (error) { console.warn(error); }
  kind === "alerts" ? renderAlerts() : renderTasks();
}

function renderHealth() {
  const rows = [...state.health.entries()].sort();
  if (!rows.length) return;
  $("health").replaceChildren(...rows.map(([id, h]) => {
    const s = String(h.status || h.state || (h.online === false ? "offline" : "ok")).toLowerCase();
    const cls = /ok|online|up|healthy|connected/.test(s) ? "ok" : /degraded|warn|lost|gap/.test(s) ? "warn" : "bad";
    return el("tr", { "data-testid": "device" },
      el("td", {}, el("span", { class: `dot ${cls}` }), id),
      el("td", {}, h.kind),
      el("td", {}, s));
  }));
}

// The count and the arrival cards must agree: cards come live on the stream, so
// an arrival re-reads the map at once instead of waiting for the next poll (the
// poll only catches what the stream does not carry: anonymous shoppers, exits).
// Coalesced without timers: one read in flight, at most one more queued.
let mapInFlight = null;
let mapAgain = false;
function refreshMapNow() {
  if (mapInFlight) { mapAgain = true; return; }
  mapInFlight = refreshMap().finally(() => {
    mapInFlight = null;
    if (mapAgain) { mapAgain = false; refreshMapNow(); }
  });
}

async function refreshMap() {
  if (!state.store) return;
  try {
    const m = await api(`/v1/web/stores/${encodeURIComponent(state.store)}/map`);
    const W = Math.max(...m.zones.map((z) => z.x + z.w), 1), H = Math.max(...m.zones.map((z) => z.y + z.h), 1);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("class", "map");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Map of ${m.name}`);
    const add = (tag, attrs, text) => {
      const n = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (text !== undefined) n.textContent = text;
      svg.append(n);
      return n;
    };
    for (const z of m.zones) {
      const y = H - z.y - z.h; // layout origin is bottom-left
      add("rect", { x: z.x, y, width: z.w, height: z.h, rx: 0.3, class: `zone z-${z.type}`, "data-zone": z.id, "data-items": z.items_in_stock });
      add("text", { x: z.x + 0.4, y: y + 1.0 }, z.name);
      add("text", { x: z.x + 0.4, y: y + 1.8, class: "small" }, `${z.items_in_stock} items`);
      if (z.identified_shoppers) {
        add("circle", { cx: z.x + z.w - 1, cy: y + 1, r: 0.6, fill: "#2f5bea" });
        add("text", { x: z.x + z.w - 1.25, y: y + 1.25, class: "small", fill: "#fff" }, z.identified_shoppers);
      }
    }
    for (const r of m.racks) add("circle", { cx: r.x, cy: H - r.y, r: 0.35, fill: "#64748b" });
    $("map").replaceChildren(svg, el("p", { class: "empty" }, `${m.shoppers_in_store} shoppers in store · blue: opted-in shoppers per zone`));
  } catch (error) { console.warn(error); }
}

async function loadLists() {
  const s = encodeURIComponent(state.store);
  for (const [path, into] of [[`/v1/stores/${s}/staff/alerts`, state.alerts], [`/v1/stores/${s}/staff/tasks`, state.tasks]]) {
    try { for (const row of await api(path)) into.set(row.id, row); } catch (error) { console.warn(path, error.message); }
  }
  renderAlerts(); renderTasks();
  // How many times the lists were read and shown (a browser test waits on it).
  document.body.dataset.listsShown = String(Number(document.body.dataset.listsShown || 0) + 1);
}

function onEvent(name, data) {
  if (name === "staff" && data.kind === "staff_alert") {
    const known = state.alerts.get(data.alert_id);
    state.alerts.set(data.alert_id, { id: data.alert_id, visit_id: data.visit_id, status: known ? known.status : "open", claimed_by: known?.claimed_by, created_at: data.created_at, alert: data });
    renderAlerts();
    refreshMapNow();
  } else if (name === "staff" && data.kind === "staff_task") {
    const known = state.tasks.get(data.task_id);
    state.tasks.set(data.task_id, { id: data.task_id, task: data.task, text: data.text, zone_id: data.zone, status: known ? known.status : "open", created_at: data.created_at });
    renderTasks();
  } else if (name === "health") {
    state.health.set(data.device, { kind: data.device_kind, ...data.health });
    renderHealth();
  } else if (name === "gateway") {
    state.health.set(`gateway ${data.gateway}`, { kind: "gateway", status: data.state });
    renderHealth();
  } else if (name === "deadletter") {
    state.deadletters += 1;
    $("deadletters").textContent = `${state.deadletters} dead letters`;
    $("deadletters").className = "pill warn";
  }
}

async function main() {
  if (!token()) { signInForm($("root"), "Staff sign-in"); return; }
  try {
    const stores = await api("/v1/web/stores");
    if (!state.store) state.store = stores[0]?.id;
    $("store-name").textContent = stores.find((s) => s.id === state.store)?.name || state.store || "no store imported";
  } catch (error) {
    if (error.status === 401 || error.status === 403) { signInForm($("root"), "Staff sign-in (token refused)"); return; }
  }
  if (!state.store) return;
  liveStream(`/v1/web/stores/${encodeURIComponent(state.store)}/stream`, onEvent, (up) => {
    $("live").className = `pill ${up ? "live" : "down"}`;
    $("live").textContent = up ? "live" : "reconnecting";
    if (up) { loadLists(); refreshMapNow(); } // events missed while away
  });
  refreshMapNow();
  setInterval(refreshMapNow, 5000);
  // The stream is the fast path; re-reading the lists now and then also picks
  // up claims made on another tablet.
  setInterval(loadLists, 15000);
  setInterval(renderAlerts, 30000); // "x min ago"
}

main();
