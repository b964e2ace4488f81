// The event log, as the audit trail shows it: filter by object, record,
// actor and event type; newest first; live (it asks again every 2 seconds).

import { get } from "../api.js";
import { errorBox, fill, h, show, when } from "../dom.js";
import { actor } from "../people.js";

export async function render(main) {
  const inputs = {
    object: h("input", { id: "log-object", placeholder: "object" }),
    recordId: h("input", { id: "log-record", placeholder: "record id" }),
    actor: h("input", { id: "log-actor", placeholder: "actor id" }),
    eventType: h("input", { id: "log-type", placeholder: "event type (data.update)" }),
  };
  const follow = h("input", { type: "checkbox", id: "log-live", checked: true });
  const body = h("tbody");
  const problem = h("div");
  const status = h("span", { class: "muted", id: "log-status" });
  async function load() {
    const params = new URLSearchParams({ limit: "100" });
    for (const [key, el] of Object.entries(inputs)) if (el.value.trim()) params.set(key, el.value.trim());
    try {
      const data = await get(`/api/v1/audit?${params}`);
      fill(problem);
      fill(body, (data.entries || []).map((e) => h("tr", { "data-position": e.metadata?.position },
        h("td", { class: "mono" }, e.metadata?.position ?? ""),
        h("td", {}, when(e.timestamp)),
        h("td", {}, e.eventType),
        h("td", {}, e.target?.type === undefined ? "" : h("a", { href: `#/o/${e.target.type}/${e.target.id}` }, `${e.target.type}/${String(e.target.id).slice(0, 8)}`)),
        h("td", {}, actor(e.actor?.id)),
        h("td", {}, (e.changes || []).filter((c) => !["updated_at", "modified_by"].includes(c.field)).map((c) => `${c.field}=${show(c.newValue)}`).join("; ")))));
      fill(status, `${data.total ?? (data.entries || []).length} events`);
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }
  fill(main,
    h("h1", {}, "Event log"),
    h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); load(); } },
      Object.values(inputs), h("button", { type: "submit", id: "log-apply" }, "Filter"),
      h("label", { class: "inline" }, follow, "live"), status),
    problem,
    h("table", { id: "log" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "When"), h("th", {}, "Event"), h("th", {}, "Target"), h("th", {}, "Actor"), h("th", {}, "Changes"))),
      body));
  await load();
  const timer = setInterval(() => { if (follow.checked) load(); }, 2000);
  return () => clearInterval(timer);
}
