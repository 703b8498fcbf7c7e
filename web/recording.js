// Recording: the indicator everyone sees, the host's start/stop and the room's recordings list.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).
//
// The server records (recordings/ on the server, docs/protocol.md "Recording"); this module only
// asks and shows. Everyone gets `recording_started {recording_id, started_at, by}` and
// `recording_stopped` / `recording_failed {reason}` (a late joiner gets `recording_started` right
// after `welcome`), so the red indicator is on for every page while the lesson is recorded: in
// schools nobody is recorded without being told. Hosts and co-hosts (session.isModerator) get the
// record button (`recording_start` / `recording_stop`) and a "Recordings" tab that lists the room's
// recordings (`recording_list`, signed links) to play and download (and `recording_compose` for a
// recovered one); `recording_progress` and
// `recording_ready` (hosts only) keep it current while the video is composed.

import { h } from "./dom.js";
import { addStrings, t } from "./i18n.js";
import { requestOrNotice } from "./modal.js";

addStrings({
  ru: {
    recRecord: "Запись",
    recStart: "Начать запись урока",
    recStop: "Остановить запись",
    recOn: "Идёт запись",
    recOnTitle: "Урок записывается",
    recStarted: "Урок записывается",
    recStopped: "Запись остановлена",
    recFailed: "Запись остановилась: {reason}",
    recDiskFull: "на сервере кончилось место",
    recTab: "Записи",
    recNone: "Записей этого урока пока нет",
    recRefresh: "Обновить",
    recDownload: "Скачать",
    recPlay: "Смотреть",
    recChat: "Чат (WebVTT)",
    recCaptions: "Субтитры (WebVTT)",
    recCompose: "Собрать видео",
    recTracks: "Дорожки",
    recState_recording: "идёт запись",
    recState_processing: "обрабатывается {p}%",
    recState_ready: "готова",
    recState_failed: "ошибка",
    recState_recovered: "восстановлена после сбоя",
    recDuration: "{m} мин {s} с",
  },
  en: {
    recRecord: "Record",
    recStart: "Start recording the lesson",
    recStop: "Stop recording",
    recOn: "Recording",
    recOnTitle: "This lesson is being recorded",
    recStarted: "This lesson is being recorded",
    recStopped: "Recording stopped",
    recFailed: "Recording stopped: {reason}",
    recDiskFull: "the server ran out of disk space",
    recTab: "Recordings",
    recNone: "No recordings of this lesson yet",
    recRefresh: "Refresh",
    recDownload: "Download",
    recPlay: "Play",
    recChat: "Chat (WebVTT)",
    recCaptions: "Captions (WebVTT)",
    recCompose: "Make the video",
    recTracks: "Tracks",
    recState_recording: "recording",
    recState_processing: "processing {p}%",
    recState_ready: "ready",
    recState_failed: "failed",
    recState_recovered: "recovered after a crash",
    recDuration: "{m} min {s} s",
  },
});

function duration(sec) {
  const total = Math.max(0, Math.round(Number(sec) || 0));
  return t("recDuration", { m: Math.floor(total / 60), s: total % 60 });
}

function when(epoch) {
  try {
    return new Date(epoch * 1000).toLocaleString(document.documentElement.lang || undefined,
      { dateStyle: "short", timeStyle: "short" });
  } catch {
    return new Date(epoch * 1000).toISOString();
  }
}

