// The screen after the lesson (issue 15): what happened with the lesson's name, "you can close this
// tab", "rejoin" where it makes sense, and for the teacher the attendance summary with a CSV download
// (GET /join/{room_id}/attendance with the page's own token: signaling/rest/web_api.py).

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { duration } from "./modal.js";
import { langSwitch } from "./langswitch.js";

async function fetchAttendance({ token, roomId }, format) {
  const r = await fetch(`/join/${encodeURIComponent(roomId)}/attendance${format === "csv" ? "?format=csv" : ""}`,
    { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return format === "csv" ? r.blob() : r.json();
}

function attendanceBox(access) {
  const box = h("section", { class: "attendance", id: "attendance", "aria-busy": "true" },
    h("h2", { text: t("attendanceTitle") }));
  fetchAttendance(access, "json").then((report) => {
    const people = (report.participants || []).filter((p) => p.role !== "host");
    const rows = people.map((p) => h("tr", { dataset: { identity: p.identity } },
      h("td", { text: p.name || p.identity }), h("td", { text: duration(p.total_seconds || 0) })));
    const download = h("button", { type: "button", class: "secondary", id: "attendance-csv", text: t("downloadCsv"),
      onclick: async () => {
        const blob = await fetchAttendance(access, "csv");
        const a = h("a", { href: URL.createObjectURL(blob), download: `attendance-${access.roomId}.csv` });
        document.body.appendChild(a);
        a.click();
        setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      } });
    box.append(
      h("p", { class: "attendance-count", id: "attendance-count", text: t("attendanceCount", { n: people.length }) }),
      h("table", { class: "attendance-table" },
        h("thead", {}, h("tr", {}, h("th", { text: t("attendanceName") }), h("th", { text: t("attendanceTime") }))),
        h("tbody", {}, rows)),
      download);
    box.setAttribute("aria-busy", "false");
    window.urok.attendance = report;
  }).catch((e) => {
    box.append(h("p", { class: "notice", text: t("actionFailed", { reason: e.message }) }));
    box.setAttribute("aria-busy", "false");
  });
  return box;
}

export function endScreen({ text, kind = "info", rejoin = null, closable = true, attendance = null }) {
  const card = h("div", { class: `message-card end-card ${kind}`, id: "message", role: kind === "error" ? "alert" : "status" },
    h("p", { class: "message-text", text }));
  if (closable) card.appendChild(h("p", { class: "close-tab", id: "close-tab", text: t("closeTab") }));
  if (rejoin) card.appendChild(h("button", { class: "primary", id: "rejoin", type: "button", text: t("rejoin"), onclick: rejoin }));
  if (attendance) card.appendChild(attendanceBox(attendance));
  card.appendChild(langSwitch());
  return h("div", { class: "message-screen" }, card);
}
