// One record: view and edit it (with its version, so an edit made meanwhile
// by someone else is a conflict explained, not lost), delete it, its history
// from the audit trail, and the record as it was at any earlier moment.

import { call, get } from "../api.js";
import { errorBox, fill, h, show, when } from "../dom.js";
import * as live from "../live.js";
import { actor } from "../people.js";
import { editable, input, read, row, showFieldErrors } from "./form.js";

function values(definition, form) {
  const out = {};
  for (const [name, field] of editable(definition)) {
    const el = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (el) out[name] = read(field, el);
  }
  return out;
}

export async function create(main, [object]) {
  const definition = await get(`/api/v1/meta/object/${encodeURIComponent(object)}`);
  const problem = h("div", { id: "form-error" });
  const form = h("form", { class: "card", id: "record-form", onsubmit: async (event) => {
    event.preventDefault();
    const body = Object.fromEntries(Object.entries(values(definition, form)).filter(([, v]) => v !== undefined && v !== false));
    try {
      const { data } = await call("POST", `/api/v1/data/${encodeURIComponent(object)}`, body);
      location.hash = `#/o/${object}/${data.id}`;
    } catch (error) {
      const byField = showFieldErrors(form, error);
      fill(problem, byField ? h("div", { class: "error", role: "alert" }, "Some fields need attention.") : errorBox(error));
    }
  } },
  h("h1", {}, `New ${definition.label || object}`),
  editable(definition).map(([name, field]) => row(name, field, input(name, field, field.defaultValue))),
  problem,
  h("div", { class: "actions" }, h("button", { type: "submit", id: "save-record" }, "Create"), h("a", { href: `#/o/${object}` }, "Cancel")));
  fill(main, form);
}

function historyList(object, id, entries) {
  return h("ol", { class: "history", id: "history" }, entries.map((entry) => {
    const position = entry.metadata?.position;
    const changes = (entry.changes || []).filter((c) => !["updated_at", "modified_by", "created_at", "created_by", "id"].includes(c.field));
    return h("li", { "data-position": position },
      h("div", {}, h("strong", {}, entry.eventType), " by ", actor(entry.actor?.id), " · ", when(entry.timestamp), " · ",
        position ? h("a", { href: `#/o/${object}/${id}/at/${position}`, class: "as-of-link" }, `as of #${position}`) : null),
      changes.length ? h("ul", {}, changes.map((c) => h("li", { "data-field": c.field },
        h("span", { class: "mono" }, c.field), ": ", h("del", {}, show(c.oldValue)), " → ", h("ins", {}, show(c.newValue))))) : null);
  }));
}

