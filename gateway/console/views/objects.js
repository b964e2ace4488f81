// Objects: the ones the signed-in user may use; defining a new one and
// altering one through the metadata API (a change that would break existing
// records is refused by the server with what breaks, shown as it comes).

import { call, get } from "../api.js";
import { errorBox, fill, h } from "../dom.js";

const TYPES = ["text", "textarea", "number", "currency", "percent", "boolean", "date", "datetime", "select", "email", "url", "phone", "lookup", "tags", "markdown"];

export async function list(main) {
  const { items } = await get("/api/v1/meta/object");
  const rows = items
    .filter((o) => o.name)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((o) => h("tr", { "data-object": o.name },
      h("td", {}, h("a", { href: `#/o/${o.name}` }, o.label || o.name)),
      h("td", { class: "mono" }, o.name),
      h("td", {}, Object.keys(o.fields || {}).length),
      h("td", {}, o.description || ""),
      h("td", {}, h("a", { href: `#/o/${o.name}/define` }, "definition"))));
  fill(main,
    h("div", { class: "bar" }, h("h1", {}, "Objects"), h("a", { class: "button", href: "#/objects/new", id: "new-object" }, "New object")),
    h("table", { id: "objects" },
      h("thead", {}, h("tr", {}, h("th", {}, "Label"), h("th", {}, "Name"), h("th", {}, "Fields"), h("th", {}, "Description"), h("th", {}))),
      h("tbody", {}, rows)));
}

function fieldRow(field = {}) {
  const type = h("select", { name: "type" }, TYPES.map((t) => h("option", { value: t }, t)));
  type.value = field.type || "text";
  const row = h("div", { class: "field-row" },
    h("input", { name: "name", placeholder: "field_name", value: field.name || "", pattern: "[a-z][a-z0-9_]*" }),
    h("input", { name: "label", placeholder: "Label", value: field.label || "" }),
    type,
    h("input", { name: "options", placeholder: "options (select): a, b, c" }),
    h("label", { class: "inline" }, h("input", { type: "checkbox", name: "required", checked: field.required }), "required"),
    h("button", { type: "button", class: "link", onclick: () => row.remove() }, "remove"));
  return row;
}

function readField(row) {
  const value = (name) => row.querySelector(`[name=${name}]`);
  const name = value("name").value.trim();
  if (!name) return null;
  const field = { type: value("type").value, label: value("label").value.trim() || name };
  if (value("required").checked) field.required = true;
  const options = value("options").value.split(",").map((o) => o.trim()).filter(Boolean);
  if (field.type === "select") field.options = options.map((o) => ({ label: o, value: o }));
  if (field.type === "lookup") field.reference = options[0] || "";
  return [name, field];
}

export async function create(main) {
  const name = h("input", { id: "object-name", placeholder: "project", pattern: "[a-z][a-z0-9_]*", required: true });
  const label = h("input", { id: "object-label", placeholder: "Project" });
  const fields = h("div", { id: "fields" }, fieldRow());
  const problem = h("div");
  const form = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const definition = { name: name.value.trim(), label: label.value.trim() || name.value.trim(), fields: {} };
    for (const row of fields.children) {
      const field = readField(row);
      if (field) definition.fields[field[0]] = field[1];
    }
    try {
      await call("PUT", `/api/v1/meta/object/${encodeURIComponent(definition.name)}`, definition);
      location.hash = `#/o/${definition.name}`;
    } catch (error) {
      fill(problem, errorBox(error));
    }
  } },
  h("h1", {}, "New object"),
  h("label", {}, "Name", name),
  h("label", {}, "Label", label),
  h("h2", {}, "Fields"),
  fields,
  h("button", { type: "button", id: "add-field", onclick: () => fields.append(fieldRow()) }, "Add a field"),
  problem,
  h("div", { class: "actions" }, h("button", { type: "submit", id: "save-object" }, "Create object")));
  fill(main, form);
}

export async function define(main, [object]) {
  const definition = await get(`/api/v1/meta/object/${encodeURIComponent(object)}`);
  const problem = h("div", { id: "define-error" });
  const added = h("div", { id: "new-fields" });
  const required = new Map();
  const rows = Object.entries(definition.fields || {}).map(([name, field]) => {
    const box = h("input", { type: "checkbox", checked: field.required, "data-field": name });
    required.set(name, box);
    return h("tr", {},
      h("td", { class: "mono" }, name), h("td", {}, field.label || ""), h("td", {}, field.type),
      h("td", {}, box),
      h("td", {}, (field.options || []).map((o) => o.value ?? o).join(", ") || field.reference || ""));
  });
  const save = async () => {
    const next = structuredClone(definition);
    for (const [name, box] of required) {
      if (box.checked) next.fields[name].required = true;
      else delete next.fields[name].required;
    }
    for (const row of added.children) {
      const field = readField(row);
      if (field) next.fields[field[0]] = field[1];
    }
    try {
      await call("PUT", `/api/v1/meta/object/${encodeURIComponent(object)}`, next);
      location.hash = `#/o/${object}`;
    } catch (error) {
      fill(problem, errorBox(error), error.details ? h("pre", {}, JSON.stringify(error.details, null, 2)) : null);
    }
  };
  fill(main,
    h("div", { class: "bar" }, h("h1", {}, `${definition.label || object}: definition`), h("a", { href: `#/o/${object}` }, "records")),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Field"), h("th", {}, "Label"), h("th", {}, "Type"), h("th", {}, "Required"), h("th", {}, "Options / reference"))),
      h("tbody", {}, rows)),
    h("h2", {}, "Add fields"),
    added,
    h("button", { type: "button", id: "add-new-field", onclick: () => added.append(fieldRow()) }, "Add a field"),
    problem,
    h("div", { class: "actions" }, h("button", { id: "save-definition", onclick: save }, "Save definition")),
    h("p", { class: "muted" }, "A change that would leave existing records impossible to edit is refused, with what breaks and how many records."));
}
