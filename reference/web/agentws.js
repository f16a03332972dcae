// agentws.js: a client of the agentws protocol (spec/PROTOCOL.md), one dependency-free
// ES module for browsers and for Node 22 and later (where WebSocket is global).
//
//   import { Client } from "/agentws.js";
//   const client = new Client("ws://localhost:8050/ws", { sessionId: "my-session" });
//   await client.connect();
//   const q = client.query("What is the capital of France?");
//   for await (const chunk of q) show(chunk);   // the answer, piece by piece
//   const answer = await q.result;              // the whole answer, or an AgentWSError
//
// It keeps the client rules (section 14): it ignores what it does not know (CLIENT-1),
// uses query_id, seq and cancel only when the server claims them (CLIENT-2), takes
// keepalive at any time (CLIENT-3), reconnects after an abrupt drop with the same
// session_id and user_id, with capped exponential backoff and jitter, resuming with
// last_seq and epoch, and not after 4001 (CLIENT-4), and discards the frames it has
// already received, surfacing a gap as an error rather than a short answer (CLIENT-5).

/** An AgentWSError says why a query or the client ended without a whole answer. */
export class AgentWSError extends Error {
  /**
   * @param {string} code the server's error code (query_failed, busy, rate_limited, ...),
   *   or one of the client's: replaced (4001: another connection has the session),
   *   gap (frames of the answer were lost: it may be incomplete), no_resume (the
   *   connection dropped and the server cannot resume), refused (the handshake was
   *   refused), closed (the client was closed), session_ended, cancelled.
   * @param {string} message
   * @param {object} [frame] the server's error frame, when there is one
   */
  constructor(code, message, frame) {
    super(message);
    this.name = "AgentWSError";
    this.code = code;
    this.frame = frame;
    if (frame && frame.retry_after_ms) this.retryAfterMs = frame.retry_after_ms;
  }
}

const closeReplaced = 4001;

// Close codes that say reconnecting would get the same again: the client sent what the
// server refuses (a protocol error, a binary or non-UTF-8 frame, a policy refusal, a
// message too big). The client stops, as after 4001.
const permanentCloses = new Map([
  [1002, "protocol_error"],
  [1003, "unsupported_data"],
  [1007, "invalid_payload"],
  [1008, "policy_violation"],
  [1009, "message_too_big"],
]);

// A connection that stays up this long resets the backoff; one that drops sooner makes
// the next wait longer, so that a server that keeps closing is not hammered.
const stableMs = 5000;

/** One query: an async iterator of its chunks, and result, a promise of its answer. */
export class Query {
  constructor(client, text, queryId, options) {
    this.client = client;
    this.text = text;
    this.queryId = queryId;
    this.options = options;
    this.started = false; // query_start seen
    this.chunks = [];
    this.nextChunk = 1;
    this.done = false;
    this.waiters = [];
    /** @type {Promise<{text: string, totalChunks: number, replayed: boolean, frame: object}>} */
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.result.catch(() => {}); // a caller that only iterates still sees the error there
  }

  /** The answer so far. */
  get answer() {
    return this.chunks.join("");
  }

  async *[Symbol.asyncIterator]() {
    let i = 0;
    for (;;) {
      if (i < this.chunks.length) {
        yield this.chunks[i++];
        continue;
      }
      if (this.done) {
        await this.result; // throws the query's error
        return;
      }
      await new Promise((wake) => this.waiters.push(wake));
    }
  }

  /** Asks the server to cancel the query (with the cancel capability). */
  cancel() {
    this.client.cancel(this);
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  chunk(frame) {
    if (frame.chunk_number !== undefined && frame.chunk_number !== this.nextChunk) {
      this.fail(new AgentWSError("gap", `chunk ${frame.chunk_number} arrived after chunk ${this.nextChunk - 1}: the answer is incomplete`, frame));
      return;
    }
    this.nextChunk++;
    this.chunks.push(frame.content);
    this.wake();
  }

  complete(frame) {
    if (this.done) return;
    this.done = true;
    const text = typeof frame.full_response === "string" ? frame.full_response : this.answer;
    if (this.chunks.length === 0 && text) this.chunks.push(text); // a replayed end: the answer in one piece
    this.resolve({ text, totalChunks: frame.total_chunks, replayed: frame.replayed === true, frame });
    this.wake();
  }

  fail(err) {
    if (this.done) return;
    this.done = true;
    this.reject(err);
    this.wake();
  }
}

/**
 * A Client holds one session of an agentws server over a WebSocket connection that it
 * reopens after a drop.
 */
export class Client {
  /**
   * @param {string} url the endpoint, such as ws://localhost:8050/ws
   * @param {object} options
   * @param {string} options.sessionId
   * @param {string} [options.userId]
   * @param {string} [options.token] a bearer token, sent as access_token (browsers cannot set headers)
   * @param {number} [options.backoffMs] the first reconnection delay (250 ms); it doubles up to maxBackoffMs
   * @param {number} [options.maxBackoffMs] (10 s)
   * @param {number} [options.maxAttempts] reconnections in a row before giving up (Infinity)
   * @param {(dir: "in"|"out", frame: object, raw: string) => void} [options.onFrame] every frame, both ways
   * @param {(state: string, detail?: object) => void} [options.onState] connecting, open, reconnecting, closed
   * @param {typeof WebSocket} [options.WebSocket] a WebSocket constructor (globalThis.WebSocket)
   */
  constructor(url, options = {}) {
    if (!options.sessionId) throw new TypeError("agentws: options.sessionId is required");
    this.url = url;
    this.options = options;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError("agentws: no WebSocket: give options.WebSocket (Node before 22 has none)");
    this.capabilities = [];
    this.epoch = undefined;
    this.lastSeq = 0;
    this.queries = new Map(); // query_id (or a local id) -> Query, unfinished
    this.order = []; // unfinished queries in the order sent: a server without query_id answers them in it
    this.outbox = []; // frames to send once open
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.closed = false;
    this.localIds = 0;
  }

