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
// last_seq and epoch, and not after 4001 or 4003 (CLIENT-4), and discards the frames it
// has already received, surfacing a gap as an error rather than a short answer
// (CLIENT-5). An operator's notice (section 12.7) goes to options.onNotice, once, in
// order; it is part of no query and changes no stream (NOTICE-2).
// Its outcome codes and its reconnection behaviour are those of the Go client
// (reference/client); agentws.d.ts declares its API.

/** An AgentWSError says why a query or the client ended without a whole answer. */
export class AgentWSError extends Error {
  /**
   * @param {string} code the server's error code (query_failed, busy, rate_limited, ...;
   *   "error" from a server without error_codes), or one of the client's: replaced,
   *   ended, gap, no_resume, refused, unreachable, closed, session_ended, cancelled,
   *   unsupported, protocol_error, unsupported_data, invalid_payload, policy_violation,
   *   message_too_big (agentws.d.ts says when each happens)
   * @param {string} message
   * @param {object} [frame] the server's error frame, when there is one
   * @param {number} [status] the HTTP status of a refused handshake, when known
   */
  constructor(code, message, frame, status) {
    super(message);
    this.name = "AgentWSError";
    this.code = code;
    this.frame = frame;
    if (status !== undefined) this.status = status;
    if (frame && typeof frame.retry_after_ms === "number") this.retryAfterMs = frame.retry_after_ms;
  }
}

// Section 15.1: 4001, another connection took the session over (TAKE-1).
const closeReplaced = 4001;

// Section 15.1: 4003, the operator ended the session through the admin API (ADMIN-4).
const closeEnded = 4003;

