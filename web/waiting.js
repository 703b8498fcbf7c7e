// The waiting room tab (hosts and co-hosts): the live queue with name, guest or registered and how
// long they have waited; admit one, admit all, deny.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { duration, requestOrNotice } from "./modal.js";
import { personName } from "./participants.js";

export function createWaiting({ session, state, notice }) {
  const list = h("ul", { class: "waiting-list", id: "waiting-list" });
  const empty = h("p", { class: "empty", id: "waiting-empty", text: t("waitingEmpty") });
  const admitAll = h("button", { type: "button", class: "secondary", id: "admit-all", text: t("admitAll"),
    onclick: () => run("admit", { all: true }) });
  const el = h("div", { class: "pane-inner" }, h("div", { class: "pane-tools" }, admitAll), empty, list);

  const run = (type, fields) => requestOrNotice(session, notice, type, fields);

  function render() {
    const people = [...state.waiting.values()];
    empty.hidden = people.length > 0;
    admitAll.hidden = people.length < 2;
    const now = state.serverNow();
    list.replaceChildren(...people.map((p) => h("li", { class: "waiting-person", dataset: { participantId: p.participant_id } },
      h("div", { class: "person-main" },
        h("span", { class: "person-name", text: personName(p) }),
        h("span", { class: `tag ${p.registered ? "registered" : "guest"}`, text: t(p.registered ? "registered" : "guest") })),
      h("div", { class: "person-sub" },
        h("span", { class: "since", text: p.waiting_since ? t("waitingFor", { time: duration(now - p.waiting_since) }) : "" }),
        h("span", { class: "row-actions" },
          h("button", { type: "button", class: "primary small admit", dataset: { action: "admit" }, text: t("admit"),
            onclick: () => run("admit", { participant_ids: [p.participant_id] }) }),
          h("button", { type: "button", class: "secondary small deny", dataset: { action: "deny" }, text: t("deny"),
            onclick: () => run("deny", { participant_ids: [p.participant_id] }) }))))));
  }

  state.addEventListener("change", (e) => {
    if (e.detail.what !== "waiting") return;
    if (e.detail.added) notice(t("personWaiting", { name: personName(e.detail.added) }));
    render();
  });
  setInterval(() => { if (state.waiting.size) render(); }, 15000);
  return { el, render };
}
