// Virtual background (issue 15): blur or a picture behind the person, chosen on the pre-join page
// and in the lesson's settings, remembered. MediaPipe's selfie segmentation (npm
// @mediapipe/selfie_segmentation, installed under web/vendor and served by urok itself: no CDN) runs
// in the browser (WebAssembly + WebGL) and gives a mask per frame; the processed frames are drawn on
// a canvas whose captured track is what the page publishes instead of the raw camera.
//
// media.js asks `filterCamera(raw)` for every camera track it opens, so the preview, the published
// track and a camera switched mid-lesson all go through the same choice. The processed track keeps
// the raw one's label and deviceId (the device lists and the settings follow the real camera) and
// stops it when it is stopped.

import { h } from "./dom.js";
import { t } from "./i18n.js";

const SS_DIR = "/web/vendor/node_modules/@mediapipe/selfie_segmentation/";
const KEY = "urok.background";
export const PICTURES = { board: "/web/backgrounds/board.svg", shelves: "/web/backgrounds/shelves.svg" };
export const CHOICES = ["none", "blur", "board", "shelves", "upload"];
const UPLOAD_KEY = "urok.backgroundPicture";
const MAX_REMEMBERED_PICTURE = 1_500_000; // characters of a data: URL kept in localStorage

function stored(key, fallback) {
  try { return globalThis.localStorage?.getItem(key) ?? fallback; } catch { return fallback; }
}
function store(key, value) {
  try {
    if (value === null) globalThis.localStorage?.removeItem(key);
    else globalThis.localStorage?.setItem(key, value);
  } catch {}
}

let choice = CHOICES.includes(stored(KEY, "none")) ? stored(KEY, "none") : "none";
let uploaded = stored(UPLOAD_KEY, null); // a data: URL (img-src allows 'self' and data: only)
if (choice === "upload" && !uploaded) choice = "none";

export function current() {
  return choice;
}

/** Chooses the background for the cameras opened from now on (the caller reopens the camera). */
export function choose(next, pictureUrl = null) {
  if (!CHOICES.includes(next)) return;
  if (next === "upload") {
    if (pictureUrl) uploaded = pictureUrl;
    if (!uploaded) return;
    store(UPLOAD_KEY, uploaded.length <= MAX_REMEMBERED_PICTURE ? uploaded : null);
  }
  choice = next;
  store(KEY, next);
}

/** Reads a picture the user picked as a data: URL. */
export function readPicture(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

// ---- the segmenter: one for the page, loaded on first use ---------------------------------------
let loading = null;
let queue = Promise.resolve();
let onResult = null;

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`${src} could not be loaded`));
    document.head.appendChild(s);
  });
}

function segmenter() {
  loading ??= (async () => {
    if (!globalThis.SelfieSegmentation) await loadScript(`${SS_DIR}selfie_segmentation.js`);
    const seg = new globalThis.SelfieSegmentation({ locateFile: (f) => `${SS_DIR}${f}` });
    seg.setOptions({ modelSelection: 1 }); // the landscape model: faster, made for video calls
    seg.onResults((r) => { const fn = onResult; onResult = null; fn?.(r); });
    await seg.initialize();
    return seg;
  })().catch((e) => { loading = null; throw e; });
  return loading;
}

/** One frame through the model; `draw(results)` runs while the mask is valid. Frames of several
 *  pipelines (a camera switch) take turns. */
function segment(seg, image, draw) {
  const run = queue.then(() => new Promise((resolve) => {
    onResult = (r) => { try { draw(r); } finally { resolve(); } };
    seg.send({ image }).catch(() => { onResult = null; resolve(); });
  }));
  queue = run;
  return run;
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the background picture could not be loaded"));
    img.src = src;
  });
}

/** Draws `img` to cover w x h (cropped, not stretched). */
function cover(ctx, img, w, h) {
  const iw = img.naturalWidth || img.width;
  const ih = img.naturalHeight || img.height;
  const s = Math.max(w / iw, h / ih);
  ctx.drawImage(img, (w - iw * s) / 2, (h - ih * s) / 2, iw * s, ih * s);
}

/** The processed copy of a camera track for `mode` ("blur" or a picture's key or "upload"). */
export async function processTrack(raw, mode = choice) {
  const seg = await segmenter();
  const settings = raw.getSettings ? raw.getSettings() : {};
  const fps = settings.frameRate || 24;
  const picture = mode === "blur" ? null : await loadImage(mode === "upload" ? uploaded : PICTURES[mode]);
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = new MediaStream([raw]);
  await video.play();
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth || settings.width || 640;
  canvas.height = video.videoHeight || settings.height || 480;
  const ctx = canvas.getContext("2d");
  const out = canvas.captureStream(fps).getVideoTracks()[0];
  let running = true;
  const stats = { frames: 0, started: performance.now(), mode };

  const draw = (r) => {
    const w = canvas.width;
    const h = canvas.height;
    ctx.save();
    ctx.clearRect(0, 0, w, h);
    ctx.drawImage(r.segmentationMask, 0, 0, w, h);
    ctx.globalCompositeOperation = "source-in"; // the person: the camera's own pixels
    ctx.drawImage(r.image, 0, 0, w, h);
    ctx.globalCompositeOperation = "destination-over"; // behind them: the picture or the blurred room
    if (picture) cover(ctx, picture, w, h);
    else {
      ctx.filter = "blur(14px)";
      ctx.drawImage(r.image, 0, 0, w, h);
    }
    ctx.restore();
    stats.frames++;
  };
  const next = () => {
    if (!running) return;
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(step);
    else setTimeout(step, 1000 / fps);
  };
  async function step() {
    if (!running) return;
    if (video.videoWidth && (video.videoWidth !== canvas.width || video.videoHeight !== canvas.height)) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
    }
    await segment(seg, video, draw);
    next();
  }
  next();

  const stopOut = out.stop.bind(out);
  const stop = () => {
    running = false;
    stopOut();
    raw.stop();
    video.srcObject = null;
  };
  // the device lists and the settings follow the real camera
  Object.defineProperties(out, {
    label: { get: () => raw.label },
    stop: { value: stop },
    getSettings: { value: () => raw.getSettings() },
    raw: { value: raw },
    background: { value: stats },
  });
  raw.addEventListener("ended", stop);
  return out;
}

/** media.js's hook: the camera as chosen (the raw track when no background is chosen, or when the
 *  model cannot run here: a camera without a background beats no camera). */
export async function filterCamera(raw) {
  if (choice === "none" || !raw) return raw;
  try {
    return await processTrack(raw, choice);
  } catch (e) {
    console.warn("urok: virtual background unavailable:", e);
    return raw;
  }
}

/** The "Background" field of the pre-join page and the settings dialog: `onChosen()` after a
 *  change (the caller reopens its camera through media.js). */
export function backgroundPicker(id, onChosen) {
  const file = h("input", { type: "file", accept: "image/*", hidden: true, id: `${id}-file` });
  const sel = h("select", { id, "aria-label": t("background") },
    CHOICES.map((c) => h("option", { value: c, text: t(`background_${c}`), selected: c === choice })));
  sel.addEventListener("change", () => {
    if (sel.value === "upload") { file.click(); return; }
    choose(sel.value);
    onChosen();
  });
  file.addEventListener("change", async () => {
    const f = file.files?.[0];
    if (!f) { sel.value = choice; return; }
    choose("upload", await readPicture(f));
    sel.value = choice;
    onChosen();
  });
  return h("label", { class: "field background-field", id: `${id}-field` }, h("span", { text: t("background") }), sel, file);
}
