// Which participant and source a received track belongs to.
//
// The subscriber offer carries one m-line per forwarded track. Each is matched to a published track
// (from `track_published {participant_id, track_id, kind, source}` events) in this order:
//   1. the m-line's a=msid track id (or its stream id) equals a published track_id  -> exact;
//   2. the a=msid stream id equals a participant_id -> that participant's unclaimed track of the
//      same kind (in the order they were published);
//   3. fallback, m-line order: unmatched live m-lines, in SDP order, take the unclaimed published
//      tracks of the same kind in the order they were published.
// The server is asked to write `a=msid:<participant_id> <track_id>` on every consumer m-line, which
// makes rule 1 (and 2) exact. Everything about this mapping lives in this module.

/** The audio/video m-sections of an SDP: [{index, mid, kind, direction, streamId, trackId}]. */
export function parseSdpMedia(sdp) {
  const out = [];
  let cur = null;
  for (const raw of String(sdp || "").split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("m=")) {
      const kind = line.slice(2).split(" ")[0];
      const port = line.split(" ")[1];
      cur = { index: out.length, mid: null, kind, direction: "sendrecv", streamId: null, trackId: null,
              rejected: port === "0" };
      out.push(cur);
    } else if (!cur) {
      continue;
    } else if (line.startsWith("a=mid:")) {
      cur.mid = line.slice(6);
    } else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(line)) {
      cur.direction = line.slice(2);
    } else if (line.startsWith("a=msid:")) {
      const [s, tr] = line.slice(7).split(" ");
      cur.streamId = s && s !== "-" ? s : null;
      cur.trackId = tr || null;
    } else if (/^a=ssrc:\d+ msid:/.test(line) && !cur.streamId) {
      const [s, tr] = line.replace(/^a=ssrc:\d+ msid:/, "").split(" ");
      cur.streamId = s && s !== "-" ? s : null;
      cur.trackId = tr || null;
    }
  }
  return out.filter((m) => m.kind === "audio" || m.kind === "video");
}

export class TrackMap {
  constructor() {
    this.published = new Map(); // track_id -> {participant_id, track_id, kind, source, seq}
    this.sections = []; // m-sections of the last applied subscriber offer
    this.seq = 0;
  }

  publish(ev) {
    if (!ev || !ev.track_id) return;
    const old = this.published.get(ev.track_id);
    this.published.set(ev.track_id, {
      participant_id: ev.participant_id, track_id: ev.track_id, kind: ev.kind, source: ev.source,
      muted: Boolean(ev.muted), seq: old ? old.seq : this.seq++,
    });
  }

  unpublish(ev) {
    if (ev && ev.track_id) this.published.delete(ev.track_id);
  }

  /** Forget every track of a participant (participant_left). */
  dropParticipant(pid) {
    for (const [id, p] of this.published) if (p.participant_id === pid) this.published.delete(id);
  }

  setOffer(sdp) {
    this.sections = parseSdpMedia(sdp);
  }

  /**
   * Map mid -> published track info, for the live (sending) m-lines of the last offer.
   * isParticipant(id) tells whether an id is a participant of the room (the msid stream id check).
   */
  assign(isParticipant = () => false) {
    const result = new Map();
    const claimed = new Set();
    const live = this.sections.filter((s) => s.mid != null && !s.rejected &&
      (s.direction === "sendonly" || s.direction === "sendrecv"));
    const ordered = [...this.published.values()].sort((a, b) => a.seq - b.seq);
    const take = (s, p) => { result.set(s.mid, p); claimed.add(p.track_id); };
    // 1. exact track id
    for (const s of live) {
      for (const id of [s.trackId, s.streamId]) {
        const p = id && this.published.get(id);
        if (p && p.kind === s.kind && !claimed.has(p.track_id)) { take(s, p); break; }
      }
    }
    // The server labels its m-lines with track ids: an unmatched one waits for its track_published.
    if (live.some((s) => s.trackId && this.published.has(s.trackId))) return result;
    // 2. stream id = participant id
    const byParticipant = (id) => id && (isParticipant(id) || ordered.some((x) => x.participant_id === id));
    for (const s of live) {
      if (result.has(s.mid) || !s.streamId) continue;
      const p = ordered.find((x) => x.participant_id === s.streamId && x.kind === s.kind && !claimed.has(x.track_id));
      if (p) take(s, p);
    }
    if (live.some((s) => byParticipant(s.streamId))) return result;
    // 3. m-line order
    for (const s of live) {
      if (result.has(s.mid)) continue;
      const p = ordered.find((x) => x.kind === s.kind && !claimed.has(x.track_id));
      if (p) take(s, p);
    }
    return result;
  }
}
