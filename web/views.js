// How the lesson's tiles are shown (issue 15): the grid, or speaker view (one tile large: the pinned
// person, else the active speaker, who is followed as they change); a pin per tile; one's own tile
// hidden on request; pages of tiles for a large class, where only the tiles on the page receive video
// (the session asks the server for those and unsubscribes the rest). The choices are remembered.
// A host's spotlight (`spotlight`, `room.spotlight`) features one person large for everyone: speaker
// view while it lasts, unless the viewer pinned someone of their own.

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { personName } from "./participants.js";

const VIEW_KEY = "urok.view";
const SELF_KEY = "urok.hideSelf";

function remembered(key, fallback) {
  try { return globalThis.localStorage?.getItem(key) ?? fallback; } catch { return fallback; }
}
function remember(key, value) {
  try { globalThis.localStorage?.setItem(key, value); } catch {}
}

/** Tiles a page holds: ?page_size=N for tests and very small screens, else by the screen. */
function pageSize() {
  const forced = Number(new URLSearchParams(location.search).get("page_size"));
  if (forced > 0) return forced;
  return matchMedia("(max-width: 720px)").matches ? 6 : 25;
}

/**
 * createViews({session, grid, tiles, relayout}): tiles is lesson.js's Map key -> {el, ...} ("self"
 * for one's own). Returns {controls, apply(), pin(pid)}; apply() after every change of the tiles.
 */
