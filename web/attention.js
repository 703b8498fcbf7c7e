// Attention: the student's notice (a modal with the text, a short beep and "I'm here" ->
// `attention_ack`) and, for hosts, the status of the latest request (who answered and how fast,
// who did not) in a small popover.

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { openModal, duration, failure } from "./modal.js";

let audioCtx = null;

/** Two short tones made with WebAudio (no audio files). */
export function beep() {
  try {
    audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
    audioCtx.resume?.().catch(() => {});
    const now = audioCtx.currentTime;
    for (const [i, freq] of [[0, 880], [1, 1175]]) {
      const osc = audioCtx.createOscillator();
      const gain = audioCtx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      const t0 = now + i * 0.18;
      gain.gain.setValueAtTime(0.0001, t0);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.16);
      osc.connect(gain).connect(audioCtx.destination);
      osc.start(t0);
      osc.stop(t0 + 0.17);
    }
    window.urok.lastBeep = Date.now();
  } catch (e) {
    console.debug("urok: no beep", e);
  }
}

export function createAttention({ session, state, notice }) {
  let statusBox = null;

  function showNotice(m) {
    beep();
    const body = [h("p", { class: "attention-text", id: "attention-text", text: m.text || t("attentionDefault") })];
    if (m.from?.name) body.push(h("p", { class: "attention-from", text: t("attentionFrom", { name: m.from.name }) }));
    openModal({
      id: "attention-notice",
      className: "attention",
      dismissable: false,
      title: t("attentionTitle"),
      body,
      actions: [{
        id: "attention-ack", label: t("imHere"), kind: "primary",
        onClick: async () => {
          try {
            await session.request("attention_ack", { attention_id: m.attention_id });
          } catch (e) {
            notice(failure(e));
          }
        },
      }],
    });
  }

  function renderStatus() {
    const a = state.lastAttention && state.attentions.get(state.lastAttention);
    if (!a || !session.isModerator()) return;
    if (!statusBox) {
      statusBox = h("div", { class: "attention-status", id: "attention-status", role: "status" });
      document.body.appendChild(statusBox);
    }
    const acked = [...a.acked.values()].sort((x, y) => x.after_ms - y.after_ms);
    const pending = [...a.pending.values()];
    const total = acked.length + pending.length;
    statusBox.replaceChildren(
      h("div", { class: "attention-status-head" },
        h("strong", { id: "attention-count", text: t("attentionStatus", { n: acked.length, acked: acked.length, total }) }),
        h("button", { type: "button", class: "popover-close", id: "attention-status-close", "aria-label": t("close"), title: t("close"), text: "×",
          onclick: () => { statusBox.remove(); statusBox = null; } })),
      h("ul", { class: "attention-acked", id: "attention-acked" }, acked.map((x) => h("li", {
        dataset: { participantId: x.participant_id },
        text: t("attentionAckedIn", { name: x.name, time: (x.after_ms < 60000 ? t("seconds", { n: Math.round(x.after_ms / 100) / 10 }) : duration(x.after_ms / 1000)) }),
      }))),
      pending.length
        ? h("div", { class: "attention-pending" }, h("span", { class: "muted-text", text: `${t("attentionPending")}: ` }),
          h("span", { id: "attention-pending", text: pending.map((x) => x.name).join(", ") }))
        : h("p", { class: "muted-text", text: t("attentionAllAnswered") }));
  }

  state.addEventListener("change", (e) => {
    if (e.detail.what !== "attention") return;
    if (e.detail.asked) showNotice(e.detail.asked);
    else renderStatus();
  });
  return { renderStatus };
}