  has(capability) {
    return this.capabilities.includes(capability);
  }

  /** Opens the connection; resolves with the connected frame. */
  connect() {
    this.closed = false;
    return new Promise((resolve, reject) => {
      this.pendingConnect = { resolve, reject };
      this.open();
    });
  }

  handshakeURL() {
    const u = new URL(this.url);
    u.searchParams.set("session_id", this.options.sessionId);
    if (this.options.userId) u.searchParams.set("user_id", this.options.userId);
    if (this.options.token) u.searchParams.set("access_token", this.options.token);
    if (this.has("resume") && this.epoch !== undefined && this.lastSeq > 0) {
      u.searchParams.set("last_seq", String(this.lastSeq));
      u.searchParams.set("epoch", this.epoch);
    }
    return u.toString();
  }

  open() {
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    const ws = new this.WebSocket(this.handshakeURL());
    this.ws = ws;
    this.gotConnected = false;
    let opened = false;
    let ended = false;
    const end = (code, reason) => {
      if (!ended) {
        ended = true;
        this.closedSocket(ws, code, reason);
      }
    };
    ws.onopen = () => (opened = true);
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => end(ev.code, ev.reason);
    // A handshake that fails fires error, and in browsers close after it; some
    // implementations (Node 20's) fire no close then.
    ws.onerror = () => opened || end(1006, "the connection failed");
  }

  setState(state, detail) {
    this.state = state;
    if (this.options.onState) this.options.onState(state, detail);
  }

  // send sends frame now, or once connected; q is the query a query frame sends.
  send(frame, q) {
    if (!(this.ws && this.ws.readyState === 1 && this.gotConnected)) {
      this.outbox.push({ frame, q });
      return;
    }
    if (frame.type === "query" && !this.has("query_id")) {
      frame = { ...frame };
      delete frame.query_id; // CLIENT-2
    }
    const raw = JSON.stringify(frame);
    this.ws.send(raw);
    if (q) q.sent = true;
    if (this.options.onFrame) this.options.onFrame("out", frame, raw);
  }

  /**
   * Sends a query; its chunks and its end arrive on the returned Query.
   * @param {string} text
   * @param {{queryId?: string, systemPrompt?: string, includeContext?: boolean}} [options]
   */
  query(text, options = {}) {
    if (this.closed) throw new AgentWSError("closed", "the client is closed");
    const id = options.queryId || `q-${Date.now().toString(36)}-${(++this.localIds).toString(36)}`;
    const q = new Query(this, text, id, options);
    this.queries.set(id, q);
    this.order.push(q);
    this.send(this.queryFrame(q), q);
    return q;
  }

  queryFrame(q) {
    const f = { type: "query", query: q.text, query_id: q.queryId };
    if (q.options.systemPrompt) f.system_prompt = q.options.systemPrompt;
    if (q.options.includeContext !== undefined) f.include_context = q.options.includeContext;
    return f;
  }

  cancel(q) {
    if (q.done) return;
    if (!this.has("cancel") || !this.has("query_id")) {
      q.fail(new AgentWSError("unsupported", "the server does not claim cancel: the query runs on"));
      return;
    }
    this.send({ type: "cancel", query_id: q.queryId });
  }

  /** Ends the session on the server (disconnect) and closes the client. */
  disconnect() {
    this.send({ type: "disconnect" });
    this.finish(new AgentWSError("session_ended", "the session was ended by disconnect"));
  }

  /** Closes the connection without ending the session; the server keeps it for its TTL. */
  close() {
    this.finish(new AgentWSError("closed", "the client was closed"));
    if (this.ws) this.ws.close(1000);
  }

  /** Closes the connection as a network failure would, and reconnects: for trying resume. */
  drop() {
    if (this.ws) this.ws.close(4000, "client drop");
  }

  finish(err) {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.stable);
    for (const q of this.queries.values()) q.fail(err);
    this.queries.clear();
    this.order = [];
    this.setState("closed", { reason: err.code });
  }

