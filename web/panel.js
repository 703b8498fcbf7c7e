// The side panel (<aside class="side">): tabs for participants, the waiting room, the chat and the
// hands. On desktop it sits right of the video; on phones (narrow screens) it is a sheet over the
// lesson that opens from the "Panel" button and closes with its × button.

import { h } from "./dom.js";
import { t } from "./i18n.js";

export function createPanel(side, tabs) {
  const heads = new Map();
  const bodies = new Map();
  const badges = new Map();
  const bar = h("div", { class: "tabs", role: "tablist" });
  const closeBtn = h("button", { type: "button", class: "panel-close", id: "panel-close", title: t("closePanel"),
    "aria-label": t("closePanel"), text: "×", onclick: () => api.close() });
  let current = null;
  let listeners = [];
  function add({ key, label, body }) {
    const badge = h("span", { class: "tab-badge", hidden: true });
    const head = h("button", { type: "button", class: "tab", role: "tab", id: `tab-${key}`, dataset: { tab: key },
      onclick: () => api.show(key) }, h("span", { text: label }), badge);
    const pane = h("section", { class: "tab-body", id: `pane-${key}`, role: "tabpanel", hidden: true }, body);
    heads.set(key, head);
    bodies.set(key, pane);
    badges.set(key, badge);
    bar.appendChild(head);
    return pane;
  }
  for (const tab of tabs) add(tab);
  side.replaceChildren(h("div", { class: "panel-head" }, bar, closeBtn), ...bodies.values());

  const api = {
    get current() { return current; },
    get isOpen() { return !side.hidden; },
    show(key) {
      if (heads.get(key)?.hidden) return;
      current = key;
      for (const [k, head] of heads) {
        head.classList.toggle("selected", k === key);
        head.setAttribute("aria-selected", String(k === key));
        bodies.get(k).hidden = k !== key;
      }
      side.hidden = false;
      document.body.classList.add("panel-open");
      for (const fn of listeners) fn(key);
    },
    close() {
      side.hidden = true;
      document.body.classList.remove("panel-open");
      for (const fn of listeners) fn(null);
    },
    toggle(key) {
      if (!side.hidden && (!key || key === current)) api.close();
      else api.show(key || current || tabs[0].key);
    },
    setTabVisible(key, visible) {
      heads.get(key).hidden = !visible;
      if (!visible && current === key) {
        current = null;
        if (!side.hidden) api.show(tabs[0].key);
      }
    },
    setBadge(key, n) {
      const b = badges.get(key);
      b.hidden = !n;
      b.textContent = n ? String(n) : "";
    },
    onChange(fn) { listeners.push(fn); },
    /** A feature's own tab (features.js): {key, label, body}, after the built-in ones. */
    addTab(tab) {
      tabs.push(tab);
      side.appendChild(add(tab));
    },
  };
  return api;
}
