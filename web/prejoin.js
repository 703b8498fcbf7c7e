// The pre-join screen: camera preview, microphone level meter, device choice, camera/microphone
// on/off for joining, the name from the token. Resolves with the local media setup on "Join".

import { backgroundPicker } from "./background.js";
import { t } from "./i18n.js";
import { langSwitch } from "./langswitch.js";
import { h, clear, icon, attachTrack } from "./dom.js";
import {
  acquire, audioContext, listDevices, getCamera, getMicrophone, LevelMeter, meterLoop, canChooseSpeaker, mediaSupported,
} from "./media.js";

export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => Array.from(p)[0] || "");
  return (letters.join("") || "?").toUpperCase();
}

export function displayName(claims) {
  return claims.name || [claims.given_name, claims.family_name].filter(Boolean).join(" ") || claims.sub || "?";
}

/** A short two-note chime through the chosen output (setSinkId), so the user can check the speakers. */
function playTestTone(sinkId) {
  const ctx = audioContext();
  if (!ctx) return;
  const dest = ctx.createMediaStreamDestination();
  const gain = ctx.createGain();
  gain.connect(dest);
  const t0 = ctx.currentTime + 0.05;
  [[660, 0], [880, 0.25]].forEach(([f, at]) => {
    const osc = ctx.createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start(t0 + at);
    osc.stop(t0 + at + 0.22);
  });
  gain.gain.setValueAtTime(0.0001, t0);
  gain.gain.exponentialRampToValueAtTime(0.3, t0 + 0.03);
  gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.5);
  const el = new Audio();
  el.srcObject = dest.stream;
  const play = () => el.play().catch(() => {});
  if (sinkId && el.setSinkId) el.setSinkId(sinkId).then(play, play);
  else play();
  setTimeout(() => { el.srcObject = null; gain.disconnect(); }, 1000);
}

