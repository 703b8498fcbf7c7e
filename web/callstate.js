// Call control state kept from the server's events (no DOM): the waiting room, the hand queue, the
// chat, attention requests and their acknowledgements. The panels render from it.
// Dispatches "change" with detail {what: "waiting" | "hands" | "chat" | "attention" | "reaction" |
// "ending", ...}.

export const EMOJI = ["👍", "👏", "😂", "😮", "❤️", "🎉", "🤔", "✋"];
export const CHAT_MAX = 2000;

export class CallState extends EventTarget {
  constructor(session) {
    super();
    this.session = session;
    this.waiting = new Map(); // participant_id -> participant (waiting order)
    this.hands = new Map(); // participant_id -> {participant_id, name, raised_at}
    this.chat = []; // messages, oldest first
    this.chatIds = new Map(); // message_id -> message
    this.attentions = new Map(); // attention_id -> {attention_id, text, acked: Map, targets, pending}
    this.lastAttention = null; // the latest one we sent (hosts)
    this.allowed = new Set(); // people we allowed to unmute (hosts; this page only)
    this.skew = 0; // local clock - server clock, seconds (from events stamped "now")
    this.unread = 0;
    session.addEventListener("server", (e) => this._onEvent(e.detail));
  }

  _emit(what, extra = {}) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what, ...extra } }));
  }

  /** Server time now (seconds), from the local clock and the last known skew. */
  serverNow() {
    return Date.now() / 1000 - this.skew;
  }

  _stamp(serverTime) {
    if (typeof serverTime === "number") this.skew = Date.now() / 1000 - serverTime;
  }

  handQueue() {
    return [...this.hands.values()].sort((a, b) => a.raised_at - b.raised_at);
  }

  _onEvent(m) {
    const s = this.session;
    switch (m.event) {
      case "welcome":
        this._stamp(m.server_time);
        this.hands.clear();
        for (const p of m.participants || []) {
          if (p.hand_raised_at) this.hands.set(p.participant_id, { participant_id: p.participant_id, name: p.name, raised_at: p.hand_raised_at });
        }
        if (m.state === "joined") this.waiting.clear();
        this._emit("hands");
        this._emit("waiting");
        return;
      case "waiting_room":
        this.waiting.clear();
        for (const p of m.participants || []) this.waiting.set(p.participant_id, p);
        return this._emit("waiting");
      case "participant_waiting":
        if (m.participant) this.waiting.set(m.participant_id, m.participant);
        return this._emit("waiting", { added: m.participant });
      case "participant_left_waiting_room":
        this.waiting.delete(m.participant_id);
        return this._emit("waiting");
      case "hand_queue":
        this.hands.clear();
        for (const hq of m.hands || []) {
          this.hands.set(hq.participant_id, hq);
          if (typeof hq.waiting_s === "number") this.skew = Date.now() / 1000 - (hq.raised_at + hq.waiting_s);
        }
        return this._emit("hands");
      case "hand_raised": {
        this._stamp(m.raised_at);
        const p = s.participants.get(m.participant_id);
        this.hands.set(m.participant_id, { participant_id: m.participant_id, name: p?.name || "", raised_at: m.raised_at });
        return this._emit("hands", { raised: m.participant_id });
      }
      case "hand_lowered":
        this.hands.delete(m.participant_id);
        return this._emit("hands", { lowered: m.participant_id, by: m.by });
      case "participant_left":
        this.hands.delete(m.participant_id);
        this.allowed.delete(m.participant_id);
        return this._emit("hands");
      case "chat_history":
        this.chat = [];
        this.chatIds.clear();
        for (const msg of m.messages || []) this._addMessage(msg);
        return this._emit("chat", { history: true });
      case "chat_message":
        this._stamp(m.message?.sent_at);
        this._addMessage(m.message);
        if (m.message?.from?.participant_id !== s.me) this.unread++;
        return this._emit("chat", { message: m.message });
      case "chat_deleted": {
        const msg = this.chatIds.get(m.message_id);
        if (msg) { msg.deleted = true; msg.text = ""; }
        return this._emit("chat", { deleted: m.message_id });
      }
      case "reaction":
        return this._emit("reaction", { participant_id: m.participant_id, emoji: m.emoji });
      case "attention":
        this._stamp(m.sent_at);
        return this._emit("attention", { asked: m });
      case "attention_acked": {
        const a = this._attention(m.attention_id);
        a.acked.set(m.participant_id, { participant_id: m.participant_id, name: m.name, after_ms: m.after_ms });
        a.pending.delete(m.participant_id);
        return this._emit("attention", { acked: m });
      }
      case "room_ending":
        return this._emit("ending", { seconds_left: m.seconds_left, ends_at: m.ends_at });
      default:
        return undefined;
    }
  }

  _addMessage(msg) {
    if (!msg || !msg.message_id || this.chatIds.has(msg.message_id)) return;
    this.chat.push(msg);
    this.chatIds.set(msg.message_id, msg);
    if (this.chat.length > 1000) this.chatIds.delete(this.chat.shift().message_id);
  }

  _attention(id) {
    if (!this.attentions.has(id)) this.attentions.set(id, { attention_id: id, text: "", acked: new Map(), pending: new Map() });
    return this.attentions.get(id);
  }

  /** Hosts: ask for attention; the status (who answered, who did not) follows. */
  async askAttention(fields) {
    const r = await this.session.request("attention", fields);
    const a = this._attention(r.attention_id);
    a.text = fields.text || "";
    a.targets = r.targets;
    this.lastAttention = r.attention_id;
    await this.refreshAttention(r.attention_id);
    return r;
  }

  async refreshAttention(id = this.lastAttention) {
    if (!id) return;
    try {
      const r = await this.session.request("attention_status", { attention_id: id });
      const a = this._attention(id);
      a.text = r.text ?? a.text;
      for (const x of r.acked || []) a.acked.set(x.participant_id, x);
      a.pending = new Map((r.pending || []).filter((x) => !a.acked.has(x.participant_id)).map((x) => [x.participant_id, x]));
    } catch (e) {
      console.debug("urok: attention_status failed", e);
    }
    this._emit("attention", { status: id });
  }
}
