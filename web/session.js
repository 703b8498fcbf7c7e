// The lesson session: signalling socket, the two peer connections (publisher: we offer;
// subscriber: the server offers), local tracks, remote tracks mapped to participants, reconnect.
// No DOM here: the UI (lesson.js) listens to the events this EventTarget dispatches:
//   "status"        detail {status: connecting|waiting|joined|reconnecting|closed, message?, code?}
//   "participants"  the participant list changed
//   "media"         remote or local tracks changed
//   "levels"        detail Map participant_id -> audio level 0..1 (speaker highlight)
//   "notice"        detail {key, params} a transient message for the user
//   "server"        detail: every event frame from the server, after the session has handled it
//                   (call control modules listen to this: chat, hands, waiting room, attention...)

import { Signal } from "./signal.js";
import { TrackMap } from "./trackmap.js";
import { getCamera, getMicrophone } from "./media.js";
import { Backoff } from "./backoff.js";


/** Camera simulcast, lowest layer first (the server orders layers as listed): viewers get the
 *  layer that fits their tile and their bandwidth. */
export function simulcastLayers() {
  return [
    { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
    { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
    { rid: "f", maxBitrate: 1_500_000 },
  ];
}

// Close codes after which the page does not reconnect (1000 comes after our own `leave`; any other
// close, 1000 included when we did not leave, is a drop: rejoin with the same token). 4409: another
// tab or device took our seat; reconnecting would take it back and start a fight. 4423: the room
// forbids taking a connected seat; final for a page that never got in (another tab holds it), retried
// by a page that was in (its own dropped socket holds the seat until the server's heartbeat ends it,
// within 30 s: ws_heartbeat_s).
const FINAL_CLOSE = {
  4401: "badToken", 4403: "refused", 4404: "roomNotFound", 4409: "replaced",
  4410: "ended", 4411: "removed", 4413: "roomFull", 4423: "alreadyConnected",
};
// events about the room that a page in the waiting room ignores (the server does not send them
// before a host admits us; the waiting screen shows no one)
const ROOM_EVENTS = new Set(["participant_joined", "participant_left", "participants_joined", "participant_updated",
  "participants_muted", "track_published", "track_unpublished", "track_muted", "active_speaker", "active_speakers",
  "speakers_changed", "chat_message", "chat_deleted", "chat_history", "hand_raised", "hand_lowered", "hand_queue",
  "reaction", "locks_changed", "attention", "room_update", "participant_waiting", "waiting_room",
  "participant_replaced", "spotlight_changed", "guest_policy_changed"]);
const SEAT_WAIT_MS = 60000; // how long a page that was in retries 4423 refusals before it gives up
// `publish` refusals that the same offer will get again (issue 21): the page stops republishing
// (also after a reconnect) and says so. `forbidden` is not here: a host may lift the lock.
const FINAL_PUBLISH = new Set(["invalid_sdp", "invalid_message", "too_many_tracks"]);
function finalPublishError(code) {
  return FINAL_PUBLISH.has(code) || /sdp|codec/i.test(code || "");
}
const SHARE_SOURCES = new Set(["screen", "screen_audio"]);
const SPEAKING = 0.04; // getStats audioLevel (0..1, linear) above which a participant speaks
const SPEAKING_HOLD_MS = 1500; // a speaker stays highlighted this long after the last loud poll

export class Session extends EventTarget {
  /**
   * local: {audio: MediaStreamTrack|null, video: MediaStreamTrack|null, micOn, camOn,
   *         videoDeviceId, audioDeviceId, listener: bool}
   */
  constructor({ token, local }) {
    super();
    this.token = token;
    this.local = { audio: null, video: null, screen: null, screenAudio: null, micOn: true, camOn: true, ...local };
    this.status = "idle";
    this.statusLog = [];
    this.gen = 0; // connection generation: callbacks of older sockets / pcs are ignored
    this.sig = null;
    this.me = null; // our participant_id
    this.you = null;
    this.room = null;
    this.participants = new Map();
    this.trackMap = new TrackMap();
    this.receivers = new Map(); // mid -> {track, transceiver}
    this.remote = new Map(); // participant_id -> {camera, microphone, screen, screen_audio} tracks
    this.mutedRemote = new Map(); // participant_id -> {source: bool} from track_muted / participant.muted
    this.levels = new Map();
    this._energy = new Map(); // stats id -> [totalAudioEnergy, totalSamplesDuration] at the last poll
    this._loudAt = new Map(); // participant_id -> when its level was last over SPEAKING
    this.activeSpeaker = null;
    this.pub = null;
    this.sub = null;
    this.tx = {}; // source -> RTCRtpTransceiver on the publisher
    this.spare = []; // stopped screen-share transceivers (inactive m-lines) a new share reuses
    // cameras publish three simulcast layers unless ?simulcast=0 (e.g. a weak uplink)
    this.simulcast = new URLSearchParams(globalThis.location?.search || "").get("simulcast") !== "0";
    this.mediaUnavailable = false;
    this.publishRefused = null; // {code, message}: a publish refusal that a retry would get again
    this.backoff = new Backoff();
    this.reconnectInfo = null; // {attempt, at (Date.now() ms of the next try, null while trying), why}
    this.connectAttempts = 0; // sockets opened (for tests)
    this.stableSince = null;
    this.timers = new Set();
    this.subChain = Promise.resolve();
    this.pubChain = Promise.resolve();
    this.iceServers = [];
    this.unmuteAllowed = false; // a host's allow_unmute (until revoked)
    this.unmuteOnce = new Set(); // sources a host asked us to unmute (one unmute each)
  }

  // ---- lifecycle --------------------------------------------------------------------------------
  start() {
    this._connect();
    this._every(10000, () => this._heartbeat());
    this._every(500, () => this._pollLevels());
    this._every(1000, () => this._checkStable());
  }

  async leave() {
    this.status = "closed";
    const sig = this.sig;
    this.gen++;
    this._clearTimers();
    if (sig && !sig.closed) {
      try { await sig.request("leave", {}, 2000); } catch {}
      sig.close(1000);
    }
    this._teardownMedia();
    this._stopLocal();
    this._emit("status", { status: "closed", reason: "left" });
  }

  _every(ms, fn) {
    const id = setInterval(fn, ms);
    this.timers.add(() => clearInterval(id));
  }

  _clearTimers() {
    for (const stop of this.timers) stop();
    this.timers.clear();
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.iceTimer);
    this.reconnectInfo = null;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setStatus(status, extra = {}) {
    this.status = status;
    this.statusLog.push(status); // for tests and debugging
    if (this.statusLog.length > 50) this.statusLog.shift();
    this._emit("status", { status, ...extra });
  }

  _wsUrl() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    return `${proto}://${location.host}/v1/rtc?token=${encodeURIComponent(this.token)}`;
  }

  async _connect() {
    const gen = ++this.gen;
    this.connectAttempts++;
    if (this.status !== "reconnecting") this._setStatus("connecting");
    const sig = new Signal(this._wsUrl());
    this.sig = sig;
    sig.onclose = (info) => { if (gen === this.gen) this._onClose(info); };
    sig.on("*", (m) => {
      if (gen !== this.gen) return;
      if (this.status === "waiting" && ROOM_EVENTS.has(m.event)) return;
      this._onEvent(m);
      this._emit("server", m);
    });
    try {
      await sig.open();
    } catch {
      // onclose schedules the reconnect
    }
  }

  _onClose({ code, reason }) {
    if (this.status === "closed") return;
    if (code === 4423 && this.wasIn) {
      this.seatRefusedSince ??= Date.now();
      if (Date.now() - this.seatRefusedSince < SEAT_WAIT_MS) {
        this._reconnect("our dropped socket still holds the seat");
        return;
      }
    }
    const final = FINAL_CLOSE[code] || this.finalReason;
    if (final) {
      this.gen++;
      this._clearTimers();
      this._teardownMedia();
      this._stopLocal();
      this._setStatus("closed", { reason: this.finalReason || final, code, message: reason });
      return;
    }
    this._reconnect(`socket closed (${code})`);
  }

  /** Drop everything but the local tracks and join again with the same token, after the back-off's
   *  delay (a dropped socket and a failed peer connection alike: both rebuild everything). The
   *  "reconnecting" status is emitted for every attempt, with {attempt, at} for the banner. */
  _reconnect(why) {
    if (this.status === "closed") return;
    const old = this.sig;
    this.gen++;
    if (old && !old.closed) old.close(4000);
    this._teardownMedia();
    this.stableSince = null;
    const delay = Math.max(this.backoff.next(), this.retryAfterMs || 0);
    this.retryAfterMs = 0;
    const info = { attempt: this.backoff.attempt, at: Date.now() + delay, why };
    this.reconnectInfo = info;
    console.warn(`urok: reconnecting (${why}): attempt ${info.attempt} in ${Math.round(delay)} ms`);
    this._setStatus("reconnecting", { attempt: info.attempt, at: info.at });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      info.at = null; // trying now
      this._emit("reconnect", info);
      this._connect();
    }, delay);
  }

  /** Joined (or waiting) with every peer connection connected for BACKOFF.stableMs: the next drop
   *  starts the back-off over. A welcome alone does not reset it: a peer connection that fails
   *  right after every join must not make the page rejoin at once, again and again. */
  _checkStable() {
    const pcs = [this.pub, this.sub].filter(Boolean);
    const up = (this.status === "joined" || this.status === "waiting") && this.sig && !this.sig.closed &&
      pcs.every((pc) => pc.connectionState === "connected");
    if (!up) {
      this.stableSince = null;
      return;
    }
    const now = performance.now();
    this.stableSince ??= now;
    if (now - this.stableSince >= this.backoff.p.stableMs) this.backoff.reset();
  }

  async _heartbeat() {
    const sig = this.sig;
    // queued: the server answers requests only after the welcome, a ping would time out
    if (!sig || sig.closed || this.status === "closed" || this.status === "queued") return;
    const gen = this.gen;
    try {
      await sig.request("ping", {}, 6000);
    } catch (e) {
      if (gen === this.gen && e.code === "timeout") this._reconnect("ping timeout");
    }
  }

  // ---- events from the server ---------------------------------------------------------------------
  _onEvent(m) {
    switch (m.event) {
      case "welcome": return this._onWelcome(m);
      // the server is busy with many joins: we wait our turn (position 1 = next); the welcome follows
      case "join_queued": return this._setStatus("queued", { position: m.position, estimate_s: m.estimate_s });
      case "admitted": return this._setStatus("connecting");
      case "denied": this.finalReason = "denied"; return undefined;
      case "participant_joined": return this._upsertParticipant(m.participant || { participant_id: m.participant_id });
      case "participant_left": return this._removeParticipant(m.participant_id);
      case "participants_joined": return this._onParticipantsJoined(m);
      case "participant_updated":
        if (m.participant_id === this.me && m.participant) this.you = { ...(this.you || {}), ...m.participant };
        this._upsertParticipant(m.participant);
        for (const [src, v] of Object.entries(m.participant?.muted || {})) this._setMuted(m.participant_id, src, v, false);
        return this._emit("media");
      case "muted_by_host": return this._onMutedByHost(m.source, m.muted);
      case "participants_muted":
        for (const pid of m.participant_ids || []) {
          if (pid === this.me) this._onMutedByHost(m.source, m.muted);
          else this._setMuted(pid, m.source, m.muted, false);
        }
        return this._emit("media");
      case "subscriber_offer": return this._onSubscriberOffer(m.sdp);
      case "ice_candidate": return this._onRemoteCandidate(m.target, m.candidate);
      // the server lost our media path (ICE consent, RFC 7675) and tore our media down: a new
      // session brings fresh peer connections (sooner than our own ICE would notice)
      case "media_failed": return this._reconnect(`media failed at the server (${m.target})`);
      case "track_published":
        this.trackMap.publish(m);
        this._setMuted(m.participant_id, m.source, m.muted);
        if (m.kind === "video" && m.participant_id !== this.me) this._wantVideoSoon();
        return this._updateRemote();
      case "track_unpublished":
        this.trackMap.unpublish(m);
        if (m.kind === "video") this._wantVideoSoon();
        return this._updateRemote();
      case "track_muted": return this._setMuted(m.participant_id, m.source, m.muted);
      case "active_speaker": case "active_speakers": case "speakers_changed": return this._onActiveSpeaker(m);
      case "unmute_allowed":
        this.unmuteAllowed = Boolean(m.allowed);
        return this._emit("media");
      case "unmute_requested":
        this.unmuteOnce.add(m.source || "microphone");
        return this._emit("media");
      case "locks_changed":
        if (this.room && m.lock) this.room = { ...this.room, settings: { ...(this.room.settings || {}), lock: m.lock } };
        if (this.room && "lockdown" in m) this.room.lockdown = Boolean(m.lockdown);
        this._emit("media");
        return undefined;
      case "spotlight_changed":
        if (this.room) this.room = { ...this.room, spotlight: m.participant_id || null };
        return undefined;
      case "guest_policy_changed":
        if (this.room) this.room = { ...this.room, settings: { ...(this.room.settings || {}), guest_policy: m.guest_policy } };
        return undefined;
      case "room_ended": this.finalReason = "ended"; return undefined;
      case "removed": this.finalReason = "removed"; return undefined;
      case "replaced": this.finalReason = "replaced"; return undefined;
      case "participant_replaced":
        if (m.participant_id !== this.me) this._emit("notice", { key: "participantReplaced", params: { name: m.participant?.name || "?" } });
        return undefined;
      case "error":
        console.warn("urok: server error", m.error);
        if (m.error?.code === "unauthorized") this.finalReason = "badToken";
        // the queue was full or the wait too long (close 1013 follows): come back after the hint
        if (m.error?.code === "try_again" && m.error.retry_after_s > 0) this.retryAfterMs = m.error.retry_after_s * 1000;
        this.lastError = m.error;
        return undefined;
      default: return undefined;
    }
  }

  _onWelcome(m) {
    this.me = m.participant_id;
    this.you = m.you || null;
    this.room = m.room || null;
    this.iceServers = Array.isArray(m.ice_servers) ? m.ice_servers : [];
    this._wantedKey = null; // a new connection: ask again for the video we show
    // a host's allowance and pending "ask to unmute" survive a reload or reconnect
    this.unmuteAllowed = Boolean(m.you?.unmute_allowed);
    this.unmuteOnce = new Set(m.you?.unmute_requested || []);
    this.participants.clear();
    this.wasIn = true; // we hold a seat (joined or waiting): a refusal 4423 later is our own old socket
    this.seatRefusedSince = null;
    this.reconnectInfo = null;
    if (m.state !== "waiting") for (const p of m.participants || []) this.participants.set(p.participant_id, p);
    if (this.you) this.participants.set(this.me, this.you);
    for (const p of this.participants.values()) {
      for (const [src, v] of Object.entries(p.muted || {})) this._setMuted(p.participant_id, src, v, false);
    }
    this._emit("participants");
    if (m.state === "waiting") {
      this._setStatus("waiting");
      return;
    }
    this._setStatus("joined");
    this._startMedia();
  }

  _upsertParticipant(p) {
    if (!p || !p.participant_id) return;
    this.participants.set(p.participant_id, { ...(this.participants.get(p.participant_id) || {}), ...p });
    this._emit("participants");
  }

  async _onParticipantsJoined(m) {
    if (Array.isArray(m.participants)) {
      for (const p of m.participants) this._upsertParticipant(p);
      return;
    }
    // more than 100 at once: the event names them only; fetch the list
    try {
      const r = await this.sig.request("list_participants", { offset: 0, limit: 500 });
      for (const p of r.participants || []) this._upsertParticipant(p);
    } catch (e) {
      console.warn("urok: list_participants failed", e);
    }
  }

  /** A host (or a lock) muted one of our sources: the server already stopped it; follow locally. */
  _onMutedByHost(source, muted) {
    // said only for what was on (read before the mute is followed): a lockdown mutes every source,
    // and "the teacher stopped your screen sharing" to someone who never shared was wrong
    const wasOn = { microphone: Boolean(this.local.audio && this.local.micOn), camera: Boolean(this.local.camOn && this.local.video),
      screen: Boolean(this.local.screen), screen_audio: Boolean(this.local.screenAudio) }[source];
    this._setMuted(this.me, source, muted, false, false);
    if (muted) this.unmuteOnce.delete(source); // a host's mute cancels a pending "ask to unmute"
    if (!muted) return this._emit("media");
    if (source === "microphone" && this.local.audio) {
      this.local.micOn = false;
      this.local.audio.enabled = false;
    } else if (source === "camera" && this.local.camOn) {
      this.setCamera(false).catch(() => {});
    } else if ((source === "screen" || source === "screen_audio") && this.local.screen) {
      this.stopScreenShare().catch(() => {});
    }
    if (wasOn && !(source === "screen_audio" && this.local.screen)) this._emit("notice", { key: `mutedByHost_${source}`, params: { source } });
    this._emit("media");
    return undefined;
  }

  _removeParticipant(pid) {
    this.participants.delete(pid);
    this.trackMap.dropParticipant(pid);
    this.mutedRemote.delete(pid);
    this._emit("participants");
    this._updateRemote();
  }

  _setMuted(pid, source, muted, emit = true, tell = true) {
    if (!pid || !source || muted === undefined) return;
    const m = this.mutedRemote.get(pid) || {};
    m[source] = Boolean(muted);
    this.mutedRemote.set(pid, m);
    if (pid === this.me && source === "microphone" && muted && this.local.micOn) {
      // muted by a host: follow it locally, and say so whichever of the server's messages
      // (participant_updated, track_muted, muted_by_host) comes first
      const wasOn = Boolean(this.local.audio);
      this.local.micOn = false;
      if (this.local.audio) this.local.audio.enabled = false;
      if (tell && wasOn) this._emit("notice", { key: "mutedByHost_microphone", params: { source } });
    }
    if (emit) this._emit("media");
  }

  /** Ask for the video we show, with a quality that fits its tile. A large room (over the server's
   *  large_room_threshold) sends video only on request; in a small one this only picks the
   *  simulcast layer. Screens always come in full quality. Debounced: one request for a burst. */
  _wantVideoSoon() {
    if (this._wantTimer) return;
    this._wantTimer = setTimeout(() => {
      this._wantTimer = null;
      this.requestVideoQualities();
    }, 200);
  }

  /** The tiles on screen (views.js): `visible` a Set of participant ids (null: everyone's video),
   *  `featured` the large tile of speaker view (full quality). Cameras off the page are unsubscribed. */
  setVisibleVideo(visible, featured = null) {
    const key = JSON.stringify([visible ? [...visible].sort() : null, featured]);
    if (key === this._visibleKey) return;
    this._visibleKey = key;
    this.visiblePids = visible;
    this.featuredPid = featured;
    this._wantVideoSoon();
  }

  requestVideoQualities() {
    if (!this.sig || this.sig.closed || this.status !== "joined") return;
    const videos = [...this.trackMap.published.values()].filter((t) => t.kind === "video" && t.participant_id !== this.me);
    if (!videos.length) return;
    const visible = this.visiblePids || null;
    const want = videos.filter((t) => t.source === "screen" || !visible || visible.has(t.participant_id));
    const off = videos.filter((t) => !want.includes(t)).map((t) => t.track_id);
    const cameras = want.filter((t) => t.source === "camera").length;
    const sharing = want.some((t) => t.source === "screen");
    const cameraQuality = sharing || cameras > 9 ? "low" : cameras > 3 ? "medium" : "high";
    const quality = (t) => (t.source === "screen" || t.participant_id === this.featuredPid ? "high" : cameraQuality);
    const tracks = want.map((t) => ({ track_id: t.track_id, quality: quality(t) }));
    const key = JSON.stringify([tracks, off]);
    if (key === this._wantedKey) return;
    this._wantedKey = key;
    this.unsubscribed = new Set(off); // for tests: the cameras of tiles off the page
    if (tracks.length) this.sig.request("subscribe", { tracks }).catch(() => { this._wantedKey = null; });
    if (off.length) this.sig.request("unsubscribe", { track_ids: off }).catch(() => { this._wantedKey = null; });
  }

  _onActiveSpeaker(m) {
    const ids = m.participant_id ? [m.participant_id] : (m.speakers || m.participant_ids || [])
      .map((s) => (typeof s === "string" ? s : s.participant_id));
    this.activeSpeaker = ids[0] || null;
    this.serverSpeakers = new Set(ids);
    this.serverSpeakersAt = performance.now();
    this._emit("levels", this.levels);
  }

  // ---- peer connections ---------------------------------------------------------------------------
  _pcConfig() {
    return { iceServers: this.iceServers, bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" };
  }

  _watchIce(pc, gen) {
    pc.addEventListener("connectionstatechange", () => {
      if (gen !== this.gen) return;
      const st = pc.connectionState;
      if (st === "failed") this._reconnect("ice failed");
      else if (st === "disconnected") {
        clearTimeout(this.iceTimer);
        this.iceTimer = setTimeout(() => {
          if (gen === this.gen && pc.connectionState === "disconnected") this._reconnect("ice disconnected");
        }, 4000);
      }
      this._emit("media");
    });
  }

  _startMedia() {
    if (this.sub) return; // a second welcome (after the waiting room) on the same socket
    const gen = this.gen;
    const sub = new RTCPeerConnection(this._pcConfig());
    this.sub = sub;
    this.subPending = [];
    sub.ontrack = (e) => {
      if (gen !== this.gen) return;
      const mid = e.transceiver?.mid;
      if (mid == null) return;
      this.receivers.set(mid, { track: e.track, transceiver: e.transceiver });
      const rerender = () => gen === this.gen && this._emit("media");
      e.track.addEventListener("mute", rerender);
      e.track.addEventListener("unmute", rerender);
      this._updateRemote();
    };
    sub.onicecandidate = (e) => {
      if (gen !== this.gen) return;
      this.sig.send({ type: "ice_candidate", target: "subscriber", candidate: e.candidate ? e.candidate.toJSON() : null });
    };
    this._watchIce(sub, gen);
    this._exposeForTests();
    if (this.you?.role !== "viewer" && (this.local.audio || this.local.video || this.local.screen)) {
      this._publish().catch((e) => console.warn("urok: publishing failed", e));
    }
  }

  _ensurePublisher() {
    if (this.pub) return this.pub;
    const gen = this.gen;
    const pub = new RTCPeerConnection(this._pcConfig());
    this.pub = pub;
    this.pubPending = [];
    this.pubOutbox = []; // our candidates wait until the first publish request is on the wire
    this.pubSent = false;
    pub.onicecandidate = (e) => {
      if (gen !== this.gen) return;
      const msg = { type: "ice_candidate", target: "publisher", candidate: e.candidate ? e.candidate.toJSON() : null };
      if (this.pubSent) this.sig.send(msg);
      else this.pubOutbox.push(msg);
    };
    this._watchIce(pub, gen);
    this._exposeForTests();
    return pub;
  }

  _stream() {
    if (!this.localStream) this.localStream = new MediaStream();
    return this.localStream;
  }

  /** Puts a track on the publisher; true when the offer changed (a new or revived m-line), false
   *  when only the track was replaced on a live one (no negotiation needed). */
  _addSender(source, track) {
    const pub = this._ensurePublisher();
    const old = this.tx[source];
    if (old) {
      // reuse the m-line
      old.direction = "sendonly";
      return old.sender.replaceTrack(track).then(() => false);
    }
    // A new screen share takes a stopped share's m-line of its kind: Chromium keeps stopped m-lines
    // in every later offer, and the server refuses an offer with more than rtc_max_mlines (16) of
    // them (too_many_tracks), so a new m-line per share was refused at the 8th share. The server
    // closes the track of an m-line that went inactive and publishes a new track (new track_id)
    // when the same mid sends again.
    const i = SHARE_SOURCES.has(source) ? this.spare.findIndex((tr) => !tr.stopped && tr.receiver.track.kind === track.kind) : -1;
    if (i >= 0) {
      const tr = this.spare.splice(i, 1)[0];
      this.tx[source] = tr;
      tr.direction = "sendonly";
      return tr.sender.replaceTrack(track).then(() => true);
    }
    const init = { direction: "sendonly", streams: [this._stream()] };
    if (source === "camera" && this.simulcast) init.sendEncodings = simulcastLayers();
    this.tx[source] = pub.addTransceiver(track, init);
    return Promise.resolve(true);
  }

  /** Add the current local tracks and (re)negotiate the publisher. */
  async _publish() {
    if (this.publishRefused) return; // refused for good earlier (e.g. before a reconnect): said so once
    let any = false;
    if (this.local.video && !this.mayPublish("camera")) {
      // locked by the host: release the camera rather than show a preview nobody receives
      this.local.video.stop();
      this.local.video = null;
      this.local.camOn = false;
    }
    if (this.local.audio && !this.mayPublish("microphone")) {
      this.local.micOn = false;
      this.local.audio.enabled = false;
    }
    if (this.local.audio && this.mayPublish("microphone")) {
      this.local.audio.enabled = this.local.micOn;
      await this._addSender("microphone", this.local.audio);
      any = true;
    }
    if (this.local.video && this.local.camOn && this.mayPublish("camera")) {
      await this._addSender("camera", this.local.video);
      any = true;
    }
    if (this.local.screen && this.mayPublish("screen")) {
      await this._addSender("screen", this.local.screen);
      if (this.local.screenAudio) await this._addSender("screen_audio", this.local.screenAudio);
      any = true;
    }
    if (!any) return;
    await this._negotiatePublisher();
    // bring the server's mute state in line with ours (it outlives a reconnect)
    const server = this.mutedRemote.get(this.me) || {};
    if (this.tx.microphone && Boolean(server.microphone) !== !this.local.micOn) {
      this._request("set_muted", { source: "microphone", muted: !this.local.micOn });
    }
    if (this.tx.camera && server.camera) this._request("set_muted", { source: "camera", muted: false });
  }

  _sources() {
    const sources = {};
    for (const [source, tr] of Object.entries(this.tx)) {
      if (tr.mid != null && !tr.stopped && (tr.direction === "sendonly" || tr.direction === "sendrecv")) {
        sources[tr.mid] = source;
      }
    }
    return sources;
  }

  /** One publish round at a time: offer -> publish {sdp, sources} -> answer. `share`: the round
   *  starts a screen share (a refusal is worded for it). */
  _negotiatePublisher({ share = false } = {}) {
    const gen = this.gen;
    this.pubChain = this.pubChain.then(async () => {
      if (gen !== this.gen || !this.pub || this.mediaUnavailable) return;
      const pub = this.pub;
      this.lastPublishError = null;
      try {
        const offer = await pub.createOffer();
        await pub.setLocalDescription(offer);
        const req = this.sig.request("publish", { sdp: pub.localDescription.sdp, sources: this._sources() });
        if (!this.pubSent) {
          this.pubSent = true;
          for (const m of this.pubOutbox.splice(0)) this.sig.send(m);
        }
        const resp = await req;
        if (gen !== this.gen) return;
        await pub.setRemoteDescription({ type: "answer", sdp: resp.sdp });
        await this._flushCandidates(pub, this.pubPending);
        this._emit("media");
      } catch (e) {
        if (gen !== this.gen) return;
        this.lastPublishError = e.code || "error";
        console.warn("urok: publish failed", e);
        if (e.code === "unknown_type") {
          this.mediaUnavailable = true;
          this._emit("notice", { key: "mediaUnavailable" });
        } else if (finalPublishError(e.code)) {
          // the same offer would be refused again: no automatic retry (not after a reconnect either)
          if (!share) this.publishRefused = { code: e.code, message: e.message };
          this._emit("notice", { key: share ? "shareRefused" : "publishRefused", params: { reason: e.message }, sticky: !share });
          if (pub.signalingState === "have-local-offer") await pub.setLocalDescription({ type: "rollback" }).catch(() => {});
        } else if (e.code === "forbidden") {
          this._emit("notice", { key: "forbidden", params: { reason: e.message } });
          if (pub.signalingState === "have-local-offer") await pub.setLocalDescription({ type: "rollback" }).catch(() => {});
        } else if (e.code !== "not_connected") {
          this._emit("notice", { key: "mediaFailed", params: { reason: e.message } });
          if (pub.signalingState === "have-local-offer") await pub.setLocalDescription({ type: "rollback" }).catch(() => {});
        }
      }
    });
    return this.pubChain;
  }

  _onSubscriberOffer(sdp) {
    const gen = this.gen;
    this.subChain = this.subChain.then(async () => {
      if (gen !== this.gen) return;
      if (!this.sub) this._startMedia();
      const sub = this.sub;
      try {
        this.trackMap.setOffer(sdp);
        await sub.setRemoteDescription({ type: "offer", sdp });
        await this._flushCandidates(sub, this.subPending);
        const answer = await sub.createAnswer();
        await sub.setLocalDescription(answer);
        if (gen !== this.gen) return;
        await this.sig.request("subscriber_answer", { sdp: sub.localDescription.sdp });
      } catch (e) {
        if (gen !== this.gen) return;
        console.warn("urok: subscriber negotiation failed", e);
        if (e.code !== "not_connected") this._reconnect("subscriber negotiation failed");
        return;
      }
      this._updateRemote();
    });
  }

  async _onRemoteCandidate(target, candidate) {
    const pc = target === "publisher" ? this.pub : this.sub;
    const pending = target === "publisher" ? this.pubPending : this.subPending;
    if (!pc || !pending) return;
    if (!pc.remoteDescription) {
      pending.push(candidate);
      return;
    }
    await this._addCandidate(pc, candidate);
  }

  async _flushCandidates(pc, pending) {
    for (const c of pending.splice(0)) await this._addCandidate(pc, c);
  }

  async _addCandidate(pc, c) {
    try {
      if (!c || !c.candidate) await pc.addIceCandidate();
      else await pc.addIceCandidate(c);
    } catch (e) {
      console.debug("urok: candidate ignored", e);
    }
  }

  _teardownMedia() {
    for (const pc of [this.pub, this.sub]) {
      if (pc) try { pc.close(); } catch {}
    }
    this.pub = null;
    this.sub = null;
    this.tx = {};
    this.spare = [];
    this.pubChain = Promise.resolve();
    this.subChain = Promise.resolve();
    this.receivers.clear();
    this.remote.clear();
    this.trackMap = new TrackMap();
    this.mediaUnavailable = false;
    this._exposeForTests();
    this._emit("media");
  }

  _stopLocal() {
    for (const t of [this.local.audio, this.local.video, this.local.screen, this.local.screenAudio]) t?.stop();
  }

  _updateRemote() {
    const assigned = this.trackMap.assign((id) => this.participants.has(id));
    const remote = new Map();
    for (const [mid, info] of assigned) {
      const rec = this.receivers.get(mid);
      if (!rec || rec.track.readyState === "ended") continue;
      if (info.participant_id === this.me) continue;
      if (!remote.has(info.participant_id)) remote.set(info.participant_id, {});
      remote.get(info.participant_id)[info.source] = rec.track;
    }
    this.remote = remote;
    this.midInfo = assigned;
    this._emit("media");
  }

  _request(type, fields) {
    if (!this.sig || this.sig.closed) return Promise.resolve(null);
    this.lastRequestError = null;
    return this.sig.request(type, fields).catch((e) => {
      this.lastRequestError = e.code;
      if (e.code === "forbidden") this._emit("notice", { key: "forbidden", params: { reason: e.message } });
      else console.debug(`urok: ${type} failed`, e);
      return null;
    });
  }

  /** A call control request (chat, hands, host actions): resolves with the response, rejects with
   *  a RequestError (code, message) that the caller shows. */
  request(type, fields = {}) {
    if (!this.sig || this.sig.closed) return Promise.reject(Object.assign(new Error("not connected"), { code: "not_connected" }));
    return this.sig.request(type, fields);
  }

  isModerator() {
    const role = this.you?.role;
    return role === "host" || role === "cohost";
  }

  /** The room's `self_unmute` lock keeps us from turning this source on ourselves (no allowance and
   *  no pending "ask to unmute"): the UI disables the button and says why. */
  selfUnmuteBlocked(source) {
    if (this.isModerator()) return false;
    if (!this.room?.settings?.lock?.self_unmute) return false;
    return !this.unmuteAllowed && !this.unmuteOnce.has(source);
  }

  // ---- controls -------------------------------------------------------------------------------------
  canPublish() {
    return this.you?.role !== "viewer";
  }

  /** Whether the room lets us publish this source now (role and the host's locks). */
  mayPublish(source) {
    const role = this.you?.role || "participant";
    if (role === "viewer") return false;
    if (role === "host" || role === "cohost") return true;
    const lock = this.room?.settings?.lock || {};
    const name = { microphone: "microphone", camera: "camera", screen: "screen_share", screen_audio: "screen_share" }[source];
    return !lock[name];
  }

  async setMic(on) {
    if (!this.local.audio) return;
    if (!on) {
      this.local.micOn = false;
      this.local.audio.enabled = false;
      this._emit("media");
      await this._request("set_muted", { source: "microphone", muted: true });
      return;
    }
    if (this.tx.microphone) {
      // ask first: a host may have forbidden unmuting oneself
      const r = await this._request("set_muted", { source: "microphone", muted: false });
      if (r === null && this.lastRequestError === "forbidden") return;
      this.unmuteOnce.delete("microphone");
    }
    this.local.micOn = true;
    this.local.audio.enabled = true;
    this._emit("media");
    if (!this.tx.microphone && this.status === "joined" && this.sub && this.mayPublish("microphone")) {
      await this._addSender("microphone", this.local.audio);
      await this._negotiatePublisher();
    }
  }

  async setCamera(on) {
    if (on === this.local.camOn && (!on || this.local.video)) return;
    if (!on) {
      this.local.camOn = false;
      const tr = this.tx.camera;
      this.local.video?.stop();
      this.local.video = null;
      if (tr) {
        await tr.sender.replaceTrack(null).catch(() => {});
        this._request("set_muted", { source: "camera", muted: true });
      }
      this._emit("media");
      return;
    }
    const track = await getCamera(this.local.videoDeviceId || "");
    this.local.video = track;
    this.local.camOn = true;
    this._emit("media");
    if (this.status !== "joined" || !this.sub) return;
    this.lastPublishError = null;
    const isNew = await this._addSender("camera", track);
    if (isNew) await this._negotiatePublisher();
    if (!isNew || this.mutedRemote.get(this.me)?.camera) {
      const r = await this._request("set_muted", { source: "camera", muted: false });
      if (r) this.unmuteOnce.delete("camera");
    }
    if (this.lastPublishError === "forbidden" || this.lastRequestError === "forbidden") await this.setCamera(false);
  }

  async startScreenShare() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: true });
    for (const t of [this.local.screen, this.local.screenAudio]) t?.stop(); // a share replacing a share
    const video = stream.getVideoTracks()[0];
    const audio = stream.getAudioTracks()[0] || null;
    if (video && "contentHint" in video) video.contentHint = "detail";
    this.local.screen = video;
    this.local.screenAudio = audio;
    video.addEventListener("ended", () => { if (this.local.screen === video) this.stopScreenShare(); });
    this._emit("media");
    if (this.status === "joined" && this.sub) {
      // a stopped share's m-lines are reused (_addSender); the server publishes new tracks on them
      this.lastPublishError = null;
      await this._addSender("screen", video);
      if (audio) await this._addSender("screen_audio", audio);
      else if (this.tx.screen_audio) this._releaseShareLine("screen_audio");
      await this._negotiatePublisher({ share: true });
      if (this.lastPublishError === "forbidden") await this.stopScreenShare();
      // refused for good (e.g. too_many_tracks): the share ends here, and its m-lines are not offered
      // again (no new publish for the stop: it would be refused the same way)
      else if (finalPublishError(this.lastPublishError)) await this.stopScreenShare({ negotiate: false });
    }
  }

  /** The share's m-line goes inactive (the server closes its track) and is kept for the next share. */
  _releaseShareLine(source) {
    const tr = this.tx[source];
    if (!tr) return false;
    tr.sender.replaceTrack(null).catch(() => {});
    tr.direction = "inactive";
    delete this.tx[source];
    if (!tr.stopped) this.spare.push(tr);
    return true;
  }

  async stopScreenShare({ negotiate = true } = {}) {
    const tracks = [this.local.screen, this.local.screenAudio];
    this.local.screen = null;
    this.local.screenAudio = null;
    for (const t of tracks) t?.stop();
    let changed = false;
    for (const source of ["screen", "screen_audio"]) changed = this._releaseShareLine(source) || changed;
    this._emit("media");
    if (changed && negotiate && this.pub) await this._negotiatePublisher();
  }

  async switchMicrophone(deviceId) {
    this.local.audioDeviceId = deviceId;
    if (!this.local.audio) return;
    const track = await getMicrophone(deviceId);
    track.enabled = this.local.micOn;
    const old = this.local.audio;
    this.local.audio = track;
    if (this.tx.microphone) await this.tx.microphone.sender.replaceTrack(track);
    old.stop();
    this._emit("media");
  }

  async switchCamera(deviceId) {
    this.local.videoDeviceId = deviceId;
    if (!this.local.video) return;
    const track = await getCamera(deviceId);
    const old = this.local.video;
    this.local.video = track;
    if (this.tx.camera) await this.tx.camera.sender.replaceTrack(track);
    old.stop();
    this._emit("media");
  }

  // ---- audio levels -------------------------------------------------------------------------------
  // A poll every 500 ms samples `audioLevel`, which is the level of the last few frames only: short
  // syllables (or Chromium's fake-device beep) fall between polls. The level over the whole interval
  // comes from the energy counters (https://w3c.github.io/webrtc-stats/#dom-rtcaudiosourcestats-totalaudioenergy):
  // RMS = sqrt(delta totalAudioEnergy / delta totalSamplesDuration). A participant then stays
  // "speaking" for SPEAKING_HOLD_MS after the last loud interval, so tiles do not flicker per word.
  // `seen`: this poll's counters, which replace the last poll's (those of closed connections go)
  _level(key, r, seen) {
    let level = typeof r.audioLevel === "number" ? r.audioLevel : 0;
    if (typeof r.totalAudioEnergy === "number" && typeof r.totalSamplesDuration === "number") {
      const prev = this._energy.get(key);
      seen.set(key, [r.totalAudioEnergy, r.totalSamplesDuration]);
      const dt = prev ? r.totalSamplesDuration - prev[1] : 0;
      if (dt > 0) level = Math.max(level, Math.sqrt(Math.max(0, r.totalAudioEnergy - prev[0]) / dt));
    }
    return level;
  }

  async _pollLevels() {
    const levels = new Map();
    const seen = new Map();
    const raise = (pid, level) => levels.set(pid, Math.max(levels.get(pid) || 0, level));
    const pub = this.pub;
    if (pub && this.me && this.local.micOn && this.local.audio) {
      try {
        (await pub.getStats()).forEach((r) => {
          if (r.type === "media-source" && r.kind === "audio") raise(this.me, this._level(`src:${r.id}`, r, seen));
        });
      } catch {}
    }
    const sub = this.sub;
    if (sub && this.midInfo) {
      try {
        (await sub.getStats()).forEach((r) => {
          if (r.type !== "inbound-rtp" || r.kind !== "audio") return;
          const info = r.mid != null ? this.midInfo.get(String(r.mid)) : null;
          if (info) raise(info.participant_id, this._level(`in:${r.id}`, r, seen));
        });
      } catch {}
    }
    this._energy = seen;
    const now = performance.now();
    for (const [pid, level] of levels) if (level > SPEAKING) this._loudAt.set(pid, now);
    for (const [pid, at] of this._loudAt) if (now - at > SPEAKING_HOLD_MS || !levels.has(pid)) this._loudAt.delete(pid);
    const fresh = this.serverSpeakers && now - this.serverSpeakersAt < 3000;
    let best = fresh ? this.activeSpeaker : null;
    if (!best) {
      let max = SPEAKING;
      for (const [pid, level] of levels) if (level > max) { max = level; best = pid; }
    }
    this.levels = levels;
    if (best) this.activeSpeaker = best;
    this.speaking = new Set(this._loudAt.keys());
    if (fresh) for (const pid of this.serverSpeakers) this.speaking.add(pid);
    this._emit("levels", levels);
  }

  _exposeForTests() {
    window.urok = window.urok || {};
    window.urok.session = this;
    window.urok.pcs = { publisher: this.pub, subscriber: this.sub };
  }
}
