// ask.mjs, the adapter: its stdout and its exit status for each way an answer ends.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Client } from "../agentws.js";
import { WebSocket as NodeWebSocket } from "../node.mjs";
import { WS, skip, sessionId, scripted, control } from "./helpers.mjs";

const askPath = fileURLToPath(new URL("../ask.mjs", import.meta.url));
const slow = "__slow__ an answer long enough to be interrupted in the middle of it";

/**
 * Runs node ask.mjs with args; onOutput(stdout so far) is called as stdout grows.
 * Resolves with { status, stdout, stderr }.
 * @param {string[]} args
 * @param {{env?: Record<string, string>, onOutput?: (stdout: string) => unknown}} [options]
 * @returns {Promise<{status: number | null, stdout: string, stderr: string}>}
 */
function ask(args, { env = {}, onOutput = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [askPath, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => onOutput((stdout += d)));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const at = (sid) => `${WS}?session_id=${sid}`;

test("ask: the whole answer on stdout, exit 0", { skip }, async () => {
  const r = await ask([at(sessionId("ask")), "hello"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "Echo: hello");
});

test("ask: the whole answer across a drop, exit 0", { skip }, async () => {
  const sid = sessionId("ask-drop");
  let dropped = false;
  const r = await ask([at(sid), slow], { onOutput: () => dropped || ((dropped = true), control(`drop?session_id=${sid}`)) });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "Echo: " + slow);
});

test("ask: the server's error ends the query, exit 1", { skip }, async () => {
  const r = await ask([at(sessionId("ask-fail")), "__fail__"]);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /query_failed/);
});

test("ask: usage, exit 2", { skip }, async () => {
  assert.equal((await ask([])).status, 2);
  assert.equal((await ask([WS])).status, 2);
});

test("ask: the first connection refused, exit 2", { skip }, async () => {
  const r = await ask([`${WS}?session_id=not%20an%20id`, "hello"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /refused.*HTTP 400 invalid_session_id/);
});

test("ask: a lost chunk, exit 3", { skip }, async () => {
  const r = await ask([scripted("gap", sessionId("ask-gap")), "hello"]);
  assert.equal(r.status, 3);
  assert.equal(r.stdout, "Echo");
});

test("ask: a new epoch in the middle of the answer, exit 3", { skip }, async () => {
  let restarted = false;
  const r = await ask([at(sessionId("ask-epoch")), slow], { onOutput: () => restarted || ((restarted = true), control("restart")) });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /gap/);
});

test("ask: another connection takes the session, exit 4", { skip }, async () => {
  const sid = sessionId("ask-replaced");
  const other = new Client(WS, { sessionId: sid, WebSocket: NodeWebSocket });
  let took = false;
  const r = await ask([at(sid), slow], { onOutput: () => took || ((took = true), other.connect()) });
  other.close();
  assert.equal(r.status, 4);
  assert.match(r.stderr, /replaced/);
});

test("ask: AGENTWS_CANCEL_AFTER=1, exit 5 after the first chunk", { skip }, async () => {
  const sid = sessionId("ask-cancel");
  const r = await ask([at(sid), slow], { env: { AGENTWS_CANCEL_AFTER: "1" } });
  assert.equal(r.status, 5);
  assert.equal(r.stdout, "Echo: __");
});

test("ask: AGENTWS_CANCEL_AFTER=1 on a server without cancel (unsupported), exit 5", { skip }, async () => {
  const r = await ask([scripted("core", sessionId("ask-core")), "__slow__ not cancellable"], { env: { AGENTWS_CANCEL_AFTER: "1" } });
  assert.equal(r.status, 5);
  assert.match(r.stderr, /unsupported/);
  assert.equal(r.stdout, "Echo");
});
