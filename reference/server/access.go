package server

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/agentws/agentws/schemas/httpapi"
	"github.com/agentws/agentws/schemas/msg"
)

// accessLog records one handshake on /ws for the access log: one line each, when the
// upgrade is answered (101) or the request refused (its status and code), whatever
// refused it (Host, the upgrade itself, the session, the bounds, authentication, the
// origin).
type accessLog struct {
	http.ResponseWriter
	log    *slog.Logger
	r      *http.Request
	client string // the client's address, which differs from the peer's behind a trusted proxy
	start  time.Time

	status int
	code   httpapi.HTTPErrorCode
	reason string
	logged bool
}

func newAccessLog(w http.ResponseWriter, r *http.Request, log *slog.Logger, client string) *accessLog {
	return &accessLog{ResponseWriter: w, r: r, log: log, client: client, start: time.Now()}
}

// WriteHeader logs the handshake once its status is known: at 101 the connection is
// about to begin, and may last for hours.
func (a *accessLog) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
		a.write()
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *accessLog) Write(p []byte) (int, error) {
	if a.status == 0 {
		a.WriteHeader(http.StatusOK)
	}
	return a.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController, and the WebSocket library, which follows it,
// the connection to hijack.
func (a *accessLog) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// refused notes the code and text of the refusal about to be written.
func (a *accessLog) refused(code httpapi.HTTPErrorCode, reason string) {
	a.code, a.reason = code, reason
}

// upgraded logs a handshake whose 101 the upgraded connection writes (corkWriter).
func (a *accessLog) upgraded() {
	if a.status == 0 {
		a.status = http.StatusSwitchingProtocols
		a.write()
	}
}

// done logs a handshake whose handler returned without a status.
func (a *accessLog) done() {
	if !a.logged {
		a.status = http.StatusOK
		a.write()
	}
}

func (a *accessLog) write() {
	a.logged = true
	q := a.r.URL.Query()
	attrs := []any{
		"status", a.status, "remote", a.r.RemoteAddr, "session_id", q.Get("session_id"),
		"took", time.Since(a.start).Round(time.Microsecond),
	}
	if host, _, _ := net.SplitHostPort(a.r.RemoteAddr); a.client != host {
		attrs = append(attrs, "client", a.client)
	}
	if q.Has("user_id") {
		attrs = append(attrs, "user_id", q.Get("user_id"))
	}
	if q.Has("last_seq") || q.Has("epoch") {
		attrs = append(attrs, "last_seq", q.Get("last_seq"), "epoch", q.Get("epoch"))
	}
	if o := a.r.Header.Get("Origin"); o != "" {
		attrs = append(attrs, "origin", clip(o, maxLogValue))
	}
	if ua := a.r.Header.Get("User-Agent"); ua != "" {
		attrs = append(attrs, "user_agent", clip(ua, maxLogValue))
	}
	if a.code != "" {
		attrs = append(attrs, "code", a.code, "error", clip(a.reason, maxLogValue))
	}
	a.log.Info("handshake", attrs...)
}

// maxLogValue bounds a value a client chose (a header, a refusal's text quoting its
// frame) in a log line, so that a line stays small whatever the client sent.
const maxLogValue = 256

// refusalLog bounds the log lines of a connection's refused frames: a client that
// keeps sending frames the server refuses (a flood over the query rate, malformed
// frames) would otherwise write a line for each. Ten are logged at once, then one a
// second; a logged line counts the ones left out since the one before.
type refusalLog struct {
	lim      *rate.Limiter
	unlogged int
}

// A refusal is what the log says of a refused client frame.
type refusal struct {
	code    msg.ErrorCode
	queryID string
	text    string
}

// logRefusal logs r, within the connection's bound. The caller holds no lock.
func (c *conn) logRefusal(r *refusal) {
	c.mu.Lock()
	if c.refusals.lim == nil {
		c.refusals.lim = rate.NewLimiter(1, 10)
	}
	if !c.refusals.lim.Allow() {
		c.refusals.unlogged++
		c.mu.Unlock()
		return
	}
	unlogged := c.refusals.unlogged
	c.refusals.unlogged = 0
	c.mu.Unlock()
	attrs := []any{"code", r.code, "error", clip(r.text, maxLogValue)}
	if r.queryID != "" {
		attrs = append(attrs, "query_id", r.queryID)
	}
	if unlogged > 0 {
		attrs = append(attrs, "unlogged_refusals", unlogged)
	}
	c.log.Info("client frame refused", attrs...)
}
