package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/adminapi"
	"github.com/agentws/agentws/schemas/httpapi"
	"github.com/agentws/agentws/schemas/msg"
)

// The admin API (spec/PROTOCOL.md section 12.7, extension notice): operators broadcast
// notices to sessions, list the sessions and end one. It is off unless an admin
// credential is configured (AdminToken, or AdminScope with Auth), answers every request
// without that credential with 401 before it reads the body (ADMIN-1), and is served
// beside /ws or, with AdminOwnAddress, only through AdminHandler, on an address of its
// own. The handler is generated from spec/openapi.yaml (schemas/adminapi).

// closeSessionEnded is the close code of a connection whose session the operator ended
// (ADMIN-4).
const closeSessionEnded = websocket.StatusCode(4003)

// Admin API bounds.
const (
	defaultAdminBodyBytes = 8 << 20 // the largest POST /admin/broadcast body, by default
	defaultSessionPage    = 100     // sessions of a page of GET /admin/sessions without limit
	maxSessionPage        = 1000    // the largest limit
)

// adminOn reports whether the admin API is configured.
func (c *Config) adminOn() bool {
	return c.AdminToken != "" || (c.AdminScope != "" && c.Auth != nil)
}

// sessionStats is what the admin API shows of a session's activity (ADMIN-3), kept by
// its connections: when its latest connection joined, when it last read or wrote a
// frame, and the frames written to its connections. Its fields are read without the
// session's lock.
type sessionStats struct {
	since  atomic.Int64 // Unix milliseconds
	active atomic.Int64 // Unix milliseconds
	sent   atomic.Int64
}

func (st *sessionStats) joined() {
	now := time.Now().UnixMilli()
	st.since.Store(now)
	st.active.Store(now)
}

func (st *sessionStats) touch() { st.active.Store(time.Now().UnixMilli()) }

func millisStamp(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(stampLayout)
}

// A broadcastTarget is what a broadcast body targets (ADMIN-2).
type broadcastTarget struct {
	all                    bool // neither sessions nor users was given
	sessions, users        map[string]bool
	exclSessions, exclUser map[string]bool
}

func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// targetOf reads the targets of a broadcast body; present tells whether the body
// had sessions or users at all (an empty list targets none of its kind).
func targetOf(b adminapi.Broadcast, present bool) broadcastTarget {
	return broadcastTarget{
		all:      !present,
		sessions: setOf(b.Sessions), users: setOf(b.Users),
		exclSessions: setOf(b.ExcludeSessions), exclUser: setOf(b.ExcludeUsers),
	}
}

// reaches reports whether the broadcast targets the session sid of user.
func (t broadcastTarget) reaches(sid, user string) bool {
	if t.exclSessions[sid] || (user != "" && t.exclUser[user]) {
		return false
	}
	return t.all || t.sessions[sid] || (user != "" && t.users[user])
}

// noticeBuilder builds the notice n for session sid, numbered seq.
func noticeBuilder(n msg.Notice, sid string) func(seq int) any {
	return func(seq int) any {
		m := n
		m.SessionId, m.Seq, m.Timestamp = sid, seq, timestamp()
		return m
	}
}

// noticeBytes is the size of the notice n as a session's frame, for the longest session
// id and seq. A broadcast refuses a notice larger than a session's buffer: buffered, it
// would evict every frame of the buffer and the history, then itself (BUF-7), so that a
// session without a connection would lose what it had and get nothing.
func noticeBytes(n msg.Notice) int {
	return len(encode(noticeBuilder(n, strings.Repeat("x", 128))(1<<53 - 1)).data)
}

// broadcastNotice gives the notice n to every session of this process that t reaches, each
// once, and returns how many it reached (NOTICE-1, NOTICE-3). A session without a
// connection buffers it; one whose handshake has not joined it yet is not held yet.
func (s *Server) broadcastNotice(n msg.Notice, t broadcastTarget) int {
	reached := 0
	for _, sess := range s.snapshot() {
		if !t.reaches(sess.id, sess.user) {
			continue
		}
		sess.mu.Lock()
		if sess.attached > 0 && sess.emitLocked(noticeBuilder(n, sess.id), true) != nil {
			reached++
		}
		sess.mu.Unlock()
	}
	return reached
}

