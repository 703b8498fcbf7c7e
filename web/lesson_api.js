// The REST calls of the e-journal pages (/lesson/{id}, /teacher): same origin, a Bearer token from
// the page's link, JSON in and out. A refusal becomes an ApiError with the server's stable code
// ({"error": {"code", "message", "details"}}), and explain() turns it into plain words.

import { t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message || code);
    this.status = status; // 0: the server was not reached
    this.code = code;
    this.details = details || {};
  }

  /** Worth trying again later by itself: no answer, overloaded, or the server failed. */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/**
 * api("POST", "/v1/lessons", {token, body}) -> {status, data, serverSkewMs}.
 * serverSkewMs: the server's clock minus ours, from the Date header (1 s resolution; 0 when absent),
 * so a countdown follows the server's clock even when the pupil's computer is a few minutes off.
 */
export async function api(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  const sent = Date.now();
  try {
    r = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(0, "network", String(e && e.message ? e.message : e));
  }
  const text = await r.text().catch(() => "");
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const serverDate = Date.parse(r.headers.get("Date") || "");
  const serverSkewMs = Number.isFinite(serverDate) ? serverDate - (sent + Date.now()) / 2 : 0;
  if (!r.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(r.status, err.code || `http_${r.status}`, err.message || r.statusText || "", err.details);
    e.serverSkewMs = serverSkewMs;
    throw e;
  }
  return { status: r.status, data, serverSkewMs };
}

/** A refusal in plain words for a teacher (the server's own message, where it helps, in brackets). */
export function explain(err) {
  if (!(err instanceof ApiError)) return t("apiErrOther", { status: "-", message: String(err && err.message ? err.message : err) });
  const message = err.message || err.code;
  if (err.status === 0) return t("apiErrNetwork");
  if (err.status === 401) return t("apiErr401");
  if (err.status === 403) return t("apiErr403", { message });
  if (err.status === 404) return t("apiErr404", { message });
  if (err.status === 409) return t("apiErr409", { message });
  if (err.status === 429) return t("apiErr429");
  if (err.status === 400 || err.status === 422) {
    const field = err.details && (err.details.field || err.details.path);
    return t(field ? "apiErr400Field" : "apiErr400", { message, field: field || "" });
  }
  return t("apiErrOther", { status: err.status, message });
}
