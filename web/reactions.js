// Reactions: a button with the fixed emoji set; each `reaction` shows briefly on the sender's tile.

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { EMOJI } from "./callstate.js";
import { popover, failure } from "./modal.js";

const TWEMOJI = "/web/vendor/node_modules/@twemoji/svg/";

/** An emoji drawn from the shipped twemoji SVGs (served by urok itself: web/vendor), so machines
 *  without an emoji font show it too; the character stays as alt text. */
export function emojiImg(emoji) {
  const code = [...emoji].map((c) => c.codePointAt(0)).filter((cp) => cp !== 0xfe0f).map((cp) => cp.toString(16)).join("-");
  return h("img", { class: "emoji", src: `${TWEMOJI}${code}.svg`, alt: emoji, draggable: "false" });
}

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
        type: "button", class: "emoji-btn", title: emoji, "aria-label": emoji, dataset: { emoji },
        onclick: async () => {
          close();
          try { await session.request("react", { emoji }); } catch (e) { notice(failure(e)); }
        },
      }, emojiImg(emoji)))));
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
    const bubble = h("span", { class: "reaction-bubble", "aria-hidden": "true", dataset: { emoji: e.detail.emoji } }, emojiImg(e.detail.emoji));
    tile.appendChild(bubble);
    setTimeout(() => bubble.remove(), 3000);
  });
  session.addEventListener("status", render);
  session.addEventListener("server", (e) => { if (e.detail.event === "locks_changed") render(); });
  session.addEventListener("participants", render);
  return { button, render };
}
