// Shared by the Node tests: where the servers are (reference/server/node_test.go
// starts them and passes their URLs), and small helpers.
import { randomUUID } from "node:crypto";
import { WebSocket as NodeWebSocket } from "../node.mjs";

/** The reference server's endpoint, ws://host:port/ws. */
export const WS = process.env.AGENTWS_TEST_WS;
/** The base URL of the control endpoints and the scripted servers. */
export const AUX = process.env.AGENTWS_TEST_AUX;
/** Set to a reason when the tests run outside `go test -run TestNode`. */
export const skip = WS && AUX ? false : "run by go test -run TestNode ./reference/server/ (AGENTWS_TEST_WS and AGENTWS_TEST_AUX unset)";

export const sessionId = (name) => `${name}-${randomUUID()}`;

/** The endpoint of a scripted server of node_scripts_test.go, for session sid. */
export const scripted = (name, sid) => `${AUX.replace(/^http/, "ws")}/scripted/${name}/ws?session_id=${sid}`;

/** How many handshakes session sid made to the scripted servers. */
export async function handshakes(sid) {
  const r = await fetch(`${AUX}/scripted/handshakes?session_id=${sid}`);
  return Number(await r.text());
}

/** Asks the Go test to act on the reference server: drop?session_id=S, restart. */
export async function control(what) {
  const r = await fetch(`${AUX}/control/${what}`, { method: "POST" });
  if (!r.ok) throw new Error(`control ${what}: ${r.status} ${await r.text()}`);
}

/** Records the frames of a client, both ways, and the URLs of its handshakes. */
export function recorder() {
  const rec = { in: [], out: [], urls: [] };
  rec.onFrame = (dir, frame) => rec[dir].push(frame);
  rec.WebSocket = class extends NodeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      rec.urls.push(new URL(url));
    }
  };
  rec.sent = (type) => rec.out.filter((f) => f.type === type);
  rec.got = (type) => rec.in.filter((f) => f.type === type);
  return rec;
}

/** The error a promise rejects with; fails when it resolves. */
export async function rejection(promise) {
  try {
    const v = await promise;
    throw new Error(`resolved with ${JSON.stringify(v)}, want a rejection`);
  } catch (err) {
    return err;
  }
}

/**
 * Reads q's chunks, calling onChunk(n, chunk) after the n-th; returns them and how q
 * ended: { chunks, result } or { chunks, error }.
 * @param {import("../agentws.js").Query} q
 * @param {(n: number, chunk: string) => unknown} [onChunk]
 * @returns {Promise<{chunks: string[], result?: import("../agentws.js").Answer, error?: any}>}
 */
export async function drain(q, onChunk = () => {}) {
  const chunks = [];
  try {
    for await (const c of q) {
      chunks.push(c);
      await onChunk(chunks.length, c);
    }
    return { chunks, result: await q.result };
  } catch (error) {
    return { chunks, error };
  }
}

/** Resolves when the client's state becomes state (give its onState to the client). */
export function states() {
  const seen = [];
  const waiters = [];
  return {
    seen,
    onState(state, detail) {
      seen.push({ state, detail });
      for (const w of waiters.filter((w) => w.state === state)) w.resolve(detail);
    },
    next(state) {
      return new Promise((resolve) => waiters.push({ state, resolve }));
    },
  };
}
