// The form to plan a lesson for a class (the teacher's page): class, subject, students, date, time,
// duration, weekly until a date. POST /v1/lessons with the teacher token; the teacher is the
// lesson's teacher. Each filled-in form carries one external id, so a double click or a retry after
// a lost answer plans the lesson once (the server is idempotent on it).

import { t } from "./i18n.js";
import { h } from "./dom.js";
import { api, explain } from "./lesson_api.js";
import { isoDate, isoWithOffset, localDateTime, localTimeZone } from "./lesson_time.js";

const ID = /^[^\s;]{1,128}$/; // an e-journal id: no spaces (the server checks the rest)

/**
 * The students from the text area: one a line, "Фамилия Имя; id" (or "Фамилия Имя Отчество; id"),
 * "Фамилия; Имя; id", or the same columns separated by tabs (copied from a journal's table, with a
 * row number in front or not). -> {students: [{id, family_name, given_name, registered}], errors: [text]}
 */
export function parseStudents(text) {
  const students = [];
  const errors = [];
  const seen = new Set();
  String(text || "").split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    let fields = (line.includes("\t") ? line.split("\t") : line.split(";")).map((f) => f.trim()).filter(Boolean);
    if (fields.length >= 3 && /^\d+[.)]?$/.test(fields[0])) fields = fields.slice(1); // "1<TAB>Петров Пётр<TAB>s-1"
    let family = "";
    let given = "";
    let id = "";
    if (fields.length === 2) {
      const words = fields[0].split(/\s+/);
      family = words[0];
      given = words.slice(1).join(" ");
      id = fields[1];
    } else if (fields.length >= 3) {
      [family, given, id] = fields;
    }
    if (!family || !ID.test(id)) {
      errors.push(t("studentsLineError", { n: i + 1, line: line.length > 60 ? `${line.slice(0, 57)}…` : line }));
      return;
    }
    if (seen.has(id)) {
      errors.push(t("studentsDuplicate", { n: i + 1, id }));
      return;
    }
    seen.add(id);
    students.push({ id, family_name: family, given_name: given, registered: true });
  });
  return { students, errors };
}

