// Reconnect back-off: exponential steps with jitter and a cap, reset once the connection has been
// stable for a while (issue 21). One instance per session paces both kinds of retry: a dropped or
// refused WebSocket and a failed peer connection (which rebuilds both peer connections on a new
// socket). Without it a peer connection that fails ICE right after joining rejoined at once, again
// and again (about 150 peer connections in 30 s were seen with Firefox), and every page of a room
// hammered a restarting server at the same moments.

export const BACKOFF = {
  baseMs: 500, // the first step
  factor: 2,
  capMs: 20000, // the largest step
  stableMs: 15000, // joined with every peer connection connected this long: the next drop starts over
};

export class Backoff {
  constructor(params = BACKOFF, random = Math.random) {
    this.p = params;
    this.random = random;
    this.attempt = 0; // retries since the last reset
  }

  /** The delay before the next retry (ms), and counts it. The wait is uniform between half the step
   *  and the whole step ("equal jitter"): enough spread that a room's pages do not come back in step
   *  after a server restart, and, unlike full jitter (0 .. step), never a near-immediate retry, so
   *  the number of attempts in any window has a firm bound (the browser tests count them). */
  next() {
    const step = Math.min(this.p.capMs, this.p.baseMs * this.p.factor ** this.attempt);
    this.attempt++;
    return step / 2 + this.random() * (step / 2);
  }

  reset() {
    this.attempt = 0;
  }
}