// info returns what the admin API shows of the session; false when it is not held
// yet (no connection joined it) or has ended.
func (s *session) info() (adminapi.SessionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.attached == 0 {
		return adminapi.SessionInfo{}, false
	}
	state := adminapi.SessionInfoStateDetached
	if s.conn != nil {
		state = adminapi.SessionInfoStateConnected
	}
	return adminapi.SessionInfo{
		SessionId: s.id, UserId: s.user, State: state,
		ConnectedAt:    millisStamp(s.stats.since.Load()),
		LastActivity:   millisStamp(s.stats.active.Load()),
		FramesSent:     int(s.stats.sent.Load()),
		BufferedFrames: s.buf.len(),
	}, true
}

// sessionPage returns the page of this process's sessions after the session_id after,
// at most limit of them in session_id order, and the session_id the next page follows
// ("" when none does). Only the page's sessions are asked for their state: a session
// that ended meanwhile is left out of it, as the Redis store's sessionPage does.
func (s *Server) sessionPage(after string, limit int) ([]adminapi.SessionInfo, string) {
	all := s.snapshot()
	slices.SortFunc(all, func(a, b *session) int { return strings.Compare(a.id, b.id) })
	page, next := pageOf(all, func(sess *session) string { return sess.id }, after, limit)
	var out []adminapi.SessionInfo
	for _, sess := range page {
		if info, ok := sess.info(); ok {
			out = append(out, info)
		}
	}
	return out, next
}

// lookup returns the session sid of this process's table, or nil.
func (s *Server) lookup(sid string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[sid]
}

// endByOperator ends session sid as disconnect does (DISC-3) and closes its connection
// with 4003 (ADMIN-4); it returns false when the server holds no such session.
func (s *Server) endByOperator(sid string) bool {
	sess := s.lookup(sid)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.ended || sess.attached == 0 {
		return false
	}
	if c := sess.conn; c != nil {
		s.release(c)
		unsent, _ := c.closeNow(closeSessionEnded, "session ended")
		dropAll(unsent)
	}
	sess.log.Info("the operator ended the session through the admin API")
	sess.endLocked(errSessionEnded)
	return true
}

// The store behind the admin API: this process's sessions, or the Redis store's.
func (s *Server) adminBroadcast(ctx context.Context, n msg.Notice, t broadcastTarget) (int, error) {
	if s.redis != nil {
		return s.redis.broadcast(ctx, n, t)
	}
	return s.broadcastNotice(n, t), nil
}

// adminSessions returns the page of at most limit sessions after the session_id after,
// in session_id order, and the session_id the next page follows ("" when none does).
func (s *Server) adminSessions(ctx context.Context, after string, limit int) ([]adminapi.SessionInfo, string, error) {
	if s.redis != nil {
		return s.redis.sessionPage(ctx, after, limit)
	}
	page, next := s.sessionPage(after, limit)
	return page, next, nil
}

// pageOf returns the items of sorted (by key) after the key after, at most limit of
// them, and the key of the last one when more follow.
func pageOf[T any](sorted []T, key func(T) string, after string, limit int) ([]T, string) {
	i, found := slices.BinarySearchFunc(sorted, after, func(e T, t string) int { return strings.Compare(key(e), t) })
	if found {
		i++
	}
	page := sorted[i:min(len(sorted), i+limit)]
	if i+limit < len(sorted) {
		return page, key(page[len(page)-1])
	}
	return page, ""
}

func (s *Server) adminSession(ctx context.Context, sid string) (adminapi.SessionInfo, bool, error) {
	if s.redis != nil {
		return s.redis.sessionInfo(ctx, sid)
	}
	if sess := s.lookup(sid); sess != nil {
		info, ok := sess.info()
		return info, ok, nil
	}
	return adminapi.SessionInfo{}, false, nil
}

func (s *Server) adminEnd(ctx context.Context, sid string) (bool, error) {
	if s.redis != nil {
		return s.redis.endByOperator(ctx, sid)
	}
	return s.endByOperator(sid), nil
}

// adminAPI implements the generated strict server of the admin API.
type adminAPI struct{ s *Server }

// broadcastKey carries, in a request's context, whether the broadcast body named
// sessions or users (an empty list targets none, an absent one all).
type broadcastKey struct{}

