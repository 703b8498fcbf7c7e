// Host and co-host controls in one menu: mute everyone, the locks, one-click lockdown, attention for
// everyone and ending the lesson for everyone.

import { h, icon } from "./dom.js";
import { t } from "./i18n.js";
import { popover, openModal, failure, requestOrNotice } from "./modal.js";
import { soundToggle } from "./awareness.js";

// who may enter from now on (set_guest_policy): everyone with the link, registered users (guests
// wait for a host), registered users only, only those a host admits, nobody new
export const GUEST_POLICIES = ["ALWAYS_ACCEPT", "ALWAYS_ACCEPT_AUTH", "ALWAYS_DENY", "ASK_HOST", "LOCKED"];
export const LOCKS = ["camera", "microphone", "screen_share", "chat", "private_chat", "reactions", "whiteboard", "self_unmute"];

export function createHostControls({ session, state, notice }) {
  const button = h("button", { class: "ctl", id: "btn-host", type: "button", title: t("hostMenuLong"), "aria-label": t("hostMenuLong"),
    "aria-haspopup": "dialog" },
    icon("sliders"), h("span", { class: "long", text: t("hostMenu") }),
    h("span", { class: "short", text: t("hostMenu") }));

  const run = (type, fields) => requestOrNotice(session, notice, type, fields);

  function build(el, close) {
    const lock = session.room?.settings?.lock || {};
    const lockdown = Boolean(session.room?.lockdown);
    const text = h("input", { type: "text", id: "attention-input", maxLength: 200, placeholder: t("attentionTextPlaceholder"),
      "aria-label": t("attentionTextPlaceholder") });
    const policy = session.room?.settings?.guest_policy || "";
    const entry = h("select", { id: "guest-policy", "aria-label": t("guestPolicyTitle"),
      onchange: (e) => run("set_guest_policy", { guest_policy: e.target.value }) },
      GUEST_POLICIES.map((p) => h("option", { value: p, text: t(`guestPolicy_${p}`), selected: p === policy })));
    el.append(
      h("label", { class: "field guest-policy" }, h("span", { text: t("guestPolicyTitle") }), entry),
      soundToggle(), // a soft ping when someone joins, leaves, waits or raises a hand
      h("button", { type: "button", class: "menu-item", id: "mute-all", text: t("muteAll"), onclick: async () => {
        const r = await run("mute", { all: true, source: "microphone" });
        if (r) notice(t("mutedAll", { n: (r.muted || []).length }));
      } }),
      h("button", { type: "button", class: `menu-item${lockdown ? " active" : ""}`, id: "lockdown", "aria-pressed": String(lockdown),
        text: t(lockdown ? "lockdownOn" : "lockdown"), onclick: () => run("lockdown", { enabled: !lockdown }) }),
      h("fieldset", { class: "locks" }, h("legend", { text: t("locksTitle") }),
        LOCKS.map((name) => h("label", { class: "check" },
          h("input", { type: "checkbox", id: `lock-${name}`, checked: Boolean(lock[name]), dataset: { lock: name },
            onchange: (e) => run("set_lock", { [name]: e.target.checked }) }),
          h("span", { text: t(`lock_${name}`) })))),
      h("div", { class: "attention-row" }, text,
        h("button", { type: "button", class: "menu-item", id: "attention-all", text: t("attentionAll"), onclick: async () => {
          const fields = { all: true };
          if (text.value.trim()) fields.text = text.value.trim();
          try {
            await state.askAttention(fields);
            notice(t("attentionSent"));
            close();
          } catch (e) {
            notice(failure(e));
          }
        } })),
      h("button", { type: "button", class: "menu-item danger-text", id: "end-lesson", text: t("endLesson"), onclick: () => {
        close();
        openModal({
          id: "end-dialog", title: t("endConfirm"),
          actions: [
            { id: "end-cancel", label: t("cancel") },
            { id: "end-confirm", label: t("endConfirmButton"), kind: "danger-btn", onClick: () => run("end_room", {}) },
          ],
        });
      } }));
  }

  const pop = popover(button, { id: "host-menu", className: "host-menu", build });
  button.addEventListener("click", () => pop.toggle());

  function render() {
    button.hidden = !session.isModerator() || session.status !== "joined";
    if (button.hidden) pop.close();
  }

  session.addEventListener("server", (e) => {
    const m = e.detail;
    if (m.event === "guest_policy_changed" && session.isModerator()) {
      notice(t("guestPolicyNow", { policy: t(`guestPolicy_${m.guest_policy}`) }));
    }
    if ((m.event === "locks_changed" || m.event === "guest_policy_changed") && pop.el) {
      // keep the open menu in step (another host, or our own click)
      const el = pop.el;
      const keep = el.querySelector("#attention-input")?.value || "";
      el.replaceChildren(el.firstChild);
      build(el, pop.close);
      el.querySelector("#attention-input").value = keep;
    }
  });
  session.addEventListener("status", render);
  session.addEventListener("participants", render);
  return { button, render };
}
