// The console's shell: sign-in gate, navigation and the hash router. Each
// view is a module with `render(main, params)` that may return a cleanup.

import { call, get, setToken, token } from "./api.js";
import { fill, h } from "./dom.js";
import * as live from "./live.js";
import * as objects from "./views/objects.js";
import * as records from "./views/records.js";
import * as record from "./views/record.js";
import * as log from "./views/log.js";
import * as projections from "./views/projections.js";
import * as access from "./views/access.js";
import * as signin from "./views/signin.js";

const routes = [
  [/^#\/?$/, objects.list, "objects"],
  [/^#\/objects\/new$/, objects.create, "objects"],
  [/^#\/o\/([\w]+)\/define$/, objects.define, "objects"],
  [/^#\/o\/([\w]+)$/, records.render, "objects"],
  [/^#\/o\/([\w]+)\/new$/, record.create, "objects"],
  [/^#\/o\/([\w]+)\/([\w-]+)(?:\/at\/(\d+))?$/, record.render, "objects"],
  [/^#\/log$/, log.render, "log"],
  [/^#\/projections$/, projections.render, "projections"],
  [/^#\/access$/, access.render, "access"],
];

let me = null;
let cleanup = null;

async function session() {
  if (!token()) return null;
  try {
    const data = await get("/api/v1/auth/get-session");
    return data?.user ? data : null;
  } catch {
    return null;
  }
}

function layout(user) {
  const nav = (href, label, key) => h("a", { href, "data-nav": key }, label);
  return h("div", { class: "shell" },
    h("header", {},
      h("a", { class: "brand", href: "#/" }, "objectstack"),
      h("nav", {},
        nav("#/", "Objects", "objects"),
        nav("#/log", "Event log", "log"),
        nav("#/projections", "Projections", "projections"),
        nav("#/access", "Access", "access")),
      h("span", { class: "who", id: "who" }, user.email, h("span", { class: "live-dot", title: "realtime connection" })),
      h("button", { id: "sign-out", onclick: signOut }, "Sign out")),
    h("main", { id: "main" }));
}

async function signOut() {
  try {
    await call("POST", "/api/v1/auth/sign-out");
  } catch {
    // Signed out locally whatever the server said.
  }
  live.close();
  setToken(null);
  me = null;
  location.hash = "#/";
  await route();
}

async function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      // A view's cleanup never stops navigation.
    }
    cleanup = null;
  }
  live.reset();
  const root = document.getElementById("root");
  if (!me) me = await session();
  if (!me) {
    fill(root, signin.render(async () => {
      me = await session();
      await route();
    }));
    return;
  }
  if (!document.getElementById("main")) fill(root, layout(me.user));
  const main = document.getElementById("main");
  const hash = location.hash || "#/";
  for (const [pattern, view, key] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === key);
    fill(main, h("p", { class: "muted" }, "Loading…"));
    try {
      cleanup = (await view(main, match.slice(1).map((p) => (p === undefined ? undefined : decodeURIComponent(p))), me)) || null;
    } catch (error) {
      fill(main, h("div", { class: "error", role: "alert" }, error.message || String(error)));
    }
    return;
  }
  fill(main, h("p", {}, "No such page. ", h("a", { href: "#/" }, "Back to the objects")));
}

window.addEventListener("hashchange", route);
route();
