// The lesson link page: /lesson/{lesson_id}#token=<lesson token> (one link per person, from the
// e-journal; the same link for every occurrence of the lesson).
//
// It asks the server to enter the occurrence open now (POST /v1/lessons/{id}/enter). Inside the
// window it goes straight on to the client (/join/{room_id}#token=<room token>), where the pre-join
// screen checks the camera and microphone. Before the window it is not an error: the page says when
// the lesson starts, counts down, and tries again by itself when entry opens (so a pupil who comes
// early can leave the tab open). A cancelled or finished lesson, or a broken link, is said at once.

import { t, lang } from "./i18n.js";
import { readToken } from "./token.js";
import { h, clear } from "./dom.js";
import { api, ApiError } from "./lesson_api.js";
import { Backoff } from "./backoff.js";
import { countdown, daysFrom, fmtDay, fmtTime, parseIso } from "./lesson_time.js";

const RECHECK_MS = 10 * 60 * 1000; // while waiting, ask again at least this often (the lesson may move)
const SPREAD_MS = 2000; // a class that waits together does not knock in the same millisecond

const app = document.getElementById("app");
document.documentElement.lang = lang;
document.title = t("lessonPageTitle");
window.urok = window.urok || {};
// what the page shows, for people who debug it and for the browser tests
const page = { state: "checking", lessonId: "", opensAt: null, startsAt: null, name: "", tries: 0, code: "" };
window.urok.lessonPage = page;

function lessonIdFromPath(pathname) {
  const m = pathname.match(/^\/lesson\/([^/]+)/);
  if (!m) return "";
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1]; // a malformed %-escape: the server answers lesson_not_found
  }
}

function card(state, kind, ...children) {
  page.state = state;
  clear(app);
  app.appendChild(h("div", { class: "message-screen" },
    h("div", { class: `message-card lesson-card ${kind}`, id: "lesson-message", role: kind === "error" ? "alert" : "status",
      dataset: { state } }, ...children)));
}

function showFinal(state, text) {
  stopTicker();
  card(state, state === "ended" ? "info" : "error", h("p", { class: "message-text", id: "lesson-text", text }));
}

// the lesson's name when the server gave it ("Урок «Алгебра, 7Б» ..."), else the sentence without it
const named = (key, name, params = {}) => (name ? t(key, { ...params, name }) : t(`${key}Unnamed`, params));

let ticker = 0;
let nextTryAt = 0; // our clock (ms)
let skewMs = 0; // the server's clock minus ours
const retry = new Backoff({ baseMs: 2000, factor: 2, capMs: 30000, stableMs: 0 });

function serverNow() {
  return Date.now() + skewMs;
}

function stopTicker() {
  if (ticker) clearInterval(ticker);
  ticker = 0;
}

function startTicker(tick) {
  stopTicker();
  ticker = setInterval(tick, 1000);
  tick();
}

function showNotOpen(lessonId, token, details) {
  const startsAt = parseIso(details.starts_at);
  const opensAt = parseIso(details.opens_at);
  page.name = details.name || page.name;
  page.startsAt = details.starts_at || null;
  page.opensAt = details.opens_at || null;
  const now = serverNow();
  // opens_at from the server, on the server's clock: try then (plus a little spread); if the answer
  // is still "not open" (clocks disagree by a second), back off a few seconds; never wait longer
  // than RECHECK_MS between two questions
  const due = Number.isFinite(opensAt) && opensAt > now
    ? opensAt - skewMs + Math.random() * SPREAD_MS
    : Date.now() + retry.next();
  nextTryAt = Math.min(due, Date.now() + RECHECK_MS);

  const title = h("h1", { id: "lesson-title" });
  const day = h("p", { class: "lesson-day", id: "lesson-day" });
  const left = h("strong", { id: "lesson-left" });
  const opensLine = h("span", { id: "lesson-opens" });
  const count = h("p", { class: "lesson-countdown", id: "lesson-countdown" }, opensLine, left);
  card("not_open", "info", title, day, count, h("p", { class: "lesson-note", id: "lesson-note", text: t("lessonAutoEnter") }));
  if (Number.isFinite(startsAt)) {
    title.textContent = named("lessonStartsAt", page.name, { time: fmtTime(startsAt) });
    const d = daysFrom(Date.now(), startsAt);
    const dayText = fmtDay(startsAt);
    day.textContent = d === 0 ? t("todayDay", { day: dayText }) : d === 1 ? t("tomorrowDay", { day: dayText }) : dayText;
  } else {
    title.textContent = named("lessonNotYet", page.name);
  }
  startTicker(() => {
    const nowS = serverNow();
    if (Number.isFinite(opensAt) && opensAt > nowS) {
      opensLine.textContent = t("lessonOpensAt", { time: fmtTime(opensAt) });
      left.textContent = countdown(opensAt - nowS, t("daysShort"));
    } else {
      opensLine.textContent = t("lessonOpening");
      left.textContent = "";
    }
    if (Date.now() >= nextTryAt) {
      stopTicker();
      enter(lessonId, token);
    }
  });
}

