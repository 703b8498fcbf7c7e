// What the people in a lesson are told as it goes (issue 15): a host's notices when someone joins or
// leaves (waiting and hands have theirs in waiting.js and hands.js), with an optional sound; a
// co-host promotion announced to the person; the locks as a student reads them (a sticky line while
// something is locked, a short one when it is lifted, with "you may turn the microphone on again");
// the lesson clock in the top bar, and for hosts "extend" before the end (`room_extend`).

import { h } from "./dom.js";
import { t, lang } from "./i18n.js";
import { audioContext } from "./media.js";
import { duration } from "./modal.js";
import { personName } from "./participants.js";

const SOUND_KEY = "urok.notifySound";
const EXTEND_MINUTES = 10;
const LOCK_ORDER = ["camera", "microphone", "screen_share", "chat", "private_chat", "reactions", "whiteboard", "self_unmute"];
// locks a student notices in the lesson; private_chat starts locked in a school room and is no news
const SAID_LOCKS = LOCK_ORDER.filter((n) => n !== "private_chat");

function listText(items) {
  try {
    return new Intl.ListFormat(lang, { type: "conjunction" }).format(items);
  } catch {
    return items.join(", ");
  }
}

/** A soft two-note ping through WebAudio (no file to load). */
function ping() {
  const ctx = audioContext();
  if (!ctx) return;
  const gain = ctx.createGain();
  gain.connect(ctx.destination);
  const t0 = ctx.currentTime + 0.02;
  gain.gain.setValueAtTime(0.0001, t0);
  gain.gain.exponentialRampToValueAtTime(0.15, t0 + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.35);
  [[880, 0], [1175, 0.12]].forEach(([f, at]) => {
    const osc = ctx.createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start(t0 + at);
    osc.stop(t0 + at + 0.2);
  });
  setTimeout(() => gain.disconnect(), 600);
}

function clockTime(epochS) {
  return new Date(epochS * 1000).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
}

export function soundOn() {
  try { return globalThis.localStorage?.getItem(SOUND_KEY) === "1"; } catch { return false; }
}

export function setSound(on) {
  try { globalThis.localStorage?.setItem(SOUND_KEY, on ? "1" : "0"); } catch {}
}

/**
 * createAwareness({session, notice, lockBanner, clockEl, extendBtn})
 * notice(text, sticky) shows the transient banner; lockBanner is the student's own sticky line.
 */
export function createAwareness({ session, notice, lockBanner, clockEl, extendBtn }) {
  let joinedAt = null;
  let endsAt = null;
  let role = null;
  let lastLocks = null;
  const names = new Map(); // participant_id -> name, kept after they leave (the session forgets them first)

  const alert = (text) => {
    notice(text);
    if (soundOn()) ping();
  };

  function lockedNow(lock) {
    return SAID_LOCKS.filter((n) => lock[n]);
  }

  function renderLockBanner() {
    const lock = session.room?.settings?.lock || {};
    const locked = session.isModerator() ? [] : lockedNow(lock);
    lockBanner.hidden = !locked.length;
    lockBanner.textContent = locked.length ? t("lockedList", { list: listText(locked.map((n) => t(`lockDo_${n}`))) }) : "";
    lockBanner.dataset.locks = locked.join(" ");
  }

  function onLocks(m) {
    const before = lastLocks || {};
    const lock = m.lock || session.room?.settings?.lock || {};
    lastLocks = { ...lock };
    if (session.isModerator()) { renderLockBanner(); return; }
    const lifted = SAID_LOCKS.filter((n) => before[n] && !lock[n]);
    renderLockBanner();
    if (!lifted.length) return;
    const still = lockedNow(lock);
    let text = still.length ? t("unlockedList", { list: listText(lifted.map((n) => t(`lockDo_${n}`))) }) : t("allUnlocked");
    // the microphone was turned off by the lock: say it may come back on
    const micFree = (lifted.includes("microphone") || lifted.includes("self_unmute")) && session.local.audio
      && !session.local.micOn && session.mayPublish("microphone") && !session.selfUnmuteBlocked("microphone");
    if (micFree) text += ` ${t("micAgain")}`;
    notice(text);
  }

  function renderClock() {
    if (session.status !== "joined") { clockEl.hidden = true; extendBtn.hidden = true; return; }
    const now = Date.now() / 1000;
    joinedAt ??= now;
    const started = session.room?.started_at || joinedAt;
    clockEl.hidden = false;
    if (endsAt) {
      const left = Math.max(0, endsAt - now);
      clockEl.textContent = t("clockLeft", { time: duration(left < 60 ? left : Math.ceil(left / 60) * 60) });
      clockEl.classList.toggle("soon", left <= 5 * 60);
    } else {
      const mins = Math.floor((now - started) / 60);
      clockEl.textContent = t("clockElapsed", { time: t("minutesN", { n: mins }) });
    }
    clockEl.dataset.endsAt = endsAt ? String(endsAt) : "";
    extendBtn.hidden = !(endsAt && session.isModerator());
  }

  function onRole() {
    const now = session.you?.role || null;
    if (role !== null && now !== role) {
      if (now === "cohost") notice(t("promotedCohost"));
      else if (now === "host") notice(t("promotedHost"));
      else if (role === "cohost") notice(t("demotedCohost"));
      renderLockBanner();
    }
    role = now;
    renderClock();
  }

  extendBtn.addEventListener("click", async () => {
    extendBtn.disabled = true;
    try {
      await session.request("room_extend", { minutes: EXTEND_MINUTES });
    } catch (e) {
      notice(t("actionFailed", { reason: e?.message || e?.code }));
    } finally {
      extendBtn.disabled = false;
    }
  });
  extendBtn.textContent = t("extendBy", { n: EXTEND_MINUTES });

  session.addEventListener("server", (e) => {
    const m = e.detail;
    switch (m.event) {
      case "welcome":
        endsAt = m.room?.ends_at || null;
        lastLocks = { ...(m.room?.settings?.lock || {}) };
        role = m.you?.role || null;
        renderLockBanner();
        renderClock();
        break;
      case "participant_joined":
        if (session.isModerator() && m.participant?.participant_id !== session.me) alert(t("personJoined", { name: personName(m.participant) }));
        break;
      case "participant_left": {
        const name = names.get(m.participant_id) || (m.participant && personName(m.participant));
        if (session.isModerator() && m.participant_id !== session.me && name) alert(t("personLeft", { name }));
        break;
      }
      case "participant_waiting":
      case "hand_raised":
        if (session.isModerator() && soundOn()) ping();
        break;
      case "room_extended":
        endsAt = m.ends_at || endsAt;
        notice(t("extended", { time: clockTime(endsAt) }));
        document.getElementById("room-ending")?.setAttribute("hidden", "");
        renderClock();
        break;
      case "room_ending":
        endsAt = m.ends_at || endsAt;
        renderClock();
        break;
      case "locks_changed":
        onLocks(m);
        break;
      default:
    }
  });
  session.addEventListener("participants", () => {
    for (const [pid, p] of session.participants) names.set(pid, personName(p));
    onRole();
  });
  session.addEventListener("status", renderClock);
  const timer = setInterval(renderClock, 15000);
  session.addEventListener("status", (e) => { if (e.detail.status === "closed") clearInterval(timer); });
  return { renderClock, renderLockBanner };
}

export function soundToggle() {
  const box = h("input", { type: "checkbox", id: "notify-sound", checked: soundOn(), onchange: (e) => setSound(e.target.checked) });
  return h("label", { class: "check", for: "notify-sound" }, box, h("span", { text: t("notifySound") }));
}
