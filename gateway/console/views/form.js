// One input per field type, and reading it back as the API's value.

import { h } from "../dom.js";

const SYSTEM = new Set(["id", "created_at", "updated_at", "created_by", "modified_by", "owner"]);

/** The fields a form shows: the object's own, not the ones the server stamps. */
export function editable(definition) {
  return Object.entries(definition.fields || {}).filter(([name, f]) => !SYSTEM.has(name) && !f.readonly && f.type !== "formula" && f.type !== "autonumber");
}

export function input(name, field, value) {
  const common = { name, id: `field-${name}`, "data-type": field.type };
  switch (field.type) {
    case "boolean":
      return h("input", { ...common, type: "checkbox", checked: value === true });
    case "number":
    case "currency":
    case "percent":
      return h("input", { ...common, type: "number", step: "any", value: value ?? "" });
    case "date":
      return h("input", { ...common, type: "date", value: value ?? "" });
    case "datetime":
      return h("input", { ...common, type: "datetime-local", value: value ? String(value).slice(0, 16) : "" });
    case "textarea":
    case "markdown":
    case "html":
      return h("textarea", { ...common, rows: 3, value: value ?? "" });
    case "select": {
      const select = h("select", common, h("option", { value: "" }, ""),
        (field.options || []).map((o) => h("option", { value: o.value ?? o }, o.label ?? o.value ?? o)));
      select.value = value ?? "";
      return select;
    }
    case "tags":
    case "multiselect":
      return h("input", { ...common, value: Array.isArray(value) ? value.join(", ") : value ?? "", placeholder: "a, b, c" });
    case "password":
      return h("input", { ...common, type: "password", autocomplete: "new-password", value: "" });
    default:
      return h("input", { ...common, type: field.type === "email" ? "email" : "text", value: value ?? "" });
  }
}

/** The input's value as the API takes it (`undefined` when left empty). */
export function read(field, el) {
  switch (field.type) {
    case "boolean":
      return el.checked;
    case "number":
    case "currency":
    case "percent":
      return el.value === "" ? undefined : Number(el.value);
    case "datetime":
      return el.value === "" ? undefined : new Date(el.value).toISOString();
    case "tags":
    case "multiselect":
      return el.value.trim() === "" ? undefined : el.value.split(",").map((s) => s.trim()).filter(Boolean);
    default:
      return el.value === "" ? undefined : el.value;
  }
}

/** A labelled row for a field, with a place for its error. */
export function row(name, field, control) {
  return h("div", { class: "form-row", "data-row": name },
    h("label", { for: control.id }, field.label || name, field.required ? h("span", { class: "req" }, " *") : null),
    control,
    h("div", { class: "field-error", "data-error-for": name }));
}

/** Shows an API error's field errors next to their fields; true when any was shown. */
export function showFieldErrors(form, error) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  let shown = false;
  for (const f of error.fieldErrors || []) {
    const el = form.querySelector(`[data-error-for="${CSS.escape(f.field)}"]`);
    if (el) {
      el.textContent = f.message;
      shown = true;
    }
  }
  return shown;
}