export function preJoin(app, { claims, info = null }) {
  return new Promise((resolve) => {
    const viewer = claims.role === "viewer";
    const name = displayName(claims);
    const state = {
      audio: null, video: null, micOn: true, camOn: true,
      audioDeviceId: "", videoDeviceId: "", speakerId: "",
      denied: false, errors: {}, listener: false, viewer,
    };
    let meter = null;

    const video = h("video", { class: "preview-video mirror", autoplay: true, muted: true, playsInline: true, id: "preview" });
    video.muted = true;
    const avatar = h("div", { class: "avatar big", text: initials(name) });
    const bar = h("div", { class: "meter-bar", id: "meter-bar" });
    const meterEl = h("div", { class: "meter", title: t("microphone"), role: "meter", "aria-label": t("microphone") },
      icon("mic"), h("div", { class: "meter-track" }, bar));
    const notice = h("p", { class: "notice", id: "prejoin-notice", role: "status", hidden: true });

    const camSel = h("select", { id: "camera-select", "aria-label": t("camera") });
    const micSel = h("select", { id: "mic-select", "aria-label": t("microphone") });
    const spkSel = h("select", { id: "speaker-select", "aria-label": t("speaker") });
    const camToggle = h("button", { class: "toggle", id: "prejoin-camera", type: "button" });
    const micToggle = h("button", { class: "toggle", id: "prejoin-mic", type: "button" });
    const joinBtn = h("button", { class: "primary join", id: "join", type: "button", text: t("join") });

    // the virtual background: the camera is reopened through it (media.js -> background.js)
    const bgField = backgroundPicker("background-select", async () => {
      if (!state.camOn || !state.video) return;
      try {
        const track = await getCamera(state.videoDeviceId);
        state.video.stop();
        state.video = track;
      } catch (e) { state.errors.video = e.name || String(e); }
      render();
    });
    const field = (label, sel, id) => h("label", { class: "field", id }, h("span", { text: label }), sel);
    const camField = field(t("camera"), camSel, "camera-field");
    const micField = field(t("microphone"), micSel, "mic-field");
    const testBtn = h("button", { class: "toggle small", id: "test-speaker", type: "button" }, icon("speaker"),
      h("span", { text: t("testSpeaker") }));
    testBtn.addEventListener("click", () => playTestTone(state.speakerId));
    const spkField = h("div", { class: "field", id: "speaker-field" },
      h("label", { for: "speaker-select", text: t("speaker") }), h("div", { class: "row" }, spkSel, testBtn));

    // context: which lesson, in which role (the link check's answer; the token's role without it)
    const lessonName = info?.name || "";
    const role = info?.role || claims.role || "participant";
    const context = h("div", { class: "prejoin-context" },
      lessonName ? h("p", { class: "prejoin-lesson", id: "prejoin-lesson", text: t("prejoinLesson", { name: lessonName }) }) : null,
      h("p", { class: "prejoin-role", id: "prejoin-role", text: t("yourRole", { role: t(`role_${role}`) }) }));
    const screen = h("div", { class: "prejoin", id: "prejoin" },
      h("div", { class: "prejoin-card" },
        h("div", { class: "prejoin-top" }, h("h1", { text: t("prejoinHeading") }), langSwitch()),
        context,
        h("div", { class: "prejoin-body" },
          h("div", { class: "preview" }, video, avatar, meterEl),
          h("div", { class: "prejoin-side" },
            h("p", { class: "join-as" }, h("span", { text: `${t("youJoinAs")} ` }),
              h("strong", { class: "display-name", id: "display-name", text: name })),
            notice,
            h("div", { class: "toggles" }, micToggle, camToggle),
            camField, bgField, micField, spkField,
            joinBtn))));
    clear(app);
    app.appendChild(screen);
    window.urok.screen = "prejoin";

    function setNotice(key) {
      notice.hidden = !key;
      notice.textContent = key ? t(key) : "";
    }

    function render() {
      const hasCam = !viewer && !state.denied && (Boolean(state.video) || !state.errors.video);
      const showVideo = Boolean(state.video && state.camOn);
      video.hidden = !showVideo;
      avatar.hidden = showVideo;
      attachTrack(video, showVideo ? state.video : null);
      camToggle.replaceChildren(icon("cam", { slashed: !state.camOn }), h("span", { text: t(state.camOn ? "joinCameraOn" : "joinCameraOff") }));
      micToggle.replaceChildren(icon("mic", { slashed: !state.micOn }), h("span", { text: t(state.micOn ? "joinMicOn" : "joinMicOff") }));
      camToggle.classList.toggle("off", !state.camOn);
      micToggle.classList.toggle("off", !state.micOn);
      camToggle.disabled = !hasCam;
      micToggle.disabled = !state.audio;
      camToggle.setAttribute("aria-pressed", String(state.camOn));
      micToggle.setAttribute("aria-pressed", String(state.micOn));
      meterEl.hidden = !state.audio;
      camField.hidden = viewer || !state.video && !state.videoDeviceId;
      bgField.hidden = camField.hidden;
      micField.hidden = viewer || !state.audio;
      spkSel.hidden = !canChooseSpeaker || spkSel.options.length < 2;
      if (viewer) setNotice("viewerNotice");
      else if (!mediaSupported()) setNotice(window.isSecureContext ? "noDevicesNotice" : "insecureNotice");
      else if (state.denied) setNotice("deniedNotice");
      else if (!state.audio && !state.video && (state.errors.audio || state.errors.video)) setNotice("noDevicesNotice");
      else if (!state.video && state.errors.video) setNotice("noCameraNotice");
      else if (!state.audio && state.errors.audio) setNotice("noMicNotice");
      else setNotice(null);
      window.urok.prejoin = { ...state, ready: true };
    }

    function fill(sel, list, current) {
      sel.replaceChildren(...list.map((d, i) => h("option", { value: d.deviceId, text: d.label || t("deviceN", { n: i + 1 }) })));
      if (current && list.some((d) => d.deviceId === current)) sel.value = current;
    }

    async function refreshDevices() {
      const devs = await listDevices();
      state.videoDeviceId = state.video?.getSettings?.().deviceId || state.videoDeviceId;
      state.audioDeviceId = state.audio?.getSettings?.().deviceId || state.audioDeviceId;
      fill(camSel, devs.videoinput, state.videoDeviceId);
      fill(micSel, devs.audioinput, state.audioDeviceId);
      fill(spkSel, devs.audiooutput, state.speakerId);
      render();
    }

    function startMeter() {
      meter?.stop();
      meter = state.audio ? new LevelMeter(state.audio) : null;
    }
    const stopLoop = meterLoop(() => meter, (level) => {
      bar.style.width = `${Math.round(level * 100)}%`;
      bar.dataset.level = level.toFixed(3);
    });

    camToggle.addEventListener("click", async () => {
      if (state.camOn) {
        state.camOn = false;
        state.video?.stop(); // the camera light goes off
        state.video = null;
      } else {
        state.camOn = true;
        try {
          state.video = await getCamera(state.videoDeviceId);
          delete state.errors.video;
        } catch (e) {
          state.errors.video = e.name || String(e);
        }
      }
      render();
    });
    micToggle.addEventListener("click", () => {
      state.micOn = !state.micOn;
      if (state.audio) state.audio.enabled = state.micOn;
      render();
    });
    camSel.addEventListener("change", async () => {
      state.videoDeviceId = camSel.value;
      if (!state.camOn) return;
      try {
        const track = await getCamera(camSel.value);
        state.video?.stop();
        state.video = track;
      } catch (e) { state.errors.video = e.name || String(e); }
      render();
    });
    micSel.addEventListener("change", async () => {
      state.audioDeviceId = micSel.value;
      try {
        const track = await getMicrophone(micSel.value);
        track.enabled = state.micOn;
        state.audio?.stop();
        state.audio = track;
        startMeter();
      } catch (e) { state.errors.audio = e.name || String(e); }
      render();
    });
    spkSel.addEventListener("change", () => { state.speakerId = spkSel.value; });

    joinBtn.addEventListener("click", () => {
      stopLoop();
      meter?.stop();
      if (state.audio) state.audio.enabled = state.micOn;
      resolve({ ...state, listener: !viewer && !state.audio && !state.video });
    });

    render();
    if (viewer || !mediaSupported()) {
      state.micOn = false;
      state.camOn = false;
      refreshDevices();
      return;
    }
    setNotice("askingDevices");
    joinBtn.disabled = true;
    acquire().then(async (r) => {
      state.audio = r.audio;
      state.video = r.video;
      state.denied = r.denied;
      state.errors = r.errors;
      if (!r.video) state.camOn = false;
      if (!r.audio) state.micOn = false;
      startMeter();
      render();
      await refreshDevices();
      joinBtn.disabled = false;
      window.urok.prejoin = { ...state, ready: true };
    });
  });
}
