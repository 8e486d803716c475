// Shared by the staff and analytics pages: the staff token, API calls, the SSE reader.
// The token arrives once in the URL fragment (#token=…, never sent to a server),
// is kept in sessionStorage for this tab, and travels only in Authorization headers.
const KEY = "vitrine.staff.token";

export function token() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem(KEY, hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

export function signOut() { sessionStorage.removeItem(KEY); location.reload(); }

export class ApiError extends Error {
  constructor(status, detail) { super(`${status}: ${detail}`); this.status = status; }
}

export async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { authorization: `Bearer ${token()}`, accept: "application/json", ...(options.headers || {}) },
  });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response.json();
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function signInForm(root, title) {
  root.replaceChildren(el("section", { class: "panel signin" },
    el("h2", {}, title),
    el("p", {}, "Paste a staff token (", el("code", {}, "vitrine auth token --role staff"), ")."),
    el("textarea", { id: "token-input", "aria-label": "Staff token" }),
    el("div", { class: "actions" }, el("button", {
      class: "primary",
      onclick: () => {
        sessionStorage.setItem(KEY, document.getElementById("token-input").value.trim());
        location.reload();
      },
    }, "Sign in")),
  ));
}

// Read a text/event-stream with fetch (EventSource cannot send Authorization).
// Calls onEvent(name, data) per event and onState(true|false) on (dis)connection;
// reconnects with a capped back-off until stopped.
export function liveStream(path, onEvent, onState) {
  let stopped = false;
  let delay = 1000;
  async function connect() {
    while (!stopped) {
      try {
        const response = await fetch(path, { headers: { authorization: `Bearer ${token()}`, accept: "text/event-stream" } });
        if (!response.ok) throw new ApiError(response.status, response.statusText);
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let name = "message", data = "";
            for (const line of frame.split("\n")) {
              if (line.startsWith("event: ")) name = line.slice(7);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (name === "hello") onState(true);
            if (data) onEvent(name, JSON.parse(data));
          }
        }
      } catch (error) {
        if (error.status === 401) { onState(false); return; }
      }
      onState(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
  connect();
  return () => { stopped = true; };
}

export function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}