func (a adminAPI) PostBroadcast(ctx context.Context, req adminapi.PostBroadcastRequestObject) (adminapi.PostBroadcastResponseObject, error) {
	b := *req.Body
	level := msg.NoticeLevel(b.Level)
	if level == "" {
		level = msg.NoticeLevelInfo
	}
	n := msg.Notice{Type: msg.NoticeTypeNotice, NoticeId: "n-" + randomHex(8), Message: b.Message, Level: level, Data: b.Data}
	if size := noticeBytes(n); size > a.s.cfg.BufferBytes {
		return adminapi.PostBroadcast400JSONResponse{Code: adminapi.HTTPErrorCode(httpapi.HTTPErrorCodeInvalidBody), Error: fmt.Sprintf(
			"the notice, with its message and data, would be %d bytes: more than a session's buffer holds (%d bytes, -buffer-bytes)", size, a.s.cfg.BufferBytes)}, nil
	}
	present, _ := ctx.Value(broadcastKey{}).(bool)
	reached, err := a.s.adminBroadcast(ctx, n, targetOf(b, present))
	if err != nil {
		return nil, err
	}
	a.s.metrics.broadcasts.Inc()
	a.s.metrics.noticed.Add(float64(reached))
	a.s.log.Info("broadcast a notice", "notice_id", n.NoticeId, "level", level, "sessions", reached)
	return adminapi.PostBroadcast200JSONResponse{NoticeId: n.NoticeId, Sessions: reached}, nil
}

func (a adminAPI) ListSessions(ctx context.Context, req adminapi.ListSessionsRequestObject) (adminapi.ListSessionsResponseObject, error) {
	p := req.Params // checked by adminAuth (checkPage)
	limit, after := p.Limit, p.After
	if limit == 0 {
		limit = defaultSessionPage
	}
	sessions, next, err := a.s.adminSessions(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	if sessions == nil {
		sessions = []adminapi.SessionInfo{}
	}
	return adminapi.ListSessions200JSONResponse{Sessions: sessions, Next: next}, nil
}

func notFound(sid string) adminapi.HTTPError {
	return adminapi.HTTPError{Code: adminapi.HTTPErrorCode(httpapi.HTTPErrorCodeSessionNotFound), Error: errorText(fmt.Sprintf("the server holds no session %q", sid))}
}

func (a adminAPI) GetSession(ctx context.Context, req adminapi.GetSessionRequestObject) (adminapi.GetSessionResponseObject, error) {
	info, ok, err := a.s.adminSession(ctx, req.SessionId)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return adminapi.GetSession404JSONResponse(notFound(req.SessionId)), nil
	}
	return adminapi.GetSession200JSONResponse(info), nil
}

func (a adminAPI) DeleteSession(ctx context.Context, req adminapi.DeleteSessionRequestObject) (adminapi.DeleteSessionResponseObject, error) {
	ok, err := a.s.adminEnd(ctx, req.SessionId)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return adminapi.DeleteSession404JSONResponse(notFound(req.SessionId)), nil
	}
	return adminapi.DeleteSession204Response{}, nil
}

// AdminHandler returns the handler of the admin API (/admin/...): with the admin API
// off, it answers every request 404 not_found (ADMIN-1). It is what an own admin
// address serves; without AdminOwnAddress, ServeHTTP serves it too.
func (s *Server) AdminHandler() http.Handler { return s.admin }

func (s *Server) newAdminHandler() http.Handler {
	mux := http.NewServeMux()
	if !s.cfg.adminOn() {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			httpError(w, http.StatusNotFound, httpapi.HTTPErrorCodeNotFound, "no such path: %s (the admin API is off: it needs an admin token)", r.URL.Path)
		})
		return mux
	}
	strict := adminapi.NewStrictHandlerWithOptions(adminAPI{s}, nil, adminapi.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			httpError(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidBody, "%v", err)
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("admin request failed", "path", r.URL.Path, "err", err)
			httpError(w, http.StatusServiceUnavailable, httpapi.HTTPErrorCodeStoreUnavailable, "%v", err)
		},
	})
	adminapi.HandlerWithOptions(strict, adminapi.StdHTTPServerOptions{
		BaseRouter: mux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			httpError(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidParameter, "%v", err)
		},
	})
	mux.HandleFunc("/", adminFallback(mux))
	return s.adminAuth(mux)
}

