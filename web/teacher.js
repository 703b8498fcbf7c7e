// The teacher's page: /teacher#token=<teacher token> (minted by the school's system:
// POST /v1/teacher_tokens). Their lessons today and in a week (GET /v1/lessons?teacher_id=...; the
// server shows a teacher token only its own lessons), each with "Start" (the teacher's own lesson
// link: the lesson page enters the occurrence open now, or says when it starts) and "Copy the
// students' links" (one line per student, family name first, to paste into the journal or a chat);
// below, the form to plan a lesson for a class (teacher_form.js).

import { t, lang } from "./i18n.js";
import { readToken } from "./token.js";
import { h, clear } from "./dom.js";
import { api, explain } from "./lesson_api.js";
import { addDays, fmtDay, fmtShortDay, fmtTime, isoWithOffset, parseIso, startOfDay, startOfWeek } from "./lesson_time.js";
import { createPlanForm } from "./teacher_form.js";

const REFRESH_MS = 60000; // states move on (scheduled -> open -> running -> ended) without a reload

const app = document.getElementById("app");
document.documentElement.lang = lang;
document.title = t("teacherTitle");
window.urok = window.urok || {};
const state = { token: "", claims: null, weekOffset: 0, loads: 0, occurrences: [], error: "" };
window.urok.teacher = state; // for debugging and the browser tests
const shownLinks = new Map(); // lesson_id -> {text, note, kind}: kept across the refreshes

function showMessage(text) {
  clear(app);
  app.appendChild(h("div", { class: "message-screen" },
    h("div", { class: "message-card error", role: "alert", id: "message" }, h("p", { class: "message-text", text }))));
}

const byName = (a, b) => (a.family_name || a.name || "").localeCompare(b.family_name || b.name || "", lang)
  || (a.given_name || "").localeCompare(b.given_name || "", lang);

function personLine(link) {
  const name = [link.family_name, link.given_name].filter(Boolean).join(" ") || link.name || link.identity;
  return `${name} — ${link.join_url}`;
}

async function fetchLinks(lessonId) {
  const { data } = await api("GET", `/v1/lessons/${encodeURIComponent(lessonId)}/links`, { token: state.token });
  return Array.isArray(data) ? data : (data && data.links) || [];
}

/** Opens the teacher's own lesson link in this tab (the schedule is one "back" away). */
async function start(o, note, button) {
  button.disabled = true;
  setNote(note, "", "");
  try {
    const links = await fetchLinks(o.lesson_id);
    const mine = links.find((l) => l.identity === state.claims.sub && l.role === "host")
      || links.find((l) => l.identity === state.claims.sub);
    if (!mine || !mine.join_url) {
      setNote(note, t("noOwnLink"), "error");
      return;
    }
    // same origin as this page (the link names the server's public address, which may be the same
    // server under another name); ?lang= goes along
    const u = new URL(mine.join_url, location.href);
    location.assign(u.pathname + (u.search || location.search) + u.hash);
  } catch (err) {
    setNote(note, explain(err), "error");
  } finally {
    button.disabled = false;
  }
}

function setNote(note, text, kind) {
  note.textContent = text;
  note.className = `tp-note ${kind}`;
  note.hidden = !text;
}

function showLinks(box, text) {
  clear(box);
  const area = h("textarea", { class: "links-text", readonly: true, rows: 6, spellcheck: "false", "aria-label": t("studentLinks") });
  area.value = text;
  box.appendChild(area);
  box.hidden = false;
  return area;
}

