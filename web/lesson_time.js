// Dates and times of the e-journal pages. The server sends ISO 8601 with the lesson's UTC offset
// ("2026-12-08T09:00:00+03:00"); the pages show them in the viewer's own time zone, in the page's
// language, 24-hour clock.

import { lang } from "./i18n.js";

const LOCALE = lang === "ru" ? "ru-RU" : "en-GB";
const TIME = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const DAY = new Intl.DateTimeFormat(LOCALE, { weekday: "long", day: "numeric", month: "long" });
const SHORT_DAY = new Intl.DateTimeFormat(LOCALE, { day: "numeric", month: "long" });

export const DAY_MS = 86400000;

/** epoch ms of an ISO string, or NaN. */
export function parseIso(s) {
  return typeof s === "string" ? Date.parse(s) : NaN;
}

export function fmtTime(ms) {
  return TIME.format(new Date(ms));
}

export function fmtDay(ms) {
  return DAY.format(new Date(ms));
}

export function fmtShortDay(ms) {
  return SHORT_DAY.format(new Date(ms));
}

/** Local midnight of the day that holds ms (a Date). */
export function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d;
}

/** Local midnight of the Monday of the week that holds ms (schools count weeks from Monday). */
export function startOfWeek(ms) {
  const d = startOfDay(ms);
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  return d;
}

/** Adds whole local days (a DST change keeps midnight at midnight). */
export function addDays(date, n) {
  const d = new Date(date.getTime());
  d.setDate(d.getDate() + n);
  return d;
}

/** 0 today, 1 tomorrow, -1 yesterday, ... (local calendar days). */
export function daysFrom(nowMs, ms) {
  return Math.round((startOfDay(ms).getTime() - startOfDay(nowMs).getTime()) / DAY_MS);
}

const pad = (n) => String(n).padStart(2, "0");

/** "2026-12-08" for a local date. */
export function isoDate(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** "+03:00" for the local offset at that moment. */
export function offsetOf(date) {
  const m = -date.getTimezoneOffset();
  const a = Math.abs(m);
  return `${m < 0 ? "-" : "+"}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** "2026-12-08T09:00:00+03:00" for a local Date. */
export function isoWithOffset(date) {
  return `${isoDate(date)}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${offsetOf(date)}`;
}

/** The local Date of a date field ("2026-12-08") and a time field ("09:00"), or null. */
export function localDateTime(dateStr, timeStr) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateStr || "");
  const n = /^(\d{2}):(\d{2})/.exec(timeStr || "");
  if (!m || !n) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(n[1]), Number(n[2]), 0, 0);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The viewer's IANA time zone ("Europe/Moscow"), or "" when the browser does not say. */
export function localTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

/** A countdown: "4:05", "1:02:03", or with days "2 д 03:04:05" (the days word from the caller). */
export function countdown(ms, daysWord) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (d > 0) return `${d} ${daysWord} ${pad(hh)}:${pad(mm)}:${pad(ss)}`;
  if (hh > 0) return `${hh}:${pad(mm)}:${pad(ss)}`;
  return `${mm}:${pad(ss)}`;
}
