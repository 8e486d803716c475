// The e-commerce team's view: ROPO funnel, footfall and dwell, guidance effect.
import { api, el, signInForm, token } from "/web/common.js";

const $ = (id) => document.getElementById(id);
const STEPS = [
  ["viewed_online", "viewed online"], ["visited", "visited a store"], ["located", "found it"],
  ["tried_on", "tried it on"], ["bought_in_store", "bought in store"], ["bought_online_after_visit", "bought online after"],
];
const DAYS = 7;

let products = new Map();
const label = (id) => products.get(id)?.name || id;

function funnelChart(rows) {
  if (!rows.length) return [el("p", { class: "empty" }, "No online views yet.")];
  const max = Math.max(1, ...rows.map((r) => r.viewed_online));
  return rows
    .sort((a, b) => b.visited - a.visited || b.viewed_online - a.viewed_online)
    .slice(0, 12)
    .map((r) => el("div", { class: "chart-row", "data-testid": "funnel-row", "data-product": products.get(r.product_id)?.online_product_id || r.product_id, "data-store": r.store_id },
      el("div", { class: "label" }, label(r.product_id), el("small", {}, r.store_id)),
      el("div", { class: "bars" }, STEPS.map(([key, label], i) => el("div", { class: "bar", "data-step": key },
        el("span", { class: "n" }, r[key]),
        el("span", { class: `fill f${i}`, style: `width:${(r[key] / max) * 70}%` }),
        label)))));
}

async function refresh() {
  const to = new Date(Date.now() + 60_000), from = new Date(to.getTime() - DAYS * 86_400_000);
  const period = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
  if (!products.size) products = new Map((await api("/v1/web/products")).map((p) => [p.id, p]));
  const [funnel, guidance] = await Promise.all([api(`/v1/analytics/funnel?${period}`), api(`/v1/analytics/guidance?${period}`)]);
  $("funnel").replaceChildren(...funnelChart(funnel.rows));
  const stores = [...new Set(funnel.rows.map((r) => r.store_id))];
  const known = await api("/v1/web/stores");
  const store = new URLSearchParams(location.search).get("store") || stores[0] || known[0]?.id;
  if (store) {
    $("store-name").textContent = known.find((s) => s.id === store)?.name || store;
    const f = await api(`/v1/analytics/footfall?store=${encodeURIComponent(store)}&${period}`);
    $("kpi-visits").textContent = f.visits;
    $("kpi-identified").textContent = f.identified_visits;
    $("kpi-dwell").textContent = f.mean_dwell_s == null ? "–" : `${Math.round(f.mean_dwell_s / 60)} min`;
    const most = Math.max(1, ...f.zones.map((z) => z.visits));
    $("footfall").replaceChildren(...f.zones.sort((a, b) => b.visits - a.visits).map((z) => el("tr", {},
      el("td", {}, z.zone_id),
      el("td", { class: "num" }, el("div", { class: "bar" }, el("span", { class: "n" }, z.visits),
        el("span", { class: "fill f1", style: `width:${(z.visits / most) * 140}px` }))))));
  }
  const delivered = guidance.rows.reduce((n, r) => n + r.delivered, 0);
  const acted = guidance.rows.reduce((n, r) => n + r.acted_upon, 0);
  $("kpi-guided").textContent = delivered ? `${Math.round((acted / delivered) * 100)} %` : "–";
  $("guidance").replaceChildren(...guidance.rows.slice(0, 12).map((r) => el("tr", { "data-testid": "guidance-row" },
    el("td", {}, label(r.product_id)), el("td", { class: "num" }, r.delivered), el("td", { class: "num" }, r.acted_upon))));
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function main() {
  if (!token()) { signInForm($("root"), "Sign in to analytics"); return; }
  $("legend").replaceChildren(...STEPS.map(([, label], i) => el("span", {}, el("i", { class: `f${i}` }), label)));
  try { await refresh(); } catch (error) {
    if (error.status === 401 || error.status === 403) { signInForm($("root"), "Sign in (token refused)"); return; }
    console.warn(error);
  }
  setInterval(() => refresh().catch((e) => console.warn(e)), 5000);
}

main();
