// The console is a client of the public API, nothing more: every call goes
// through here with the signed-in user's token, so it may do exactly what
// that user may do on any other surface.

const TOKEN = "objectstack.console.token";
let position = 0;

/** An error answered in the protocol's envelope. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "http_error";
    this.fieldErrors = error?.fieldErrors || [];
    this.details = error?.details || null;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN, value);
  else sessionStorage.removeItem(TOKEN);
}

/** The last log position this tab wrote or read: later reads wait for it (read-your-writes). */
export function seen() {
  return position;
}

/**
 * Calls the API: `{data, headers}` (data unwrapped from `{success, data}`),
 * or throws an ApiError.
 */
export async function call(method, path, body, headers = {}) {
  const sent = { ...headers };
  const bearer = token();
  if (bearer) sent.authorization = `Bearer ${bearer}`;
  if (position > 0 && !sent["x-min-position"]) sent["x-min-position"] = String(position);
  if (body !== undefined) sent["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { code: "unreachable", message: `the server could not be reached (${e.message})` });
  }
  const at = Number(response.headers.get("x-log-position"));
  if (at > position) position = at;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok || json?.success === false) {
    if (response.status === 401 && bearer) setToken(null);
    throw new ApiError(response.status, json?.error || { message: text || response.statusText });
  }
  const data = json && typeof json === "object" && "success" in json ? json.data : json;
  return { data, headers: response.headers };
}

export async function get(path) {
  return (await call("GET", path)).data;
}

/** `[[field, op, value], ...]` joined by and, as the list route's `filter`. */
export function filterParam(conditions) {
  return conditions.length ? JSON.stringify(conditions) : "";
}
