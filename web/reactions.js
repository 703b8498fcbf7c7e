// Reactions: a button with the fixed emoji set; each `reaction` shows briefly on the sender's tile.

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { EMOJI } from "./callstate.js";
import { popover, failure } from "./modal.js";

export function createReactions({ session, state, notice, tileOf }) {
  const button = h("button", { class: "ctl", id: "btn-react", type: "button", title: t("reactions"), "aria-label": t("reactions"),
    "aria-haspopup": "dialog" },
    icon("smile"), h("span", { class: "long", text: t("react") }),
    h("span", { class: "short", text: t("react") }));
  const pop = popover(button, {
    id: "reaction-menu",
    className: "reaction-menu",
    build(el, close) {
      el.appendChild(h("div", { class: "emoji-row" }, EMOJI.map((emoji) => h("button", {
        type: "button", class: "emoji-btn", text: emoji, title: emoji, dataset: { emoji },
        onclick: async () => {
          close();
          try { await session.request("react", { emoji }); } catch (e) { notice(failure(e)); }
        },
      }))));
    },
  });
  button.addEventListener("click", () => pop.toggle());

  function render() {
    const lock = session.room?.settings?.lock || {};
    const locked = Boolean(lock.reactions) && !session.isModerator();
    button.disabled = locked;
    button.title = locked ? t("reactionsLocked") : t("reactions");
    button.hidden = session.status !== "joined";
  }

  state.addEventListener("change", (e) => {
    if (e.detail.what !== "reaction") return;
    const tile = tileOf(e.detail.participant_id);
    if (!tile) return;
    const bubble = h("span", { class: "reaction-bubble", text: e.detail.emoji, "aria-hidden": "true" });
    tile.appendChild(bubble);
    setTimeout(() => bubble.remove(), 3000);
  });
  session.addEventListener("status", render);
  session.addEventListener("server", (e) => { if (e.detail.event === "locks_changed") render(); });
  session.addEventListener("participants", render);
  return { button, render };
}
