// A small modal dialog and a popover (menus above the controls). Text only via textContent.

import { h } from "./dom.js";
import { t } from "./i18n.js";

/**
 * openModal({id, title, body: [nodes], actions: [{id, label, kind, onClick}], onClose})
 * Returns {el, close}. An action's onClick may return false to keep the dialog open. A dialog with
 * the same id replaces the open one; `dismissable: false` ignores Escape (the attention notice).
 */
const openModals = new Map(); // id -> close

export function openModal({ id, title, body = [], actions = [], onClose = null, className = "", dismissable = true }) {
  openModals.get(id)?.();
  const card = h("div", { class: `modal-card ${className}`, role: "dialog", "aria-modal": "true", "aria-labelledby": `${id}-title` },
    h("h2", { class: "modal-title", id: `${id}-title`, text: title }),
    ...body);
  const row = h("div", { class: "modal-actions" });
  const el = h("div", { class: "modal", id }, card);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (openModals.get(id) === close) openModals.delete(id);
    el.remove();
    document.removeEventListener("keydown", onKey);
    onClose?.();
  };
  const onKey = (e) => { if (e.key === "Escape" && dismissable) close(); };
  for (const a of actions) {
    row.appendChild(h("button", {
      type: "button", id: a.id, class: a.kind || "secondary", text: a.label,
      onclick: async () => { if ((await a.onClick?.()) !== false) close(); },
    }));
  }
  card.appendChild(row);
  document.addEventListener("keydown", onKey);
  document.body.appendChild(el);
  openModals.set(id, close);
  row.querySelector("button")?.focus();
  return { el, close };
}

/** A popover anchored above the controls; a click outside or Escape closes it. */
export function popover(anchor, { id, build, className = "" }) {
  let el = null;
  const onDoc = (e) => { if (el && !el.contains(e.target) && !anchor.contains(e.target)) close(); };
  const onKey = (e) => { if (e.key === "Escape") close(); };
  function close() {
    if (!el) return;
    el.remove();
    el = null;
    anchor.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", onDoc, true);
    document.removeEventListener("keydown", onKey);
  }
  function open() {
    close();
    el = h("div", { class: `popover ${className}`, id, role: "dialog", "aria-label": anchor.getAttribute("aria-label") || "" });
    el.appendChild(h("button", { type: "button", class: "popover-close", "aria-label": t("close"), title: t("close"), text: "×", onclick: close }));
    build(el, close);
    document.body.appendChild(el);
    const r = anchor.getBoundingClientRect();
    const w = el.offsetWidth;
    el.style.left = `${Math.max(8, Math.min(window.innerWidth - w - 8, r.left + r.width / 2 - w / 2))}px`;
    el.style.bottom = `${Math.max(8, window.innerHeight - r.top + 8)}px`;
    anchor.setAttribute("aria-expanded", "true");
    document.addEventListener("pointerdown", onDoc, true);
    document.addEventListener("keydown", onKey);
  }
  return { open, close, toggle: () => (el ? close() : open()), get el() { return el; } };
}

/** "12 s", "3 min" */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? t("seconds", { n: s }) : t("minutes", { n: Math.floor(s / 60) });
}

/** Shows a request's failure as a notice ("rate_limited" gets its own words). */
export function failure(e) {
  if (e?.code === "rate_limited") return t("rateLimited");
  return t("actionFailed", { reason: e?.message || e?.code || String(e) });
}

/** A request whose failure is shown as a notice (and ``okText``, if given, its success): its
 *  result, or null when it failed. */
export async function requestOrNotice(session, notice, type, fields, okText = null) {
  try {
    const r = await session.request(type, fields);
    if (okText) notice(okText);
    return r;
  } catch (e) {
    notice(failure(e));
    return null;
  }
}

/** Closes every open dialog (the lesson is over). */
export function closeModals() {
  for (const close of [...openModals.values()]) close();
}
