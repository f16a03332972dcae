// The API of agentws.js, the protocol's JavaScript client (spec/PROTOCOL.md, section 14
// for the client rules). Written by hand; the frames it passes on are the generated
// types of messages.gen.d.ts (tools/tsgen, from schemas/*.json).

import type { ClientMessage, CompleteFrame, ConnectedFrame, ErrorCode, ErrorFrame, NoticeFrame, ServerMessage } from "./messages.gen.d.ts";

export type * from "./messages.gen.d.ts";

/**
 * The codes of the client's own outcomes, the same as the Go client's
 * (reference/client). Beside them an AgentWSError carries the server's code (ErrorCode)
 * as it is, or "error" from a server without error_codes.
 */
export type ClientErrorCode =
  /** Close 4001: another connection took the session over; the client does not reconnect. Adapter exit 4. */
  | "replaced"
  /** Close 4003: the operator ended the session through the admin API; the client does not reconnect. Adapter exit 4. */
  | "ended"
  /** Frames of a started query were lost (resumed false, a new epoch, a chunk_number or total_chunks that does not follow): the answer may be incomplete. Exit 3. */
  | "gap"
  /** The connection dropped while the query was in flight and the server does not claim resume. Exit 3. */
  | "no_resume"
  /** The first connection failed (an HTTP refusal, or nothing listening), or a reconnection was answered with a 4xx other than 429. Exit 2. */
  | "refused"
  /** The client gave up reconnecting after maxAttempts. Exit 3. */
  | "unreachable"
  /** The client was closed by its owner (close()). Exit 3. */
  | "closed"
  /** disconnected arrived, or disconnect() was called. Exit 3. */
  | "session_ended"
  /** The caller cancelled the query (query.cancel()); also the server's cancelled. Exit 5. */
  | "cancelled"
  /** Cancel asked of a server that does not claim cancel and query_id: nothing was sent (CLIENT-2). Exit 5. */
  | "unsupported"
  /** The server closed with 1002, 1003, 1007, 1008, 1009: reconnecting would get the same; the client stops. Exit 3. */
  | "protocol_error"
  | "unsupported_data"
  | "invalid_payload"
  | "policy_violation"
  | "message_too_big";

/** Every code an AgentWSError can carry. */
export type AgentWSErrorCode = ClientErrorCode | ErrorCode | "error";

/** Why a query, or the client, ended without a whole answer. */
export class AgentWSError extends Error {
  constructor(code: AgentWSErrorCode, message: string, frame?: ErrorFrame | ConnectedFrame | CompleteFrame | ServerMessage, status?: number);
  readonly name: "AgentWSError";
  readonly code: AgentWSErrorCode;
  /** The server's frame that ended the query, when one did. */
  readonly frame?: ErrorFrame | ConnectedFrame | CompleteFrame | ServerMessage;
  /** The HTTP status of a refused handshake, when the WebSocket could tell it (node.mjs's can; browsers' cannot). */
  readonly status?: number;
  /** With code rate_limited: the server's retry_after_ms. */
  readonly retryAfterMs?: number;
}

/** A WebSocket that may record its handshake, as node.mjs's does. */
export interface HandshakeRecorder {
  /** The handshake's HTTP status (101 when it upgraded) and the start of its body. */
  readonly handshake?: { status?: number; body: string };
}

/** The WebSocket constructor a Client uses: the standard one, or node.mjs's. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket & HandshakeRecorder;

export type ClientState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface StateDetail {
  /** The reconnection this is, from 1 (0: the first connection). */
  attempt?: number;
  /** The wait before the next reconnection. */
  delayMs?: number;
  /** The close code of the connection that ended. */
  code?: number;
  /** With open: the connected frame. */
  connected?: ConnectedFrame;
  /** With closed: the code the client ended with, and the error. */
  reason?: AgentWSErrorCode;
  error?: AgentWSError;
}

export interface ClientOptions {
  /** The session; by default the URL's session_id parameter. */
  sessionId?: string;
  /** The user; by default the URL's user_id parameter, if any. */
  userId?: string;
  /** A bearer token, sent as access_token (browsers cannot set headers on a WebSocket). */
  token?: string;
  /** The first reconnection delay (250 ms); it doubles up to maxBackoffMs, with jitter. */
  backoffMs?: number;
  /** The longest reconnection delay (10 s). */
  maxBackoffMs?: number;
  /** Reconnections in a row before giving up with unreachable (Infinity). */
  maxAttempts?: number;
  /** Every frame, both ways, parsed and as sent or received. */
  onFrame?: (dir: "in" | "out", frame: ServerMessage | ClientMessage | Record<string, unknown>, raw: string) => void;
  /**
   * Every notice (an operator's message broadcast through the admin API, section 12.7),
   * once each, in order, as it arrives; the client handles no other frame while it
   * runs. A notice is part of no query: it changes no stream (NOTICE-2).
   */
  onNotice?: (notice: NoticeFrame) => void;
  /** Every change of state. */
  onState?: (state: ClientState, detail?: StateDetail) => void;
  /** A WebSocket constructor (globalThis.WebSocket). */
  WebSocket?: WebSocketConstructor;
}

export interface QueryOptions {
  /** The query's id (the client makes one, unique in it); sent only when the server claims query_id. */
  queryId?: string;
  systemPrompt?: string;
  includeContext?: boolean;
}

/** A whole answer. */
export interface Answer {
  /** The answer: complete's full_response. */
  text: string;
  totalChunks: number;
  /** true when the server replayed the end of a query it had answered (QID-4). */
  replayed: boolean;
  frame: CompleteFrame;
}

/** One query: an async iterator of its chunks, and result, the promise of its answer. */
export class Query implements AsyncIterable<string> {
  readonly client: Client;
  readonly text: string;
  readonly queryId: string;
  /** Written to a connection. */
  readonly sent: boolean;
  /** Its query_start arrived. */
  readonly started: boolean;
  /** Settled for the caller. */
  readonly done: boolean;
  /** The chunks delivered so far. */
  readonly chunks: readonly string[];
  /** The answer so far. */
  readonly answer: string;
  /** Resolves with the whole answer, or rejects with an AgentWSError. */
  readonly result: Promise<Answer>;
  /** The chunks as they arrive; throws the query's AgentWSError when it ends without a whole answer. */
  [Symbol.asyncIterator](): AsyncGenerator<string, void, undefined>;
  /** Ends the query with cancelled and asks the server to stop it; unsupported when the server does not claim cancel. */
  cancel(): void;
}

/** One session of an agentws server, over a connection it reopens after a drop. */
export class Client {
  /** url: the endpoint, such as ws://localhost:8050/ws (its parameters are kept). */
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  readonly sessionId: string;
  readonly userId?: string;
  /** What the last connected claimed. */
  readonly capabilities: readonly string[];
  readonly state: ClientState;
  /** The session's epoch (resume), from the last connected. */
  readonly epoch?: string;
  /** The highest seq received (resume). */
  readonly lastSeq: number;
  has(capability: string): boolean;
  /** Opens the connection; resolves with the connected frame, rejects with refused (or the code the client ended with). */
  connect(): Promise<ConnectedFrame>;
  /** Sends a query (once connected); throws the client's AgentWSError once it has ended. */
  query(text: string, options?: QueryOptions): Query;
  /** Ends the session on the server and closes the client (session_ended). */
  disconnect(): void;
  /** Closes the connection without ending the session (closed). */
  close(): void;
  /** Closes the connection as a network failure would, and reconnects: for trying resume. */
  drop(): void;
}
