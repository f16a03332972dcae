// ask.mjs: the JavaScript client's adapter, a command-line client on agentws.js that
// asks one query and prints its answer as the chunks arrive. Node 22 or later.
//
//   node ask.mjs URL QUERY
//
// URL is the endpoint with the session's parameters (ws://host:port/ws?session_id=S,
// with user_id=U if any); QUERY is sent once connected. stdout: the content of each
// chunk as the client delivers it, nothing else; stderr: why it ended, when not whole,
// and the server's notices (an operator's messages).
// Exit status: 0 the whole answer; 1 the server ended the query with an error; 2 usage,
// or the first connection failed; 3 the answer is incomplete or was lost; 4 another
// connection took the session over (4001), or the operator ended the session (4003);
// 5 cancelled.
//
// Environment: AGENTWS_CANCEL_AFTER=N cancels the query (query.cancel()) after its N-th
// chunk; AGENTWS_MAX_ATTEMPTS=N, reconnections in a row before giving up (10);
// AGENTWS_TOKEN, a bearer token sent as access_token.
import { Client } from "./agentws.js";
import { WebSocket } from "./node.mjs";

// The exit status of each of the client's own codes; the server's codes give 1.
const statusOf = {
  refused: 2,
  gap: 3,
  no_resume: 3,
  unreachable: 3,
  closed: 3,
  session_ended: 3,
  protocol_error: 3,
  unsupported_data: 3,
  invalid_payload: 3,
  policy_violation: 3,
  message_too_big: 3,
  replaced: 4,
  ended: 4,
  cancelled: 5,
  unsupported: 5,
};

function count(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  if (!/^[0-9]+$/.test(v)) {
    process.stderr.write(`ask: ${name} is ${JSON.stringify(v)}, not a number\n`);
    process.exit(2);
  }
  return Number(v);
}

// exit ends the process once stdout has taken everything written to it.
function exit(status) {
  process.stdout.write("", () => process.exit(status));
}

async function main(args) {
  if (args.length !== 2 || !args[1]) {
    process.stderr.write("usage: node ask.mjs URL QUERY\n");
    return exit(2);
  }
  const [url, text] = args;
  const cancelAfter = count("AGENTWS_CANCEL_AFTER", 0);
  let client;
  try {
    client = new Client(url, {
      WebSocket,
      maxAttempts: count("AGENTWS_MAX_ATTEMPTS", 10),
      token: process.env.AGENTWS_TOKEN || undefined,
      onNotice: (n) => process.stderr.write(`ask: notice (${n.level}): ${n.message}\n`),
    });
  } catch (err) {
    process.stderr.write(`ask: ${err.message}\n`);
    return exit(2);
  }
  const q = client.query(text);
  client.connect().catch(() => {}); // a refusal ends q too, with its code
  let n = 0;
  try {
    for await (const chunk of q) {
      process.stdout.write(chunk);
      if (++n === cancelAfter) q.cancel();
    }
    await q.result;
  } catch (err) {
    const status = statusOf[err.code] ?? (err.frame ? 1 : 3);
    process.stderr.write(`ask: ${err.code}: ${err.message}\n`);
    client.close();
    return exit(status);
  }
  client.close();
  return exit(0);
}

main(process.argv.slice(2));