// Section 15.1: close codes that say reconnecting would get the same again: the client
// sent what the server refuses. The client stops, as after 4001.
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
    this.sent = false; // written to a connection
    this.started = false; // query_start seen
    this.chunks = [];
    this.nextChunk = 1;
    this.done = false; // settled for the caller; its frames may still come, and are ignored
    this.waiters = [];
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

  /**
   * Cancels the query: it ends at once with code cancelled, and the client asks the
   * server to stop it. A server that does not claim cancel (and query_id) is sent
   * nothing (CLIENT-2): the query ends with code unsupported and runs on there.
   */
  cancel() {
    this.client.cancel(this);
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  chunk(frame) {
    if (this.done) return;
    if (frame.chunk_number !== this.nextChunk) {
      this.fail(new AgentWSError("gap", `chunk ${frame.chunk_number} arrived after chunk ${this.nextChunk - 1}: the answer is incomplete`, frame));
      return;
    }
    this.nextChunk++;
    this.chunks.push(String(frame.content ?? ""));
    this.wake();
  }

  complete(frame) {
    if (this.done) return;
    const text = typeof frame.full_response === "string" ? frame.full_response : this.answer;
    const replayed = frame.replayed === true;
    if (replayed && this.chunks.length === 0) {
      if (text) this.chunks.push(text); // a replayed end (QID-4): the answer in one piece
    } else if (typeof frame.total_chunks === "number" && frame.total_chunks !== this.chunks.length) {
      this.fail(new AgentWSError("gap", `complete counts ${frame.total_chunks} chunks, ${this.chunks.length} arrived: the answer is incomplete`, frame));
      return;
    }
    this.done = true;
    this.resolve({ text, totalChunks: frame.total_chunks, replayed, frame });
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
 * reopens after a drop. The options are declared in agentws.d.ts.
 */
export class Client {
  constructor(url, options = {}) {
    const u = new URL(url);
    this.sessionId = options.sessionId || u.searchParams.get("session_id");
    if (!this.sessionId) throw new TypeError("agentws: a session_id is required: give options.sessionId, or session_id in the URL");
    this.userId = options.userId || u.searchParams.get("user_id") || undefined;
    this.url = url;
    this.options = options;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError("agentws: no WebSocket: give options.WebSocket (Node before 22 has none)");
    this.capabilities = []; // those of the last connected
    this.epoch = undefined;
    this.lastSeq = 0; // the highest seq received, with resume
    this.live = []; // queries whose stream has not ended on the wire, in the order asked
    this.outbox = []; // frames other than queries, to send once connected
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.everConnected = false;
    this.closed = false;
    this.localIds = 0;
  }

  has(capability) {
    return this.capabilities.includes(capability);
  }

  /** Opens the connection; resolves with the connected frame. */
  connect() {
    if (this.closed) return Promise.reject(this.endError);
    return new Promise((resolve, reject) => {
      this.pendingConnect = { resolve, reject };
      this.open();
    });
  }

  handshakeURL() {
    const u = new URL(this.url);
    u.searchParams.set("session_id", this.sessionId);
    if (this.userId) u.searchParams.set("user_id", this.userId);
    if (this.options.token) u.searchParams.set("access_token", this.options.token);
    u.searchParams.delete("last_seq");
    u.searchParams.delete("epoch");
    if (this.has("resume") && this.epoch !== undefined) {
      u.searchParams.set("last_seq", String(this.lastSeq));
      u.searchParams.set("epoch", this.epoch);
    }
    return u.toString();
  }

  open() {
    this.setState(this.everConnected ? "reconnecting" : "connecting", { attempt: this.attempt });
    const ws = new this.WebSocket(this.handshakeURL());
    this.ws = ws;
    this.gotConnected = false;
    let opened = false;
    let ended = false;
    const end = (code, reason) => {
      if (!ended) {
        ended = true;
        this.closedSocket(ws, code, reason, opened);
      }
    };
    ws.onopen = () => (opened = true);
    ws.onmessage = (ev) => ws === this.ws && this.receive(ev.data);
    ws.onclose = (ev) => end(ev.code, ev.reason);
    // A handshake that fails fires error, and in browsers close after it; Node's
    // WebSocket fires no close then.
    ws.onerror = () => opened || end(1006, "");
  }

  setState(state, detail) {
    this.state = state;
    if (this.options.onState) this.options.onState(state, detail);
  }

  connectedNow() {
    return this.ws && this.ws.readyState === 1 && this.gotConnected;
  }

  write(frame) {
    const raw = JSON.stringify(frame);
    this.ws.send(raw);
    if (this.options.onFrame) this.options.onFrame("out", frame, raw);
  }

  // sendQuery sends q now when connected; otherwise connected sends it.
  sendQuery(q) {
    if (!this.connectedNow()) return;
    const f = { type: "query", query: q.text };
    if (this.has("query_id")) f.query_id = q.queryId; // CLIENT-2
    if (q.options.systemPrompt) f.system_prompt = q.options.systemPrompt;
    if (q.options.includeContext !== undefined) f.include_context = q.options.includeContext;
    q.sent = true;
    q.sentWithId = f.query_id !== undefined;
    this.write(f);
  }

  /**
   * Sends a query; its chunks and its end arrive on the returned Query.
   * @param {string} text
   * @param {{queryId?: string, systemPrompt?: string, includeContext?: boolean}} [options]
   */
  query(text, options = {}) {
    if (this.closed) throw this.endError;
    const id = options.queryId || `q-${Date.now().toString(36)}-${(++this.localIds).toString(36)}`;
    const q = new Query(this, text, id, options);
    this.live.push(q);
    this.sendQuery(q);
    return q;
  }

  cancel(q) {
    if (q.done) return;
    if (!q.sent) {
      // Never sent: it never will be.
      this.retire(q);
      q.fail(new AgentWSError("cancelled", "the query was cancelled before it was sent"));
      return;
    }
    if (!this.has("cancel") || !this.has("query_id") || !q.sentWithId) {
      q.fail(new AgentWSError("unsupported", "the server does not claim cancel: nothing was sent, and the query runs on there"));
      return;
    }
    q.fail(new AgentWSError("cancelled", "the query was cancelled"));
    const f = { type: "cancel", query_id: q.queryId };
    if (this.connectedNow()) this.write(f);
    else this.outbox.push(f);
  }

  /** Ends the session on the server (disconnect) and closes the client. */
  disconnect() {
    if (this.connectedNow()) this.write({ type: "disconnect" });
    else if (this.ws) this.ws.close(1000);
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
    if (this.closed) return;
    this.closed = true;
    this.endError = err;
    clearTimeout(this.timer);
    clearTimeout(this.stable);
    for (const q of this.live) q.fail(err);
    this.live = [];
    this.outbox = [];
    if (this.pendingConnect) {
      this.pendingConnect.reject(err);
      this.pendingConnect = null;
    }
    this.setState("closed", { reason: err.code, error: err });
  }

  receive(raw) {
    let f;
    try {
      f = JSON.parse(raw);
    } catch {
      return; // not the protocol's: ignored
    }
    if (!f || typeof f !== "object" || Array.isArray(f)) return;
    if (this.options.onFrame) this.options.onFrame("in", f, raw);
    if (this.closed) {
      if (f.type === "disconnected") this.ws.close(1000);
      return;
    }
    if (f.type === "connected") return this.connected(f);
    if (!this.gotConnected) return; // CONN-1: connected comes first
    if (this.has("resume") && typeof f.seq === "number") {
      if (f.seq <= this.lastSeq) return; // already received (CLIENT-5)
      this.lastSeq = f.seq;
    }
    switch (f.type) {
      case "query_start": {
        const q = this.queryOf(f);
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
        if (q) {
          this.retire(q);
          q.complete(f);
        }
        return;
      }
      case "error": {
        const q = this.queryOf(f);
        if (q) {
          this.retire(q);
          q.fail(new AgentWSError(this.has("error_codes") && typeof f.code === "string" ? f.code : "error", String(f.error ?? ""), f));
        }
        return;
      }
      case "notice":
        // Session-scoped, of no query (NOTICE-2): its seq counted above, no stream
        // changes. Given to the caller once it is handled, like a chunk.
        if (this.options.onNotice) this.options.onNotice(f);
        return;
      case "disconnected":
        this.finish(new AgentWSError("session_ended", f.message || "the session ended"));
        this.ws.close(1000);
        return;
      default:
        return; // pong, keepalive, and types this client does not know (CLIENT-1, CLIENT-3)
    }
  }

  // queryOf finds the query a frame is about: by query_id when the server claims it,
  // and otherwise by order (STREAM-7): the oldest whose stream has not ended. A
  // query_start is of the first query not started, and ends the streams of the started
  // ones before it, whose ends were lost.
  queryOf(f) {
    if (this.has("query_id")) return typeof f.query_id === "string" ? this.live.find((q) => q.sentWithId && q.queryId === f.query_id) : undefined;
    if (f.type !== "query_start") return this.live.find((q) => q.sent);
    const i = this.live.findIndex((q) => q.sent && !q.started);
    if (i < 0) return undefined;
    const q = this.live[i];
    for (const o of this.live.slice(0, i)) {
      if (!o.sent) continue;
      this.retire(o);
      o.fail(new AgentWSError("gap", "the next query started before this one's end arrived: its end was lost"));
    }
    return q;
  }

  retire(q) {
    this.live = this.live.filter((o) => o !== q);
  }

  connected(f) {
    if (this.gotConnected) return; // one per connection (CONN-1)
    const reconnection = this.everConnected;
    const before = this.capabilities; // what the connection that dropped claimed
    this.gotConnected = true;
    this.everConnected = true;
    this.capabilities = Array.isArray(f.capabilities) ? f.capabilities.filter((c) => typeof c === "string") : [];
    const epoch = typeof f.epoch === "string" ? f.epoch : undefined;
    const sameHistory = epoch === this.epoch;
    const resumed = before.includes("resume") && f.resumed === true && sameHistory;
    if (!resumed) this.lastSeq = 0; // another history, or none: its seqs start again (SEQ-5)
    this.epoch = epoch;
    clearTimeout(this.stable);
    this.stable = setTimeout(() => (this.attempt = 0), stableMs);
    if (reconnection && !resumed) this.settleLost(f, before, sameHistory);
    if (reconnection && resumed && this.has("query_id")) {
      // A query sent but not started may never have reached the server: it is sent
      // again with its query_id, which keeps it from running twice (QID-3, QID-4).
      for (const q of this.live) if (!q.done && q.sent && !q.started && q.sentWithId) q.sent = false;
    }
    this.setState("open", { connected: f });
    for (const q of this.live) if (!q.done && !q.sent) this.sendQuery(q);
    for (const frame of this.outbox.splice(0)) this.write(frame);
    if (this.pendingConnect) {
      this.pendingConnect.resolve(f);
      this.pendingConnect = null;
    }
  }

  // settleLost decides, after a reconnection that did not resume, what became of the
  // queries in flight: a started one may have lost frames (gap with resume claimed,
  // no_resume without); one sent but not started is sent again when it has a query_id
  // and the server still claims query_id (QID-3, QID-4 keep it from running twice),
  // and fails like a started one otherwise, since what arrives could not be told apart.
  // Without query_id, frames are matched by order: after a server with buffering, the
  // failed queries stay in line to take the frames of theirs it buffered.
  settleLost(f, before, sameHistory) {
    let lost;
    if (before.includes("resume")) {
      const why = !sameHistory || typeof f.missed !== "number" ? "the session's history is another one" : `${f.missed} frames were lost`;
      lost = () => new AgentWSError("gap", `the connection dropped and ${why}: the answer may be incomplete`, f);
    } else {
      lost = () => new AgentWSError("no_resume", "the connection dropped and the server does not claim resume: the answer may be incomplete");
    }
    const resend = this.has("query_id");
    const keepInLine = !resend && before.includes("buffering");
    for (const q of [...this.live]) {
      if (!q.sent) continue;
      if (!q.done && !q.started && q.sentWithId && resend) {
        q.sent = false; // connected sends it again
        continue;
      }
      if (!keepInLine) this.retire(q);
      q.fail(lost());
    }
  }

  closedSocket(ws, code, reason, opened) {
    if (ws !== this.ws) return;
    this.gotConnected = false;
    if (this.closed) return;
    clearTimeout(this.stable);
    const why = reason ? ` (${reason})` : "";
    if (code === closeReplaced) {
      return this.finish(new AgentWSError("replaced", "another connection took the session over (4001): not reconnecting"));
    }
    if (code === closeEnded) {
      return this.finish(new AgentWSError("ended", `the operator ended the session (4003)${why}: not reconnecting`));
    }
    if (permanentCloses.has(code)) {
      return this.finish(new AgentWSError(permanentCloses.get(code), `the server closed the connection with ${code}${why}: not reconnecting, as it would close it again`));
    }
    const refusal = opened ? undefined : handshakeRefusal(ws);
    if (!this.everConnected) {
      const what = refusal ? refusal.text : opened ? `the connection closed with ${code}${why} before connected` : "no answer";
      return this.finish(new AgentWSError("refused", `could not connect to ${this.url}: ${what}`, undefined, refusal && refusal.status));
    }
    if (refusal && refusal.status >= 400 && refusal.status < 500 && refusal.status !== 429) {
      return this.finish(new AgentWSError("refused", `the reconnection was refused: ${refusal.text}`, undefined, refusal.status));
    }
    const max = this.options.maxAttempts ?? Infinity;
    if (this.attempt >= max) {
      return this.finish(new AgentWSError("unreachable", `gave up after ${this.attempt} reconnections` + (refusal ? `; the last: ${refusal.text}` : "")));
    }
    const base = this.options.backoffMs ?? 250;
    const cap = this.options.maxBackoffMs ?? 10000;
    const delay = Math.min(cap, base * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.setState("reconnecting", { attempt: this.attempt, delayMs: Math.round(delay), code });
    this.timer = setTimeout(() => this.open(), delay);
  }
}

// handshakeRefusal reads what a WebSocket that records its handshake (node.mjs does;
// browsers' cannot) says of a refused one: the HTTP status and the code of the body
// (spec/PROTOCOL.md section 15.3). undefined when it says nothing, or it was no refusal.
function handshakeRefusal(ws) {
  const h = ws.handshake;
  if (!h || typeof h.status !== "number" || h.status === 101) return undefined;
  let code = "";
  let error = "";
  try {
    const body = JSON.parse(h.body);
    if (typeof body.code === "string") code = body.code;
    if (typeof body.error === "string") error = body.error;
  } catch {
    // not the protocol's JSON body: the status alone
  }
  return { status: h.status, code, text: `HTTP ${h.status}` + (code ? ` ${code}` : "") + (error ? `: ${error}` : "") };
}
