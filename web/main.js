// Entry point: token check -> the link check at the server (before any device is asked for) ->
// pre-join screen -> lesson -> end screen.

import { t, lang } from "./i18n.js";
import { readToken } from "./token.js";
import { h, clear } from "./dom.js";
import { preJoin } from "./prejoin.js";
import { runLesson } from "./lesson.js";
import { langSwitch } from "./langswitch.js";

const app = document.getElementById("app");
document.documentElement.lang = lang;
document.title = t("title");
window.urok = window.urok || {};

export function showMessage(text, { kind = "error", action = null, id = "message" } = {}) {
  clear(app);
  const card = h("div", { class: `message-card ${kind}`, role: kind === "error" ? "alert" : "status", id },
    h("p", { class: "message-text", text }));
  if (action) card.appendChild(h("button", { class: "primary", onclick: action.run, text: action.label }));
  card.appendChild(langSwitch());
  app.appendChild(h("div", { class: "message-screen" }, card));
  window.urok.screen = "message";
}

/** The server's word on the link before the camera is asked for: {ok, info} or {ok: false, key, params}.
 *  A network failure lets the page go on (the lesson's own socket says what is wrong then). */
export async function checkLink(token, roomId) {
  let r;
  try {
    r = await fetch(`/join/${encodeURIComponent(roomId)}/check`, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  } catch {
    return { ok: true, info: null };
  }
  let body = {};
  try { body = await r.json(); } catch {}
  if (r.ok) {
    if (body.ended) return { ok: false, key: body.name ? "linkEnded" : "linkEndedUnnamed", params: { name: body.name } };
    return { ok: true, info: body };
  }
  const code = body.error?.code || "";
  if (r.status === 401) return { ok: false, key: code === "expired_token" || /expired/i.test(body.error?.message || "") ? "expiredToken" : "badToken" };
  if (r.status === 404) return { ok: false, key: "linkNotFound" };
  return { ok: true, info: null };
}

async function main() {
  const { token, claims, roomId } = readToken();
  if (!token) return showMessage(t("noToken"));
  if (!claims) return showMessage(t("badToken"));
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now() - 10000) return showMessage(t("expiredToken"));
  window.urok.claims = claims;
  clear(app);
  app.appendChild(h("p", { class: "boot", id: "link-checking", text: t("linkChecking") }));
  const link = await checkLink(token, roomId);
  window.urok.link = link;
  window.urok.linkReason = link.ok ? null : link.key;
  if (!link.ok) return showMessage(t(link.key, link.params || {}));
  for (;;) {
    const local = await preJoin(app, { claims, roomId, info: link.info });
    const outcome = await runLesson(app, { token, claims, local, info: link.info, roomId });
    if (outcome !== "rejoin") return undefined;
  }
}

main().catch((e) => {
  console.error(e);
  showMessage(String(e && e.message ? e.message : e));
});
