// The chat tab: public messages and private ones (to a host or co-host; to anyone while private
// chat is allowed), history on join, tombstones for deleted messages, a delete button on every
// message for hosts and co-hosts. Texts are shown with textContent only.

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { CHAT_MAX } from "./callstate.js";
import { failure } from "./modal.js";
import { personName, sortPeople } from "./participants.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;

/** A message's text with its http(s) links as <a> (built as nodes, never HTML; other schemes stay
 *  text); a trailing period or bracket is not part of the link. */
export function linkify(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0].replace(/[.,;:!?)\]]+$/, "");
    let parsed;
    try { parsed = new URL(url); } catch { continue; }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") continue;
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer", text: url }));
    last = m.index + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function clock(serverTs, skew) {
  const d = new Date((serverTs + skew) * 1000);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

export function createChat({ session, state, notice }) {
  const log = h("ol", { class: "chat-log", id: "chat-log", "aria-live": "polite" });
  const empty = h("p", { class: "empty", id: "chat-empty", text: t("chatEmpty") });
  const lockNote = h("p", { class: "notice chat-notice", id: "chat-disabled", hidden: true });
  const to = h("select", { id: "chat-to", "aria-label": t("chatTo") });
  const input = h("textarea", { id: "chat-input", rows: 2, maxLength: CHAT_MAX, placeholder: t("chatPlaceholder"), "aria-label": t("chatPlaceholder") });
  const counter = h("span", { class: "counter", id: "chat-counter" });
  const error = h("p", { class: "chat-error", id: "chat-error", role: "alert", hidden: true });
  const sendBtn = h("button", { type: "submit", class: "primary small", id: "chat-send", text: t("send") });
  const form = h("form", { class: "chat-form", id: "chat-form" },
    h("div", { class: "chat-to-row" }, h("label", { for: "chat-to", text: t("chatTo") }), to, counter),
    input, error, h("div", { class: "chat-send-row" }, sendBtn));
  const el = h("div", { class: "pane-inner chat" }, empty, log, lockNote, form);

  function showError(text) {
    error.textContent = text || "";
    error.hidden = !text;
  }

  function writeState() {
    // viewers write like participants (the protocol's role table); guests only read
    const you = session.you || {};
    const mod = session.isModerator();
    const lock = session.room?.settings?.lock || {};
    if (you.registered === false && !mod) return { can: false, why: t("chatGuest") };
    if (lock.chat && !mod) return { can: false, why: t("chatLocked") };
    return { can: true, why: "" };
  }

  function renderTo() {
    const mod = session.isModerator();
    const lock = session.room?.settings?.lock || {};
    const keep = to.value;
    const opts = [h("option", { value: "", text: t("toEveryone") })];
    const others = sortPeople([...session.participants.values()].filter((p) => p.participant_id !== session.me && (p.state === undefined || p.state === "joined")));
    for (const p of others) {
      const toModerator = p.role === "host" || p.role === "cohost";
      if (mod || toModerator || !lock.private_chat) {
        opts.push(h("option", { value: p.participant_id, text: t("toPerson", { name: personName(p) }) }));
      }
    }
    to.replaceChildren(...opts);
    to.value = [...to.options].some((o) => o.value === keep) ? keep : "";
  }

  function renderForm() {
    const w = writeState();
    form.hidden = !w.can;
    lockNote.hidden = w.can || !w.why;
    lockNote.textContent = w.why;
    renderTo();
    counter.textContent = input.value.length > CHAT_MAX * 0.8 ? `${input.value.length}/${CHAT_MAX}` : "";
  }

  function item(m) {
    const mine = m.from?.participant_id === session.me;
    const head = h("div", { class: "msg-head" },
      h("span", { class: "msg-from", text: mine ? t("you") : (m.from?.name || "?") }));
    if (m.to) head.appendChild(h("span", { class: "msg-private", text: t("privateTo", { name: m.to.participant_id === session.me ? t("you") : m.to.name }) }));
    head.appendChild(h("time", { class: "msg-time", text: clock(m.sent_at, state.skew) }));
    const li = h("li", { class: `msg${mine ? " mine" : ""}${m.to ? " private" : ""}${m.deleted ? " deleted" : ""}`, dataset: { messageId: m.message_id } }, head);
    if (m.deleted) li.appendChild(h("p", { class: "msg-text tombstone", text: t("messageDeleted") }));
    else li.appendChild(h("p", { class: "msg-text" }, linkify(m.text)));
    if (session.isModerator() && !m.deleted) {
      head.appendChild(h("button", { type: "button", class: "msg-delete", title: t("deleteMessage"), "aria-label": t("deleteMessage"),
        onclick: async () => {
          try { await session.request("chat_delete", { message_id: m.message_id }); } catch (e) { notice(failure(e)); }
        } }, icon("trash")));
    }
    return li;
  }

  function render() {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.replaceChildren(...state.chat.map(item));
    empty.hidden = state.chat.length > 0;
    if (atBottom) log.scrollTop = log.scrollHeight;
    renderForm();
  }

  async function send() {
    const text = input.value.trim();
    if (!text) return;
    if (text.length > CHAT_MAX) { showError(t("chatTooLong", { max: CHAT_MAX })); return; }
    showError("");
    sendBtn.disabled = true;
    try {
      const fields = { text };
      if (to.value) fields.to = to.value;
      await session.request("chat_send", fields);
      input.value = "";
      log.scrollTop = log.scrollHeight;
    } catch (e) {
      showError(e?.code === "rate_limited" ? t("rateLimited") : t("chatError", { reason: e?.message || e?.code }));
    } finally {
      sendBtn.disabled = false;
      renderForm();
    }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  input.addEventListener("input", () => {
    counter.textContent = input.value.length > CHAT_MAX * 0.8 ? `${input.value.length}/${CHAT_MAX}` : "";
  });
  state.addEventListener("change", (e) => { if (e.detail.what === "chat") render(); });
  session.addEventListener("participants", renderForm);
  session.addEventListener("server", (e) => { if (e.detail.event === "locks_changed") renderForm(); });
  return { el, render };
}
