// Entry point: token check -> pre-join screen -> lesson.

import { t, lang } from "./i18n.js";
import { readToken } from "./token.js";
import { h, clear } from "./dom.js";
import { preJoin } from "./prejoin.js";
import { runLesson } from "./lesson.js";

const app = document.getElementById("app");
document.documentElement.lang = lang;
document.title = t("title");
window.urok = window.urok || {};

export function showMessage(text, { kind = "error", action = null } = {}) {
  clear(app);
  const card = h("div", { class: `message-card ${kind}`, role: kind === "error" ? "alert" : "status", id: "message" },
    h("p", { class: "message-text", text }));
  if (action) card.appendChild(h("button", { class: "primary", onclick: action.run, text: action.label }));
  app.appendChild(h("div", { class: "message-screen" }, card));
  window.urok.screen = "message";
}

async function main() {
  const { token, claims, roomId } = readToken();
  if (!token) return showMessage(t("noToken"));
  if (!claims) return showMessage(t("badToken"));
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now() - 10000) return showMessage(t("expiredToken"));
  window.urok.claims = claims;
  for (;;) {
    const local = await preJoin(app, { claims, roomId });
    const outcome = await runLesson(app, { token, claims, local });
    if (outcome !== "rejoin") return undefined;
  }
}

main().catch((e) => {
  console.error(e);
  showMessage(String(e && e.message ? e.message : e));
});
