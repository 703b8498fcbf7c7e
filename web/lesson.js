// The lesson screen: participant grid, screen share on the stage, own preview, controls, status.
// Resolves when the lesson is over for this page: "left", "rejoin" (the user asked to come back) or
// a final reason. Room for later panels (chat, hands, host controls): the <aside class="side"> and
// the controls' "extra" slot.

import { t } from "./i18n.js";
import { h, clear, icon, attachTrack } from "./dom.js";
import { Session } from "./session.js";
import { initials, displayName } from "./prejoin.js";
import { createCallUi } from "./callui.js";
import { createAwareness } from "./awareness.js";
import { createViews } from "./views.js";
import { createDevices } from "./devices.js";
import { endScreen } from "./endscreen.js";

const FINAL_TEXT = {
  badToken: "badToken", expiredToken: "expiredToken", refused: "refused", roomNotFound: "roomNotFound", replaced: "replaced",
  ended: "ended", removed: "removed", roomFull: "roomFull", denied: "denied", alreadyConnected: "alreadyConnected",
};

function bestColumns(n, width, height, aspect = 16 / 9, gap = 8) {
  let best = 1;
  let bestW = 0;
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * aspect);
    if (w > bestW + 0.5) { bestW = w; best = cols; }
  }
  return { cols: best, tileWidth: Math.floor(bestW) };
}

