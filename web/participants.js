// The participants tab: everyone in the lesson, sorted by family name (as the server sorts), with
// role, hand and mute icons; hosts and co-hosts get per-person actions.

import { h, icon } from "./dom.js";
import { t, num } from "./i18n.js";
import { openModal, failure, duration, requestOrNotice } from "./modal.js";

export function personName(p) {
  return p?.name || [p?.given_name, p?.family_name].filter(Boolean).join(" ") || p?.identity || "?";
}

function sortKey(p) {
  return [(p.family_name || "").toLowerCase(), (p.given_name || "").toLowerCase(), personName(p).toLowerCase()];
}

export function sortPeople(list) {
  return list.sort((a, b) => {
    const x = sortKey(a);
    const y = sortKey(b);
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
  });
}

/** Whether someone publishes a source at all (muted or not): "muted" and "has no microphone" differ. */
export function publishes(session, pid, source) {
  for (const tr of session.trackMap.published.values()) if (tr.participant_id === pid && tr.source === source) return true;
  return Boolean(session.remote.get(pid)?.[source]);
}

export function createParticipants({ session, state, notice }) {
  const list = h("ul", { class: "people", id: "people" });
  const el = h("div", { class: "pane-inner" }, list);
  let openFor = null; // participant_id whose action list is open
  let lastSig = "";

  const act = (type, fields, okText) => requestOrNotice(session, notice, type, fields, okText);

  function confirmRemove(p) {
    const ban = h("input", { type: "checkbox", id: "remove-ban" });
    openModal({
      id: "remove-dialog",
      title: t("removeTitle", { name: personName(p) }),
      body: [h("label", { class: "check" }, ban, h("span", { text: t("removeBan") }))],
      actions: [
        { id: "remove-cancel", label: t("cancel") },
        { id: "remove-confirm", label: t("removeConfirm"), kind: "danger-btn",
          onClick: () => act("remove", { participant_id: p.participant_id, ban: ban.checked }) },
      ],
    });
  }

  function actionsFor(p) {
    const me = session.you || {};
    const pid = p.participant_id;
    const muted = session.mutedRemote.get(pid) || {};
    const out = [];
    const add = (key, label, run) => out.push(h("button", { type: "button", class: "action", dataset: { action: key },
      text: label, onclick: async () => { openFor = null; render(); await run(); } }));
    if (!muted.microphone) add("mute-mic", t("actMuteMic"), () => act("mute", { participant_id: pid, source: "microphone" }));
    if (!muted.camera) add("mute-camera", t("actMuteCam"), () => act("mute", { participant_id: pid, source: "camera" }));
    if (p.role !== "viewer") {
      // asking makes sense only of someone whose microphone is there and off
      if (muted.microphone && publishes(session, pid, "microphone")) {
        add("ask-unmute", t("actAskUnmute"), () => act("request_unmute", { participant_id: pid, source: "microphone" }));
      }
      if (muted.camera || !session.remote.get(pid)?.camera) {
        add("ask-camera", t("actAskCamera"), () => act("request_unmute", { participant_id: pid, source: "camera" }));
      }
      if (state.allowed.has(pid)) {
        add("revoke-unmute", t("actRevokeUnmute"), async () => {
          if (await act("allow_unmute", { participant_id: pid, allowed: false })) state.allowed.delete(pid);
        });
      } else {
        add("allow-unmute", t("actAllowUnmute"), async () => {
          if (await act("allow_unmute", { participant_id: pid, allowed: true })) state.allowed.add(pid);
        });
      }
    }
    if (state.hands.has(pid)) add("lower-hand", t("actLowerHand"), () => act("lower_hand", { participant_id: pid }));
    if (me.role === "host") {
      if (p.role === "cohost") add("unmake-cohost", t("actUnmakeCohost"), () => act("set_role", { participant_id: pid, role: "participant" }));
      else if (p.role === "participant" || p.role === "viewer") add("make-cohost", t("actMakeCohost"), () => act("set_role", { participant_id: pid, role: "cohost" }));
    }
    const spot = session.room?.spotlight === pid;
    add(spot ? "unspotlight" : "spotlight", t(spot ? "unspotlight" : "spotlight"),
      () => act("spotlight", { participant_id: spot ? null : pid }));
    add("attention", t("actAttention"), () => state.askAttention({ participant_id: pid })
      .then(() => notice(t("attentionSent"))).catch((e) => notice(failure(e))));
    add("remove", t("actRemove"), () => confirmRemove(p));
    return out;
  }

  function row(p) {
    const pid = p.participant_id;
    const self = pid === session.me;
    // as on the tiles: off when muted or when nothing is received (never published)
    const tracks = session.remote.get(pid) || {};
    const server = session.mutedRemote.get(pid) || {};
    const muted = self
      ? { microphone: !session.local.audio || !session.local.micOn, camera: !session.local.video || !session.local.camOn }
      : { microphone: server.microphone || !tracks.microphone, camera: server.camera || !tracks.camera };
    const icons = h("span", { class: "person-icons" });
    if (state.hands.has(pid)) icons.appendChild(h("span", { class: "hand-icon", title: t("handUp") }, icon("hand")));
    const noMic = self ? !session.local.audio : !publishes(session, pid, "microphone");
    if (noMic) icons.appendChild(h("span", { class: "muted-icon mic no-mic", title: t("noMic") }, icon("mic", { slashed: true }), h("span", { class: "icon-note", text: t("noMic") })));
    else if (muted.microphone) icons.appendChild(h("span", { class: "muted-icon mic", title: t("micMuted") }, icon("mic", { slashed: true })));
    if (muted.camera) icons.appendChild(h("span", { class: "muted-icon cam", title: t("camMuted") }, icon("cam", { slashed: true })));
    const att = state.lastAttention && state.attentions.get(state.lastAttention);
    const ack = att?.acked.get(pid);
    if (ack) icons.appendChild(h("span", { class: "ack-badge", title: t("attentionAckedIn", { name: personName(p), time: duration(ack.after_ms / 1000) }), text: `✓ ${num(Math.round(ack.after_ms / 100) / 10)}` }));
    else if (att?.pending.has(pid)) icons.appendChild(h("span", { class: "pending-badge", title: t("attentionPending"), text: "…" }));
    const tags = h("span", { class: "person-tags" });
    if (p.role && p.role !== "participant") tags.appendChild(h("span", { class: `tag role-${p.role}`, text: t(`role_${p.role}`) }));
    if (p.registered === false) tags.appendChild(h("span", { class: "tag guest", text: t("guest") }));
    const li = h("li", { class: "person", dataset: { participantId: pid } },
      h("div", { class: "person-main" },
        h("span", { class: "person-name", text: self ? `${personName(p)} (${t("you")})` : personName(p) }),
        tags, icons));
    const me = session.you || {};
    const canAct = session.isModerator() && !self && !(me.role === "cohost" && p.role === "host");
    if (canAct) {
      const btn = h("button", { type: "button", class: "more", title: t("actions", { name: personName(p) }),
        "aria-label": t("actions", { name: personName(p) }), "aria-expanded": String(openFor === pid), text: "⋯",
        onclick: () => { openFor = openFor === pid ? null : pid; render(); } });
      li.firstChild.appendChild(btn);
      if (openFor === pid) li.appendChild(h("div", { class: "person-actions" }, actionsFor(p)));
    }
    return li;
  }

  function render() {
    const people = sortPeople([...session.participants.values()]
      .filter((p) => p.state === undefined || p.state === "joined"));
    if (openFor && !session.participants.has(openFor)) openFor = null;
    // re-render only when something shown changed ("media" events are frequent; a button that is
    // being clicked should stay in place)
    const att = state.lastAttention && state.attentions.get(state.lastAttention);
    const sig = JSON.stringify([openFor, session.room?.spotlight, session.you?.role, session.local.micOn, session.local.camOn, Boolean(session.local.video),
      [...state.allowed], att ? [...att.acked.keys(), "|", ...att.pending.keys()] : null,
      people.map((p) => [p.participant_id, personName(p), p.role, p.registered, state.hands.has(p.participant_id),
        session.mutedRemote.get(p.participant_id), Object.keys(session.remote.get(p.participant_id) || {})])]);
    if (sig === lastSig) return;
    lastSig = sig;
    list.replaceChildren(...people.map(row));
  }

  session.addEventListener("participants", render);
  session.addEventListener("media", render);
  state.addEventListener("change", (e) => { if (e.detail.what === "hands" || e.detail.what === "attention") render(); });
  return { el, render };
}
