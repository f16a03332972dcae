// A use of agentws.js's declarations, type-checked by run.sh: it compiles only while
// agentws.d.ts and messages.gen.d.ts say what the client does.
import { AgentWSError, Client, Query } from "../agentws.js";
import type { AgentWSErrorCode, Answer, ChunkFrame, ClientMessage, ConnectedFrame, ErrorCode, ServerMessage } from "../agentws.js";

export async function ask(url: string, text: string): Promise<string> {
  const client = new Client(url, {
    sessionId: "s-1",
    userId: "u-1",
    maxAttempts: 5,
    backoffMs: 100,
    onFrame(dir, frame, raw) {
      if (dir === "in" && "type" in frame && frame.type === "chunk") console.log((frame as ChunkFrame).chunk_number, raw.length);
    },
    onNotice(n) {
      console.log(n.level, n.notice_id, n.message, n.seq, n.data?.url);
    },
    onState(state, detail) {
      if (state === "open" && detail?.connected) console.log(detail.connected.capabilities?.join(","), detail.connected.epoch);
      if (state === "closed") console.log(detail?.reason);
    },
  });
  const connected: ConnectedFrame = await client.connect();
  console.log(connected.resumed, client.has("resume"), client.capabilities.length, client.lastSeq);
  const q: Query = client.query(text, { queryId: "q-1", systemPrompt: "be brief", includeContext: false });
  let shown = "";
  try {
    for await (const chunk of q) {
      shown += chunk;
      if (shown.length > 1000) q.cancel();
    }
    const answer: Answer = await q.result;
    return answer.replayed ? answer.text : shown + `(${answer.totalChunks} chunks, ${answer.frame.full_response.length} characters)`;
  } catch (err) {
    if (!(err instanceof AgentWSError)) throw err;
    const status = exitStatus(err.code);
    console.error(err.code, err.message, err.status, err.retryAfterMs, err.frame?.type, status);
    return "";
  } finally {
    client.close();
  }
}

// The adapter contract's exit statuses: the switch must cover every code.
export function exitStatus(code: AgentWSErrorCode): number {
  switch (code) {
    case "refused":
      return 2;
    case "gap":
    case "no_resume":
    case "unreachable":
    case "closed":
    case "session_ended":
    case "protocol_error":
    case "unsupported_data":
    case "invalid_payload":
    case "policy_violation":
    case "message_too_big":
      return 3;
    case "replaced":
    case "ended":
      return 4;
    case "cancelled":
    case "unsupported":
      return 5;
    default: {
      const server: ErrorCode | "error" = code;
      return server === "error" ? 1 : 1;
    }
  }
}

// Every server message has its type, and the union selects the frame by it.
export function describe(f: ServerMessage): string {
  switch (f.type) {
    case "connected":
      return `${f.session_id} ${f.protocol_version ?? "1.0"}`;
    case "query_start":
      return f.query;
    case "chunk":
      return `${f.chunk_number}: ${f.content}`;
    case "complete":
      return `${f.total_chunks} ${f.full_response} ${f.replayed ?? false}`;
    case "error":
      return `${f.code ?? "error"}: ${f.error} ${f.retry_after_ms ?? ""}`;
    case "pong":
    case "keepalive":
      return f.timestamp;
    case "disconnected":
      return f.message ?? "";
    case "notice":
      return `${f.level} ${f.notice_id}: ${f.message} ${JSON.stringify(f.data ?? {})}`;
    default: {
      const never: never = f;
      return never;
    }
  }
}

export const frames: ClientMessage[] = [
  { type: "query", query: "hello", query_id: "q-1" },
  { type: "cancel", query_id: "q-1" },
  { type: "ping" },
  { type: "disconnect" },
];

// @ts-expect-error: a query needs its text
export const noText: ClientMessage = { type: "query" };
// @ts-expect-error: not a code of the client or the server
export const notACode: AgentWSErrorCode = "no_such_code";
