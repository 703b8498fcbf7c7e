// The whiteboard (issue 17): a Yjs document synced over the signalling socket, drawn on a canvas.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).
//
// Wire (whiteboard/board_handlers.py, docs/protocol.md "Whiteboard"): the server sends `board_state`
// on every join (the whole state, its state vector, pages, rights, may_draw) and relays accepted
// `board_update`s (base64 Yjs updates) and `board_cursor`s to everyone on the same board. Local
// changes are merged (Y.mergeUpdates) and sent at most every SEND_MS, one request in flight, in
// order: a refused batch for the rate is resent merged with what followed (the server never gets a
// gap it could not integrate); one refused for rights resyncs from the server (our change is undone).
// After a reconnect the new `board_state`'s state vector says what the server lacks: we send it.
//
// The document (shared with whiteboard/board.py and board_render.py): Y.Map "elements", id ->
// Y.Map {type, page, color, width, pts: Y.Array [x0, y0, ...], t: [sx, sy, tx, ty], text, size, z, by}.

import { h } from "./dom.js";
import { t, addStrings } from "./i18n.js";
import { b64, unb64, num, transformOf, bbox, hits, drawElement, plain } from "./board_draw.js";

const YJS = "/web-lib/yjs/dist/yjs.mjs";
const REMOTE = "remote"; // the origin of updates from the server: not sent back
const LOCAL = "local"; // our own drawing: what Y.UndoManager tracks (undo touches only our actions)
// A socket may send 20 requests/s (settings.ws_rate_per_s, every request counts) and a board takes
// 40 updates/s: a pen sends its points merged every SEND_MS (12.5/s, its cursor riding along), a
// laser or a hovering cursor alone at most every CURSOR_MS; pings and the rest keep their share.
const SEND_MS = 80;
const CURSOR_MS = 100;
const RETRY_MS = 400;
// one request must fit the socket's frame (settings.ws_max_message_bytes, 64 KiB) as base64 in JSON:
// a larger one would close the socket (1009), again after every reconnect
const MAX_UPDATE_BYTES = 45_000;
const CURSOR_TTL_MS = 4000;
const LASER_TTL_MS = 1500;
const COLORS = ["#212121", "#d32f2f", "#1565c0", "#2e7d32", "#f9a825", "#6a1b9a", "#ffffff"];
const WIDTHS = [2, 4, 8, 16];
const TOOLS = [
  ["select", "↖"], ["pan", "✥"], ["pen", "✎"], ["highlighter", "▮"], ["line", "╱"], ["arrow", "→"],
  ["rect", "▭"], ["ellipse", "◯"], ["text", "T"], ["sticky", "▣"], ["eraser", "⌫"], ["laser", "✺"],
];
const READ_TOOLS = new Set(["pan"]); // what a participant without the pen may still use

addStrings({
  ru: {
    board: "Доска", boardClose: "Закрыть доску", boardReadOnly: "Только просмотр: рисовать может тот, кому учитель дал ручку",
    boardLocked: "Доска закрыта учителем", boardTool_select: "Выбрать и двигать", boardTool_pan: "Двигать доску",
    boardTool_pen: "Ручка", boardTool_highlighter: "Маркер", boardTool_line: "Линия", boardTool_arrow: "Стрелка",
    boardTool_rect: "Прямоугольник", boardTool_ellipse: "Эллипс", boardTool_text: "Текст", boardTool_sticky: "Стикер",
    boardTool_eraser: "Ластик", boardTool_laser: "Лазерная указка", boardUndo: "Отменить", boardRedo: "Вернуть",
    boardClear: "Очистить страницу", boardPrev: "Предыдущая страница", boardNext: "Следующая страница",
    boardAddPage: "Новая страница", boardFollow: "Все за мной", boardFollowing: "Все видят мою страницу",
    boardUpload: "PDF или картинка", boardExport: "Скачать", boardZoomIn: "Крупнее", boardZoomOut: "Мельче",
    boardFit: "Вся страница", boardWidth: "Толщина", boardColor: "Цвет", boardRights: "Кто рисует",
    boardRights_everyone: "Все", boardRights_nobody: "Только учитель", boardRights_chosen: "Выбранные",
    boardPens: "Дать ручку", boardUploaded: "Материал добавлен: {n} стр.", boardRefused: "Доска: {reason}",
    boardUploading: "Загрузка…", boardPage: "{n} / {total}", boardRoomBoard: "Доска урока",
    boardGroupBoard: "Доска: {name}", boardShowGroup: "Показать всем",
  },
  en: {
    board: "Board", boardClose: "Close the board", boardReadOnly: "View only: those the teacher gave the pen draw",
    boardLocked: "The teacher has locked the board", boardTool_select: "Select and move", boardTool_pan: "Move the board",
    boardTool_pen: "Pen", boardTool_highlighter: "Highlighter", boardTool_line: "Line", boardTool_arrow: "Arrow",
    boardTool_rect: "Rectangle", boardTool_ellipse: "Ellipse", boardTool_text: "Text", boardTool_sticky: "Sticky note",
    boardTool_eraser: "Eraser", boardTool_laser: "Laser pointer", boardUndo: "Undo", boardRedo: "Redo",
    boardClear: "Clear the page", boardPrev: "Previous page", boardNext: "Next page", boardAddPage: "New page",
    boardFollow: "Follow me", boardFollowing: "Everyone sees my page", boardUpload: "PDF or picture",
    boardExport: "Download", boardZoomIn: "Zoom in", boardZoomOut: "Zoom out", boardFit: "Whole page",
    boardWidth: "Width", boardColor: "Colour", boardRights: "Who draws", boardRights_everyone: "Everyone",
    boardRights_nobody: "Only the teacher", boardRights_chosen: "Chosen", boardPens: "Give the pen",
    boardUploaded: "Material added: {n} pages", boardRefused: "Board: {reason}", boardUploading: "Uploading…",
    boardPage: "{n} / {total}", boardRoomBoard: "The lesson's board", boardGroupBoard: "Board: {name}",
    boardShowGroup: "Show to everyone",
  },
});

