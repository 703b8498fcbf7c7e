// Breakout rooms: the host's panel and the student's group view.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).
//
// The server keeps the groups' media apart (a student never receives another group's tracks); this
// module shows where one is: a bar with the group and its timer (or the close countdown), the
// teachers' broadcasts, "ask for help", self-select and the group's chat in its tab, and only the
// tiles of one's own place (the others get the class `breakout-away`, hidden by breakouts.css).
// Hosts and co-hosts get the whole panel: create K groups, assign (auto, random, by hand, students
// choose), open with a timer, extend, broadcast, speak to all while held, move, visit a group (or
// only listen), close one group or all with a countdown, templates, the help queue.

import { h } from "./dom.js";
import { addStrings, t } from "./i18n.js";
import { requestOrNotice } from "./modal.js";
import { personName } from "./participants.js";

addStrings({
  ru: {
    boTab: "Группы",
    boSetup: "Разделить класс на группы",
    boCount: "Сколько групп",
    boAssign: "Распределение",
    boAssign_auto: "Поровну по списку",
    boAssign_random: "Поровну случайно",
    boAssign_manual: "Вручную",
    boAssign_self: "Ученики выбирают сами",
    boCap: "Не больше в группе",
    boMinutes: "Время, мин (пусто — без таймера)",
    boPrepare: "Подготовить",
    boStart: "Открыть группы",
    boOpen: "Открыть группы",
    boCancel: "Отменить",
    boTemplates: "Шаблоны класса",
    boTemplateLoad: "Взять шаблон",
    boTemplateName: "Название шаблона",
    boTemplateSave: "Сохранить как шаблон",
    boTemplateSaved: "Шаблон «{name}» сохранён",
    boMain: "Общий зал",
    boMoveTo: "Перевести в…",
    boJoin: "Войти",
    boListen: "Слушать",
    boCloseGroup: "Закрыть группу",
    boBack: "Вернуться в общий зал",
    boExtend: "+{n} мин",
    boCastPlaceholder: "Сообщение всем группам",
    boCastSend: "Отправить всем",
    boSpeak: "Говорить со всеми (удерживайте)",
    boSpeaking: "Вас слышат все группы",
    boEndIn: "Закрыть через",
    boEnd: "Завершить группы",
    boNow: "сразу",
    boHelpQueue: "Просят помощи",
    boHelpNone: "Никто не просит помощи",
    boHelpGo: "Перейти",
    boHelpDone: "Готово",
    boHelpFrom: "{name} просит помощи ({group})",
    boAskHelp: "Позвать учителя",
    boHelpAsked: "Учитель получил ваш вопрос",
    boHelpAnswered: "Учитель идёт к вам",
    boInGroup: "Вы в группе «{name}»",
    boListening: "Вы слушаете группу «{name}»",
    boInMain: "Вы в общем зале, группы открыты",
    boLeft: "осталось {time}",
    boClosing: "Группы закроются через {time}",
    boReturned: "Группы закрыты: все вернулись в общий зал",
    boMovedTo: "Вы в группе «{name}»",
    boMovedMain: "Вы вернулись в общий зал",
    boGroupClosed: "Учитель закрыл вашу группу",
    boFrom: "Учитель всем группам",
    boClose: "Закрыть",
    boChoose: "Выберите группу",
    boChooseBtn: "Выбрать",
    boFull: "мест нет",
    boCountOf: "{n} из {cap}",
    boChat: "Чат группы",
    boChatPlaceholder: "Сообщение группе",
    boChatSend: "Отправить",
    boSpeakAll: "{name} говорит со всеми группами",
    boStateOpen: "Группы открыты",
    boStatePrepared: "Группы подготовлены (ученики их пока не видят)",
    boNobody: "пусто",
  },
  en: {
    boTab: "Groups",
    boSetup: "Split the class into groups",
    boCount: "Groups",
    boAssign: "Assignment",
    boAssign_auto: "Even, by the list",
    boAssign_random: "Even, random",
    boAssign_manual: "By hand",
    boAssign_self: "Students choose",
    boCap: "At most per group",
    boMinutes: "Minutes (empty: no timer)",
    boPrepare: "Prepare",
    boStart: "Open the groups",
    boOpen: "Open the groups",
    boCancel: "Cancel",
    boTemplates: "The class's templates",
    boTemplateLoad: "Use the template",
    boTemplateName: "Template name",
    boTemplateSave: "Save as a template",
    boTemplateSaved: "Template “{name}” saved",
    boMain: "Main room",
    boMoveTo: "Move to…",
    boJoin: "Join",
    boListen: "Listen",
    boCloseGroup: "Close the group",
    boBack: "Back to the main room",
    boExtend: "+{n} min",
    boCastPlaceholder: "A message to every group",
    boCastSend: "Send to all",
    boSpeak: "Speak to all (hold)",
    boSpeaking: "Every group hears you",
    boEndIn: "Close in",
    boEnd: "End the groups",
    boNow: "at once",
    boHelpQueue: "Asking for help",
    boHelpNone: "Nobody asks for help",
    boHelpGo: "Go there",
    boHelpDone: "Done",
    boHelpFrom: "{name} asks for help ({group})",
    boAskHelp: "Ask for help",
    boHelpAsked: "The teacher got your request",
    boHelpAnswered: "The teacher is coming",
    boInGroup: "You are in “{name}”",
    boListening: "You are listening to “{name}”",
    boInMain: "You are in the main room; the groups are open",
    boLeft: "{time} left",
    boClosing: "The groups close in {time}",
    boReturned: "The groups are closed: everyone is back in the main room",
    boMovedTo: "You are in “{name}”",
    boMovedMain: "You are back in the main room",
    boGroupClosed: "The teacher closed your group",
    boFrom: "The teacher to every group",
    boClose: "Close",
    boChoose: "Choose a group",
    boChooseBtn: "Choose",
    boFull: "full",
    boCountOf: "{n} of {cap}",
    boChat: "Group chat",
    boChatPlaceholder: "A message to the group",
    boChatSend: "Send",
    boSpeakAll: "{name} speaks to every group",
    boStateOpen: "The groups are open",
    boStatePrepared: "The groups are prepared (students do not see them yet)",
    boNobody: "empty",
  },
});

