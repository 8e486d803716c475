// The shopper's companion, web version: same REST + WebSocket as the native app
// (docs/mobile-api.md). Install secret and tokens stay in this browser's localStorage;
// the WebSocket authenticates in its first frame, never in the URL.
const params = new URLSearchParams(location.search);
const STORE = params.get("store") || localStorage.getItem("vitrine.store") || "demo-rivoli";
localStorage.setItem("vitrine.store", STORE);
const S = {
  get: (k) => JSON.parse(localStorage.getItem(`vitrine.${k}`) || "null"),
  set: (k, v) => localStorage.setItem(`vitrine.${k}`, JSON.stringify(v)),
  clear: () => Object.keys(localStorage).filter((k) => k.startsWith("vitrine.")).forEach((k) => localStorage.removeItem(k)),
};
const PURPOSES = [
  ["guidance", "Help in the store", "Show me where the items I looked at are."],
  ["staff_recognition", "Let staff know I'm here", "Staff see my arrival and what I viewed."],
  ["journey_profile", "Remember my store visits", "What I tried and bought joins my account."],
];
const STATUS = { on_floor: ["on the floor", "ok"], stockroom_only: ["ask staff — in the stockroom", ""], not_in_store: ["not in this store", "no"] };
const app = document.getElementById("app");
const guides = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function toast(text) {
  const t = el("div", { class: "toast", role: "status" }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 2500);
}

async function call(path, options = {}, retry = true) {
  const tokens = S.get("tokens");
  const response = await fetch(path, {
    ...options,
    headers: { "content-type": "application/json", ...(tokens ? { authorization: `Bearer ${tokens.access_token}` } : {}) },
  });
  if (response.status === 401 && retry && tokens) {
    const r = await fetch("/v1/auth/refresh", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ refresh_token: tokens.refresh_token }) });
    if (r.ok) { S.set("tokens", await r.json()); return call(path, options, false); }
    S.set("tokens", null); render(); throw new Error("signed out");
  }
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || response.statusText);
  return response.status === 204 ? null : response.json();
}

async function signIn(webUserId) {
  let install = S.get("install");
  if (!install) { install = await call("/v1/installs", { method: "POST" }); S.set("install", install); }
  const { identity } = await call("/phone/demo/identity", { method: "POST", body: JSON.stringify({ web_user_id: webUserId }) });
  S.set("tokens", await call("/v1/auth/login", { method: "POST", body: JSON.stringify({ install_id: install.install_id, install_secret: install.secret, identity }) }));
  render();
}

function signInScreen() {
  const input = el("input", { type: "text", id: "web-user", value: params.get("as") || "demo-shopper", "aria-label": "Shop account" });
  app.replaceChildren(el("section", { class: "card" },
    el("h2", {}, "Welcome"),
    el("p", {}, "Sign in with your shop account to get help finding what you looked at online."),
    el("p", { class: "muted" }, "Demo: the online shop's sign-in is simulated; type any customer id."),
    input,
    el("p", {}),
    el("button", { class: "primary", id: "sign-in", onclick: () => signIn(input.value.trim()).catch((e) => toast(e.message)) }, "Sign in")));
}

function guideCard(event) {
  if (event.kind === "offer") {
    return el("section", { class: "card offer", "data-testid": "offer-card" }, el("h2", {}, "For you"), el("b", {}, event.title), el("p", {}, event.body));
  }
  return el("section", { class: "guide", "data-testid": "guidance-card", "data-visit": event.visit_id },
    el("div", { class: "msg" }, event.message || "Welcome in!"),
    el("ul", {}, (event.cards || []).map((c) => el("li", {},
      el("b", {}, `${c.name}${c.size ? ` · ${c.size}` : ""}`),
      el("small", {}, c.status === "on_floor" ? `${c.zone_name || c.zone}${c.rack ? ` — ${c.rack}` : ""}${c.count ? ` · ${c.count} in stock` : ""}` : (STATUS[c.status] || [c.status])[0])))));
}

function renderGuides() {
  const box = document.getElementById("guides");
  if (!box) return;
  box.replaceChildren(...(guides.length ? guides.slice(-3).reverse().map(guideCard) : [el("p", { class: "muted" }, "Cards appear here when you're in the store.")]));
}

function onEvent(event) {
  if (event.kind === "guidance" || event.kind === "offer") { guides.push(event); renderGuides(); }
  if (event.kind === "visit_closed") { document.getElementById("where").textContent = "Thanks for visiting"; document.getElementById("where").className = "where"; }
  if (event.kind === "guidance") setWhere(true);
}

function setWhere(inStore) {
  const where = document.getElementById("where");
  where.textContent = inStore ? `In store · ${STORE}` : "Not in a store";
  where.className = inStore ? "where in" : "where";
}

