// Devices during the lesson (issue 15): a settings dialog to switch the camera, the microphone and the
// speakers without leaving (the new track replaces the old one on the same sender: no renegotiation),
// and `devicechange`: a device plugged in appears in the lists with a notice; the one in use that is
// unplugged falls back to the system's default and says so.

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { listDevices, canChooseSpeaker } from "./media.js";
import { openModal } from "./modal.js";
import { backgroundPicker } from "./background.js";

const label = (d, i) => d.label || t("deviceN", { n: i + 1 });

export function createDevices({ session, local, notice, audioSinks }) {
  let known = null; // deviceId -> label of the last listing
  let current = { audioinput: [], videoinput: [], audiooutput: [] };

  const button = h("button", { class: "ctl", id: "btn-settings", type: "button", title: t("settings"), "aria-label": t("settings") },
    icon("gear"), h("span", { class: "long", text: t("settings") }), h("span", { class: "short", text: t("settings") }));

  function usedId(kind) {
    const l = session.local;
    if (kind === "audioinput") return l.audio?.getSettings?.().deviceId || l.audioDeviceId || "";
    if (kind === "videoinput") return l.video?.getSettings?.().deviceId || l.videoDeviceId || "";
    return l.speakerId || "";
  }

  async function setSpeaker(id) {
    session.local.speakerId = id;
    local.speakerId = id;
    for (const el of audioSinks()) if (el.setSinkId) await el.setSinkId(id).catch(() => {});
  }

  async function switchTo(kind, id) {
    try {
      if (kind === "audioinput") await session.switchMicrophone(id);
      else if (kind === "videoinput") await session.switchCamera(id);
      else await setSpeaker(id);
    } catch (e) {
      notice(t("deviceFailed", { reason: e.message || e.name }));
    }
  }

  function select(kind, id, title) {
    const sel = h("select", { id, "aria-label": title });
    const list = current[kind];
    sel.replaceChildren(...list.map((d, i) => h("option", { value: d.deviceId, text: label(d, i) })));
    const used = usedId(kind);
    if (list.some((d) => d.deviceId === used)) sel.value = used;
    sel.addEventListener("change", () => switchTo(kind, sel.value));
    return h("label", { class: "field" }, h("span", { text: title }), sel);
  }

  async function open() {
    current = await listDevices();
    const body = [];
    if (session.local.video || session.local.camOn || current.videoinput.length) body.push(select("videoinput", "settings-camera", t("camera")));
    if (session.local.video || session.local.camOn || current.videoinput.length) {
      body.push(backgroundPicker("settings-background", () => session.switchCamera(session.local.videoDeviceId || usedId("videoinput"))
        .catch((e) => notice(t("deviceFailed", { reason: e.message || e.name })))));
    }
    if (session.local.audio) body.push(select("audioinput", "settings-mic", t("microphone")));
    if (canChooseSpeaker && current.audiooutput.length) body.push(select("audiooutput", "settings-speaker", t("speaker")));
    openModal({ id: "settings-dialog", title: t("devicesTitle"), body, actions: [{ id: "settings-close", label: t("close") }] });
  }
  button.addEventListener("click", open);

  async function onDeviceChange() {
    const devs = await listDevices();
    const all = new Map([...devs.audioinput, ...devs.videoinput, ...devs.audiooutput].map((d) => [`${d.kind}/${d.deviceId}`, d.label]));
    if (known) {
      for (const [key, name] of all) if (!known.has(key) && !key.endsWith("/default")) notice(t("deviceAdded", { name: name || "?" }));
      // the device in use is gone: fall back to the default of its kind
      for (const kind of ["audioinput", "videoinput"]) {
        const used = usedId(kind);
        if (!used || all.has(`${kind}/${used}`)) continue;
        const fallback = devs[kind][0];
        const gone = known.get(`${kind}/${used}`) || "?";
        if (fallback) {
          await switchTo(kind, fallback.deviceId);
          notice(t("deviceGone", { name: gone, other: fallback.label || t("deviceN", { n: 1 }) }));
        } else notice(t("deviceGoneNone", { name: gone }));
      }
    }
    known = all;
    current = devs;
    if (document.getElementById("settings-dialog")) open();
  }
  navigator.mediaDevices?.addEventListener?.("devicechange", onDeviceChange);
  onDeviceChange();
  session.addEventListener("status", (e) => {
    if (e.detail.status === "closed") navigator.mediaDevices?.removeEventListener?.("devicechange", onDeviceChange);
  });
  window.urok.devices = { open, switchTo, onDeviceChange };
  return { button, open, switchTo };
}