  receive(raw) {
    let f;
    try {
      f = JSON.parse(raw);
    } catch {
      return; // not the protocol's: ignored
    }
    if (!f || typeof f !== "object") return;
    if (this.options.onFrame) this.options.onFrame("in", f, raw);
    if (typeof f.seq === "number" && this.has("resume")) {
      if (f.seq <= this.lastSeq) return; // already received (CLIENT-5)
      this.lastSeq = f.seq;
    }
    switch (f.type) {
      case "connected":
        return this.connected(f);
      case "query_start": {
        const q = this.queryOf(f, true);
        if (q) q.started = true;
        return;
      }
      case "chunk": {
        const q = this.queryOf(f);
        if (q) q.chunk(f);
        return;
      }
      case "complete": {
        const q = this.queryOf(f);
        if (q) this.end(q, () => q.complete(f));
        return;
      }
      case "error": {
        const q = this.queryOf(f);
        if (q) this.end(q, () => q.fail(new AgentWSError(f.code || "error", f.error, f)));
        return;
      }
      case "disconnected":
        return this.finish(new AgentWSError("session_ended", f.message || "the session ended"));
      default:
        return; // pong, keepalive, and types this client does not know (CLIENT-1, CLIENT-3)
    }
  }

  // queryOf finds the query a frame is about: by query_id, or, from a server without
  // query_id, the oldest unfinished one (the first not started, for a query_start).
  queryOf(f, starting) {
    if (this.has("query_id")) return f.query_id ? this.queries.get(f.query_id) : undefined; // an error of no query: the connection's
    if (starting) return this.order.find((q) => !q.started);
    return this.order.find((q) => !q.done);
  }

  end(q, settle) {
    settle();
    this.queries.delete(q.queryId);
    this.order = this.order.filter((o) => o !== q);
  }

  connected(f) {
    const first = !this.gotConnectedOnce;
    this.gotConnected = true;
    this.gotConnectedOnce = true;
    this.capabilities = Array.isArray(f.capabilities) ? f.capabilities : [];
    const epochChanged = this.epoch !== undefined && f.epoch !== this.epoch;
    const resumedFrom = this.lastSeq;
    if (epochChanged) this.lastSeq = 0;
    this.epoch = f.epoch;
    clearTimeout(this.stable);
    this.stable = setTimeout(() => (this.attempt = 0), stableMs);
    if (!first) {
      // What a reconnection means for the answers in flight.
      let lost = null;
      if (!this.has("resume")) {
        lost = new AgentWSError("no_resume", "the connection dropped and the server cannot resume: the answer may be incomplete");
      } else if (f.resumed === false || epochChanged) {
        const missed = f.missed ? `${f.missed} frames were lost` : "the session's history is another one";
        lost = new AgentWSError("gap", `the connection dropped and ${missed} (after seq ${resumedFrom}): the answer may be incomplete`, f);
      }
      // Without query_id, which query a frame is about is known by order only: the
      // ones sent before the drop cannot be told apart from what the server lost.
      for (const q of [...this.order]) {
        if (lost && (q.started || (q.sent && !this.has("query_id")))) this.end(q, () => q.fail(lost));
      }
    }
    this.setState("open", { connected: f });
    // A query sent before the drop but not started is sent again with its query_id: the
    // server runs it if it never got it, and otherwise does not run it twice (QID-3,
    // QID-4): it goes on, or its end is replayed.
    const resend = !first && this.has("query_id") ? this.order.filter((q) => q.sent && !q.started) : [];
    const pending = this.outbox.splice(0);
    for (const q of resend) this.send(this.queryFrame(q), q);
    for (const { frame, q } of pending) this.send(frame, q);
    if (this.pendingConnect) {
      this.pendingConnect.resolve(f);
      this.pendingConnect = null;
    }
  }

  closedSocket(ws, code, reason) {
    if (ws !== this.ws) return;
    this.gotConnected = false;
    if (this.closed) return;
    clearTimeout(this.stable);
    if (code === closeReplaced) {
      return this.finish(new AgentWSError("replaced", "another connection took the session over (4001): not reconnecting"));
    }
    if (permanentCloses.has(code)) {
      return this.finish(new AgentWSError(permanentCloses.get(code), `the server closed the connection with ${code}${reason ? " (" + reason + ")" : ""}: not reconnecting, as it would close it again`));
    }
    if (this.pendingConnect && !this.gotConnectedOnce) {
      // The first handshake failed: a refusal, or no server. Say so rather than retry.
      const err = new AgentWSError("refused", `could not connect to ${this.url} (close ${code}${reason ? " " + reason : ""})`);
      this.pendingConnect.reject(err);
      this.pendingConnect = null;
      return this.finish(err);
    }
    const max = this.options.maxAttempts ?? Infinity;
    if (this.attempt >= max) {
      return this.finish(new AgentWSError("closed", `gave up after ${this.attempt} reconnections`));
    }
    const base = this.options.backoffMs ?? 250;
    const cap = this.options.maxBackoffMs ?? 10000;
    const delay = Math.min(cap, base * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.setState("reconnecting", { attempt: this.attempt, delayMs: Math.round(delay), code });
    this.timer = setTimeout(() => this.open(), delay);
  }
}
