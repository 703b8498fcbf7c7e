// Hands: the raise/lower button in the controls and the queue tab (first raised first, with the
// waiting time; hosts and co-hosts lower one or all).

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { duration, requestOrNotice } from "./modal.js";
import { personName } from "./participants.js";

export function createHands({ session, state, notice }) {
  const button = h("button", { class: "ctl", id: "btn-hand", type: "button" });
  const list = h("ol", { class: "hand-list", id: "hand-list" });
  const empty = h("p", { class: "empty", text: t("handsEmpty") });
  const lowerAll = h("button", { type: "button", class: "secondary", id: "lower-all", text: t("lowerAll"),
    onclick: () => run("lower_hand", { all: true }) });
  const el = h("div", { class: "pane-inner" }, h("div", { class: "pane-tools" }, lowerAll), empty, list);

  const run = (type, fields) => requestOrNotice(session, notice, type, fields);

  button.addEventListener("click", () => run(state.hands.has(session.me) ? "lower_hand" : "raise_hand", {}));

  function renderButton() {
    const up = state.hands.has(session.me);
    const long = t(up ? "lowerHand" : "raiseHand");
    button.replaceChildren(icon("hand"),
      h("span", { class: "long", text: long }), h("span", { class: "short", text: t("hand") }));
    button.title = long;
    button.setAttribute("aria-label", long);
    button.setAttribute("aria-pressed", String(up));
    button.classList.toggle("active", up);
    button.hidden = session.status !== "joined";
  }

  function render() {
    renderButton();
    const queue = state.handQueue();
    const mod = session.isModerator();
    empty.hidden = queue.length > 0;
    lowerAll.hidden = !mod || queue.length === 0;
    const now = state.serverNow();
    list.replaceChildren(...queue.map((hq) => {
      const p = session.participants.get(hq.participant_id);
      const li = h("li", { class: "hand-row", dataset: { participantId: hq.participant_id } },
        h("span", { class: "person-name", text: p ? personName(p) : hq.name || "?" }),
        h("span", { class: "since", text: duration(now - hq.raised_at) }));
      if (mod) {
        li.appendChild(h("button", { type: "button", class: "secondary small", dataset: { action: "lower" }, text: t("actLowerHand"),
          onclick: () => run("lower_hand", { participant_id: hq.participant_id }) }));
      }
      return li;
    }));
  }

  state.addEventListener("change", (e) => {
    if (e.detail.what !== "hands") return;
    if (e.detail.lowered === session.me && e.detail.by && e.detail.by !== session.me) notice(t("handLoweredByHost"));
    if (e.detail.raised && e.detail.raised !== session.me && session.isModerator()) {
      notice(t("handRaisedBy", { name: personName(session.participants.get(e.detail.raised)) }));
    }
    render();
  });
  session.addEventListener("status", renderButton);
  session.addEventListener("participants", render);
  setInterval(() => { if (state.hands.size) render(); }, 5000);
  return { el, button, render };
}
