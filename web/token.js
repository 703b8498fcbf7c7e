// Reads the access token from the URL (then takes it out of the URL) and decodes its JWT payload (no verification: the server
// verifies; the client only needs the name, role and expiry to show them before joining).

function base64UrlToBytes(s) {
  let b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  while (b64.length % 4) b64 += "=";
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/** The claims of a JWT, or null when it is not a well-formed JWT. Names are decoded as UTF-8. */
export function decodeJwt(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const json = new TextDecoder("utf-8", { fatal: true }).decode(base64UrlToBytes(parts[1]));
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

const STORE_PREFIX = "urok.token:"; // + the page's path: one token per lesson link, per tab

function storage() {
  try {
    return globalThis.sessionStorage || null; // per tab: survives a reload, gone with the tab
  } catch {
    return null; // storage disabled (some privacy settings throw on access)
  }
}

function roomFromPath(pathname) {
  const m = pathname.match(/^\/join\/([^/]+)/);
  if (!m) return "";
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1]; // a malformed %-escape: the server answers room_not_found for it
  }
}

/**
 * {token, claims, roomId} for this page (/join/{room_id}?token=... or #token=...).
 *
 * The join link carries the access token. Once read, it leaves the address bar and the tab's history
 * (history.replaceState swaps the current entry for the same URL without it: nothing to copy from
 * the address bar, to see over a shoulder or in a screen share, or to send as a Referer), and it is
 * kept in memory (the caller passes it to the session, which reconnects with it) and in this tab's
 * sessionStorage, so a reload of the same tab finds it again. Other parameters (lang, ...) stay.
 */
export function readToken(loc = location, hist = history, store = storage()) {
  const query = new URLSearchParams(loc.search);
  const fragment = new URLSearchParams(loc.hash.replace(/^#/, ""));
  const key = STORE_PREFIX + loc.pathname;
  let token = query.get("token") || fragment.get("token") || "";
  if (query.has("token") || fragment.has("token")) {
    const inFragment = fragment.has("token"); // else the fragment stays as it was (#anchor, not key=value)
    query.delete("token");
    fragment.delete("token");
    const q = query.toString();
    const f = inFragment ? fragment.toString() : loc.hash.replace(/^#/, "");
    hist.replaceState(hist.state, "", loc.pathname + (q ? `?${q}` : "") + (f ? `#${f}` : ""));
    try {
      if (token) store?.setItem(key, token);
    } catch {
      // storage full or disabled: this page still has the token in memory; only a reload loses it
    }
  } else {
    try {
      token = store?.getItem(key) || "";
    } catch {
      token = "";
    }
  }
  const claims = token ? decodeJwt(token) : null;
  return { token, claims, roomId: roomFromPath(loc.pathname) || claims?.room || "" };
}
