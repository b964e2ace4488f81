// Who did something: a user's name in place of their id, looked up once per
// id through the user object (as the signed-in user may read it).

import { get } from "./api.js";
import { h } from "./dom.js";

const names = new Map();

function lookup(id) {
  if (!names.has(id)) {
    names.set(id, get(`/api/v1/data/user/${encodeURIComponent(id)}`).then((data) => data?.record?.name || data?.record?.email || id, () => id));
  }
  return names.get(id);
}

/** An element naming the actor `id`: the id at once, the user's name when known. */
export function actor(id) {
  if (!id || id === "system" || id === "anonymous") return h("span", { class: "actor" }, id || "unknown");
  const el = h("span", { class: "actor", title: id }, id.slice(0, 8));
  lookup(id).then((name) => { el.textContent = name; });
  return el;
}
