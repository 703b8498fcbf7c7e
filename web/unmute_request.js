// A host's "ask to unmute": the student decides. Accept turns the source on through the session's
// own path (the server lets this one unmute through even with `self_unmute` locked).

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { openModal } from "./modal.js";

export function createUnmuteRequest({ session, notice }) {
  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (m.event === "unmute_allowed") {
      notice(t(m.allowed ? "unmuteAllowed" : "unmuteRevoked"));
      return;
    }
    if (m.event !== "unmute_requested") return;
    const source = m.source || "microphone";
    openModal({
      id: "unmute-dialog",
      title: m.name || t("attentionTitle"),
      body: [h("p", { class: "unmute-text", text: t(`unmuteAsk_${source === "screen_audio" ? "screen" : source}`) })],
      actions: [
        { id: "unmute-decline", label: t("decline") },
        {
          id: "unmute-accept", label: t("accept"), kind: "primary",
          onClick: async () => {
            try {
              if (source === "camera") await session.setCamera(true);
              else if (source === "screen" || source === "screen_audio") await session.startScreenShare();
              else await session.setMic(true);
            } catch (err) {
              notice(t("deviceFailed", { reason: err.message || err.name }));
            }
          },
        },
      ],
    });
  });
}
