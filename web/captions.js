// Captions: the caption line under the speaker's video, the transcript panel and the host's switch.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).
//
// The server recognises speech (transcription/ on the server, docs/protocol.md "Captions"); this
// module only asks and shows. Hosts and co-hosts start and stop captions for the room
// (`transcription_start` / `transcription_stop`); everyone sees that they are on
// (`transcription_started`, also right after `welcome` for a late joiner) and switches them on or
// off for themselves (the CC button: `captions_set {enabled}`, remembered in localStorage). Each
// `caption {participant_id, name, text, final, start_s, end_s}` shows under that participant's
// tile (partial text in italics, replaced as it grows; a final stays a few seconds); finals go to
// the "Transcript" tab, where hosts also download the lesson's WebVTT.

import { h } from "./dom.js";
import { addStrings, t } from "./i18n.js";
import { requestOrNotice } from "./modal.js";

addStrings({
  ru: {
    capButton: "Субтитры",
    capShow: "Показывать субтитры",
    capHide: "Скрыть субтитры",
    capStart: "Включить субтитры для всех",
    capStop: "Выключить субтитры для всех",
    capHostOn: "Субтитры: вкл.",
    capHostOff: "Субтитры: выкл.",
    capStarted: "Включены субтитры урока",
    capStopped: "Субтитры урока выключены",
    capFailed: "Субтитры не включились: {reason}",
    capTab: "Стенограмма",
    capNone: "Пока ничего не распознано",
    capDownload: "Скачать WebVTT",
    capOffHint: "Субтитры урока выключены",
  },
  en: {
    capButton: "Captions",
    capShow: "Show captions",
    capHide: "Hide captions",
    capStart: "Turn captions on for everyone",
    capStop: "Turn captions off for everyone",
    capHostOn: "Captions: on",
    capHostOff: "Captions: off",
    capStarted: "Captions are on for this lesson",
    capStopped: "Captions are off for this lesson",
    capFailed: "Captions did not start: {reason}",
    capTab: "Transcript",
    capNone: "Nothing recognised yet",
    capDownload: "Download WebVTT",
    capOffHint: "Captions are off for this lesson",
  },
});

const PREF_KEY = "urok.captions";
const FINAL_SHOWN_MS = 4000;
const MAX_LINES = 500; // kept in the transcript tab

