// node.mjs: a WebSocket for Node 22 and later (the global one, undici's) that records
// its handshake's HTTP status and body, which the WebSocket API does not expose, so
// that agentws.js can tell a refusal (a 4xx: permanent) from a server that is not
// there yet or overloaded (5xx, 429, no answer: try again). Browsers have no way to
// learn it; there a failed reconnection handshake is always tried again.
//
//   import { Client } from "./agentws.js";
//   import { WebSocket } from "./node.mjs";
//   const client = new Client(url, { WebSocket });

// Where Node keeps undici's global dispatcher (undici's lib/global.js).
const globalDispatcher = Symbol.for("undici.globalDispatcher.1");

// The most of a refusal's body it keeps (the reference server's are a line of JSON).
const maxBody = 4096;

export class WebSocket extends globalThis.WebSocket {
  constructor(url, protocols) {
    const handshake = { status: undefined, body: "" };
    const dispatcher = recorder(handshake);
    super(url, dispatcher ? { protocols, dispatcher } : protocols);
    /** The handshake's HTTP status (101 when it upgraded) and the start of its body. */
    this.handshake = handshake;
  }
}

// recorder returns a dispatcher that hands requests to Node's own and notes the status
// and body of their responses in handshake; undefined where Node has none to wrap.
function recorder(handshake) {
  if (!globalThis[globalDispatcher]) new Request("http://localhost/"); // Node creates it on first use
  const base = globalThis[globalDispatcher];
  if (!base || typeof base.dispatch !== "function") return undefined;
  const note = (status) => (handshake.status = status);
  const keep = (chunk) => {
    if (handshake.body.length < maxBody) handshake.body += Buffer.from(chunk).toString("utf8", 0, maxBody - handshake.body.length);
  };
  return {
    dispatch(opts, handler) {
      const wrapped = new Proxy(handler, {
        get(target, name) {
          const v = target[name];
          if (typeof v !== "function") return v;
          switch (name) {
            case "onHeaders": // undici 6 (Node 22)
            case "onUpgrade":
              return (status, ...rest) => (note(status), v.call(target, status, ...rest));
            case "onData":
              return (chunk) => (keep(chunk), v.call(target, chunk));
            case "onResponseStart": // undici 7
              return (controller, status, ...rest) => (note(status), v.call(target, controller, status, ...rest));
            case "onResponseData":
              return (controller, chunk) => (keep(chunk), v.call(target, controller, chunk));
            default:
              return v.bind(target);
          }
        },
      });
      return base.dispatch(opts, wrapped);
    },
  };
}