async function copyLinks(o, note, box, button) {
  button.disabled = true;
  try {
    const links = await fetchLinks(o.lesson_id);
    const students = links.filter((l) => l.role !== "host").sort(byName);
    if (!students.length) {
      setNote(note, t("noStudents"), "error");
      return;
    }
    const text = students.map(personLine).join("\n");
    const area = showLinks(box, text);
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch {
      // no clipboard permission (an old browser, http:// on another host): the text is selected
      // below for Ctrl+C, and execCommand still works in many of them
      area.focus();
      area.select();
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    const msg = copied ? t("linksCopied", { n: students.length }) : t("linksCopyFailed");
    setNote(note, msg, copied ? "ok" : "error");
    shownLinks.set(o.lesson_id, { text, note: msg, kind: copied ? "ok" : "error" });
  } catch (err) {
    setNote(note, explain(err), "error");
  } finally {
    button.disabled = false;
  }
}

function occurrenceItem(o) {
  const s = parseIso(o.starts_at);
  const e = parseIso(o.ends_at);
  const note = h("p", { class: "tp-note", role: "status", hidden: true });
  const box = h("div", { class: "tp-links", hidden: true });
  const over = o.state === "ended" || o.state === "cancelled";
  const startBtn = h("button", { type: "button", class: "primary small start", text: t("startLesson"), disabled: over });
  startBtn.addEventListener("click", () => start(o, note, startBtn));
  const copyBtn = h("button", { type: "button", class: "secondary small copy-links", text: t("copyStudentLinks"),
    disabled: o.state === "cancelled" });
  copyBtn.addEventListener("click", () => copyLinks(o, note, box, copyBtn));
  const kept = shownLinks.get(o.lesson_id);
  if (kept) {
    showLinks(box, kept.text);
    setNote(note, kept.note, kept.kind);
  }
  const className = o.class && (o.class.name || o.class.id);
  return h("li", { class: "tp-item", dataset: { lessonId: o.lesson_id, startsAt: o.starts_at, state: o.state, roomId: o.room_id || "" } },
    h("div", { class: "tp-item-main" },
      h("span", { class: "tp-time", text: Number.isFinite(s) && Number.isFinite(e) ? `${fmtTime(s)}–${fmtTime(e)}` : "" }),
      h("span", { class: "tp-name", text: o.name || o.subject || o.lesson_id }),
      className ? h("span", { class: "tp-class", text: className }) : null,
      h("span", { class: `tag state-${o.state}`, text: t(`state_${o.state}`) })),
    h("div", { class: "tp-actions" }, startBtn, copyBtn),
    note, box);
}

function list(items, emptyText, id) {
  if (!items.length) return h("p", { class: "empty", id, text: emptyText });
  return h("ul", { class: "tp-list", id }, items.map(occurrenceItem));
}

async function fetchOccurrences(from, to) {
  const q = new URLSearchParams({ teacher_id: state.claims.sub, from: isoWithOffset(from), to: isoWithOffset(to) });
  const { data } = await api("GET", `/v1/lessons?${q}`, { token: state.token });
  const occ = (data && data.occurrences) || [];
  return occ.slice().sort((a, b) => parseIso(a.starts_at) - parseIso(b.starts_at));
}

function buildPage() {
  const todayBox = h("div", { id: "today-box" });
  const weekBox = h("div", { id: "week-box" });
  const weekTitle = h("h2", { id: "week-title" });
  const error = h("p", { class: "tp-note error", id: "schedule-error", role: "alert", hidden: true });
  const todayTitle = h("h2", { id: "today-title" });
  const move = (n) => () => { state.weekOffset = n === 0 ? 0 : state.weekOffset + n; load(); };
  const reload = h("button", { type: "button", class: "secondary small", id: "reload", text: t("reload"), onclick: () => load() });
  const who = state.claims.name || [state.claims.family_name, state.claims.given_name].filter(Boolean).join(" ") || state.claims.sub;
  const page = h("main", { class: "tp", id: "teacher" },
    h("header", { class: "tp-head" }, h("h1", { text: t("teacherTitle") }), h("span", { class: "tp-who", id: "teacher-name", text: who }), reload),
    error,
    h("section", { class: "tp-section", id: "today" }, todayTitle, todayBox),
    h("section", { class: "tp-section", id: "week" },
      h("div", { class: "tp-week-head" }, weekTitle,
        h("button", { type: "button", class: "secondary small", id: "week-prev", text: t("prevWeek"), onclick: move(-1) }),
        h("button", { type: "button", class: "secondary small", id: "week-now", text: t("thisWeek"), onclick: move(0) }),
        h("button", { type: "button", class: "secondary small", id: "week-next", text: t("nextWeek"), onclick: move(1) })),
      weekBox),
    h("section", { class: "tp-section", id: "plan" }, h("h2", { text: t("planTitle") }),
      createPlanForm({ token: state.token, claims: state.claims, onPlanned: () => load() })));
  clear(app);
  app.appendChild(page);
  return { todayBox, weekBox, weekTitle, todayTitle, error };
}

let ui = null;
let loading = null;
let again = false; // asked while a load was under way (another week, a new lesson): load once more after it

async function load() {
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    const now = Date.now();
    const today = startOfDay(now);
    const tomorrow = addDays(today, 1);
    const weekStart = addDays(startOfWeek(now), 7 * state.weekOffset);
    const weekEnd = addDays(weekStart, 7);
    try {
      const thisWeek = today >= weekStart && today < weekEnd;
      const [week, todays] = await Promise.all([
        fetchOccurrences(weekStart, weekEnd),
        thisWeek ? null : fetchOccurrences(today, tomorrow),
      ]);
      const inToday = (o) => { const s = parseIso(o.starts_at); return s >= today.getTime() && s < tomorrow.getTime(); };
      const todayItems = todays || week.filter(inToday);
      state.occurrences = week;
      state.error = "";
      ui.error.hidden = true;
      ui.todayTitle.textContent = t("todayDay", { day: fmtDay(now) });
      ui.todayBox.replaceChildren(list(todayItems, t("noLessonsToday"), "today-list"));
      ui.weekTitle.textContent = t(thisWeek ? "thisWeekTitle" : "weekTitle",
        { from: fmtShortDay(weekStart.getTime()), to: fmtShortDay(addDays(weekEnd, -1).getTime()) });
      // the week by day; today's lessons are above already
      const days = [];
      for (let d = new Date(weekStart); d < weekEnd; d = addDays(d, 1)) {
        const next = addDays(d, 1);
        if (thisWeek && d.getTime() === today.getTime()) continue;
        const items = week.filter((o) => { const s = parseIso(o.starts_at); return s >= d.getTime() && s < next.getTime(); });
        if (items.length) days.push(h("div", { class: "tp-day" }, h("h3", { text: fmtDay(d.getTime()) }), list(items, "", null)));
      }
      ui.weekBox.replaceChildren(...(days.length ? days : [h("p", { class: "empty", id: "week-empty",
        text: t(thisWeek ? "noLessonsRestOfWeek" : "noLessonsWeek") })]));
    } catch (err) {
      state.error = explain(err);
      ui.error.textContent = state.error;
      ui.error.hidden = false;
    } finally {
      state.loads++;
      loading = null;
      if (again) {
        again = false;
        load();
      }
    }
  })();
  return loading;
}

function main() {
  const { token, claims } = readToken();
  if (!token) return showMessage(t("teacherNoToken"));
  if (!claims) return showMessage(t("teacherBadToken"));
  if (claims.teacher !== true || !claims.sub) return showMessage(t("notTeacherToken"));
  if (typeof claims.exp === "number" && claims.exp * 1000 < Date.now() - 10000) return showMessage(t("teacherExpired"));
  state.token = token;
  state.claims = claims;
  ui = buildPage();
  setInterval(() => { if (document.visibilityState === "visible") load(); }, REFRESH_MS);
  return load();
}

Promise.resolve().then(main).catch((e) => {
  console.error(e);
  showMessage(String(e && e.message ? e.message : e));
});