export function runLesson(app, { token, claims, local, info = null, roomId = "" }) {
  return new Promise((resolve) => {
    const session = new Session({ token, local });
    window.urok.session = session;
    const myName = displayName(claims);

    const statusEl = h("span", { class: "status", id: "status", role: "status" });
    const roomEl = h("span", { class: "room-name", id: "room-name" });
    const countEl = h("span", { class: "count", id: "count" });
    const listenerEl = h("span", { class: "badge listener", id: "listener-notice", hidden: true, text: t("listenerBadge") });
    const clockEl = h("span", { class: "lesson-clock", id: "lesson-clock", hidden: true });
    const extendBtn = h("button", { class: "extend-btn", id: "btn-extend", type: "button", hidden: true });
    const banner = h("div", { class: "banner", id: "banner", role: "status", hidden: true });
    // what a student may not do now (the host's locks): stays until lifted
    const lockBanner = h("div", { class: "banner locks", id: "lock-banner", role: "status", hidden: true });
    // while the page reconnects: what happens, the attempt, the next try (its own line: notices in
    // the banner above come and go meanwhile)
    const reconnectEl = h("div", { class: "banner reconnecting", id: "reconnect-banner", role: "status", hidden: true });
    const stageVideo = h("video", { autoplay: true, muted: true, playsInline: true, class: "stage-video" });
    stageVideo.muted = true;
    const stageLabel = h("div", { class: "label" });
    const stage = h("section", { class: "stage", id: "stage", hidden: true }, stageVideo, stageLabel);
    const grid = h("section", { class: "grid", id: "grid" });
    const audioBox = h("div", { class: "audio-sinks", hidden: true });
    const side = h("aside", { class: "side", id: "side", hidden: true }); // the call control panel (callui.js)

    const micBtn = h("button", { class: "ctl", id: "btn-mic", type: "button" });
    const camBtn = h("button", { class: "ctl", id: "btn-camera", type: "button" });
    const shareBtn = h("button", { class: "ctl", id: "btn-screen", type: "button" });
    const leaveBtn = h("button", { class: "ctl danger", id: "btn-leave", type: "button", title: t("leave") },
      icon("leave"), h("span", { text: t("leave") }));
    const extra = h("span", { class: "controls-extra", id: "controls-extra" }); // hand, reactions, panel, host (callui.js)
    const viewSlot = h("span", { class: "controls-view" }); // view, self view, settings (views.js, devices.js)
    const pagerSlot = h("div", { class: "pager-slot" });

    const root = h("div", { class: "lesson", id: "lesson" },
      h("header", { class: "topbar" }, roomEl, countEl, clockEl, extendBtn, listenerEl, statusEl),
      reconnectEl,
      banner,
      lockBanner,
      h("div", { class: "body" },
        h("main", { class: "main" }, stage, grid, pagerSlot),
        side),
      h("footer", { class: "controls" }, micBtn, camBtn, shareBtn, viewSlot, extra, leaveBtn),
      audioBox);
    clear(app);
    app.appendChild(root);
    window.urok.screen = "lesson";

    createCallUi({ session, root, side, extra, grid, banner, notice: (text) => notice(text) });
    createAwareness({ session, notice: (text, sticky) => notice(text, sticky), lockBanner, clockEl, extendBtn });

    const tiles = new Map(); // key (participant_id or "self") -> {el, video, name, mic}
    const views = createViews({ session, grid, tiles, relayout: () => layout(), notice: (text) => notice(text) });
    const devices = createDevices({ session, local, notice: (text) => notice(text), audioSinks: () => audios.values() });
    viewSlot.append(...views.controls, devices.button);
    pagerSlot.append(views.pager);
    const audios = new Map(); // "pid/source" -> <audio>
    let noticeTimer = null;

    function notice(text, sticky = false) {
      banner.textContent = text;
      banner.hidden = !text;
      banner.classList.toggle("sticky", sticky);
      clearTimeout(noticeTimer);
      if (text && !sticky) noticeTimer = setTimeout(() => { banner.hidden = true; }, 6000);
    }

    function makeTile(key) {
      const video = h("video", { autoplay: true, muted: true, playsInline: true });
      video.muted = true;
      const avatar = h("div", { class: "avatar" });
      const name = h("span", { class: "name" });
      const mic = h("span", { class: "mic-off", title: t("muted") }, icon("mic", { slashed: true }));
      const el = h("div", { class: "tile", dataset: { key } }, video, avatar, h("div", { class: "label" }, mic, name),
        key === "self" ? null : views.pinButton(key));
      const tile = { el, video, avatar, name, mic };
      tiles.set(key, tile);
      grid.appendChild(el);
      return tile;
    }

    function updateTile(key, { pid, displayName: nm, videoTrack, mirror, micMuted, self }) {
      const tile = tiles.get(key) || makeTile(key);
      tile.el.dataset.participantId = pid || "";
      tile.el.classList.toggle("self", Boolean(self));
      tile.name.textContent = self ? `${nm} (${t("you")})` : nm;
      tile.avatar.textContent = initials(nm);
      const hasVideo = Boolean(videoTrack) && videoTrack.readyState === "live" && !(videoTrack.muted && !self);
      attachTrack(tile.video, videoTrack || null);
      tile.el.classList.toggle("has-video", hasVideo);
      tile.video.classList.toggle("mirror", Boolean(mirror));
      tile.mic.hidden = !micMuted;
      tile.el.classList.toggle("mic-muted", Boolean(micMuted));
    }

    function participantName(pid) {
      const p = session.participants.get(pid);
      return p ? (p.name || [p.given_name, p.family_name].filter(Boolean).join(" ") || p.identity || "?") : "?";
    }

    function renderTiles() {
      const seen = new Set();
      // own tile first
      const me = session.me;
      // viewers (a webinar's audience) have no tiles: the stage and the speakers do
      const viewer = local.viewer || session.you?.role === "viewer";
      if (!viewer) {
        seen.add("self");
        updateTile("self", {
          pid: me, displayName: myName, self: true, mirror: true,
          videoTrack: session.local.camOn ? session.local.video : null,
          micMuted: !session.local.audio || !session.local.micOn,
        });
      }
      const present = [...session.participants.values()]
        .filter((p) => p.participant_id !== me && (p.state === undefined || p.state === "joined"));
      const others = present.filter((p) => p.role !== "viewer");
      const audience = present.length - others.length + (viewer ? 1 : 0);
      for (const p of others) {
        const pid = p.participant_id;
        seen.add(pid);
        const tracks = session.remote.get(pid) || {};
        const muted = session.mutedRemote.get(pid) || {};
        updateTile(pid, {
          pid, displayName: participantName(pid),
          videoTrack: muted.camera ? null : tracks.camera,
          micMuted: Boolean(muted.microphone) || !tracks.microphone,
        });
      }
      for (const [key, tile] of tiles) {
        if (!seen.has(key)) {
          tile.video.srcObject = null;
          tile.el.remove();
          tiles.delete(key);
        }
      }
      grid.dataset.count = String(tiles.size);
      const speakers = others.length + (viewer ? 0 : 1);
      countEl.textContent = audience ? `${t("participants", { n: speakers })} ${t("audienceN", { n: audience })}`
        : t("participants", { n: Math.max(1, speakers) });
      views.apply();
    }

    function renderAudio() {
      const want = new Map();
      for (const [pid, tracks] of session.remote) {
        for (const source of ["microphone", "screen_audio"]) if (tracks[source]) want.set(`${pid}/${source}`, tracks[source]);
      }
      for (const [key, el] of audios) {
        if (!want.has(key)) { el.srcObject = null; el.remove(); audios.delete(key); }
      }
      for (const [key, track] of want) {
        let el = audios.get(key);
        if (!el) {
          el = h("audio", { autoplay: true, dataset: { key } });
          if (local.speakerId && el.setSinkId) el.setSinkId(local.speakerId).catch(() => {});
          audios.set(key, el);
          audioBox.appendChild(el);
        }
        attachTrack(el, track);
      }
    }

    function renderStage() {
      let track = null;
      let owner = null;
      for (const [pid, tracks] of session.remote) {
        if (tracks.screen) { track = tracks.screen; owner = pid; }
      }
      if (session.local.screen) { track = session.local.screen; owner = session.me; }
      stage.hidden = !track;
      root.classList.toggle("with-stage", Boolean(track));
      attachTrack(stageVideo, track);
      stage.dataset.participantId = owner || "";
      stageLabel.textContent = track ? t("screenOf", { name: owner === session.me ? t("you") : participantName(owner) }) : "";
      layout();
    }

    function renderControls() {
      const l = session.local;
      const canPublish = session.canPublish() && !local.viewer;
      setButton(micBtn, "mic", !l.micOn || !l.audio, t(l.micOn && l.audio ? "micOn" : "micOff"), t("microphone"));
      micBtn.classList.toggle("off", !l.micOn || !l.audio);
      // off and the host locked unmuting (no allowance, no "ask to unmute" pending): disabled, and says why
      const micBlocked = !l.micOn && session.selfUnmuteBlocked("microphone");
      micBtn.disabled = !l.audio || !session.mayPublish("microphone") && !l.micOn || micBlocked;
      micBtn.classList.toggle("locked", micBlocked);
      if (micBlocked) micBtn.title = t("selfUnmuteLocked");
      micBtn.hidden = !canPublish;
      setButton(camBtn, "cam", !l.camOn || !l.video, t(l.camOn && l.video ? "camOn" : "camOff"), t("camera"));
      camBtn.classList.toggle("off", !l.camOn || !l.video);
      camBtn.hidden = !canPublish || local.denied;
      const camBlocked = !(l.camOn && l.video) && session.selfUnmuteBlocked("camera") && Boolean(session.tx.camera);
      camBtn.disabled = !session.mayPublish("camera") && !(l.camOn && l.video) || camBlocked;
      if (camBlocked) camBtn.title = t("selfUnmuteLocked");
      const sharing = Boolean(l.screen);
      setButton(shareBtn, "screen", false, t(sharing ? "shareStop" : "shareStart"), t("screen"));
      shareBtn.classList.toggle("active", sharing);
      shareBtn.hidden = !canPublish || !navigator.mediaDevices?.getDisplayMedia;
      shareBtn.disabled = !session.mayPublish("screen") && !sharing;
      listenerEl.hidden = !(local.listener && !local.viewer && !l.audio && !l.video);
    }

    function setButton(btn, iconName, slashed, long, short) {
      btn.replaceChildren(icon(iconName, { slashed }), h("span", { class: "long", text: long }), h("span", { class: "short", text: short }));
      btn.title = long;
      btn.setAttribute("aria-label", long);
    }

    function renderSpeakers() {
      const speaking = session.speaking || new Set();
      for (const [key, tile] of tiles) {
        const pid = key === "self" ? session.me : key;
        tile.el.classList.toggle("speaking", speaking.has(pid));
        tile.el.classList.toggle("active-speaker", pid === session.activeSpeaker && speaking.has(pid));
      }
    }

    function layout() {
      const rect = grid.getBoundingClientRect();
      const n = Math.max(1, [...tiles.values()].filter((tile) => !tile.el.hidden).length);
      if (root.classList.contains("with-stage")) {
        grid.style.removeProperty("--cols");
        grid.style.removeProperty("--tile-w");
        return;
      }
      const aspect = matchMedia("(max-aspect-ratio: 1/1)").matches ? 4 / 3 : 16 / 9;
      if (grid.classList.contains("speaker-view")) {
        // one large tile and a strip of small ones under it
        const strip = n > 1 ? 130 : 0;
        const w = Math.min(rect.width - 2, Math.max(100, rect.height - strip - 10) * aspect);
        grid.style.setProperty("--tile-w", `${Math.floor(Math.max(100, w))}px`);
        grid.style.setProperty("--cols", "1");
        return;
      }
      const { cols, tileWidth } = bestColumns(n, Math.max(100, rect.width - 2), Math.max(100, rect.height - 2), aspect);
      grid.style.setProperty("--cols", String(cols));
      grid.style.setProperty("--tile-w", `${tileWidth}px`);
    }
    new ResizeObserver(layout).observe(grid);

    function renderAll() {
      renderControls();
      renderTiles();
      renderAudio();
      renderStage();
      renderSpeakers();
    }

    let reconnectTick = null;
    function renderReconnect() {
      const r = session.reconnectInfo;
      const on = session.status === "reconnecting" && Boolean(r);
      reconnectEl.hidden = !on;
      if (!on) {
        clearInterval(reconnectTick);
        reconnectTick = null;
        return;
      }
      const left = r.at ? Math.ceil((r.at - Date.now()) / 1000) : 0;
      reconnectEl.textContent = left > 0 ? t("reconnectingIn", { n: r.attempt, s: left }) : t("reconnectingNow", { n: r.attempt });
      reconnectEl.dataset.attempt = String(r.attempt);
      reconnectTick ??= setInterval(renderReconnect, 1000);
    }

    function finish(outcome, reasonKey, message) {
      clearInterval(reconnectTick);
      clear(app);
      if (reasonKey === "badToken" && /expired/i.test(message || session.lastError?.message || "")) reasonKey = "expiredToken";
      const name = session.room?.name || info?.name || "";
      const text = reasonKey === "left" ? (name ? t("leftNamed", { name }) : t("leftTitle"))
        : reasonKey === "ended" && name ? t("endedNamed", { name })
          : FINAL_TEXT[reasonKey] ? t(FINAL_TEXT[reasonKey]) : t("closedWith", { reason: message || reasonKey });
      const moderator = session.isModerator() || claims.role === "host" || claims.role === "cohost";
      app.appendChild(endScreen({
        text, kind: reasonKey === "left" || reasonKey === "ended" ? "info" : "error",
        rejoin: reasonKey === "left" || reasonKey === "replaced" ? () => resolve("rejoin") : null,
        closable: reasonKey !== "replaced",
        attendance: moderator && (reasonKey === "left" || reasonKey === "ended") ? { token, roomId: roomId || session.room?.room_id || claims.room } : null,
      }));
      window.urok.screen = "ended";
      window.urok.endReason = reasonKey;
    }

    session.addEventListener("status", (e) => {
      const { status, reason, message, position } = e.detail;
      statusEl.dataset.status = status;
      root.dataset.status = status;
      statusEl.textContent = {
        connecting: t("connecting"), waiting: t("waiting"), joined: t("connected"), reconnecting: t("reconnecting"),
        queued: t("connecting"),
      }[status] || "";
      renderReconnect();
      if (status === "waiting") notice(t("waiting"), true);
      else if (status === "queued") notice(t("joinQueued", { n: position ?? "?" }), true);
      else if (status === "joined") {
        if (banner.classList.contains("sticky")) notice("");
        // a publish refused for good is not retried after a reconnect: keep saying so
        if (session.publishRefused) notice(t("publishRefused", { reason: session.publishRefused.message }), true);
        roomEl.textContent = session.room?.name || "";
      }
      if (status === "closed") finish(reason, reason, message);
      renderAll();
    });
    session.addEventListener("participants", renderAll);
    session.addEventListener("media", renderAll);
    session.addEventListener("levels", renderSpeakers);
    session.addEventListener("notice", (e) => {
      const params = { ...(e.detail.params || {}) };
      const source = params.source;
      if (params.source) params.source = t(`source_${params.source}`);
      let text = t(e.detail.key, params);
      // muted by the host while unmuting is locked: say why the button stays disabled
      if (e.detail.key.startsWith("mutedByHost") && source && session.selfUnmuteBlocked(source)) text += ` ${t("selfUnmuteLocked")}`;
      notice(text, Boolean(e.detail.sticky));
    });
    session.addEventListener("reconnect", renderReconnect);

    micBtn.addEventListener("click", () => session.setMic(!session.local.micOn));
    camBtn.addEventListener("click", async () => {
      try {
        await session.setCamera(!(session.local.camOn && session.local.video));
      } catch (e) {
        session.local.camOn = false;
        notice(t("deviceFailed", { reason: e.message || e.name }));
      }
      renderAll();
    });
    shareBtn.addEventListener("click", async () => {
      try {
        if (session.local.screen) await session.stopScreenShare();
        else await session.startScreenShare();
      } catch (e) {
        if (e && e.name !== "NotAllowedError" && e.name !== "AbortError") notice(t("shareFailed", { reason: e.message || e.name }));
      }
      renderAll();
    });
    leaveBtn.addEventListener("click", () => session.leave());
    window.addEventListener("pagehide", () => { if (session.status !== "closed") session.sig?.send({ type: "leave" }); });

    renderAll();
    session.start();
  });
}
