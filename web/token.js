// Reads the access token from the URL and decodes its JWT payload (no verification: the server
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

/** {token, claims, roomId} from location (/join/{room_id}?token=...). */
export function readToken(loc = location) {
  const token = new URLSearchParams(loc.search).get("token") || "";
  const m = loc.pathname.match(/^\/join\/([^/]+)/);
  const claims = token ? decodeJwt(token) : null;
  return { token, claims, roomId: m ? decodeURIComponent(m[1]) : claims?.room || "" };
}