// adminFallback answers a request no admin route takes: 405 with the methods the path
// allows, or 404.
func adminFallback(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			try := r.Clone(r.Context())
			try.Method = m
			if _, pattern := mux.Handler(try); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			httpError(w, http.StatusMethodNotAllowed, httpapi.HTTPErrorCodeMethodNotAllowed, "%s does not allow %s: use %s", r.URL.Path, r.Method, strings.Join(allow, " or "))
			return
		}
		httpError(w, http.StatusNotFound, httpapi.HTTPErrorCodeNotFound, "no such path: %s", r.URL.Path)
	}
}

// adminAuth refuses a request without the admin credential with 401, before it reads
// the body (ADMIN-1); it bounds the body of the others, and checks a broadcast body
// against broadcast.json, naming the member that is wrong (ADMIN-2).
func (s *Server) adminAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.adminCredential(r); err != nil {
			s.log.Warn("admin request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentws admin"`)
			httpError(w, http.StatusUnauthorized, httpapi.HTTPErrorCodeUnauthorized, "%v", err)
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/admin/sessions" {
			if err := checkPage(r.URL.Query()); err != nil {
				httpError(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidParameter, "%v", err)
				return
			}
		}
		if r.Method == http.MethodPost && r.URL.Path == "/admin/broadcast" {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.AdminBodyBytes))
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				httpError(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidBody, "the body is larger than %d bytes (-admin-max-body-bytes)", tooBig.Limit)
				return
			case err != nil:
				httpError(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidBody, "the body could not be read: %v", err)
				return
			}
			doc, err := schemas.Decode(body)
			if err == nil {
				err = s.validator.ValidateValue(schemas.Broadcast, doc)
			}
			if err != nil {
				httpError(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidBody, "the body is not a valid broadcast (broadcast.json): %v", err)
				return
			}
			obj, _ := doc.(map[string]any)
			_, hasSessions := obj["sessions"]
			_, hasUsers := obj["users"]
			r = r.WithContext(context.WithValue(r.Context(), broadcastKey{}, hasSessions || hasUsers))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// checkPage checks the limit and after of GET /admin/sessions (ADMIN-3).
func checkPage(q url.Values) error {
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxSessionPage {
			return fmt.Errorf("limit %q is not a number from 1 to %d", clip(q.Get("limit"), maxLogValue), maxSessionPage)
		}
	}
	if q.Has("after") && !idSyntax.MatchString(q.Get("after")) {
		return fmt.Errorf("after %q is not a session id: 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -", clip(q.Get("after"), maxLogValue))
	}
	return nil
}

// adminCredential checks the request's admin credential: the bearer token is the
// admin token, or (with Auth and AdminScope) a valid JWT with the admin scope in its
// scope or scp claim. A token that only authenticates a client is not one (ADMIN-1).
func (s *Server) adminCredential(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errors.New("the admin API needs an admin credential: Authorization: Bearer <admin token>")
	}
	scheme, raw, ok := strings.Cut(h, " ")
	raw = strings.TrimSpace(raw)
	if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return errors.New("the Authorization header is not \"Bearer <admin token>\"")
	}
	if s.cfg.AdminToken != "" {
		got, want := sha256.Sum256([]byte(raw)), sha256.Sum256([]byte(s.cfg.AdminToken))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return nil
		}
	}
	if s.cfg.AdminScope == "" || s.cfg.Auth == nil {
		return errors.New("the bearer token is not the admin token")
	}
	token, err := s.cfg.Auth.parse(raw)
	if err != nil {
		return fmt.Errorf("the bearer token is not the admin token, and %w", err)
	}
	if !hasScope(token, s.cfg.AdminScope) {
		return fmt.Errorf("the bearer token is not the admin token, and the JWT has not the admin scope %q", s.cfg.AdminScope)
	}
	return nil
}

// hasScope reports whether the token's scope claim (a space-separated string, RFC
// 8693) or scp claim (a string or a list) holds scope.
func hasScope(token *jwt.Token, scope string) bool {
	claims, _ := token.Claims.(jwt.MapClaims)
	for _, name := range []string{"scope", "scp"} {
		switch v := claims[name].(type) {
		case string:
			if slices.Contains(strings.Fields(v), scope) {
				return true
			}
		case []any:
			for _, e := range v {
				if e == scope {
					return true
				}
			}
		}
	}
	return false
}
