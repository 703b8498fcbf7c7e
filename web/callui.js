// Call control UI wiring: the side panel (participants, waiting room, chat, hands), the extra
// controls (panel, hand, reactions, host menu), attention, the unmute request dialog, hand marks on
// the tiles and the "lesson ends soon" banner. lesson.js calls createCallUi once per lesson screen.

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { CallState } from "./callstate.js";
import { createPanel } from "./panel.js";
import { createParticipants } from "./participants.js";
import { createWaiting } from "./waiting.js";
import { createChat } from "./chat.js";
import { createHands } from "./hands.js";
import { createReactions } from "./reactions.js";
import { createAttention } from "./attention.js";
import { createUnmuteRequest } from "./unmute_request.js";
import { createHostControls } from "./host_controls.js";
import { installFeatures } from "./features.js";
import { duration, closeModals } from "./modal.js";

export function createCallUi({ session, root, side, extra, grid, banner, notice }) {
  const state = new CallState(session);
  const ctx = { session, state, notice };
  const tileOf = (pid) => (pid ? grid.querySelector(`.tile[data-participant-id="${CSS.escape(pid)}"]`) : null);

  const people = createParticipants(ctx);
  const waiting = createWaiting(ctx);
  const chat = createChat(ctx);
  const hands = createHands(ctx);
  const panel = createPanel(side, [
    { key: "participants", label: t("tabParticipants"), body: people.el },
    { key: "waiting", label: t("tabWaiting"), body: waiting.el },
    { key: "chat", label: t("tabChat"), body: chat.el },
    { key: "hands", label: t("tabHands"), body: hands.el },
  ]);
  const reactions = createReactions({ ...ctx, tileOf });
  const host = createHostControls(ctx);
  createAttention(ctx);
  createUnmuteRequest(ctx);

  const panelBadge = h("span", { class: "ctl-badge", id: "panel-badge", hidden: true });
  const panelBtn = h("button", { class: "ctl", id: "btn-panel", type: "button", title: t("panel"), "aria-label": t("panel"),
    "aria-controls": "side", onclick: () => panel.toggle() },
  icon("panel"), h("span", { class: "long", text: t("panel") }),
  h("span", { class: "short", text: t("panel") }), panelBadge);
  extra.append(hands.button, reactions.button, panelBtn, host.button);
  const features = installFeatures({ ...ctx, root, side, extra, grid, banner, tileOf, panel });

  const ending = h("div", { class: "banner ending", id: "room-ending", role: "alert", hidden: true });
  banner.after(ending);
  let endsAt = 0;
  let endTimer = null;
  function renderEnding() {
    const left = (endsAt - Date.now()) / 1000;
    if (left <= 0) { ending.hidden = true; clearInterval(endTimer); return; }
    ending.hidden = false;
    ending.textContent = t("roomEnding", { time: duration(left < 60 ? left : Math.ceil(left / 60) * 60) });
  }

  function badges() {
    const mod = session.isModerator();
    const nWaiting = mod ? state.waiting.size : 0;
    if (panel.isOpen && panel.current === "chat") state.unread = 0;
    panel.setBadge("waiting", nWaiting);
    panel.setBadge("chat", state.unread);
    panel.setBadge("hands", state.hands.size);
    const total = nWaiting + state.unread;
    panelBadge.hidden = panel.isOpen || !total;
    panelBadge.textContent = String(total);
    panelBtn.classList.toggle("active", panel.isOpen);
    panelBtn.setAttribute("aria-expanded", String(panel.isOpen));
    panelBtn.hidden = session.status === "waiting" || session.status === "closed";
  }

  let wasModerator = null;
  let prevWaiting = 0;
  function roleChanged() {
    if (!session.you) return;
    const mod = session.isModerator();
    if (mod === wasModerator) return;
    const first = wasModerator === null;
    wasModerator = mod;
    panel.setTabVisible("waiting", mod);
    host.render();
    people.render();
    chat.render();
    hands.render();
    // hosts on a wide screen start with the panel open
    if (first && mod && !matchMedia("(max-width: 720px)").matches) panel.show(state.waiting.size ? "waiting" : "participants");
  }

  function markHands() {
    for (const tile of grid.querySelectorAll(".tile")) {
      const pid = tile.dataset.participantId;
      const up = Boolean(pid) && state.hands.has(pid);
      tile.classList.toggle("hand-up", up);
      let mark = tile.querySelector(":scope > .hand-mark");
      if (up && !mark) tile.appendChild(h("span", { class: "hand-mark", title: t("handUp") }, icon("hand")));
      else if (!up && mark) mark.remove();
    }
  }

  panel.onChange((key) => {
    if (key === "chat") state.unread = 0;
    badges();
  });
  state.addEventListener("change", (e) => {
    const { what } = e.detail;
    if (what === "ending") {
      endsAt = Date.now() + (e.detail.seconds_left || 0) * 1000;
      clearInterval(endTimer);
      endTimer = setInterval(renderEnding, 1000);
      renderEnding();
    }
    // someone new waits (or the queue we found on joining is not empty): a host on a wide screen
    // sees the queue, unless busy in the chat or the hands
    if (what === "waiting") {
      const grew = state.waiting.size > 0 && (e.detail.added || prevWaiting === 0);
      prevWaiting = state.waiting.size;
      if (grew && session.isModerator() && !matchMedia("(max-width: 720px)").matches
          && (!panel.isOpen || panel.current === "participants")) {
        panel.show("waiting");
      }
    }
    if (what === "hands") markHands();
    badges();
  });
  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (m.event === "locks_changed" && m.changed?.self_unmute === true && !session.isModerator()) notice(t("selfUnmuteLocked"));
  });
  session.addEventListener("participants", () => { roleChanged(); markHands(); badges(); });
  session.addEventListener("media", () => { roleChanged(); markHands(); });
  session.addEventListener("status", (e) => {
    if (e.detail.status === "joined") roleChanged();
    badges();
    if (e.detail.status === "closed") {
      clearInterval(endTimer);
      closeModals();
      for (const id of ["attention-status", "host-menu", "reaction-menu"]) {
        document.getElementById(id)?.remove();
      }
      document.body.classList.remove("panel-open");
    }
  });
  side.hidden = true;
  hands.render();
  reactions.render();
  host.render();
  badges();
  window.urok.call = state;
  window.urok.panel = panel;
  return { state, panel, features };
}
