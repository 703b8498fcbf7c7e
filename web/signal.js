// The WebSocket signalling client: requests with ids and promised responses, events to listeners.
// One Signal is one socket; reconnecting makes a new Signal (see session.js).

export class RequestError extends Error {
  constructor(type, error) {
    super(error?.message || error?.code || "request failed");
    this.type = type;
    this.code = error?.code || "error";
  }
}

export class Signal {
  constructor(url) {
    this.url = url;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map();
    this.closed = false;
    this.onclose = null; // (CloseEvent-like {code, reason}) => void, called once
  }

  /** Opens the socket; resolves when it is open. Events flow to on(...) listeners. */
  open(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      const timer = setTimeout(() => { reject(new Error("timeout")); try { ws.close(); } catch {} }, timeoutMs);
      ws.onopen = () => { clearTimeout(timer); resolve(); };
      ws.onmessage = (m) => this._onMessage(m.data);
      ws.onerror = () => {};
      ws.onclose = (e) => {
        clearTimeout(timer);
        reject(new Error(`closed ${e.code}`));
        this._closed({ code: e.code, reason: e.reason });
      };
    });
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  /** Sends {id, type, ...fields}; resolves with the response, rejects with RequestError. */
  request(type, fields = {}, timeoutMs = 15000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.send({ id, type, ...fields })) {
        reject(new RequestError(type, { code: "not_connected", message: "not connected" }));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestError(type, { code: "timeout", message: `${type}: no response` }));
      }, timeoutMs);
      this.pending.set(id, { type, resolve, reject, timer });
    });
  }

  close(code = 1000) {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
      try { this.ws.close(code); } catch {}
    }
    this._closed({ code, reason: "closed by client" });
  }

  _onMessage(data) {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.event === "string") {
      for (const fn of this.listeners.get(msg.event) || []) {
        try { fn(msg); } catch (e) { console.error("handler of", msg.event, e); }
      }
      for (const fn of this.listeners.get("*") || []) {
        try { fn(msg); } catch (e) { console.error(e); }
      }
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg);
    else p.reject(new RequestError(p.type, msg.error));
  }

  _closed(info) {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new RequestError(p.type, { code: "not_connected", message: "connection closed" }));
    }
    this.pending.clear();
    if (this.onclose) this.onclose(info);
  }
}
