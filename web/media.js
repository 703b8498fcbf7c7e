// Local devices: getUserMedia with graceful fallbacks, device lists, a microphone level meter.
// Every camera track goes through the chosen virtual background (background.js).

import { filterCamera } from "./background.js";

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
// While the server cleans this participant's microphone (RNNoise, noise.js knows), the browser's own
// noise suppression and gain control are off: after Chromium's suppression RNNoise took the
// remaining speech for noise and removed it too (tests/e2e/test_noise_browser.py).  Echo
// cancellation stays: the server cannot do it.
const SERVER_CLEANS = { noiseSuppression: false, autoGainControl: false };
let serverCleans = false;
const microphones = new Set(); // live microphone tracks handed out here, to re-apply constraints to

export function mediaSupported() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

function videoConstraints(deviceId) {
  return deviceId ? { ...VIDEO, deviceId: { exact: deviceId } } : VIDEO;
}

function processing() {
  return serverCleans ? { ...AUDIO, ...SERVER_CLEANS } : AUDIO;
}

function audioConstraints(deviceId) {
  return deviceId ? { ...processing(), deviceId: { exact: deviceId } } : processing();
}

function kept(track) {
  if (track) microphones.add(track);
  return track;
}

/**
 * Says whether the server suppresses noise on this participant's microphone; on a change the live
 * microphone tracks get the matching constraints (track.applyConstraints). Where the browser keeps
 * its processing anyway (its settings still differ), `reacquire()` is called to take the
 * microphone again (getUserMedia with the new constraints, e.g. session.switchMicrophone).
 */
export async function setServerSuppression(on, reacquire) {
  if (serverCleans === Boolean(on)) return;
  serverCleans = Boolean(on);
  const wanted = processing();
  let stale = false;
  for (const track of [...microphones]) {
    if (track.readyState === "ended") { microphones.delete(track); continue; }
    try { await track.applyConstraints({ ...(track.getConstraints?.() || {}), ...wanted }); } catch {}
    const s = track.getSettings?.() || {};
    if (s.noiseSuppression !== undefined && s.noiseSuppression !== wanted.noiseSuppression) stale = true;
  }
  if (stale && reacquire) await reacquire();
}

/** The processing asked for now and what the live microphones have (tests, diagnostics). */
export function microphoneProcessing() {
  const live = [...microphones].filter((track) => track.readyState === "live");
  return { asked: { ...processing() }, tracks: live.map((track) => track.getSettings?.() || {}) };
}

export async function getCamera(deviceId) {
  const s = await navigator.mediaDevices.getUserMedia({ video: videoConstraints(deviceId) });
  return filterCamera(s.getVideoTracks()[0]);
}

export async function getMicrophone(deviceId) {
  const s = await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(deviceId) });
  return kept(s.getAudioTracks()[0]);
}

/**
 * Asks for the microphone and the camera. Never throws:
 * {audio: track|null, video: track|null, denied: bool, errors: {audio?, video?}}.
 */
export async function acquire({ audioId = "", videoId = "", audio = true, video = true } = {}) {
  const result = { audio: null, video: null, denied: false, errors: {} };
  if (!mediaSupported()) {
    result.errors.audio = result.errors.video = "unsupported";
    return result;
  }
  if (!audio && !video) return result;
  try {
    const s = await navigator.mediaDevices.getUserMedia({
      audio: audio ? audioConstraints(audioId) : false,
      video: video ? videoConstraints(videoId) : false,
    });
    result.audio = kept(s.getAudioTracks()[0]) || null;
    result.video = (await filterCamera(s.getVideoTracks()[0])) || null;
    return result;
  } catch (e) {
    if (e && (e.name === "NotAllowedError" || e.name === "SecurityError")) {
      result.denied = true;
      result.errors.audio = result.errors.video = e.name;
      return result;
    }
  }
  // one of the two is missing or busy: try each alone
  if (audio) {
    try { result.audio = await getMicrophone(audioId); } catch (e) {
      if (audioId) { try { result.audio = await getMicrophone(""); } catch (e2) { result.errors.audio = e2.name || String(e2); } }
      else result.errors.audio = e.name || String(e);
    }
  }
  if (video) {
    try { result.video = await getCamera(videoId); } catch (e) {
      if (videoId) { try { result.video = await getCamera(""); } catch (e2) { result.errors.video = e2.name || String(e2); } }
      else result.errors.video = e.name || String(e);
    }
  }
  if (!result.audio && !result.video &&
      [result.errors.audio, result.errors.video].some((n) => n === "NotAllowedError")) result.denied = true;
  return result;
}

/** {audioinput: [...], videoinput: [...], audiooutput: [...]} (MediaDeviceInfo lists). */
export async function listDevices() {
  const out = { audioinput: [], videoinput: [], audiooutput: [] };
  if (!navigator.mediaDevices?.enumerateDevices) return out;
  try {
    for (const d of await navigator.mediaDevices.enumerateDevices()) {
      if (out[d.kind] && d.deviceId) out[d.kind].push(d);
    }
  } catch {}
  return out;
}

export const canChooseSpeaker = typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

let audioCtx = null;

export function audioContext() {
  if (!audioCtx) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    audioCtx = new Ctx();
    // a suspended context (autoplay policy) resumes on the first gesture
    const resume = () => audioCtx && audioCtx.state === "suspended" && audioCtx.resume().catch(() => {});
    for (const ev of ["pointerdown", "keydown"]) document.addEventListener(ev, resume, { capture: true });
  }
  if (audioCtx.state === "suspended") audioCtx.resume().catch(() => {});
  return audioCtx;
}

/** Microphone level from a WebAudio AnalyserNode: level() is 0..1 (RMS, scaled). */
export class LevelMeter {
  constructor(track) {
    this.track = track;
    this.ctx = audioContext();
    this.buf = null;
    if (!this.ctx || !track) return;
    this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.analyser.smoothingTimeConstant = 0.3;
    this.source.connect(this.analyser);
    this.buf = new Float32Array(this.analyser.fftSize);
  }

  level() {
    if (!this.buf || !this.track || this.track.readyState !== "live" || !this.track.enabled) return 0;
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    const rms = Math.sqrt(sum / this.buf.length);
    // -60 dBFS .. 0 dBFS -> 0 .. 1
    const db = 20 * Math.log10(rms + 1e-9);
    return Math.max(0, Math.min(1, (db + 60) / 60));
  }

  stop() {
    try { this.source?.disconnect(); } catch {}
    this.buf = null;
  }
}

/** Runs fn(level) on every animation frame (or every 100 ms when hidden) until stop() is called. */
export function meterLoop(getMeter, fn) {
  let stopped = false;
  let timer = null;
  const tick = () => {
    if (stopped) return;
    const m = getMeter();
    fn(m ? m.level() : 0);
    timer = setTimeout(tick, 60);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