function showUnreachable(lessonId, token, err) {
  nextTryAt = Date.now() + retry.next();
  const line = h("p", { class: "message-text", id: "lesson-text" });
  card("retrying", "error", line);
  startTicker(() => {
    const s = Math.max(0, Math.ceil((nextTryAt - Date.now()) / 1000));
    line.textContent = err.status === 0 ? t("lessonNoServer", { s }) : t("lessonServerBusy", { s, status: err.status });
    if (Date.now() >= nextTryAt) {
      stopTicker();
      enter(lessonId, token);
    }
  });
}

function goToRoom(data) {
  page.state = "entering";
  stopTicker();
  // keep ?lang= and the like; the room token goes in the fragment (never to a server's log), and
  // the client takes it out of the address bar at once
  const target = `/join/${encodeURIComponent(data.room_id)}${location.search}#token=${encodeURIComponent(data.token)}`;
  page.target = target;
  location.replace(target); // "back" from the room does not come back here to enter again
}

async function enter(lessonId, token) {
  page.tries++;
  if (page.state !== "not_open") card("checking", "info", h("p", { class: "message-text", id: "lesson-text", text: t("lessonChecking") }));
  try {
    const { data, serverSkewMs } = await api("POST", `/v1/lessons/${encodeURIComponent(lessonId)}/enter`, { token });
    if (Math.abs(serverSkewMs) > 2000) skewMs = serverSkewMs;
    if (!data || !data.room_id || !data.token) throw new ApiError(500, "bad_answer", "no room in the answer");
    retry.reset();
    goToRoom(data);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    page.code = err.code;
    if (err.serverSkewMs !== undefined && Math.abs(err.serverSkewMs) > 2000) skewMs = err.serverSkewMs;
    const name = (err.details && err.details.name) || page.name;
    if (err.code === "lesson_not_open" || (err.status === 409 && err.details && err.details.opens_at)) {
      showNotOpen(lessonId, token, err.details || {});
    } else if (err.code === "lesson_cancelled") {
      showFinal("cancelled", named("lessonCancelled", name));
    } else if (err.code === "lesson_ended" || err.status === 410) {
      showFinal("ended", named("lessonEnded", name));
    } else if (err.code === "lesson_not_found" || err.status === 404) {
      showFinal("not_found", t("lessonNotFound"));
    } else if (err.status === 401 || err.status === 403) {
      showFinal("bad_link", t("lessonBadLink"));
    } else if (err.transient) {
      showUnreachable(lessonId, token, err);
    } else {
      showFinal("error", t("lessonRefused", { message: err.message || err.code }));
    }
  }
}

function main() {
  const lessonId = lessonIdFromPath(location.pathname);
  page.lessonId = lessonId;
  const { token, claims } = readToken();
  if (!lessonId) return showFinal("not_found", t("lessonNotFound"));
  if (!token) return showFinal("no_token", t("lessonNoToken"));
  if (!claims) return showFinal("bad_link", t("lessonBadLink"));
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now() - 10000) return showFinal("expired", t("lessonLinkExpired"));
  // back from sleep or from another tab: look at the clock now, not at the next tick
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && ticker && Date.now() >= nextTryAt) {
      stopTicker();
      enter(lessonId, token);
    }
  });
  return enter(lessonId, token);
}

Promise.resolve().then(main).catch((e) => {
  console.error(e);
  showFinal("error", String(e && e.message ? e.message : e));
});