export function createRecording(ctx) {
  const { session, root, extra, panel, notice } = ctx;
  const mod = () => session.isModerator();
  let active = null; // {recording_id, started_at} while the lesson is recorded
  let busy = false;
  let items = [];

  const indicator = h("span", { class: "rec-indicator", id: "rec-indicator", role: "status", hidden: true,
    title: t("recOnTitle"), "aria-label": t("recOnTitle") },
  h("span", { class: "rec-dot", "aria-hidden": "true" }), h("span", { text: t("recOn") }));
  const topbar = root?.querySelector(".topbar");
  if (topbar) topbar.insertBefore(indicator, topbar.querySelector("#status"));
  else root?.prepend(indicator);

  const button = h("button", { class: "ctl rec-btn", id: "btn-record", type: "button", hidden: true,
    "aria-pressed": "false", title: t("recStart"), "aria-label": t("recStart"), onclick: toggle },
  h("span", { class: "rec-dot", "aria-hidden": "true" }), h("span", { class: "long", text: t("recRecord") }),
  h("span", { class: "short", text: t("recRecord") }));
  extra?.append(button);

  const list = h("ul", { class: "rec-list", id: "rec-list" });
  const empty = h("p", { class: "rec-empty", id: "rec-empty", text: t("recNone") });
  const refreshBtn = h("button", { type: "button", class: "rec-refresh", id: "rec-refresh", text: t("recRefresh"),
    onclick: () => refresh() });
  const body = h("div", { class: "rec-pane" }, refreshBtn, empty, list);
  let tabAdded = false;

  function render() {
    const on = Boolean(active);
    indicator.hidden = !on;
    button.hidden = !mod();
    button.disabled = busy;
    button.classList.toggle("active", on);
    button.setAttribute("aria-pressed", String(on));
    button.title = t(on ? "recStop" : "recStart");
    button.setAttribute("aria-label", button.title);
    if (mod() && !tabAdded && panel?.addTab) {
      panel.addTab({ key: "recordings", label: t("recTab"), body });
      panel.onChange?.((key) => { if (key === "recordings") refresh(); });
      tabAdded = true;
    }
    if (tabAdded) panel.setTabVisible?.("recordings", mod());
  }

  async function toggle() {
    if (busy) return;
    busy = true;
    render();
    const r = await requestOrNotice(session, notice, active ? "recording_stop" : "recording_start", {});
    busy = false;
    if (r && r.started_at !== undefined) active = { recording_id: r.recording_id, started_at: r.started_at };
    else if (r) active = null;
    render();
    if (r) refresh();
  }

  function stateText(rec) {
    if (rec.state === "processing") return t("recState_processing", { p: Math.round((rec.progress || 0) * 100) });
    return t(`recState_${rec.state}`);
  }

  function renderList() {
    empty.hidden = items.length > 0;
    list.replaceChildren(...items.map((rec) => {
      const head = h("div", { class: "rec-head" },
        h("span", { class: "rec-when", text: when(rec.started_at) }),
        h("span", { class: "rec-len", text: duration(rec.duration_s) }),
        h("span", { class: `rec-state rec-${rec.state}`, text: stateText(rec) }));
      const links = h("div", { class: "rec-links" });
      const li = h("li", { class: "rec-item", dataset: { recordingId: rec.recording_id, state: rec.state } }, head, links);
      if (rec.video_url) {
        const video = h("video", { class: "rec-video", controls: true, preload: "metadata", src: rec.video_url });
        li.appendChild(video);
        links.append(h("a", { class: "rec-download", href: `${rec.video_url}&download=1`, download: "", text: t("recDownload") }));
      }
      if (!rec.video_url && (rec.state === "recovered" || rec.state === "failed") && rec.tracks?.length) {
        links.append(h("button", { type: "button", class: "rec-compose", text: t("recCompose"),
          onclick: async () => {
            const r = await requestOrNotice(session, notice, "recording_compose", { recording_id: rec.recording_id });
            if (r) update(rec.recording_id, { state: r.state, progress: 0 });
          } }));
      }
      if (rec.captions_url) links.append(h("a", { class: "rec-captions", href: `${rec.captions_url}&download=1`, download: "", text: t("recCaptions") }));
      if (rec.chat_url) links.append(h("a", { class: "rec-chat", href: `${rec.chat_url}&download=1`, download: "", text: t("recChat") }));
      if (rec.tracks?.length) {
        const tracks = h("details", { class: "rec-tracks" }, h("summary", { text: `${t("recTracks")} (${rec.tracks.length})` }),
          ...rec.tracks.map((tr) => h("a", { class: "rec-track", href: `${tr.url}&download=1`, download: "",
            text: `${tr.name} · ${tr.source} · ${tr.codec}` })));
        links.append(tracks);
      }
      return li;
    }));
  }

  async function refresh() {
    if (!mod()) return;
    let r;
    try {
      r = await session.request("recording_list", {});
    } catch {
      return; // not a host any more, or the server has no recording: the tab keeps what it had
    }
    items = r.recordings || [];
    if (r.recording) active = { recording_id: r.recording.recording_id, started_at: r.recording.started_at };
    renderList();
    render();
  }

  function update(id, changes) {
    const rec = items.find((x) => x.recording_id === id);
    if (rec) { Object.assign(rec, changes); renderList(); }
  }

  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (m.event === "welcome") {
      active = null; // a (re)join: recording_started follows if the lesson is being recorded
      render();
    } else if (m.event === "recording_started") {
      const was = active;
      active = { recording_id: m.recording_id, started_at: m.started_at };
      render();
      if (!was) notice(t("recStarted"));
      if (panel?.current === "recordings") refresh();
    } else if (m.event === "recording_stopped") {
      active = null;
      render();
      notice(t("recStopped"));
      if (panel?.current === "recordings") refresh();
    } else if (m.event === "recording_failed") {
      if (!m.recording_id || active?.recording_id === m.recording_id) active = null;
      render();
      notice(t("recFailed", { reason: m.reason === "disk_full" ? t("recDiskFull") : (m.message || m.reason) }));
      if (panel?.current === "recordings") refresh();
    } else if (m.event === "recording_progress") {
      update(m.recording_id, { state: m.state, progress: m.progress });
    } else if (m.event === "recording_ready") {
      const i = items.findIndex((x) => x.recording_id === m.recording_id);
      if (i >= 0) items[i] = m;
      else items.unshift(m);
      renderList();
    } else if (m.event === "participant_updated") {
      render(); // a role change: the button and the tab follow
    }
  });
  render();

  return { button, indicator, state: () => ({ active, recordings: items }), refresh };
}
