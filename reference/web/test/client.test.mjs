// agentws.js against the reference server (the fixture agent, every capability).
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../agentws.js";
import { WebSocket as NodeWebSocket } from "../node.mjs";
import { WS, skip, sessionId, control, recorder, rejection, drain, states } from "./helpers.mjs";

const slow = "__slow__ an answer long enough to be interrupted in the middle of it";

// Every client a test opens is closed after it, passed or failed, so that a failing
// test does not hold the process open.
const opened = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

function client(name, options = {}) {
  const rec = recorder();
  const st = states();
  const sid = sessionId(name);
  const c = new Client(WS, { sessionId: sid, WebSocket: rec.WebSocket, onFrame: rec.onFrame, onState: st.onState, ...options });
  opened.push(c);
  return { c, rec, st, sid };
}

test("a query is answered whole, in chunks that make its full_response", { skip }, async () => {
  const { c } = client("whole");
  const connected = await c.connect();
  assert.deepEqual([...connected.capabilities].sort(), ["buffering", "cancel", "error_codes", "fixture", "query_id", "resume"]);
  const { chunks, result, error } = await drain(c.query("hello"));
  assert.ifError(error);
  assert.equal(chunks.join(""), "Echo: hello");
  assert.equal(result.text, "Echo: hello");
  assert.equal(result.totalChunks, chunks.length);
  c.close();
});

test("drop() in the middle of an answer: the client reconnects with last_seq and epoch and resumes it whole", { skip }, async () => {
  const { c, rec } = client("drop");
  await c.connect();
  const { chunks, result, error } = await drain(c.query(slow), (n) => n === 1 && c.drop());
  assert.ifError(error);
  assert.equal(chunks.join(""), "Echo: " + slow);
  assert.equal(result.text, "Echo: " + slow);
  const connected = rec.got("connected");
  assert.equal(connected.length, 2);
  assert.equal(connected[1].resumed, true);
  assert.equal(rec.urls[1].searchParams.get("epoch"), connected[0].epoch);
  assert.ok(Number(rec.urls[1].searchParams.get("last_seq")) >= 2, `last_seq ${rec.urls[1].searchParams.get("last_seq")}`);
  assert.equal(rec.urls[0].searchParams.has("last_seq"), false);
  c.close();
});

test("the server drops the connection in the middle of an answer: resumed whole, each chunk once", { skip }, async () => {
  const { c, sid, rec } = client("serverdrop");
  await c.connect();
  const { chunks, error } = await drain(c.query(slow), (n) => n === 2 && control(`drop?session_id=${sid}`));
  assert.ifError(error);
  assert.equal(chunks.join(""), "Echo: " + slow);
  assert.equal(rec.got("connected").length, 2);
  c.close();
});

test("4001: a second client takes the session; the first ends with replaced and does not reconnect", { skip }, async () => {
  const { c, sid, rec, st } = client("replaced");
  await c.connect();
  const other = new Client(WS, { sessionId: sid, WebSocket: NodeWebSocket });
  const { chunks, error } = await drain(c.query(slow), (n) => n === 1 && other.connect());
  assert.equal(error?.code, "replaced", String(error));
  assert.ok(chunks.length >= 1);
  assert.equal(c.state, "closed");
  assert.equal(st.seen.at(-1).detail.reason, "replaced");
  assert.equal(rec.urls.length, 1, "the client reconnected");
  assert.throws(() => c.query("again"), { code: "replaced" });
  other.close();
});

test("cancel: the query ends with cancelled, one cancel frame is sent, the next query is answered", { skip }, async () => {
  const { c, rec } = client("cancel");
  await c.connect();
  const q = c.query(slow);
  const { chunks, error } = await drain(q, (n) => n === 1 && q.cancel());
  assert.equal(error?.code, "cancelled", String(error));
  assert.equal(chunks.length, 1);
  assert.deepEqual(rec.sent("cancel").map((f) => f.query_id), [q.queryId]);
  const next = await drain(c.query("after the cancel"));
  assert.ifError(next.error);
  assert.equal(next.result.text, "Echo: after the cancel");
  c.close();
});

test("a new epoch (the server restarted) in the middle of an answer: gap; the client goes on", { skip }, async () => {
  const { c, rec } = client("epoch");
  await c.connect();
  const { error } = await drain(c.query(slow), (n) => n === 1 && control("restart"));
  assert.equal(error?.code, "gap", String(error));
  const next = await drain(c.query("after the restart"));
  assert.ifError(next.error);
  assert.equal(next.result.text, "Echo: after the restart");
  const [first, second] = rec.got("connected");
  assert.notEqual(second.epoch, first.epoch);
  c.close();
});

test("the agent fails: the server's code and frame pass through", { skip }, async () => {
  const { c } = client("fail");
  await c.connect();
  const err = await rejection(c.query("__fail__").result);
  assert.equal(err.code, "query_failed");
  assert.equal(err.frame.type, "error");
  c.close();
});

test("a query_id asked again: the replayed complete is delivered as one chunk", { skip }, async () => {
  const { c } = client("replayed");
  await c.connect();
  const first = await drain(c.query("hello", { queryId: "dup-1" }));
  assert.ifError(first.error);
  const again = await drain(c.query("hello", { queryId: "dup-1" }));
  assert.ifError(again.error);
  assert.deepEqual(again.chunks, ["Echo: hello"]);
  assert.equal(again.result.replayed, true);
  c.close();
});

test("the first handshake refused: refused, with the HTTP status and code (node.mjs)", { skip }, async () => {
  const c = new Client(WS, { sessionId: "not an id!", WebSocket: NodeWebSocket });
  const q = c.query("hello");
  const err = await rejection(c.connect());
  assert.equal(err.code, "refused");
  assert.equal(err.status, 400);
  assert.match(err.message, /invalid_session_id/);
  assert.equal((await rejection(q.result)).code, "refused");
});

test("the first handshake refused, with Node's own WebSocket: refused, no status", { skip }, async () => {
  const c = new Client(WS, { sessionId: "not an id!" });
  const err = await rejection(c.connect());
  assert.equal(err.code, "refused");
  assert.equal(err.status, undefined);
});

test("nothing listening: refused", { skip }, async () => {
  const c = new Client("ws://127.0.0.1:1/ws", { sessionId: sessionId("nothing"), WebSocket: NodeWebSocket });
  assert.equal((await rejection(c.connect())).code, "refused");
});

test("disconnect: the queries in flight end with session_ended", { skip }, async () => {
  const { c, rec } = client("disconnect");
  await c.connect();
  const q = c.query(slow);
  const { error } = await drain(q, (n) => n === 1 && c.disconnect());
  assert.equal(error?.code, "session_ended");
  assert.equal(rec.sent("disconnect").length, 1);
});
