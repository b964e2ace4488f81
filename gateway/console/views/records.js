// Records of one object: filter, sort and page through any number of them
// (the server filters, sorts and counts), refreshed live when one changes.

import { get } from "../api.js";
import { errorBox, fill, h, show } from "../dom.js";
import * as live from "../live.js";

const OPS = [["=", "="], ["!=", "≠"], [">", ">"], [">=", "≥"], ["<", "<"], ["<=", "≤"], ["contains", "contains"], ["startswith", "starts with"], ["in", "in (a, b)"]];
const PAGE = 25;

function columns(definition) {
  const names = Object.keys(definition.fields || {});
  const preferred = names.filter((n) => !["id", "created_at", "updated_at", "created_by", "modified_by", "owner"].includes(n));
  return preferred.slice(0, 6).concat(names.includes("updated_at") ? ["updated_at"] : []);
}

function typed(field, text) {
  if (["number", "currency", "percent"].includes(field?.type) && text !== "" && !isNaN(Number(text))) return Number(text);
  if (field?.type === "boolean") return text === "true";
  return text;
}

export async function render(main, [object]) {
  const definition = await get(`/api/v1/meta/object/${encodeURIComponent(object)}`);
  const fields = definition.fields || {};
  const state = { conditions: [], sort: "-updated_at", offset: 0 };
  const cols = columns(definition);
  const names = Object.keys(fields).concat(["id", "created_at", "updated_at"].filter((n) => !fields[n]));
  const fieldSelect = () => h("select", {}, names.map((n) => h("option", { value: n }, n)));
  const which = fieldSelect();
  which.id = "filter-field";
  const op = h("select", { id: "filter-op" }, OPS.map(([value, label]) => h("option", { value }, label)));
  const value = h("input", { id: "filter-value", placeholder: "value" });
  const chips = h("span", { class: "chips" });
  const sortField = fieldSelect();
  sortField.id = "sort-field";
  sortField.value = "updated_at";
  const sortDir = h("select", { id: "sort-dir" }, h("option", { value: "-" }, "descending"), h("option", { value: "" }, "ascending"));
  const body = h("tbody");
  const summary = h("span", { id: "summary", class: "muted" });
  const problem = h("div");
  const changed = h("span", { class: "flash", id: "changed" });

  async function load() {
    const params = new URLSearchParams({ top: String(PAGE), skip: String(state.offset), sort: state.sort });
    if (state.conditions.length) {
      const joined = [];
      state.conditions.forEach((c, i) => { if (i) joined.push("and"); joined.push(c); });
      params.set("filter", JSON.stringify(joined.length === 1 ? joined[0] : joined));
    }
    try {
      const data = await get(`/api/v1/data/${encodeURIComponent(object)}?${params}`);
      fill(problem);
      fill(body, data.records.map((r) => h("tr", { "data-id": r.id },
        h("td", {}, h("a", { href: `#/o/${object}/${r.id}`, class: "mono" }, r.id.slice(0, 8))),
        cols.map((c) => h("td", {}, show(r[c]))))));
      const last = Math.min(state.offset + data.records.length, data.total ?? 0);
      fill(summary, data.total ? `${state.offset + 1}–${last} of ${data.total}` : "no records");
      prev.disabled = state.offset === 0;
      next.disabled = !data.hasMore;
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }

  const redrawChips = () => fill(chips, state.conditions.map((c, i) => h("span", { class: "chip" }, `${c[0]} ${c[1]} ${show(c[2])} `,
    h("button", { class: "link", onclick: () => { state.conditions.splice(i, 1); state.offset = 0; redrawChips(); load(); } }, "×"))));
  const prev = h("button", { id: "prev", onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, "← Previous");
  const next = h("button", { id: "next", onclick: () => { state.offset += PAGE; load(); } }, "Next →");

  fill(main,
    h("div", { class: "bar" },
      h("h1", {}, definition.pluralLabel || definition.label || object),
      h("a", { href: `#/o/${object}/define` }, "definition"),
      h("a", { class: "button", id: "new-record", href: `#/o/${object}/new` }, "New record")),
    h("form", { class: "filters", onsubmit: (e) => {
      e.preventDefault();
      if (value.value === "") return;
      const raw = value.value;
      const v = op.value === "in" ? raw.split(",").map((s) => typed(fields[which.value], s.trim())) : typed(fields[which.value], raw);
      state.conditions.push([which.value, op.value, v]);
      value.value = "";
      state.offset = 0;
      redrawChips();
      load();
    } }, "Filter ", which, op, value, h("button", { type: "submit", id: "add-filter" }, "Add"), chips),
    h("div", { class: "filters" }, "Sort by ", sortField, sortDir,
      h("button", { id: "apply-sort", onclick: () => { state.sort = `${sortDir.value}${sortField.value}`; state.offset = 0; load(); } }, "Sort")),
    problem,
    h("table", { id: "records" },
      h("thead", {}, h("tr", {}, h("th", {}, "id"), cols.map((c) => h("th", {}, fields[c]?.label || c)))),
      body),
    h("div", { class: "bar" }, prev, summary, next, changed));
  await load();
  // When the list is usable (the console's benchmark reads it).
  performance.mark("objectstack:records");
  let timer = null;
  return live.watch(object, null, (change) => {
    fill(changed, `${change.action} ${String(change.payload?.id ?? "").slice(0, 8)}`);
    clearTimeout(timer);
    timer = setTimeout(load, 150);
  });
}
