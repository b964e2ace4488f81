// Projections and processes: where each is in the log, its lag and state,
// events it parked; a rebuild started from here shows its progress.

import { call, get } from "../api.js";
import { errorBox, fill, h, show } from "../dom.js";

function progress(r) {
  const share = r.head ? Math.min(100, Math.round((100 * r.applied) / r.head)) : 100;
  return h("span", {}, h("progress", { max: "100", value: String(share) }),
    r.done ? ` done: ${r.applied} events, swapped in` : ` ${r.applied} / ${r.head} events (${show(r.eventsPerSecond)}/s)`);
}

export async function render(main) {
  const body = h("tbody");
  const processes = h("tbody");
  const problem = h("div");
  async function load() {
    try {
      const data = await get("/api/v1/projections");
      fill(problem);
      fill(body, data.projections.map((p) => h("tr", { "data-projection": p.name },
        h("td", {}, p.name), h("td", { class: "version" }, p.version), h("td", {}, p.store), h("td", {}, p.position), h("td", {}, p.head), h("td", {}, p.lag),
        h("td", { class: `state-${p.state}` }, p.state),
        h("td", {}, (p.deadLetters || []).length),
        h("td", { class: "rebuild" }, p.rebuild ? progress(p.rebuild) : ""),
        h("td", {}, h("button", { "data-rebuild": p.name, onclick: () => rebuild(p.name) }, "Rebuild")))));
      fill(processes, (data.processes || []).map((p) => h("tr", {},
        h("td", {}, p.name), h("td", {}, p.position), h("td", {}, p.lag), h("td", {}, p.steps), h("td", {}, p.failures), h("td", {}, p.lastFailure ?? ""))));
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }
  async function rebuild(name) {
    try {
      await call("POST", `/api/v1/projections/${encodeURIComponent(name)}/rebuild`);
      await load();
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }
  fill(main,
    h("h1", {}, "Projections"),
    problem,
    h("table", { id: "projections" },
      h("thead", {}, h("tr", {}, ["Name", "Version", "Store", "Position", "Head", "Lag", "State", "Parked", "Rebuild", ""].map((t) => h("th", {}, t)))),
      body),
    h("h2", {}, "Processes"),
    h("table", { id: "processes" },
      h("thead", {}, h("tr", {}, ["Name", "Position", "Lag", "Steps", "Failures", "Last failure"].map((t) => h("th", {}, t)))),
      processes));
  await load();
  const timer = setInterval(load, 1000);
  return () => clearInterval(timer);
}