export function createViews({ session, grid, tiles, relayout, notice = () => {} }) {
  const st = {
    mode: remembered(VIEW_KEY, "grid") === "speaker" ? "speaker" : "grid",
    pinned: null,
    selfHidden: remembered(SELF_KEY, "0") === "1",
    page: 0,
    featured: null,
    spotlight: null, // the host's choice for everyone (participant id)
  };
  const spotKey = () => (st.spotlight && st.spotlight === session.me ? "self" : st.spotlight);
  const spotlit = () => (st.spotlight && tiles.has(spotKey()) ? spotKey() : null);
  const speakerMode = () => st.mode === "speaker" || Boolean(spotlit());
  const viewBtn = h("button", { class: "ctl", id: "btn-view", type: "button" });
  const selfBtn = h("button", { class: "ctl small-ctl", id: "btn-self-view", type: "button" });
  const prevBtn = h("button", { class: "pager-btn", id: "page-prev", type: "button", text: "‹", title: t("pagePrev"), "aria-label": t("pagePrev") });
  const nextBtn = h("button", { class: "pager-btn", id: "page-next", type: "button", text: "›", title: t("pageNext"), "aria-label": t("pageNext") });
  const pageLabel = h("span", { class: "pager-label", id: "page-label" });
  const pager = h("div", { class: "pager", id: "pager", hidden: true }, prevBtn, pageLabel, nextBtn);

  function renderButtons() {
    const speaker = speakerMode();
    const label = speaker ? t("viewGrid") : t("viewSpeaker");
    viewBtn.replaceChildren(icon(speaker ? "grid" : "speakerView"), h("span", { class: "long", text: label }), h("span", { class: "short", text: t("view") }));
    viewBtn.title = label;
    viewBtn.setAttribute("aria-label", label);
    viewBtn.dataset.mode = st.mode;
    const selfLabel = st.selfHidden ? t("showSelf") : t("hideSelf");
    selfBtn.replaceChildren(icon("self", { slashed: !st.selfHidden }), h("span", { class: "long", text: selfLabel }), h("span", { class: "short", text: selfLabel }));
    selfBtn.title = selfLabel;
    selfBtn.setAttribute("aria-label", selfLabel);
    selfBtn.setAttribute("aria-pressed", String(st.selfHidden));
  }

  function others() {
    return [...tiles.keys()].filter((k) => k !== "self");
  }

  function chooseFeatured() {
    const keys = others();
    if (st.pinned && tiles.has(st.pinned)) return st.pinned;
    st.pinned = null;
    if (spotlit()) return spotlit();
    const speaker = session.activeSpeaker;
    const speaking = session.speaking || new Set();
    if (speaker && speaker !== session.me && tiles.has(speaker) && speaking.has(speaker)) return speaker;
    if (st.featured && tiles.has(st.featured) && st.featured !== "self") return st.featured;
    return keys[0] || "self";
  }

  function apply() {
    const speaker = speakerMode();
    grid.classList.toggle("speaker-view", speaker);
    st.featured = speaker ? chooseFeatured() : null;
    const keys = [...tiles.keys()];
    // pages only in the grid: speaker view shows the large tile and a strip that scrolls
    const size = pageSize();
    const shown = keys.filter((k) => !(k === "self" && st.selfHidden));
    const pages = speaker ? 1 : Math.max(1, Math.ceil(shown.length / size));
    st.page = Math.min(st.page, pages - 1);
    const onPage = new Set(speaker ? shown : shown.slice(st.page * size, (st.page + 1) * size));
    for (const [key, tile] of tiles) {
      tile.el.hidden = !onPage.has(key);
      tile.el.classList.toggle("featured", key === st.featured);
      tile.el.classList.toggle("pinned", key === st.pinned);
      tile.el.classList.toggle("spotlit", key === spotlit());
      const pin = tile.el.querySelector(":scope > .pin-btn");
      if (pin) {
        pin.textContent = key === st.pinned ? t("unpin") : t("pin");
        pin.setAttribute("aria-pressed", String(key === st.pinned));
      }
    }
    pager.hidden = pages <= 1;
    pageLabel.textContent = t("pageOf", { page: st.page + 1, pages });
    prevBtn.disabled = st.page === 0;
    nextBtn.disabled = st.page >= pages - 1;
    // only the tiles on the page receive video (null: everyone's, as before)
    const visible = new Set();
    for (const k of onPage) visible.add(k === "self" ? session.me : k);
    session.setVisibleVideo(pages > 1 ? visible : null, st.featured && st.featured !== "self" ? st.featured : null);
    grid.dataset.featured = st.featured || "";
    grid.dataset.page = String(st.page);
    renderButtons();
    relayout();
  }

  function pin(pid) {
    st.pinned = st.pinned === pid ? null : pid;
    if (st.pinned) st.mode = "speaker";
    apply();
  }

  /** A tile's pin button (lesson.js adds it to each tile of someone else). */
  function pinButton(key) {
    return h("button", { type: "button", class: "pin-btn", dataset: { pin: key }, text: t("pin"),
      onclick: (e) => { e.stopPropagation(); pin(key); } });
  }

  viewBtn.addEventListener("click", () => {
    st.mode = speakerMode() ? "grid" : "speaker";
    if (st.mode === "grid") st.spotlight = null; // this viewer leaves the spotlight (until the next one)
    if (st.mode === "grid") st.pinned = null;
    remember(VIEW_KEY, st.mode);
    apply();
  });
  selfBtn.addEventListener("click", () => {
    st.selfHidden = !st.selfHidden;
    remember(SELF_KEY, st.selfHidden ? "1" : "0");
    apply();
  });
  prevBtn.addEventListener("click", () => { st.page = Math.max(0, st.page - 1); apply(); });
  nextBtn.addEventListener("click", () => { st.page += 1; apply(); });
  // speaker view follows the active speaker (a pinned person stays)
  function setSpotlight(pid, said) {
    if (pid === st.spotlight) return;
    st.spotlight = pid;
    if (said) {
      const p = pid && session.participants.get(pid);
      notice(pid ? t("spotlightOn", { name: pid === session.me ? t("you") : personName(p) }) : t("spotlightOff"));
    }
    apply();
  }
  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (m.event === "welcome") setSpotlight(m.room?.spotlight || null, false);
    else if (m.event === "spotlight_changed") setSpotlight(m.participant_id || null, true);
  });
  session.addEventListener("levels", () => {
    if (!speakerMode() || st.pinned || spotlit()) return;
    if (chooseFeatured() !== st.featured) apply();
  });
  renderButtons();
  window.urok.views = st;
  return { controls: [viewBtn, selfBtn], pager, apply, pin, pinButton, state: st, get spotlight() { return st.spotlight; } };
}