let socket = null;
function connect() {
  if (socket || !S.get("tokens")) return;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/me/stream`;
  socket = new WebSocket(url);
  socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token: S.get("tokens").access_token, last_seq: S.get("seq") }));
  socket.onmessage = (m) => {
    const frame = JSON.parse(m.data);
    if (frame.type === "ready" || frame.type === "reset") S.set("seq", frame.seq);
    if (frame.type === "event") { S.set("seq", frame.seq); onEvent(frame.event); }
  };
  socket.onclose = async (e) => {
    socket = null;
    if (e.code === 4401) { await call("/v1/me").catch(() => null); } // refreshes the token
    if (S.get("tokens")) setTimeout(connect, 1500);
  };
}

async function consentsCard() {
  const { consents } = await call("/v1/me/consents");
  return el("section", { class: "card", "aria-labelledby": "consents-h" },
    el("h2", { id: "consents-h" }, "Your choices"),
    PURPOSES.map(([purpose, title, help]) => el("label", { class: "switch" },
      el("span", { class: "text" }, title, el("small", {}, help)),
      el("input", {
        type: "checkbox", role: "switch", "data-purpose": purpose, "aria-label": title, checked: consents[purpose] === true,
        onchange: async (e) => {
          e.target.disabled = true;
          try { await call(`/v1/me/consents/${purpose}`, { method: "PUT", body: JSON.stringify({ granted: e.target.checked }) }); toast(`${title}: ${e.target.checked ? "on" : "off"}`); }
          catch (error) { e.target.checked = !e.target.checked; toast(error.message); }
          e.target.disabled = false;
        },
      }))),
    el("p", { class: "muted" }, "You can change these at any time."));
}

async function viewedCard() {
  const items = await call(`/v1/me/viewed-items?store=${encodeURIComponent(STORE)}`).catch(() => []);
  const byProduct = new Map();
  for (const i of items) {
    if (!byProduct.has(i.product_id)) byProduct.set(i.product_id, { name: i.name, spots: [] });
    if (i.count) byProduct.get(i.product_id).spots.push(i);
  }
  const sizes = ["XXS", "XS", "S", "M", "L", "XL", "XXL"];
  const rank = (s) => (sizes.indexOf(s) + 1) || 99;
  return el("section", { class: "card", "data-testid": "viewed" },
    el("h2", {}, "You looked at"),
    byProduct.size ? [...byProduct.values()].map((p) => {
      const floor = p.spots.filter((s) => s.zone_id !== "stockroom").sort((a, b) => rank(a.size) - rank(b.size));
      return el("div", { class: "item" },
        el("span", { class: "name" }, p.name,
          el("small", { class: "muted", style: "display:block;font-weight:400" },
            floor.length ? `${floor[0].zone_name || floor[0].zone_id} · sizes ${[...new Set(floor.map((s) => s.size))].join(", ")}` : "ask staff: in the stockroom")),
        el("span", { class: `tag ${p.spots.length ? "ok" : "no"}` }, p.spots.length ? "in store" : "not here"));
    }) : el("p", { class: "muted" }, "Nothing yet."));
}

function helpCard() {
  const text = el("textarea", { id: "help-text", placeholder: "What do you need? e.g. this shirt in M", "aria-label": "Message to staff" });
  return el("section", { class: "card" },
    el("h2", {}, "Ask staff"), text, el("p", {}),
    el("button", { class: "primary", id: "ask", onclick: async () => {
      try { await call("/v1/me/help-requests", { method: "POST", body: JSON.stringify({ store: STORE, text: text.value.trim() || "I'd like some help, please." }) }); text.value = ""; toast("A member of staff is on the way"); }
      catch (error) { toast(error.message); }
    } }, "Ask for help"));
}

function dataCard() {
  return el("section", { class: "card" },
    el("h2", {}, "Your data"),
    el("div", { class: "actions" },
      el("button", { onclick: async () => {
        const data = await call("/v1/me/export");
        const a = el("a", { href: URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" })), download: "my-vitrine-data.json" });
        a.click();
      } }, "Download my data"),
      el("button", { class: "danger", onclick: async () => {
        if (!confirm("Erase everything Vitrine holds about you? This cannot be undone.")) return;
        await call("/v1/me", { method: "DELETE" });
        if (socket) socket.close();
        S.clear(); toast("Erased"); render();
      } }, "Erase me")));
}

async function render() {
  if (!S.get("tokens")) { signInScreen(); return; }
  const [visit, consents, viewed] = await Promise.all([call("/v1/me/visit").catch(() => ({})), consentsCard(), viewedCard()]);
  if (visit.guidance && !guides.some((g) => g.event_id === visit.guidance.event_id)) guides.push(visit.guidance);
  setWhere(Boolean(visit.visit));
  app.replaceChildren(
    el("section", { class: "card" },
      el("h2", {}, "In the store?"),
      el("button", { class: "primary", id: "check-in", onclick: async () => {
        try { await call("/v1/me/check-in", { method: "POST", body: JSON.stringify({ store: STORE, method: "button" }) }); setWhere(true); toast("Checked in — welcome!"); }
        catch (error) { toast(error.message); }
      } }, "I'm in the store")),
    el("div", { id: "guides" }),
    viewed, helpCard(), consents, dataCard());
  renderGuides();
  connect();
}

render().catch((e) => toast(e.message));