/** The control bar's icon (the same build as dom.js's icons): a board on a stand with a pen line. */
function boardIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  for (const d of ["M3 4h18v12H3z", "M12 16v3M8 21l4-2 4 2", "M6 12c2-4 4 1 6-2s3-3 6-1"]) {
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", d);
    svg.appendChild(p);
  }
  return svg;
}

// --- the feature ------------------------------------------------------------------------------------
export function createBoard({ session, notice, extra, grid }) {
  let Y = null;
  let doc = null;
  let elements = null;
  let undo = null;
  let groupId = null; // the board we see: null = the room's own, else a breakout group's
  let synced = false; // a board_state applied on this socket: sending may start
  let pages = [{ page_id: "p1", width: 1600, height: 1000, background: null }];
  let rights = { mode: "everyone", pens: [] };
  let follow = null;
  let pageId = "p1";
  let tool = "pen";
  let color = COLORS[1];
  let width = WIDTHS[1];
  let zoom = 1;
  let pan = [0, 0];
  let outbox = [];
  let sending = false;
  let sendTimer = null;
  let drawPending = false;
  let selected = null;
  let lastCursorAt = 0;
  let gesture = null; // the pointer's current action
  let stateAt = null;
  let pendingCursor = null;
  const early = []; // board events before Yjs has loaded
  const cursors = new Map(); // participant_id -> {el, page, x, y, laser, at}
  const images = new Map(); // asset id -> HTMLImageElement
  let view = { s: 1, ox: 0, oy: 0, w: 0, h: 0 };

  // --- DOM ---
  const canvas = h("canvas", { class: "board-canvas", id: "board-canvas" });
  const cursorLayer = h("div", { class: "board-cursors" });
  const status = h("div", { class: "board-status", id: "board-status", role: "status" });
  const area = h("div", { class: "board-view" }, canvas, cursorLayer, status);
  const toolBtns = new Map(TOOLS.map(([key, glyph]) => [key, h("button", {
    type: "button", class: "board-btn", id: `board-tool-${key}`, title: t(`boardTool_${key}`),
    "aria-label": t(`boardTool_${key}`), text: glyph, onclick: () => setTool(key) })]));
  const swatches = COLORS.map((c) => {
    const b = h("button", { type: "button", class: "board-swatch", title: `${t("boardColor")} ${c}`, "aria-label": c,
      dataset: { color: c }, onclick: () => { color = c; renderTools(); } });
    b.style.background = c; // CSSOM, allowed by the page's CSP (an inline style attribute is not)
    return b;
  });
  const widthSel = h("select", { class: "board-width", id: "board-width", title: t("boardWidth"),
    onchange: () => { width = Number(widthSel.value); } }, ...WIDTHS.map((w) => h("option", { value: String(w), text: `${w}` })));
  widthSel.value = String(width);
  const btn = (id, text, title, onclick) => h("button", { type: "button", class: "board-btn", id, text, title,
    "aria-label": title, onclick });
  const undoBtn = btn("board-undo", "↶", t("boardUndo"), () => undo?.undo());
  const redoBtn = btn("board-redo", "↷", t("boardRedo"), () => undo?.redo());
  const prevBtn = btn("board-prev", "‹", t("boardPrev"), () => goPage(pageIndex() - 1, true));
  const nextBtn = btn("board-next", "›", t("boardNext"), () => goPage(pageIndex() + 1, true));
  const pageLabel = h("span", { class: "board-page", id: "board-page" });
  const addPageBtn = btn("board-add-page", "+", t("boardAddPage"), () => addPage());
  const zoomOut = btn("board-zoom-out", "−", t("boardZoomOut"), () => setZoom(zoom / 1.25));
  const zoomIn = btn("board-zoom-in", "⊕", t("boardZoomIn"), () => setZoom(zoom * 1.25));
  const fitBtn = btn("board-fit", "⤢", t("boardFit"), () => { zoom = 1; pan = [0, 0]; requestDraw(); });
  const followBtn = h("button", { type: "button", class: "board-btn wide", id: "board-follow", text: t("boardFollow"),
    onclick: () => setFollow(follow ? null : pageId) });
  const clearBtn = btn("board-clear", "⊘", t("boardClear"), () => request("board_clear", { page_id: pageId }));
  const rightsSel = h("select", { class: "board-rights", id: "board-rights", title: t("boardRights"),
    onchange: () => request("board_rights", { mode: rightsSel.value }) },
  ...["everyone", "nobody", "chosen"].map((m) => h("option", { value: m, text: t(`boardRights_${m}`) })));
  const pensList = h("div", { class: "board-pens-list", id: "board-pens-list" });
  const pens = h("details", { class: "board-pens", id: "board-pens" }, h("summary", { text: t("boardPens") }), pensList);
  const fileInput = h("input", { type: "file", id: "board-file", accept: "application/pdf,image/*", hidden: true,
    onchange: () => upload(fileInput.files?.[0]) });
  const uploadBtn = h("button", { type: "button", class: "board-btn wide", id: "board-upload", text: `⇪ ${t("boardUpload")}`,
    onclick: () => fileInput.click() });
  const exportLinks = h("span", { class: "board-export", id: "board-export" });
  const closeBtn = btn("board-close", "✕", t("boardClose"), () => setOpen(false));
  // a moderator looks at any breakout group's board, and shows one to the whole class
  let groups = []; // [{breakout_id, name}] from the breakout events to moderators
  const groupSel = h("select", { class: "board-rights", id: "board-group", title: t("board"), hidden: true,
    onchange: () => resync({ group_id: groupSel.value }) });
  const showGroupBtn = h("button", { type: "button", class: "board-btn wide", id: "board-show-group", hidden: true,
    text: t("boardShowGroup"), onclick: () => groupId && request("board_show_group", { group_id: groupId })
      .then((r) => { if (r) resync({ group_id: "" }); }) });
  const hostBar = h("span", { class: "board-group host-only" }, groupSel, showGroupBtn, followBtn, clearBtn, rightsSel, pens, uploadBtn, fileInput,
    exportLinks);
  const bar = h("div", { class: "board-toolbar", role: "toolbar", "aria-label": t("board") },
    h("span", { class: "board-group" }, ...toolBtns.values()),
    h("span", { class: "board-group draw-only" }, ...swatches, widthSel, undoBtn, redoBtn),
    h("span", { class: "board-group" }, prevBtn, pageLabel, nextBtn, addPageBtn, zoomOut, zoomIn, fitBtn),
    hostBar, closeBtn);
  const section = h("section", { class: "board", id: "board", hidden: true, "aria-label": t("board") }, bar, area);
  const openBtn = h("button", { class: "ctl", id: "btn-board", type: "button", title: t("board"), "aria-label": t("board"),
    "aria-pressed": "false", onclick: () => setOpen(section.hidden) }, boardIcon(),
  h("span", { class: "long", text: t("board") }), h("span", { class: "short", text: t("board") }));
  extra.prepend(openBtn);
  grid.parentElement.appendChild(section);
  const g = canvas.getContext("2d");

  // --- documents ---
  function newDoc() {
    undo?.destroy();
    doc?.destroy();
    doc = new Y.Doc();
    elements = doc.getMap("elements");
    // one undo step per gesture, however slow: the steps are cut explicitly (stopCapturing)
    undo = new Y.UndoManager(elements, { trackedOrigins: new Set([LOCAL]), captureTimeout: 2 ** 30 });
    undo.on("stack-item-added", renderTools);
    undo.on("stack-item-popped", renderTools);
    doc.on("update", (update, origin) => {
      if (origin !== REMOTE) { outbox.push(update); scheduleSend(); }
      requestDraw();
    });
    elements.observeDeep(onChanges);
    plainCache.clear();
    active.clear();
    pageCache = null;
    baseDirty = true;
    selected = null;
    outbox = [];
  }

  // --- what changed: plain copies are cached per element; elements that change now are "active"
  // and drawn over a cached bitmap of the others (a board of 10,000 strokes is not redrawn for each
  // point of a pen): an element is moved into the bitmap a second after its last change ---
  const plainCache = new Map(); // id -> plain element
  const active = new Map(); // id -> performance.now() of its last change
  let baseDirty = true;
  let baseKey = "";
  const baseCanvas = document.createElement("canvas");

  function onChanges(events) {
    const now = performance.now();
    for (const ev of events) {
      const ids = ev.target === elements ? [...ev.changes.keys.keys()] : [ev.path[0]];
      for (const id of ids) {
        if (typeof id !== "string") continue;
        const wasDrawn = plainCache.has(id) && !active.has(id);
        plainCache.delete(id);
        if (!elements.has(id)) { active.delete(id); if (wasDrawn) baseDirty = true; continue; }
        if (wasDrawn) baseDirty = true; // it leaves the bitmap
        active.set(id, now);
      }
    }
    pageCache = null;
  }

  setInterval(() => { // settled elements go into the bitmap
    const now = performance.now();
    let moved = false;
    for (const [id, at] of active) if (now - at > 1000 && !gestureOn(id)) { active.delete(id); moved = true; }
    if (moved) { baseDirty = true; requestDraw(); }
  }, 500);

  function gestureOn(id) { return gesture?.id === id; }

  function plainOf(id, m) {
    let o = plainCache.get(id);
    if (!o) { o = plain(Y, m, id); plainCache.set(id, o); }
    return o;
  }

  function applyRemote(text) {
    Y.applyUpdate(doc, unb64(text), REMOTE);
  }

  function onState(m) {
    const same = doc !== null && (m.group_id ?? null) === groupId;
    if (!same) newDoc();
    groupId = m.group_id ?? null;
    applyRemote(m.update);
    setMeta(m);
    if (same) {
      // what we drew while the socket was down (or what the server never took): one update, in order
      // (too large for one frame: the unanswered updates we kept, in order, which the server may lack)
      const missing = Y.encodeStateAsUpdate(doc, unb64(m.state_vector));
      if (missing.length <= MAX_UPDATE_BYTES) outbox = missing.length > 2 ? [missing] : [];
    }
    synced = true;
    stateAt = performance.now();
    scheduleSend();
    render();
  }

  /** The whole board again from the server, in a fresh document: after a refusal (our change goes), or
   *  when the breakout groups moved us (the server picks our board; a moderator may name one). */
  async function resync(fields = {}) {
    synced = false;
    try {
      const r = await session.request("board_sync", fields);
      newDoc();
      groupId = r.group_id ?? null;
      applyRemote(r.update);
      setMeta(r);
      synced = true;
      render();
    } catch (e) {
      if (e.code !== "not_connected") setTimeout(() => resync(fields), 1000);
    }
  }

  function setMeta(m) {
    if (Array.isArray(m.pages) && m.pages.length) pages = m.pages;
    if (m.rights) rights = m.rights;
    if ("follow" in m) follow = m.follow;
    if (follow && !session.isModerator() && pages.some((p) => p.page_id === follow)) pageId = follow;
    if (!pages.some((p) => p.page_id === pageId)) pageId = pages[0].page_id;
  }

  // --- sending: merged, one in flight, in order ---
  function scheduleSend(delay = SEND_MS) {
    if (!sendTimer) sendTimer = setTimeout(() => { sendTimer = null; flush(); }, delay);
  }

  async function flush() {
    if (sending || !synced || (!outbox.length && !pendingCursor)) return;
    if (!outbox.length) { sendCursor(pendingCursor); return; }
    let take = 0;
    let size = 0;
    while (take < outbox.length && (take === 0 || size + outbox[take].length <= MAX_UPDATE_BYTES)) size += outbox[take++].length;
    const parts = outbox.splice(0, take);
    const update = parts.length === 1 ? parts[0] : Y.mergeUpdates(parts);
    if (update.length > MAX_UPDATE_BYTES) { // one change too large to send (a huge paste): undone
      say({ code: "board_update_too_large", message: `${update.length} B` });
      outbox = [];
      resync(groupId && session.isModerator() ? { group_id: groupId } : {});
      return;
    }
    const fields = { update: b64(update) };
    if (pendingCursor) { fields.cursor = pendingCursor; pendingCursor = null; lastCursorAt = performance.now(); }
    sending = true;
    let retry = SEND_MS;
    try {
      await session.request("board_update", fields);
    } catch (e) {
      if (e.code === "board_rate_limited" || e.code === "rate_limited" || e.code === "timeout" || e.code === "not_connected") {
        outbox.unshift(update); // resent with what follows (a reconnect's board_state replaces it)
        retry = RETRY_MS;
      } else {
        if (e.code !== "board_moved") say(e); // moved by the breakout groups: just the new board
        resync(groupId && session.isModerator() ? { group_id: groupId } : {}); // refused: the server's board is the truth
      }
    } finally {
      sending = false;
    }
    if (outbox.length) scheduleSend(retry);
  }

  function sendCursor(c) {
    pendingCursor = null;
    lastCursorAt = performance.now();
    session.request("board_cursor", { cursor: c }).catch(() => {});
  }

  function cursorAt(p, laser = false) {
    if (!mayDraw()) return;
    pendingCursor = { x: Math.round(p[0] * 10) / 10, y: Math.round(p[1] * 10) / 10, page_id: pageId, laser };
    if (performance.now() - lastCursorAt >= CURSOR_MS && !outbox.length && !sending) sendCursor(pendingCursor);
    else scheduleSend(CURSOR_MS);
  }

  function request(type, fields) {
    return session.request(type, fields).catch((e) => { say(e); return null; });
  }

  function say(e) {
    notice(t("boardRefused", { reason: e.message || e.code }));
  }

  // --- rights ---
  function mayDraw() {
    const you = session.you;
    if (!you || !doc) return false;
    if (session.isModerator()) return true;
    if (you.role === "viewer" || session.room?.settings?.lock?.whiteboard) return false;
    if (rights.mode === "everyone") return true;
    if (rights.mode === "nobody") return false;
    return (rights.pens || []).includes(session.me);
  }

  // --- pages, follow, zoom ---
  function pageIndex() { return Math.max(0, pages.findIndex((p) => p.page_id === pageId)); }
  function page() { return pages[pageIndex()]; }

  function goPage(i, byUser = false) {
    if (i < 0 || i >= pages.length) return;
    pageId = pages[i].page_id;
    selected = null;
    zoom = 1; pan = [0, 0];
    if (byUser && follow && session.isModerator()) setFollow(pageId);
    render();
  }

  async function addPage() {
    const r = await request("board_add_page", {});
    if (r?.page) {
      if (!pages.some((p) => p.page_id === r.page.page_id)) pages = [...pages, r.page];
      goPage(pages.findIndex((p) => p.page_id === r.page.page_id), true);
    }
  }

  function setFollow(pid) {
    follow = pid;
    request("board_follow", { page_id: pid });
    renderTools();
  }

  function setZoom(z, at = null) {
    const nz = Math.min(8, Math.max(0.25, z));
    if (at) { // keep the page point under the pointer where it is
      const k = nz / zoom;
      pan = [at[0] - (at[0] - view.ox) * k - (view.w - page().width * view.s * k) / 2,
        at[1] - (at[1] - view.oy) * k - (view.h - page().height * view.s * k) / 2];
    }
    zoom = nz;
    requestDraw();
  }

  // --- materials and export (REST, the room's token) ---
  function base() { return `/v1/rooms/${encodeURIComponent(session.room?.room_id || "")}/board`; }
  function tokenQuery() {
    return `token=${encodeURIComponent(session.token)}${groupId ? `&group_id=${encodeURIComponent(groupId)}` : ""}`;
  }

  async function upload(file) {
    if (!file) return;
    fileInput.value = "";
    status.textContent = t("boardUploading");
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const r = await fetch(`${base()}/materials?${tokenQuery()}`, { method: "POST", body: form,
        headers: { Authorization: `Bearer ${session.token}` } });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw Object.assign(new Error(body.error?.message || body.message || r.statusText), { code: body.error?.code });
      const added = body.pages || [];
      for (const p of added) if (!pages.some((q) => q.page_id === p.page_id)) pages = [...pages, p];
      notice(t("boardUploaded", { n: added.length }));
      if (added.length) goPage(pages.findIndex((p) => p.page_id === added[0].page_id), true);
    } catch (e) {
      say(e);
    } finally {
      status.textContent = "";
    }
  }

  function renderExport() {
    const n = pageIndex() + 1;
    const link = (fmt, q, label) => h("a", { class: "board-btn wide", id: `board-export-${fmt}`, text: label,
      href: `${base()}/export?format=${fmt}${q}&${tokenQuery()}`, download: "", title: t("boardExport") });
    exportLinks.replaceChildren(link("pdf", "", "⇩ PDF"), link("png", `&page=${n}`, "PNG"), link("svg", `&page=${n}`, "SVG"));
  }

  function renderPens() {
    if (!session.isModerator()) return;
    const has = new Set(rights.pens || []);
    const people = [...session.participants.values()].filter((p) => p.participant_id !== session.me
      && p.role !== "host" && p.role !== "cohost" && p.role !== "viewer");
    pensList.replaceChildren(...people.map((p) => {
      const box = h("input", { type: "checkbox", checked: rights.mode === "chosen" && has.has(p.participant_id),
        dataset: { participantId: p.participant_id },
        onchange: () => request("board_rights", { participant_id: p.participant_id, pen: box.checked }) });
      return h("label", { class: "board-pen" }, box, h("span", { text: p.name || p.participant_id }));
    }));
  }

  function renderGroups() {
    groupSel.hidden = !groups.length;
    const want = [["", t("boardRoomBoard")], ...groups.map((g) => [g.breakout_id, t("boardGroupBoard", { name: g.name })])];
    if (groupSel.options.length !== want.length || want.some(([v], i) => groupSel.options[i].value !== v)) {
      groupSel.replaceChildren(...want.map(([v, label]) => h("option", { value: v, text: label })));
    }
    groupSel.value = groupId || "";
    showGroupBtn.hidden = !groupId;
  }

  // --- drawing ---
  function newId() { return `${session.me || "x"}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`; }

  function addElement(fields, pts) {
    const id = newId();
    undo.stopCapturing(); // each element its own undo step
    doc.transact(() => {
      const m = new Y.Map();
      for (const [k, v] of Object.entries({ page: pageId, color, width, z: Date.now(), by: session.me, ...fields })) m.set(k, v);
      const arr = new Y.Array();
      arr.push(pts);
      m.set("pts", arr);
      elements.set(id, m);
    }, LOCAL);
    return id;
  }

  let pageCache = null; // [pageId, sorted plain elements] until something changes
  function onPage() {
    if (!elements) return [];
    if (pageCache && pageCache[0] === pageId) return pageCache[1];
    const out = [];
    for (const [id, m] of elements.entries()) {
      if (m instanceof Y.Map && m.get("page") === pageId) out.push(plainOf(id, m));
    }
    out.sort((a, b) => num(a.z, 0) - num(b.z, 0) || (a.id < b.id ? -1 : 1));
    pageCache = [pageId, out];
    return out;
  }

  function topAt(p, tol) {
    const list = onPage();
    for (let i = list.length - 1; i >= 0; i--) if (hits(list[i], p, tol)) return list[i];
    return null;
  }

  function toPage(e) {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left - view.ox) / view.s, (e.clientY - r.top - view.oy) / view.s];
  }

  function setTool(key) {
    tool = key;
    selected = null;
    renderTools();
    requestDraw();
  }

  function onDown(e) {
    if (!doc) return;
    canvas.setPointerCapture?.(e.pointerId);
    const p = toPage(e);
    const tol = 6 / view.s;
    if (tool === "pan" || e.button === 1 || !mayDraw()) { gesture = { kind: "pan", x: e.clientX, y: e.clientY, pan: [...pan] }; return; }
    const shape = { line: 1, arrow: 1, rect: 1, ellipse: 1 };
    if (tool === "pen" || tool === "highlighter") {
      const w = tool === "highlighter" ? Math.max(12, width * 4) : width;
      const c = tool === "highlighter" && color === COLORS[0] ? "#f9a825" : color;
      gesture = { kind: "stroke", id: addElement({ type: tool, width: w, color: c }, [p[0], p[1]]), last: p, smooth: p };
    } else if (shape[tool]) {
      gesture = { kind: "shape", id: addElement({ type: tool }, [p[0], p[1], p[0], p[1]]) };
    } else if (tool === "text" || tool === "sticky") {
      openText(p, e);
    } else if (tool === "eraser") {
      undo.stopCapturing();
      gesture = { kind: "erase" };
      eraseAt(p, tol);
    } else if (tool === "laser") {
      gesture = { kind: "laser" };
      cursorAt(p, true);
    } else if (tool === "select") {
      const sel = selected && elements.get(selected) ? plain(Y, elements.get(selected), selected) : null;
      const b = sel && bbox(sel);
      undo.stopCapturing();
      if (b && Math.hypot(p[0] - b[2], p[1] - b[3]) <= 10 / view.s) {
        gesture = { kind: "resize", id: selected, from: p, t0: transformOf(sel), anchor: [b[0], b[1]], size: [b[2] - b[0], b[3] - b[1]] };
        return;
      }
      const hit = topAt(p, tol);
      selected = hit ? hit.id : null;
      if (hit) gesture = { kind: "move", id: hit.id, from: p, t0: transformOf(hit) };
      requestDraw();
    }
  }

  function onMove(e) {
    if (!doc) return;
    const p = toPage(e);
    if (gesture?.kind === "pan") {
      pan = [gesture.pan[0] + e.clientX - gesture.x, gesture.pan[1] + e.clientY - gesture.y];
      requestDraw();
      return;
    }
    if (tool === "laser" || gesture) cursorAt(p, tool === "laser");
    else if (mayDraw() && performance.now() - lastCursorAt > 250) cursorAt(p);
    if (!gesture) return;
    const m = gesture.id ? elements.get(gesture.id) : null;
    if (gesture.kind === "stroke" && m) {
      const add = [];
      for (const ev of e.getCoalescedEvents?.() || [e]) {
        const q = toPage(ev);
        // smoothing: each point moves halfway from the last smoothed one (a steadier line)
        const s = [gesture.smooth[0] + (q[0] - gesture.smooth[0]) * 0.5, gesture.smooth[1] + (q[1] - gesture.smooth[1]) * 0.5];
        gesture.smooth = s;
        if (Math.hypot(s[0] - gesture.last[0], s[1] - gesture.last[1]) < 1.5 / view.s) continue;
        gesture.last = s;
        add.push(Math.round(s[0] * 10) / 10, Math.round(s[1] * 10) / 10);
      }
      if (add.length) doc.transact(() => m.get("pts").push(add), LOCAL);
    } else if (gesture.kind === "shape" && m) {
      doc.transact(() => { const a = m.get("pts"); a.delete(2, a.length - 2); a.push([p[0], p[1]]); }, LOCAL);
    } else if (gesture.kind === "erase") {
      eraseAt(p, 6 / view.s);
    } else if (gesture.kind === "move" && m) {
      const [sx, sy, tx, ty] = gesture.t0;
      doc.transact(() => m.set("t", [sx, sy, tx + p[0] - gesture.from[0], ty + p[1] - gesture.from[1]]), LOCAL);
    } else if (gesture.kind === "resize" && m) {
      const [sx, sy, tx, ty] = gesture.t0;
      const [ax, ay] = gesture.anchor;
      const kx = Math.max(0.05, (gesture.size[0] + p[0] - gesture.from[0]) / Math.max(1, gesture.size[0]));
      const ky = Math.max(0.05, (gesture.size[1] + p[1] - gesture.from[1]) / Math.max(1, gesture.size[1]));
      doc.transact(() => m.set("t", [sx * kx, sy * ky, (tx - ax) * kx + ax, (ty - ay) * ky + ay]), LOCAL);
    }
  }

  function onUp(e) {
    if (gesture?.kind === "stroke") {
      const m = elements.get(gesture.id);
      const p = toPage(e);
      if (m && Math.hypot(p[0] - gesture.last[0], p[1] - gesture.last[1]) >= 0.5) {
        doc.transact(() => m.get("pts").push([Math.round(p[0] * 10) / 10, Math.round(p[1] * 10) / 10]), LOCAL);
      }
    }
    if (gesture && gesture.kind !== "pan") undo.stopCapturing(); // the gesture is one undo step
    gesture = null;
  }

  function eraseAt(p, tol) {
    const hit = topAt(p, tol);
    if (hit) doc.transact(() => elements.delete(hit.id), LOCAL);
  }

  function openText(p, e) {
    const type = tool;
    const r = area.getBoundingClientRect();
    const input = h("textarea", { class: `board-text-input ${type}`, id: "board-text-input", rows: 2 });
    input.style.left = `${e.clientX - r.left}px`;
    input.style.top = `${e.clientY - r.top}px`;
    input.style.fontSize = `${Math.max(10, 28 * view.s)}px`;
    input.style.color = color;
    let done = false;
    const commit = (keep) => {
      if (done) return;
      done = true;
      const text = input.value.trim() ? input.value : "";
      input.remove();
      if (keep && text) addElement({ type, text: text.slice(0, 5000), size: 28, color: type === "sticky" && color === "#ffffff" ? "#212121" : color }, [p[0], p[1]]);
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); commit(true); }
      if (ev.key === "Escape") commit(false);
      ev.stopPropagation();
    });
    input.addEventListener("blur", () => commit(true));
    area.appendChild(input);
    setTimeout(() => input.focus(), 0);
  }

  function onKey(e) {
    if (section.hidden || e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement) return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "z") { e.preventDefault(); if (e.shiftKey) undo?.redo(); else undo?.undo(); }
    else if (mod && e.key.toLowerCase() === "y") { e.preventDefault(); undo?.redo(); }
    else if ((e.key === "Delete" || e.key === "Backspace") && selected && mayDraw() && elements.get(selected)) {
      undo.stopCapturing();
      doc.transact(() => elements.delete(selected), LOCAL);
      selected = null;
    }
  }

  // --- cursors of the others ---
  function showCursor(pid, name, c) {
    let cur = cursors.get(pid);
    if (!cur) {
      const el = h("div", { class: "board-cursor", dataset: { participantId: pid } }, h("span", { class: "dot" }),
        h("span", { class: "name", text: name || session.participants.get(pid)?.name || "" }));
      cur = { el };
      cursors.set(pid, cur);
      cursorLayer.appendChild(el);
    }
    Object.assign(cur, { page: c.page_id, x: c.x, y: c.y, laser: Boolean(c.laser), at: performance.now() });
    placeCursor(cur);
  }

  function placeCursor(cur) {
    const age = performance.now() - cur.at;
    cur.el.hidden = cur.page !== pageId || age > (cur.laser ? LASER_TTL_MS : CURSOR_TTL_MS);
    cur.el.classList.toggle("laser", cur.laser);
    cur.el.style.transform = `translate(${view.ox + cur.x * view.s}px, ${view.oy + cur.y * view.s}px)`;
  }
  setInterval(() => { for (const c of cursors.values()) if (!c.el.hidden) placeCursor(c); }, 500);

  // --- drawing the page ---
  function requestDraw() {
    if (drawPending || section.hidden) return;
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; draw(); });
  }

  function background(pg) {
    if (!pg.background) return null;
    let img = images.get(pg.background);
    if (!img) {
      img = new Image();
      img.onload = requestDraw;
      img.src = `${base()}/assets/${encodeURIComponent(pg.background)}?token=${encodeURIComponent(session.token)}`;
      images.set(pg.background, img);
    }
    return img.complete && img.naturalWidth ? img : null;
  }

  let lastDrawMs = 0;
  function draw() {
    const t0 = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const w = area.clientWidth;
    const ht = area.clientHeight;
    if (!w || !ht) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(ht * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(ht * dpr);
    }
    const pg = page();
    const fit = Math.min(w / pg.width, ht / pg.height) * 0.98;
    const s = fit * zoom;
    view = { s, ox: (w - pg.width * s) / 2 + pan[0], oy: (ht - pg.height * s) / 2 + pan[1], w, h: ht };
    const bg = background(pg);
    const list = onPage();
    const key = [pageId, s, view.ox, view.oy, canvas.width, canvas.height, Boolean(bg)].join("|");
    if (baseDirty || key !== baseKey) { // the page, its background and the settled elements
      baseCanvas.width = canvas.width;
      baseCanvas.height = canvas.height;
      const b = baseCanvas.getContext("2d");
      b.setTransform(dpr * s, 0, 0, dpr * s, dpr * view.ox, dpr * view.oy);
      b.fillStyle = "#ffffff";
      b.fillRect(0, 0, pg.width, pg.height);
      if (bg) b.drawImage(bg, 0, 0, pg.width, pg.height);
      b.beginPath(); b.rect(0, 0, pg.width, pg.height); b.clip();
      for (const el of list) if (!active.has(el.id)) drawElement(b, el);
      baseDirty = false;
      baseKey = key;
    }
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.drawImage(baseCanvas, 0, 0);
    g.setTransform(dpr * s, 0, 0, dpr * s, dpr * view.ox, dpr * view.oy);
    g.save();
    g.beginPath(); g.rect(0, 0, pg.width, pg.height); g.clip();
    // the changing ones over it, keeping the drawing order (a settled element above one of them is
    // drawn again over it)
    let over = false;
    for (const el of list) {
      if (active.has(el.id)) { over = true; drawElement(g, el); } else if (over) drawElement(g, el);
    }
    g.restore();
    const sel = selected && elements?.get(selected) ? bbox(plain(Y, elements.get(selected), selected)) : null;
    if (sel) {
      g.save();
      g.strokeStyle = "#2979ff"; g.lineWidth = 1.5 / s; g.setLineDash([6 / s, 4 / s]);
      g.strokeRect(sel[0] - 4 / s, sel[1] - 4 / s, sel[2] - sel[0] + 8 / s, sel[3] - sel[1] + 8 / s);
      g.setLineDash([]); g.fillStyle = "#2979ff";
      g.fillRect(sel[2] - 5 / s, sel[3] - 5 / s, 10 / s, 10 / s); // the resize handle
      g.restore();
    }
    for (const c of cursors.values()) placeCursor(c);
    lastDrawMs = performance.now() - t0;
  }

  function renderTools() {
    const can = mayDraw();
    const mod = session.isModerator();
    for (const [key, b] of toolBtns) {
      b.classList.toggle("selected", key === tool);
      b.setAttribute("aria-pressed", String(key === tool));
      b.disabled = !can && !READ_TOOLS.has(key);
    }
    for (const s of swatches) s.classList.toggle("selected", s.dataset.color === color);
    section.classList.toggle("readonly", !can);
    section.dataset.mayDraw = String(can);
    bar.querySelectorAll(".draw-only button, .draw-only select").forEach((el) => { el.disabled = !can; });
    undoBtn.disabled = !can || !undo?.canUndo();
    redoBtn.disabled = !can || !undo?.canRedo();
    addPageBtn.disabled = !can;
    hostBar.hidden = !mod;
    followBtn.classList.toggle("selected", Boolean(follow));
    followBtn.textContent = follow ? t("boardFollowing") : t("boardFollow");
    rightsSel.value = rights.mode;
    pens.hidden = rights.mode !== "chosen";
    pageLabel.textContent = t("boardPage", { n: pageIndex() + 1, total: pages.length });
    prevBtn.disabled = pageIndex() === 0 || Boolean(follow && !mod);
    nextBtn.disabled = pageIndex() >= pages.length - 1 || Boolean(follow && !mod);
    const locked = !mod && session.room?.settings?.lock?.whiteboard;
    status.textContent = !doc || can ? "" : (locked ? t("boardLocked") : t("boardReadOnly"));
    if (mod) { renderExport(); renderPens(); renderGroups(); }
  }

  function render() {
    renderTools();
    requestDraw();
  }

  function setOpen(open) {
    section.hidden = !open;
    openBtn.classList.toggle("active", open);
    openBtn.setAttribute("aria-pressed", String(open));
    document.body.classList.toggle("board-open", open);
    if (open) render();
  }

  // --- events ---
  function onEvent(m) {
    switch (m.event) {
      case "board_state": return onState(m);
      case "board_update":
        if (!doc || (m.group_id ?? null) !== groupId) return undefined;
        applyRemote(m.update);
        if (m.cursor && m.by) showCursor(m.by, null, m.cursor);
        return undefined;
      case "board_cursor":
        if ((m.group_id ?? groupId) === groupId) showCursor(m.participant_id, m.name, m);
        return undefined;
      case "board_pages":
        if ((m.group_id ?? null) !== groupId) return undefined;
        setMeta(m);
        return render();
      case "board_follow":
        if ((m.group_id ?? null) !== groupId) return undefined;
        follow = m.page_id;
        if (follow && !session.isModerator()) {
          const i = pages.findIndex((p) => p.page_id === follow);
          if (i >= 0) goPage(i);
          setOpen(true);
        }
        return render();
      case "board_rights":
        if ((m.group_id ?? null) !== groupId) return undefined;
        rights = { mode: m.mode, pens: m.pens || [] };
        return render();
      case "locks_changed": return render();
      // the breakout groups moved us: the server says which board is ours now
      case "breakouts_updated":
        if (Array.isArray(m.breakouts?.rooms)) groups = m.breakouts.rooms.map((g) => ({ breakout_id: g.breakout_id, name: g.name }));
        return session.isModerator() ? renderTools() : undefined;
      case "breakouts_started": case "breakout_assigned": case "breakout_closed": case "breakouts_ended":
        if (m.event === "breakouts_started" && session.isModerator() && Array.isArray(m.breakouts?.rooms)) {
          groups = m.breakouts.rooms.map((g) => ({ breakout_id: g.breakout_id, name: g.name }));
          return renderTools();
        }
        return session.isModerator() && m.event !== "breakout_assigned" ? undefined : resync();
      default: return undefined;
    }
  }

  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (!m.event?.startsWith("board_") && !m.event?.startsWith("breakout") && m.event !== "locks_changed") return;
    if (!Y) { early.push(m); return; }
    onEvent(m);
  });
  session.addEventListener("participants", () => renderTools());
  session.addEventListener("media", () => renderTools());
  session.addEventListener("status", (e) => {
    if (e.detail.status !== "joined") synced = false; // a new socket: wait for its board_state
    openBtn.hidden = e.detail.status === "waiting";
    if (e.detail.status === "closed") setOpen(false);
  });
  canvas.addEventListener("pointerdown", onDown);
  canvas.addEventListener("pointermove", onMove);
  canvas.addEventListener("pointerup", onUp);
  canvas.addEventListener("pointercancel", onUp);
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    setZoom(zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1), [e.clientX - r.left, e.clientY - r.top]);
  }, { passive: false });
  document.addEventListener("keydown", onKey);
  new ResizeObserver(() => requestDraw()).observe(area);

  const api = {
    get ready() { return Boolean(Y && doc && synced); },
    get doc() { return doc; },
    get page() { return pageId; },
    get pages() { return pages; },
    get groupId() { return groupId; },
    get mayDraw() { return mayDraw(); },
    get pendingUpdates() { return outbox.length + (sending ? 1 : 0); },
    get open() { return !section.hidden; },
    get lastDrawMs() { return lastDrawMs; }, // the last full redraw (benchmarks, tests)
    get stateAt() { return stateAt; }, // performance.now() when the last board_state was applied
    elements: () => onPage(),
    setOpen,
    setTool,
    goPage,
    /** A moderator looks at a breakout group's board (null: the room's own). */
    showGroup: (gid) => resync({ group_id: gid ?? "" }),
  };
  window.urok = window.urok || {};
  window.urok.board = api;

  import(YJS).then((mod) => {
    Y = mod;
    for (const m of early.splice(0)) onEvent(m);
    if (!doc && session.status === "joined") resync(); // joined before the module came: ask
    render();
  }).catch((e) => console.error("urok: the whiteboard module did not load", e));
  renderTools();
  return api;
}