function clock(sec) {
  const s = Math.max(0, Math.floor(Number(sec) || 0));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

function readPref() {
  try { return globalThis.localStorage?.getItem(PREF_KEY) !== "off"; } catch { return true; }
}

function writePref(on) {
  try { globalThis.localStorage?.setItem(PREF_KEY, on ? "on" : "off"); } catch {}
}

export function createCaptions(ctx) {
  const { session, extra, panel, notice, tileOf, grid } = ctx;
  const mod = () => session.isModerator();
  let active = false; // captions are on for the room
  let show = readPref(); // this user wants to see them
  let busy = false;
  const lines = []; // finals: {participant_id, name, text, start_s}
  const timers = new Map(); // participant_id -> timeout clearing its caption line

  const own = h("button", { class: "ctl cap-btn", id: "btn-captions", type: "button", hidden: true,
    "aria-pressed": String(show), onclick: toggleShow },
  h("span", { class: "cap-cc", "aria-hidden": "true", text: "CC" }), h("span", { class: "long", text: t("capButton") }));
  const host = h("button", { class: "ctl cap-host", id: "btn-transcription", type: "button", hidden: true,
    "aria-pressed": "false", onclick: toggleRoom },
  h("span", { class: "cap-cc", "aria-hidden": "true", text: "CC" }), h("span", { class: "long cap-host-text" }));
  extra?.append(own, host);

  const list = h("ol", { class: "cap-list", id: "cap-list" });
  const empty = h("p", { class: "cap-empty", id: "cap-empty", text: t("capNone") });
  const download = h("a", { class: "cap-download", id: "cap-download", download: "", hidden: true, text: t("capDownload") });
  const body = h("div", { class: "cap-pane" }, download, empty, list);
  let tabAdded = false;

  function render() {
    own.hidden = !active;
    own.classList.toggle("active", show);
    own.setAttribute("aria-pressed", String(show));
    own.title = t(show ? "capHide" : "capShow");
    own.setAttribute("aria-label", own.title);
    host.hidden = !mod();
    host.disabled = busy;
    host.classList.toggle("active", active);
    host.setAttribute("aria-pressed", String(active));
    host.title = t(active ? "capStop" : "capStart");
    host.setAttribute("aria-label", host.title);
    host.querySelector(".cap-host-text").textContent = t(active ? "capHostOn" : "capHostOff");
    document.body?.classList.toggle("captions-hidden", !show);
    if (!tabAdded && panel?.addTab) {
      panel.addTab({ key: "transcript", label: t("capTab"), body });
      tabAdded = true;
    }
    const roomId = session.room?.room_id;
    download.hidden = !(mod() && roomId && session.token);
    if (!download.hidden) {
      download.href = `/v1/rooms/${encodeURIComponent(roomId)}/transcript?format=vtt&token=${encodeURIComponent(session.token)}`;
    }
    empty.hidden = lines.length > 0;
  }

  async function toggleShow() {
    show = !show;
    writePref(show);
    render();
    if (!show) clearAll();
    if (active) await requestOrNotice(session, notice, "captions_set", { enabled: show });
  }

  async function toggleRoom() {
    if (busy) return;
    busy = true;
    render();
    const r = await requestOrNotice(session, notice, active ? "transcription_stop" : "transcription_start", {});
    busy = false;
    if (r) active = Boolean(r.enabled);
    render();
  }

  function lineOf(pid) {
    const tile = tileOf?.(pid);
    if (!tile) return null;
    let el = tile.querySelector(".cap-line");
    if (!el) {
      el = h("div", { class: "cap-line", role: "status", "aria-live": "polite" },
        h("span", { class: "cap-name" }), h("span", { class: "cap-text" }));
      tile.appendChild(el);
    }
    return el;
  }

  function clearAll() {
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
    grid?.querySelectorAll(".cap-line").forEach((el) => el.remove());
  }

  function showCaption(m) {
    if (!show) return;
    const el = lineOf(m.participant_id);
    if (!el) return;
    el.querySelector(".cap-name").textContent = m.name ? `${m.name}: ` : "";
    el.querySelector(".cap-text").textContent = m.text;
    el.classList.toggle("partial", !m.final);
    el.dataset.final = String(Boolean(m.final));
    clearTimeout(timers.get(m.participant_id));
    timers.set(m.participant_id, setTimeout(() => { el.remove(); timers.delete(m.participant_id); },
      m.final ? FINAL_SHOWN_MS : FINAL_SHOWN_MS * 2));
  }

  function addLine(m) {
    lines.push(m);
    const li = h("li", { class: "cap-item" }, h("span", { class: "cap-when", text: clock(m.start_s) }),
      h("span", { class: "cap-who", text: m.name || m.participant_id }), h("span", { class: "cap-said", text: m.text }));
    list.appendChild(li);
    while (lines.length > MAX_LINES) { lines.shift(); list.firstElementChild?.remove(); }
    empty.hidden = true;
  }

  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (m.event === "welcome") {
      active = false; // a (re)join: transcription_started follows if captions are on
      render();
    } else if (m.event === "transcription_started") {
      const was = active;
      active = true;
      render();
      if (!was) notice(t("capStarted"));
      if (!show) session.request("captions_set", { enabled: false }).catch(() => {});
    } else if (m.event === "transcription_stopped") {
      active = false;
      clearAll();
      render();
      notice(t("capStopped"));
    } else if (m.event === "transcription_failed") {
      notice(t("capFailed", { reason: m.message || m.reason }));
    } else if (m.event === "caption") {
      showCaption(m);
      if (m.final) addLine(m);
    } else if (m.event === "participant_updated") {
      render(); // a role change: the host's switch follows
    }
  });
  render();

  return { button: own, hostButton: host, state: () => ({ active, show, lines: [...lines] }) };
}