/** 75 -> "1:15" (minutes:seconds; hours as minutes: a lesson's groups last less than a few hours). */
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function createBreakouts(ctx) {
  const { session, notice, banner, grid, panel } = ctx;
  let b = null; // the last state: the whole of it for hosts, the student's view otherwise
  let skew = 0; // local clock - server clock (s)
  let chat = []; // the current group's messages
  const mergeChat = (have, more) => {
    const byId = new Map(have.map((m) => [m.message_id, m]));
    for (const m of more) byId.set(m.message_id, m);
    return [...byId.values()].sort((x, y) => x.sent_at - y.sent_at).slice(-200);
  };
  let chatGroup = null;
  let speaking = false;
  let templates = [];
  const run = (type, fields, okText) => requestOrNotice(session, notice, type, fields, okText);
  const mod = () => session.isModerator();
  const running = () => Boolean(b) && (b.state === "open" || b.state === "closing");
  const serverNow = () => Date.now() / 1000 - skew;
  const nameOf = (pid) => personName(session.participants.get(pid));
  const groupName = (gid) => b?.rooms?.find((g) => g.breakout_id === gid)?.name || "?";

  // --- where everyone is ----------------------------------------------------------------------
  function places() {
    if (!running()) return {};
    if (b.places) return b.places;
    const out = {};
    for (const g of b.rooms || []) for (const pid of g.participant_ids || []) out[pid] = g.breakout_id;
    return out;
  }
  function placeOf(pid) {
    if (!running()) return null;
    const v = b.visits?.[pid];
    if (v) return v.breakout_id;
    return places()[pid] ?? null;
  }
  function away(pid) {
    if (!running() || !pid || pid === session.me) return false;
    if (b.visits?.[pid]?.listen_only) return true; // listening only: the group does not see them
    return placeOf(pid) !== placeOf(session.me);
  }
  function markTiles() {
    for (const tile of grid.querySelectorAll(".tile")) {
      const pid = tile.dataset.participantId;
      tile.classList.toggle("breakout-away", !tile.classList.contains("self") && away(pid));
    }
  }
  new MutationObserver(markTiles).observe(grid, { childList: true, subtree: true, attributes: true,
    attributeFilter: ["data-participant-id"] });

  // --- the bar (group, timer, help) and the broadcast banner ------------------------------------
  const barWhere = h("span", { class: "bo-where", id: "bo-where" });
  const barTimer = h("span", { class: "bo-timer", id: "bo-timer" });
  const helpBtn = h("button", { type: "button", class: "secondary small", id: "bo-help", text: t("boAskHelp"),
    onclick: async () => {
      const r = await run("breakouts_help", {});
      if (r) { b.asked_help = true; notice(t("boHelpAsked")); renderBar(); }
    } });
  const backBtn = h("button", { type: "button", class: "secondary small", id: "bo-back", text: t("boBack"),
    onclick: () => run("breakouts_join", { breakout_id: null }) });
  const bar = h("div", { class: "bo-bar", id: "bo-bar", role: "status", hidden: true }, barWhere, barTimer, helpBtn,
    backBtn);
  const castText = h("span", { class: "bo-cast-text", id: "bo-cast-text" });
  const cast = h("div", { class: "bo-broadcast", id: "bo-broadcast", role: "alert", hidden: true },
    h("strong", { text: `${t("boFrom")}: ` }), castText,
    h("button", { type: "button", class: "bo-cast-close", title: t("boClose"), "aria-label": t("boClose"), text: "×",
      onclick: () => { cast.hidden = true; } }));
  banner.after(bar, cast);
  let castTimer = null;

  function remaining() {
    if (!running()) return null;
    if (b.state === "closing" && b.closing_at) return b.closing_at - serverNow();
    if (b.ends_at) return b.ends_at - serverNow();
    return null;
  }

  function renderBar() {
    bar.hidden = !running() || session.status !== "joined";
    if (bar.hidden) return;
    const mine = placeOf(session.me);
    const visit = b.visits?.[session.me];
    if (mine) barWhere.textContent = t(visit?.listen_only ? "boListening" : "boInGroup", { name: groupName(mine) });
    else barWhere.textContent = mod() ? t("boStateOpen") : t("boInMain");
    const left = remaining();
    bar.classList.toggle("closing", b.state === "closing");
    barTimer.hidden = left === null;
    barTimer.dataset.remaining = left === null ? "" : String(Math.max(0, Math.round(left)));
    if (left !== null) barTimer.textContent = b.state === "closing" ? t("boClosing", { time: clock(left) })
      : t("boLeft", { time: clock(left) });
    helpBtn.hidden = mod() || !mine;
    helpBtn.disabled = Boolean(b.asked_help);
    backBtn.hidden = !mod() || !visit;
  }
  setInterval(() => { if (running()) { renderBar(); if (mod()) renderHostTimer(); } }, 500);

  // --- the tab ----------------------------------------------------------------------------------
  const pane = h("div", { class: "pane-inner bo-pane", id: "bo-pane" });
  panel.addTab({ key: "breakouts", label: t("boTab"), body: pane });

  // host: the setup form
  const countIn = h("input", { type: "number", id: "bo-count", min: "2", max: "50", value: "2" });
  const assignIn = h("select", { id: "bo-assign" },
    ...["auto", "random", "manual", "self"].map((a) => h("option", { value: a, text: t(`boAssign_${a}`) })));
  const capIn = h("input", { type: "number", id: "bo-cap", min: "1", max: "2000", placeholder: "—" });
  const capRow = h("label", { class: "bo-field", hidden: true }, h("span", { text: t("boCap") }), capIn);
  assignIn.addEventListener("change", () => { capRow.hidden = assignIn.value !== "self"; });
  const minutesIn = h("input", { type: "number", id: "bo-minutes", min: "1", max: "240", value: "10" });
  const templateSel = h("select", { id: "bo-template" });
  const templateRow = h("div", { class: "bo-row", hidden: true }, templateSel,
    h("button", { type: "button", class: "secondary small", id: "bo-template-load", text: t("boTemplateLoad"),
      onclick: () => templateSel.value && run("breakouts_prepare", { template_id: templateSel.value }) }));
  const setup = h("section", { class: "bo-setup", id: "bo-setup" },
    h("h3", { text: t("boSetup") }),
    h("label", { class: "bo-field" }, h("span", { text: t("boCount") }), countIn),
    h("label", { class: "bo-field" }, h("span", { text: t("boAssign") }), assignIn),
    capRow,
    h("label", { class: "bo-field" }, h("span", { text: t("boMinutes") }), minutesIn),
    h("div", { class: "bo-row" },
      h("button", { type: "button", class: "secondary small", id: "bo-prepare", text: t("boPrepare"),
        onclick: () => run("breakouts_prepare", spec()) }),
      h("button", { type: "button", class: "primary small", id: "bo-start", text: t("boStart"),
        onclick: () => run("breakouts_start", { ...spec(), ...timer() }) })),
    h("h4", { text: t("boTemplates") }), templateRow);

  function spec() {
    const fields = { count: Math.min(50, Math.max(2, Number(countIn.value) || 2)), assign: assignIn.value };
    if (assignIn.value === "self" && Number(capIn.value) > 0) fields.cap = Number(capIn.value);
    return fields;
  }
  function timer() {
    const m = Number(minutesIn.value);
    return m > 0 ? { duration_s: Math.min(240, m) * 60 } : {};
  }

  // host: the prepared / open groups
  const stateLine = h("p", { class: "bo-state", id: "bo-state" });
  const hostTimer = h("span", { class: "bo-host-timer", id: "bo-host-timer" });
  const groupsBox = h("div", { class: "bo-groups", id: "bo-groups" });
  const tplName = h("input", { type: "text", id: "bo-template-name", maxlength: "60", placeholder: t("boTemplateName") });
  const preparedTools = h("div", { class: "bo-row", id: "bo-prepared-tools" },
    h("button", { type: "button", class: "primary small", id: "bo-open", text: t("boOpen"),
      onclick: () => run("breakouts_start", timer()) }),
    h("button", { type: "button", class: "secondary small", id: "bo-cancel", text: t("boCancel"),
      onclick: () => run("breakouts_end", { countdown_s: 0 }) }));
  const tplTools = h("div", { class: "bo-row", id: "bo-template-tools" }, tplName,
    h("button", { type: "button", class: "secondary small", id: "bo-template-save", text: t("boTemplateSave"),
      onclick: async () => {
        const name = tplName.value.trim();
        if (!name) return tplName.focus();
        if (await run("breakouts_template_save", { name }, t("boTemplateSaved", { name }))) loadTemplates();
      } }));
  const castIn = h("input", { type: "text", id: "bo-cast-input", maxlength: "500", placeholder: t("boCastPlaceholder") });
  const sendCast = () => {
    const text = castIn.value.trim();
    if (!text) return;
    run("breakouts_broadcast", { text }).then((r) => { if (r) castIn.value = ""; });
  };
  castIn.addEventListener("keydown", (e) => { if (e.key === "Enter") sendCast(); });
  const speakBtn = h("button", { type: "button", class: "secondary small bo-speak", id: "bo-speak", text: t("boSpeak") });
  const speak = (on) => {
    if (speaking === on) return;
    speaking = on;
    speakBtn.classList.toggle("active", on);
    speakBtn.setAttribute("aria-pressed", String(on));
    run("breakouts_speak_all", { on });
  };
  speakBtn.addEventListener("pointerdown", (e) => { e.preventDefault(); speak(true); });
  for (const ev of ["pointerup", "pointerleave", "pointercancel", "blur"]) speakBtn.addEventListener(ev, () => speak(false));
  speakBtn.addEventListener("keydown", (e) => { if ((e.key === " " || e.key === "Enter") && !e.repeat) { e.preventDefault(); speak(true); } });
  speakBtn.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") speak(false); });
  const endIn = h("select", { id: "bo-end-countdown" },
    ...[0, 10, 30, 60, 120].map((s) => h("option", { value: String(s), text: s ? clock(s) : t("boNow"), selected: s === 60 })));
  const openTools = h("div", { class: "bo-open-tools", id: "bo-open-tools" },
    h("div", { class: "bo-row" }, hostTimer,
      ...[1, 5].map((n) => h("button", { type: "button", class: "secondary small", id: `bo-extend-${n}`,
        text: t("boExtend", { n }), onclick: () => run("breakouts_extend", { seconds: n * 60 }) }))),
    h("div", { class: "bo-row" }, castIn,
      h("button", { type: "button", class: "primary small", id: "bo-cast-send", text: t("boCastSend"), onclick: sendCast })),
    h("div", { class: "bo-row" }, speakBtn),
    h("div", { class: "bo-row" }, h("span", { text: t("boEndIn") }), endIn,
      h("button", { type: "button", class: "danger small", id: "bo-end", text: t("boEnd"),
        onclick: () => run("breakouts_end", { countdown_s: Number(endIn.value) }) })));
  const helpList = h("ol", { class: "bo-help-list", id: "bo-help-list" });
  const helpEmpty = h("p", { class: "empty", text: t("boHelpNone") });
  const helpBox = h("section", { class: "bo-help-box", id: "bo-help-box" }, h("h4", { text: t("boHelpQueue") }),
    helpEmpty, helpList);
  const hostBox = h("section", { class: "bo-host", id: "bo-host" }, stateLine, preparedTools, openTools, helpBox,
    groupsBox, tplTools);

  // student: choosing, the chat
  const chooseBox = h("section", { class: "bo-choose-box", id: "bo-choose-box" }, h("h4", { text: t("boChoose") }));
  const chooseList = h("ul", { class: "bo-choose-list", id: "bo-choose-list" });
  chooseBox.append(chooseList);
  const chatLog = h("ol", { class: "bo-chat-log", id: "bo-chat-log" });
  const chatIn = h("input", { type: "text", id: "bo-chat-input", maxlength: "2000", placeholder: t("boChatPlaceholder") });
  const sendChat = () => {
    const text = chatIn.value.trim();
    if (!text) return;
    run("breakouts_chat", { text }).then((r) => { if (r) chatIn.value = ""; });
  };
  chatIn.addEventListener("keydown", (e) => { if (e.key === "Enter") sendChat(); });
  const chatBox = h("section", { class: "bo-chat", id: "bo-chat" }, h("h4", { text: t("boChat") }), chatLog,
    h("div", { class: "bo-row" }, chatIn,
      h("button", { type: "button", class: "primary small", id: "bo-chat-send", text: t("boChatSend"), onclick: sendChat })));
  pane.append(setup, hostBox, chooseBox, chatBox);

  function students() {
    return [...session.participants.values()].filter((p) => (p.state === undefined || p.state === "joined")
      && p.role !== "host" && p.role !== "cohost");
  }

  function moveSelect(pid, current) {
    const sel = h("select", { class: "bo-move", "aria-label": t("boMoveTo"), dataset: { participantId: pid } },
      h("option", { value: "", text: t("boMain"), selected: !current }),
      ...b.rooms.filter((g) => !g.closed).map((g) => h("option", { value: g.breakout_id, text: g.name,
        selected: g.breakout_id === current })));
    sel.addEventListener("change", () => run("breakouts_move", { participant_id: pid, breakout_id: sel.value || null }));
    return sel;
  }

  function member(pid, current) {
    const chip = h("li", { class: "bo-member", draggable: "true", dataset: { participantId: pid } },
      h("span", { class: "person-name", text: nameOf(pid) }), moveSelect(pid, current));
    chip.addEventListener("dragstart", (e) => { e.dataTransfer.setData("text/plain", pid); e.dataTransfer.effectAllowed = "move"; });
    return chip;
  }

  function dropTarget(box, gid) {
    box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("drop"); });
    box.addEventListener("dragleave", () => box.classList.remove("drop"));
    box.addEventListener("drop", (e) => {
      e.preventDefault();
      box.classList.remove("drop");
      const pid = e.dataTransfer.getData("text/plain");
      if (pid) run("breakouts_move", { participant_id: pid, breakout_id: gid });
    });
    return box;
  }

  function renderGroups() {
    const open = running();
    const myPlace = placeOf(session.me);
    const inGroups = new Set();
    const boxes = b.rooms.map((g) => {
      for (const pid of g.participant_ids) inGroups.add(pid);
      const visitors = Object.entries(b.visits || {}).filter(([, v]) => v.breakout_id === g.breakout_id);
      const tools = open && !g.closed ? h("div", { class: "bo-row bo-group-tools" },
        h("button", { type: "button", class: "secondary small bo-join", text: t("boJoin"), disabled: myPlace === g.breakout_id
          && !b.visits?.[session.me]?.listen_only, onclick: () => run("breakouts_join", { breakout_id: g.breakout_id }) }),
        h("button", { type: "button", class: "secondary small bo-listen", text: t("boListen"),
          onclick: () => run("breakouts_join", { breakout_id: g.breakout_id, listen_only: true }) }),
        h("button", { type: "button", class: "secondary small bo-close-group", text: t("boCloseGroup"),
          onclick: () => run("breakouts_end", { breakout_id: g.breakout_id }) })) : null;
      const list = h("ul", { class: "bo-members" }, ...g.participant_ids.map((pid) => member(pid, g.breakout_id)),
        ...visitors.map(([pid, v]) => h("li", { class: "bo-visitor", text: `${nameOf(pid)}${v.listen_only ? " 🎧" : ""}` })));
      if (!g.participant_ids.length && !visitors.length) list.append(h("li", { class: "empty", text: t("boNobody") }));
      const cap = b.cap ? ` (${t("boCountOf", { n: g.participant_ids.length, cap: b.cap })})` : ` (${g.participant_ids.length})`;
      return dropTarget(h("div", { class: `bo-group${g.closed ? " closed" : ""}${myPlace === g.breakout_id ? " mine" : ""}`,
        dataset: { breakoutId: g.breakout_id } }, h("h4", { class: "bo-group-name", text: g.name + cap }), tools, list),
      g.breakout_id);
    });
    const rest = students().map((p) => p.participant_id).filter((pid) => !inGroups.has(pid));
    const main = dropTarget(h("div", { class: "bo-group bo-main-room", dataset: { breakoutId: "" } },
      h("h4", { class: "bo-group-name", text: `${t("boMain")} (${rest.length})` }),
      h("ul", { class: "bo-members" }, ...rest.map((pid) => member(pid, null)))), null);
    groupsBox.replaceChildren(main, ...boxes);
  }

  function renderHelp() {
    const queue = b?.help || [];
    helpEmpty.hidden = queue.length > 0;
    helpList.replaceChildren(...queue.map((x) => h("li", { class: "bo-help-row", dataset: { participantId: x.participant_id } },
      h("span", { class: "person-name", text: nameOf(x.participant_id) }),
      h("span", { class: "bo-help-group", text: groupName(x.breakout_id) }),
      h("button", { type: "button", class: "primary small bo-help-go", text: t("boHelpGo"),
        onclick: () => run("breakouts_join", { breakout_id: x.breakout_id }) }),
      h("button", { type: "button", class: "secondary small bo-help-done", text: t("boHelpDone"),
        onclick: () => run("breakouts_help_done", { participant_id: x.participant_id }) }))));
    panel.setBadge("breakouts", mod() ? queue.length : 0);
  }

  function renderHostTimer() {
    const left = remaining();
    hostTimer.textContent = left === null ? "" : (b.state === "closing" ? t("boClosing", { time: clock(left) })
      : t("boLeft", { time: clock(left) }));
  }

  function renderChoose() {
    const show = !mod() && running() && b.assign === "self";
    chooseBox.hidden = !show;
    if (!show) return;
    const mine = placeOf(session.me);
    chooseList.replaceChildren(...b.rooms.filter((g) => !g.closed).map((g) => {
      const n = g.count ?? g.participant_ids?.length ?? 0;
      const full = b.cap && n >= b.cap && mine !== g.breakout_id;
      return h("li", { class: `bo-choice${mine === g.breakout_id ? " mine" : ""}`, dataset: { breakoutId: g.breakout_id } },
        h("span", { class: "bo-group-name", text: g.name }),
        h("span", { class: "bo-count", text: b.cap ? t("boCountOf", { n, cap: b.cap }) : String(n) }),
        h("button", { type: "button", class: "secondary small bo-choose", disabled: Boolean(full) || mine === g.breakout_id,
          text: full ? t("boFull") : t("boChooseBtn"), onclick: () => run("breakouts_choose", { breakout_id: g.breakout_id }) }));
    }));
  }

  function renderChat() {
    const mine = placeOf(session.me);
    chatBox.hidden = !mine;
    chatLog.replaceChildren(...chat.map((m) => h("li", { class: "bo-msg" },
      h("span", { class: "bo-msg-from", text: `${m.from_name}: ` }), h("span", { class: "bo-msg-text", text: m.text }))));
    chatLog.scrollTop = chatLog.scrollHeight;
  }

  function render() {
    const isMod = mod();
    const live = Boolean(b) && b.state !== "closed";
    panel.setTabVisible("breakouts", isMod || running());
    setup.hidden = !isMod || live;
    hostBox.hidden = !isMod || !live;
    if (isMod && live) {
      stateLine.textContent = b.state === "prepared" ? t("boStatePrepared") : t("boStateOpen");
      preparedTools.hidden = b.state !== "prepared";
      openTools.hidden = !running();
      helpBox.hidden = !running();
      renderHostTimer();
      renderGroups();
      renderHelp();
    } else if (isMod) {
      panel.setBadge("breakouts", 0);
    }
    renderChoose();
    renderChat();
    renderBar();
    markTiles();
  }

  function setState(next) {
    const before = placeOf(session.me);
    b = next;
    if (typeof b?.server_time === "number") skew = Date.now() / 1000 - b.server_time;
    const now = placeOf(session.me);
    // the same group: merged by id, never replaced. A state snapshot may have been read before a
    // message the page already got as `breakout_chat` (CI: the host's "иду" vanished from a
    // student's log when a state update came after it)
    if (now !== chatGroup) { chatGroup = now; chat = b?.chat ? [...b.chat] : []; }
    else if (b?.chat) chat = mergeChat(chat, b.chat);
    if (!mod() && before && !now && running()) notice(t("boMovedMain"));
    render();
  }

  async function loadTemplates() {
    if (!mod()) return;
    const r = await session.request("breakouts_templates", {}).catch(() => null);
    templates = r?.templates || [];
    templateRow.hidden = templates.length === 0;
    templateSel.replaceChildren(...templates.map((x) => h("option", { value: x.template_id, text: x.name })));
  }

  async function refresh() {
    const r = await session.request("breakouts_state", {}).catch(() => null);
    if (r) setState(r.breakouts);
    loadTemplates();
  }

  session.addEventListener("server", (e) => {
    const m = e.detail;
    switch (m.event) {
      case "breakouts_updated":
        if (mod()) setState(m.breakouts);
        break;
      case "breakouts_started":
      case "breakouts_state":
        setState(m.breakouts);
        if (m.event === "breakouts_started" && !mod()) {
          const mine = placeOf(session.me);
          if (mine) notice(t("boMovedTo", { name: groupName(mine) }));
          else if (b.assign === "self") panel.show("breakouts");
        }
        break;
      case "breakouts_timer":
        if (m.breakouts) setState(m.breakouts);
        else if (b) { b.ends_at = m.ends_at; b.state = "open"; b.closing_at = null; render(); }
        break;
      case "breakout_assigned":
        if (m.breakouts) setState(m.breakouts);
        if (!mod()) notice(m.breakout_id ? t("boMovedTo", { name: m.name }) : t("boMovedMain"));
        break;
      case "breakouts_ending":
        if (b) {
          if (typeof m.server_time === "number") skew = Date.now() / 1000 - m.server_time;
          b.state = "closing";
          b.closing_at = m.closing_at;
          render();
        }
        break;
      case "breakouts_ended":
        if (b) { b.state = "closed"; b.visits = {}; b.places = {}; }
        chat = [];
        chatGroup = null;
        speaking = false;
        speakBtn.classList.remove("active");
        notice(t("boReturned"));
        render();
        break;
      case "breakout_closed":
        if (!mod()) notice(t("boGroupClosed"));
        break;
      case "breakouts_broadcast":
        castText.textContent = m.text;
        cast.hidden = false;
        clearTimeout(castTimer);
        castTimer = setTimeout(() => { cast.hidden = true; }, 20000);
        break;
      case "breakout_help":
        if (mod()) notice(t("boHelpFrom", { name: m.name, group: m.group_name }));
        break;
      case "breakout_help_answered":
        if (b) b.asked_help = false;
        notice(t("boHelpAnswered"));
        renderBar();
        break;
      case "breakout_chat":
        if (m.message?.breakout_id === placeOf(session.me)) { chat = mergeChat(chat, [m.message]); renderChat(); }
        break;
      case "breakouts_speak_all":
        if (m.on && m.participant_id !== session.me) notice(t("boSpeakAll", { name: m.name }));
        break;
      default:
    }
  });
  session.addEventListener("status", (e) => {
    if (e.detail.status === "joined") refresh();
    renderBar();
  });
  session.addEventListener("participants", render);
  panel.onChange((key) => { if (key === "breakouts") loadTemplates(); });
  if (session.status === "joined") refresh();
  render();

  const api = { get state() { return b; }, placeOf, render };
  window.urok = window.urok || {};
  window.urok.breakouts = api; // for the tests and the console
  return api;
}
