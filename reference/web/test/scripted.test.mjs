// agentws.js against the scripted servers of reference/server/node_scripts_test.go:
// what the reference server never does.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../agentws.js";
import { skip, sessionId, scripted, handshakes, recorder, drain, states } from "./helpers.mjs";

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
  const c = new Client(scripted(name, sid), { WebSocket: rec.WebSocket, onFrame: rec.onFrame, onState: st.onState, backoffMs: 5, ...options });
  opened.push(c);
  return { c, rec, st, sid };
}

test("a core server: no query_id is sent, frames are matched by order, cancel is unsupported and sends nothing", { skip }, async () => {
  const { c, rec } = client("core");
  const connected = await c.connect();
  assert.equal(connected.protocol_version, undefined);
  const q = c.query("__slow__ cancelled here, answered there");
  const next = c.query("the next one");
  const first = await drain(q, (n) => n === 1 && q.cancel());
  assert.equal(first.error?.code, "unsupported", String(first.error));
  const second = await drain(next);
  assert.ifError(second.error);
  assert.equal(second.chunks.join(""), "Echo: the next one"); // not the rest of the cancelled answer
  assert.equal(rec.sent("cancel").length, 0);
  for (const f of rec.sent("query")) assert.equal("query_id" in f, false, JSON.stringify(f));
  assert.equal(rec.got("complete").length, 2);
  c.close();
});

test("a chunk_number that is not the next one: gap", { skip }, async () => {
  const { c } = client("gap");
  await c.connect();
  const { chunks, error } = await drain(c.query("hello"));
  assert.equal(error?.code, "gap", String(error));
  assert.deepEqual(chunks, ["Echo"]);
  c.close();
});

test("a replayed complete of a query with no chunks delivered: the answer as one chunk", { skip }, async () => {
  const { c } = client("replayed");
  await c.connect();
  const { chunks, result, error } = await drain(c.query("hello"));
  assert.ifError(error);
  assert.deepEqual(chunks, ["Echo: hello"]);
  assert.equal(result.replayed, true);
  c.close();
});

test("a reconnection refused with 401: refused, and no more attempts", { skip }, async () => {
  const { c, sid, st } = client("refuse");
  await c.connect();
  const { error } = await drain(c.query("hello"));
  assert.equal(error?.code, "refused", String(error));
  assert.equal(error.status, 401);
  assert.match(error.message, /unauthorized/);
  assert.equal(st.seen.at(-1).state, "closed");
  assert.equal(await handshakes(sid), 2);
});

test("reconnections answered 429 and 503 are tried again; the query sent but not started is sent again with its query_id", { skip }, async () => {
  const { c, sid, rec } = client("flaky", { maxAttempts: 5 });
  await c.connect();
  const { result, error } = await drain(c.query("hello"));
  assert.ifError(error);
  assert.equal(result.text, "Echo: hello");
  assert.equal(await handshakes(sid), 4);
  const ids = rec.sent("query").map((f) => f.query_id);
  assert.equal(ids.length, 2);
  assert.equal(ids[0], ids[1]);
  c.close();
});

test("maxAttempts reconnections that fail: unreachable", { skip }, async () => {
  const { c, sid } = client("flaky", { maxAttempts: 2 });
  await c.connect();
  const { error } = await drain(c.query("hello"));
  assert.equal(error?.code, "unreachable", String(error));
  assert.equal(await handshakes(sid), 3);
});

test("close 1008: policy_violation, not reconnecting", { skip }, async () => {
  const { c, sid, st } = client("policy");
  const q = c.query("hello");
  await c.connect().catch(() => {});
  const { error } = await drain(q);
  assert.equal(error?.code, "policy_violation", String(error));
  assert.equal(st.seen.at(-1).state, "closed");
  assert.equal(await handshakes(sid), 1);
});

test("a drop without resume: the started query ends with no_resume, the one not started is sent again and answered", { skip }, async () => {
  const { c, rec } = client("noresume");
  await c.connect();
  const a = c.query("first");
  const b = c.query("second");
  const [ra, rb] = await Promise.all([drain(a), drain(b)]);
  assert.equal(ra.error?.code, "no_resume", String(ra.error));
  assert.ifError(rb.error);
  assert.equal(rb.chunks.join(""), "Echo: second");
  assert.deepEqual(rec.sent("query").map((f) => f.query_id), [a.queryId, b.queryId, b.queryId]);
  c.close();
});

test("a notice between chunks reaches onNotice and the answer is whole (frames matched by order)", { skip }, async () => {
  const notices = [];
  const { c } = client("notice-core", { onNotice: (n) => notices.push(n) });
  await c.connect();
  const { chunks, result, error } = await drain(c.query("hi"));
  assert.ifError(error);
  assert.deepEqual(chunks, ["Echo", ": hi"]);
  assert.equal(result.text, "Echo: hi");
  assert.equal(notices.length, 1);
  assert.equal(notices[0].notice_id, "n-core");
  assert.equal(notices[0].level, "warning");
  assert.equal(notices[0].message, "Maintenance in 5 minutes");
  assert.deepEqual(notices[0].data, { in_s: 300 });
  c.close();
});

test("a notice's seq counts for last_seq, and one a resume sends again is not given twice", { skip }, async () => {
  const notices = [];
  const { c, rec, sid } = client("notice", { onNotice: (n) => notices.push(n) });
  await c.connect();
  const { chunks, result, error } = await drain(c.query("hi", { queryId: "q-notice" }));
  assert.ifError(error);
  assert.deepEqual(chunks, ["Echo", ": ", "hi"]);
  assert.equal(result.text, "Echo: hi");
  assert.deepEqual(notices.map((n) => [n.notice_id, n.seq, n.level]), [["n-1", 3, "info"], ["n-2", 5, "critical"]]);
  assert.equal(await handshakes(sid), 2);
  assert.equal(rec.urls[1].searchParams.get("last_seq"), "3");
  assert.equal(rec.urls[1].searchParams.get("epoch"), "e1");
  assert.equal(c.lastSeq, 7);
  c.close();
});

test("close 4003 (the operator ended the session): ended, not reconnecting", { skip }, async () => {
  const { c, sid, st } = client("ended");
  await c.connect();
  const { chunks, error } = await drain(c.query("hello"));
  assert.equal(error?.code, "ended", String(error));
  assert.deepEqual(chunks, ["Echo"]);
  assert.equal(st.seen.at(-1).state, "closed");
  assert.equal(st.seen.at(-1).detail.reason, "ended");
  assert.throws(() => c.query("again"), { code: "ended" });
  assert.equal(await handshakes(sid), 1);
});