export async function render(main, [object, id, at]) {
  const base = `/api/v1/data/${encodeURIComponent(object)}/${encodeURIComponent(id)}`;
  const definition = await get(`/api/v1/meta/object/${encodeURIComponent(object)}`);
  if (at) return asOf(main, object, id, Number(at), definition, base);
  const problem = h("div", { id: "form-error" });
  const notice = h("div", { id: "notice" });
  const history = h("div");
  let version = null;
  let dirty = false;
  let saving = false;
  let loadedAt = 0;
  let record = null;

  const form = h("form", { class: "card", id: "record-form", oninput: () => { dirty = true; } });

  async function loadRecord() {
    const { data, headers } = await call("GET", base);
    record = data.record;
    loadedAt = Number(headers.get("x-log-position")) || 0;
    version = (headers.get("etag") || "").replace(/[W/"]/g, "");
    dirty = false;
    fill(form,
      h("div", { class: "bar" }, h("h1", {}, record.name || record.title || record.subject || `${definition.label || object} ${id.slice(0, 8)}`),
        h("span", { class: "muted", id: "version" }, `version ${version}`)),
      h("p", { class: "muted mono" }, id),
      editable(definition).map(([name, field]) => row(name, field, input(name, field, record[name]))),
      problem,
      h("div", { class: "actions" },
        h("button", { type: "submit", id: "save-record" }, "Save"),
        h("button", { type: "button", id: "delete-record", class: "danger", onclick: remove }, "Delete")));
  }

  async function loadHistory() {
    try {
      const data = await get(`${base}/history`);
      fill(history, h("h2", {}, "History"), historyList(object, id, data.entries || []));
    } catch (error) {
      fill(history, h("h2", {}, "History"), errorBox(error));
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const now = values(definition, form);
    const patch = {};
    for (const [name, value] of Object.entries(now)) {
      const before = record[name];
      if (JSON.stringify(value ?? null) !== JSON.stringify(before ?? null) && !(value === false && before === undefined)) patch[name] = value ?? null;
    }
    if (!Object.keys(patch).length) return;
    saving = true;
    try {
      await call("PATCH", base, patch, { "if-match": `"${version}"` });
      saving = false;
      fill(notice, h("div", { class: "ok" }, "Saved."));
      await loadRecord();
      await loadHistory();
    } catch (error) {
      saving = false;
      if (error.status === 409 || error.status === 412 || error.code === "concurrent_modification") {
        const current = error.details?.currentVersion;
        fill(problem, h("div", { class: "error", role: "alert", id: "conflict" },
          `Someone else changed this record since you opened it (you edited version ${version}${current ? `, it is now at version ${current}` : ""}). `,
          "Your changes were not saved and are still in the form. ",
          h("button", { type: "button", onclick: async () => { await loadRecord(); await loadHistory(); } }, "Load their version")));
      } else if (!showFieldErrors(form, error)) {
        fill(problem, errorBox(error));
      } else {
        fill(problem, h("div", { class: "error", role: "alert" }, "Some fields need attention."));
      }
    }
  });

  async function remove() {
    if (!confirm("Delete this record?")) return;
    try {
      await call("DELETE", base, undefined, { "if-match": `"${version}"` });
      location.hash = `#/o/${object}`;
    } catch (error) {
      fill(problem, errorBox(error));
    }
  }

  await loadRecord();
  fill(main, h("div", { class: "crumbs" }, h("a", { href: `#/o/${object}` }, definition.pluralLabel || object), " / ", id.slice(0, 8)),
    notice, h("div", { class: "two" }, form, history));
  await loadHistory();
  return live.watch(object, { id }, async (change) => {
    // This tab's own save (reloaded when it is answered) and what it has already loaded are not news.
    if (change.payload?.id !== id || saving || change.position <= loadedAt) return;
    if (change.action === "deleted") {
      fill(notice, h("div", { class: "error" }, "This record was deleted elsewhere."));
      return;
    }
    if (dirty) {
      fill(notice, h("div", { class: "warn", id: "changed-elsewhere" }, "This record was changed elsewhere while you edit it; saving will report a conflict. ",
        h("button", { onclick: async () => { await loadRecord(); await loadHistory(); fill(notice); } }, "Load the new version")));
      return;
    }
    await loadRecord();
    await loadHistory();
    fill(notice, h("div", { class: "ok", id: "updated-live" }, `Updated live: ${change.action} by `, actor(change.userId), "."));
  });
}

async function asOf(main, object, id, position, definition, base) {
  let shown;
  try {
    const data = await get(`${base}?asOf=${position}`);
    shown = h("table", { id: "as-of-record" }, h("tbody", {}, Object.entries(data.record).map(([name, value]) =>
      h("tr", { "data-field": name }, h("th", {}, definition.fields?.[name]?.label || name), h("td", {}, show(value))))));
  } catch (error) {
    shown = errorBox(error);
  }
  fill(main,
    h("div", { class: "crumbs" }, h("a", { href: `#/o/${object}` }, definition.pluralLabel || object), " / ",
      h("a", { href: `#/o/${object}/${id}` }, id.slice(0, 8)), ` / as of #${position}`),
    h("div", { class: "warn" }, `The record as it was at log position ${position} (read-only). `,
      h("a", { href: `#/o/${object}/${id}` }, "Back to now")),
    moment(object, id, position),
    h("div", { class: "card" }, shown),
    h("h2", {}, "The list as of then"),
    await listAsOf(object, position));
}

/** Another moment: a log position, or a time (the last position at or before it). */
function moment(object, id, position) {
  const at = h("input", { id: "as-of-input", placeholder: "log position, or 2026-12-03T10:00:00Z", value: String(position) });
  const problem = h("span");
  return h("form", { class: "filters", onsubmit: async (event) => {
    event.preventDefault();
    const text = at.value.trim();
    if (/^\d+$/.test(text)) {
      location.hash = `#/o/${object}/${id}/at/${text}`;
      return;
    }
    try {
      const found = await get(`/api/v1/audit?to=${encodeURIComponent(new Date(text).toISOString())}&limit=1`);
      const last = found.entries?.[0]?.metadata?.position;
      if (last) location.hash = `#/o/${object}/${id}/at/${last}`;
      else fill(problem, "nothing had happened by then");
    } catch (error) {
      fill(problem, errorBox(error));
    }
  } }, "As of ", at, h("button", { type: "submit", id: "as-of-go" }, "Show"), problem);
}

async function listAsOf(object, position) {
  try {
    const data = await get(`/api/v1/data/${encodeURIComponent(object)}?asOf=${position}&top=25`);
    const cols = Object.keys(data.records[0] || {}).filter((c) => !["created_by", "modified_by"].includes(c)).slice(0, 6);
    return h("table", { id: "as-of-list" },
      h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
      h("tbody", {}, data.records.map((r) => h("tr", {}, cols.map((c) => h("td", {}, show(r[c])))))),
      h("caption", {}, `${data.total ?? data.records.length} records then`));
  } catch (error) {
    return errorBox(error);
  }
}
