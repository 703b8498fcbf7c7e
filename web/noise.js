// Noise suppression: one's own switch and the host's switch for the room.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).
//
// The server cleans a microphone (RNNoise) and sends everyone the cleaned copy in place of the raw
// track (same track, no renegotiation): this module only switches it, through the request
// `set_noise_suppression {enabled, participant_id?, all?}`, and shows the state from the events
// `noise_suppression_state {room, participants[]}` and `noise_suppression {participant_id,
// enabled, forced}`. The host's choice wins: while the room's switch (or the host's choice for
// one) decides, one's own button is locked and says so.

import { h, icon } from "./dom.js";
import { addStrings, t } from "./i18n.js";
import { setServerSuppression } from "./media.js";
import { requestOrNotice } from "./modal.js";

addStrings({
  ru: {
    nsMine: "Шумоподавление",
    nsMineShort: "Шум",
    nsMineOn: "Шумоподавление включено: другие слышат вас без фонового шума",
    nsMineOff: "Шумоподавление выключено",
    nsForcedOn: "Учитель включил шумоподавление для вас",
    nsForcedOff: "Учитель выключил шумоподавление для вас",
    nsRoom: "Шумоподавление у всех",
    nsRoomShort: "Шум: все",
    nsRoomOn: "Шумоподавление включено для всего класса",
    nsRoomOff: "Шумоподавление для класса выключено: каждый решает сам",
  },
  en: {
    nsMine: "Noise suppression",
    nsMineShort: "Noise",
    nsMineOn: "Noise suppression is on: others hear you without background noise",
    nsMineOff: "Noise suppression is off",
    nsForcedOn: "The teacher turned noise suppression on for you",
    nsForcedOff: "The teacher turned noise suppression off for you",
    nsRoom: "Noise suppression for all",
    nsRoomShort: "Noise: all",
    nsRoomOn: "Noise suppression is on for the whole class",
    nsRoomOff: "Noise suppression for the class is off: everyone decides",
  },
});

export function createNoise(ctx) {
  const { session, extra, notice } = ctx;
  const mod = () => session.isModerator();
  let room = false;
  let mine = { enabled: false, forced: false };

  const mineBtn = h("button", { class: "ctl ns-mine", id: "btn-noise", type: "button", "aria-pressed": "false",
    title: t("nsMine"), "aria-label": t("nsMine"), onclick: toggleMine },
  icon("sliders"), h("span", { class: "long", text: t("nsMine") }), h("span", { class: "short", text: t("nsMineShort") }));
  const roomBtn = h("button", { class: "ctl ns-room", id: "btn-noise-room", type: "button", "aria-pressed": "false",
    title: t("nsRoom"), "aria-label": t("nsRoom"), hidden: true, onclick: toggleRoom },
  icon("sliders"), h("span", { class: "long", text: t("nsRoom") }), h("span", { class: "short", text: t("nsRoomShort") }));
  extra?.append(mineBtn, roomBtn);

  function render() {
    mineBtn.classList.toggle("active", mine.enabled);
    mineBtn.setAttribute("aria-pressed", String(mine.enabled));
    mineBtn.disabled = mine.forced && !mod();
    mineBtn.classList.toggle("ns-forced", mine.forced);
    mineBtn.title = mine.forced ? t(mine.enabled ? "nsForcedOn" : "nsForcedOff") : t(mine.enabled ? "nsMineOn" : "nsMineOff");
    roomBtn.hidden = !mod();
    roomBtn.classList.toggle("active", room);
    roomBtn.setAttribute("aria-pressed", String(room));
    roomBtn.title = t(room ? "nsRoomOn" : "nsRoomOff");
    // the browser's own noise suppression off while the server's is on (web/media.js)
    setServerSuppression(mine.enabled, () => session.switchMicrophone(session.local.audioDeviceId)).catch(() => {});
  }

  async function toggleMine() {
    const r = await requestOrNotice(session, notice, "set_noise_suppression", { enabled: !mine.enabled });
    if (r) { mine = { enabled: r.enabled, forced: r.forced }; render(); }
  }

  async function toggleRoom() {
    const r = await requestOrNotice(session, notice, "set_noise_suppression", { all: true, enabled: !room });
    if (r) setState(r);
  }

  function setState(s) {
    room = Boolean(s.room);
    const me = (s.participants || []).find((p) => p.participant_id === session.me);
    mine = me ? { enabled: me.enabled, forced: me.forced } : { enabled: room, forced: room };
    render();
  }

  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (m.event === "noise_suppression_state") {
      const was = room;
      setState(m);
      if (m.by && m.by !== session.me && was !== room) notice(t(room ? "nsRoomOn" : "nsRoomOff"));
    } else if (m.event === "noise_suppression" && m.participant_id === session.me) {
      const wasForced = mine.forced;
      const wasEnabled = mine.enabled;
      mine = { enabled: m.enabled, forced: m.forced };
      render();
      if (m.forced && !mod() && (!wasForced || m.enabled !== wasEnabled)) notice(t(m.enabled ? "nsForcedOn" : "nsForcedOff"));
    } else if (m.event === "welcome" || m.event === "participant_updated") {
      render();
    }
  });
  render();

  return { button: mineBtn, roomButton: roomBtn, state: () => ({ room, ...mine }) };
}
