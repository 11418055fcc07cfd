// The console's one way to the API: the session's CSRF token on every state-changing call,
// errors turned into ApiError with the server's own "error" and "detail", and TOTP step-up
// in one place: a 401 {"error":"step-up"} asks for a code and retries the call once with
// X-HSMCA-TOTP.
import { askStepUpCode } from "./ui.js";

let csrfToken = null;
let onSignedOut = null;

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    this.detail = detail || "";
  }
}

export function setCsrf(token) {
  csrfToken = token;
}

// Called when the session has ended (401 session-expired): the app shows the sign-in form.
export function setSignedOutHandler(fn) {
  onSignedOut = fn;
}

async function once(method, path, body, headers) {
  const h = { Accept: "application/json", ...headers };
  const init = { method, headers: h, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET" && method !== "HEAD" && csrfToken) h["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(path, init);
}

async function parse(res) {
  const type = res.headers.get("Content-Type") || "";
  if (type.startsWith("application/json")) {
    try {
      return await res.json();
    } catch (e) {
      return null;
    }
  }
  return await res.text();
}

// api("GET", "/api/v1/whoami") -> the parsed JSON body, or throws ApiError.
// opts.raw: return the Response itself (CSV downloads); opts.headers: extra headers.
export async function api(method, path, body, opts = {}) {
  let res = await once(method, path, body, opts.headers || {});
  let data = opts.raw && res.ok ? null : await parse(res.clone());
  if (res.status === 401 && data && data.error === "step-up") {
    const code = await askStepUpCode(data.detail || "");
    if (code === null) throw new ApiError(401, "step-up", "cancelled: no TOTP code was given");
    res = await once(method, path, body, { ...(opts.headers || {}), "X-HSMCA-TOTP": code });
    data = opts.raw && res.ok ? null : await parse(res.clone());
  }
  if (res.ok) return opts.raw ? res : data;
  const err =
    data && typeof data === "object"
      ? new ApiError(res.status, data.error, data.detail)
      : new ApiError(res.status, "", typeof data === "string" ? data.slice(0, 300) : "");
  if (res.status === 401 && err.code === "session-expired" && onSignedOut) onSignedOut(err);
  throw err;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