function newExternalId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return `teacher-page-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The end of this school year (31 May; after August, next year's): the default "repeat until". */
function schoolYearEnd(now) {
  const y = now.getMonth() >= 7 ? now.getFullYear() + 1 : now.getFullYear();
  return `${y}-05-31`;
}

/** The next time on a 5-minute step at least 5 minutes away: a sensible default for "time". */
function nextSlot(now) {
  const d = new Date(now.getTime() + 5 * 60000);
  d.setSeconds(0, 0);
  d.setMinutes(Math.ceil(d.getMinutes() / 5) * 5);
  return d;
}

const pad = (n) => String(n).padStart(2, "0");

function field(label, control, { wide = false, hint = "" } = {}) {
  return h("label", { class: `field${wide ? " wide" : ""}` }, h("span", { text: label }), control,
    hint ? h("span", { class: "hint", text: hint }) : null);
}

function input(id, attrs = {}) {
  return h("input", { id, name: id, ...attrs });
}

/** The teacher as the lesson's teacher, with the names the token gives (no guessing which word of
 *  "name" is the family name). */
function teacherOf(claims) {
  const me = { id: claims.sub, registered: true };
  if (claims.name) me.name = String(claims.name);
  if (claims.family_name) me.family_name = String(claims.family_name);
  if (claims.given_name) me.given_name = String(claims.given_name);
  return me;
}

export function createPlanForm({ token, claims, onPlanned }) {
  const now = new Date();
  const slot = nextSlot(now);
  let externalId = newExternalId();

  const classId = input("plan-class-id", { required: true, maxlength: 64, autocomplete: "off", placeholder: "7b" });
  const className = input("plan-class-name", { required: true, maxlength: 64, autocomplete: "off", placeholder: "7Б" });
  const subject = input("plan-subject", { required: true, maxlength: 100, placeholder: t("subjectPlaceholder") });
  const name = input("plan-name", { maxlength: 200, placeholder: t("lessonNamePlaceholder") });
  const students = h("textarea", { id: "plan-students", name: "plan-students", rows: 8, spellcheck: "false",
    placeholder: "Петров Пётр; s-1\nСидорова Анна; s-2" });
  const date = input("plan-date", { type: "date", required: true, value: isoDate(slot) });
  const time = input("plan-time", { type: "time", required: true, step: 60, value: `${pad(slot.getHours())}:${pad(slot.getMinutes())}` });
  const duration = input("plan-duration", { type: "number", required: true, min: 5, max: 600, step: 5, value: "45" });
  const weekly = input("plan-weekly", { type: "checkbox" });
  const until = input("plan-until", { type: "date", value: schoolYearEnd(now), disabled: true, "aria-label": t("fieldUntil") });
  weekly.addEventListener("change", () => { until.disabled = !weekly.checked; until.required = weekly.checked; });
  const wait = input("plan-wait", { type: "checkbox", checked: true });
  const status = h("p", { class: "tp-note", id: "plan-status", role: "status", hidden: true });
  const submit = h("button", { type: "submit", class: "primary", id: "plan-submit", text: t("planSubmit") });

  const say = (text, kind) => {
    status.textContent = text;
    status.className = `tp-note ${kind}`;
    status.setAttribute("role", kind === "error" ? "alert" : "status");
    status.hidden = !text;
  };
  // a changed form is another lesson: a new external id (the same form sent twice stays one lesson)
  const changed = () => { externalId = newExternalId(); };

  const form = h("form", { class: "tp-form", id: "plan-form" },
    field(t("fieldClassId"), classId),
    field(t("fieldClassName"), className),
    field(t("fieldSubject"), subject),
    field(t("fieldLessonName"), name),
    field(t("fieldStudents"), students, { wide: true, hint: t("studentsHint") }),
    field(t("fieldDate"), date),
    field(t("fieldTime"), time),
    field(t("fieldDuration"), duration),
    h("div", { class: "field" },
      h("label", { class: "check tp-repeat" }, weekly, h("span", { text: t("fieldWeekly") })),
      h("span", { class: "tp-repeat" }, h("span", { text: t("fieldUntil") }), until)),
    h("label", { class: "check wide" }, wait, h("span", { text: t("fieldWaitTeacher") })),
    h("div", { class: "tp-form-actions wide" }, submit, status));
  form.addEventListener("input", changed);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault(); // never a navigation (and the CSP has form-action 'none')
    const parsed = parseStudents(students.value);
    if (parsed.errors.length) return say(parsed.errors.join(" "), "error");
    if (!parsed.students.length) return say(t("studentsEmpty"), "error");
    const start = localDateTime(date.value, time.value);
    if (!start) return say(t("badDateTime"), "error");
    if (weekly.checked && (!until.value || until.value < date.value)) return say(t("untilBeforeStart"), "error");
    const body = {
      external_id: externalId,
      subject: subject.value.trim(),
      class: { id: classId.value.trim(), name: className.value.trim() },
      teachers: [teacherOf(claims)],
      students: parsed.students,
      starts_at: isoWithOffset(start),
      duration_minutes: Number(duration.value),
      wait_for_teacher: wait.checked,
    };
    if (name.value.trim()) body.name = name.value.trim();
    const tz = localTimeZone();
    if (tz) body.timezone = tz;
    if (weekly.checked) body.recurrence = { weekly: { until: until.value } };
    submit.disabled = true;
    say(t("planning"), "");
    try {
      const { status: code, data } = await api("POST", "/v1/lessons", { token, body });
      const lessonName = (data && data.name) || body.name || `${body.subject}, ${body.class.name}`;
      say(t(code === 201 ? "planned" : "plannedBefore", { name: lessonName }), "ok");
      externalId = newExternalId();
      window.urok.lastPlanned = data;
      if (onPlanned) onPlanned(data);
    } catch (err) {
      say(explain(err), "error");
    } finally {
      submit.disabled = false;
    }
    return undefined;
  });
  return form;
}
