package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/web"
	"github.com/agentws/agentws/schemas"
	"github.com/agentws/agentws/schemas/httpapi"
)

// Server is the reference server. Its zero value is not usable; call [New].
type Server struct {
	cfg          Config
	log          *slog.Logger
	validator    *schemas.Validator
	capabilities []string
	handler      http.Handler
	admin        http.Handler // the admin API (AdminHandler)

	ctx    context.Context // cancelled when the server stops
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	sessions map[string]*session
	offline  offlineSessions // the sessions in the table without a connection, oldest first (HS-10)
	stopping bool            // set under mu when the drain starts: nothing new is tracked after

	perIP, perUser connLimiter // connections of each client address and user (HS-14)
	rates          *queryRates // queries of each client (STREAM-11)

	redis    *redisStore // the shared session store; nil: sessions live in this process's memory
	metrics  *metrics
	upstream upstream  // the latest check of the agent
	mem      memory    // the bytes all sessions hold, against -max-memory-bytes
	reclaim  reclaimer // takes them back from sessions without a connection

	draining   atomic.Bool    // what health, the handshake and attach read
	conns      sync.WaitGroup // connection handlers, added under mu while !stopping
	runners    sync.WaitGroup // query runners, added under mu while !stopping
	background sync.WaitGroup // the keepalive loop
	stats      struct {
		sent    atomic.Int64 // frames written, ever (HEALTH-3)
		active  atomic.Int64 // connections that got connected and are not gone (HEALTH-4)
		evicted atomic.Int64 // frames evicted from offline buffers, ever (BUF-8)
	}
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	v, err := schemas.NewValidator(schemas.Options{})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, validator: v, sessions: map[string]*session{}}
	s.perIP.max, s.perUser.max = cfg.MaxConnsPerIP, cfg.MaxConnsPerUser
	s.rates = newQueryRates(cfg.QueryRate, cfg.QueryBurst)
	s.mem.max, s.mem.wake = int64(cfg.MaxMemoryBytes), s.wakeReclaim
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.metrics = newMetrics(s)
	s.capabilities = []string{"buffering", "error_codes", "query_id", "resume", "cancel"}
	if cfg.Auth != nil {
		s.capabilities = append(s.capabilities, "auth")
	}
	if cfg.adminOn() {
		s.capabilities = append(s.capabilities, "notice")
	}
	if _, ok := cfg.Agent.(agent.Fixture); ok {
		s.capabilities = append(s.capabilities, "fixture")
	}
	if cfg.Store != "" {
		st, err := newRedisStore(s, cfg.Store, cfg.NodeID)
		if err != nil {
			return nil, err
		}
		s.redis = st
		s.metrics.storeUp(st)
		if err := st.start(); err != nil {
			s.cancel(errShutdown)
			s.background.Wait()
			st.close()
			return nil, err
		}
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		s.keepalive()
	}()
	if c, ok := cfg.Agent.(agent.Checker); ok && cfg.UpstreamCheckInterval > 0 {
		s.metrics.upstreamUp(s)
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			s.checkUpstream(c, cfg.UpstreamCheckInterval)
		}()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.Handle("GET /metrics", s.metrics.handler())
	s.admin = s.newAdminHandler()
	if cfg.adminOn() && !cfg.AdminOwnAddress {
		mux.Handle("/admin/", s.admin)
	}
	if cfg.Console {
		web.Register(mux)
	}
	mux.HandleFunc("/", fallback(mux))
	s.handler = httpapi.HandlerFromMux(httpapi.NewStrictHandler(healthAPI{s}, nil), mux)
	return s, nil
}

// Capabilities returns the capabilities the server claims in connected.
func (s *Server) Capabilities() []string { return slices.Clone(s.capabilities) }

// ServeHTTP serves /ws, /ws/health, /livez, /readyz, /metrics and (with Console) the console at / and /agentws.js, to requests whose Host it
// answers to (HS-13).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" { // a handshake: one line of the access log each
		a := newAccessLog(w, r, s.log, s.clientAddr(r))
		defer a.done()
		w = a
	}
	if s.checkHost(w, r) {
		s.handler.ServeHTTP(w, r)
	}
}

var idSyntax = regexp.MustCompile(`^[A-Za-z0-9._:~-]{1,128}$`)

// httpError answers a refused request with the JSON body of http-error.json.
func httpError(w http.ResponseWriter, status int, code httpapi.HTTPErrorCode, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(httpapi.HTTPError{Code: code, Error: errorText(fmt.Sprintf(format, args...))}) // it may quote the request
}

// fallback answers a request no route of mux takes with a JSON error (HS-11): 405 when
// the path is served for GET, 404 when it is not served at all.
func fallback(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		get := r.Clone(r.Context())
		get.Method = http.MethodGet
		if _, pattern := mux.Handler(get); pattern != "/" {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, httpapi.HTTPErrorCodeMethodNotAllowed, "%s does not allow %s: use GET", r.URL.Path, r.Method)
			return
		}
		httpError(w, http.StatusNotFound, httpapi.HTTPErrorCodeNotFound, "no such path: %s", r.URL.Path)
	}
}

// serveWS checks the handshake (admit), upgrades (openSession) and hands the
// connection to a goroutine of its own (serveConn), and returns: net/http then lets go
// of the request, its response buffer and the stack its handshake grew, which a
// connection that may stay idle for hours does not need.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	a := s.admit(w, r)
	if a == nil {
		return
	}
	if !s.track(&s.conns) {
		s.refuseJoin(w, a.log, errShutdown)
		a.release(s)
		return
	}
	c, sess := s.openSession(w, r, a)
	if c == nil {
		s.conns.Done()
		a.release(s)
		return
	}
	go s.serveConn(c, sess, a)
}

// serveConn reads the connection until it ends. The connection holds its places among
// its address's and its user's connections (HS-14), and in s.conns, until then.
func (s *Server) serveConn(c *conn, sess liveSession, a *handshake) {
	defer a.release(s)
	defer s.conns.Done()
	s.readLoop(c, sess)
	<-c.done
}

// A handshake is one that passed admit's checks: what it asks for, and the places it
// holds among its address's and its user's connections and their query rates.
type handshake struct {
	log       *slog.Logger
	sid, user string
	resume    resumeRequest
	rate      *queryRate
	addr      string // it holds a place among its address's connections, and its user's when it has one
}

func (a *handshake) release(s *Server) {
	s.rates.release(a.rate)
	if a.user != "" {
		s.perUser.release(a.user)
	}
	s.perIP.release(a.addr)
}

// admit checks the handshake (HS-1 to HS-14, in the order section 2 gives), and
// returns it, or nil when it answered a refusal.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) *handshake {
	q := r.URL.Query()
	sid, user := q.Get("session_id"), q.Get("user_id")
	log := s.log.With("session_id", sid, "remote", r.RemoteAddr)
	if !s.checkUpgrade(w, r) {
		return nil
	}
	switch {
	case s.draining.Load():
		s.refuse(w, http.StatusServiceUnavailable, httpapi.HTTPErrorCodeDraining, "the server is shutting down and accepts no new connections")
		return nil
	case sid == "":
		s.refuse(w, http.StatusBadRequest, httpapi.HTTPErrorCodeMissingSessionId, "session_id query parameter is required")
		return nil
	case !idSyntax.MatchString(sid):
		s.refuse(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidSessionId, "session_id %q is not 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -", sid)
		return nil
	case q.Has("user_id") && !idSyntax.MatchString(user):
		s.refuse(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidUserId, "user_id %q is not 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -", user)
		return nil
	}
	resume, err := resumeFrom(q)
	if err != nil {
		s.refuse(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidParameter, "%v", err)
		return nil
	}
	addr := s.clientAddr(r)
	if len(s.cfg.TrustedProxies) > 0 {
		log = log.With("client", addr)
	}
	if !s.perIP.acquire(addr) {
		log.Warn("connections per client address at their bound: refusing", "max_conns_per_ip", s.cfg.MaxConnsPerIP)
		s.tooMany(w, "address "+addr, s.cfg.MaxConnsPerIP)
		return nil
	}
	held := false
	defer func() {
		if !held {
			s.perIP.release(addr)
		}
	}()
	if s.cfg.Auth != nil {
		sub, err := s.cfg.Auth.subject(r)
		if err != nil {
			log.Warn("unauthorized", "err", err)
			s.refuse(w, http.StatusUnauthorized, httpapi.HTTPErrorCodeUnauthorized, "%v", err)
			return nil
		}
		if q.Has("user_id") && user != sub {
			s.refuse(w, http.StatusForbidden, httpapi.HTTPErrorCodeUserMismatch, "user_id %q is not the token's subject", user)
			return nil
		}
		user = sub // AUTH-2
	}
	// A client is its user with authentication, its address without: a user_id alone
	// proves nothing (STREAM-11).
	client := "address " + addr
	if s.cfg.Auth != nil {
		client = "user " + user
	}
	if user != "" {
		if !s.perUser.acquire(user) {
			log.Warn("connections of the user at their bound: refusing", "user_id", user, "max_conns_per_user", s.cfg.MaxConnsPerUser)
			s.tooMany(w, "user "+strconv.Quote(user), s.cfg.MaxConnsPerUser)
			return nil
		}
		defer func() {
			if !held {
				s.perUser.release(user)
			}
		}()
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin, r.Host) {
		hint := "-allowed-origins=" + originHost(origin)
		if origin == "null" {
			hint = "-allowed-origins=null, which lets in any page that puts itself in a sandboxed frame: rather serve the page over http(s) and allow its origin"
		}
		log.Warn("origin refused", "origin", clip(origin, maxLogValue), "allow_with", clip(hint, 2*maxLogValue))
		s.refuse(w, http.StatusForbidden, httpapi.HTTPErrorCodeOriginNotAllowed, "origin %q is not allowed", origin)
		return nil
	}
	held = true
	return &handshake{log: log, sid: sid, user: user, resume: resume, rate: s.rates.acquire(client), addr: addr}
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		slices.ContainsFunc(strings.Split(r.Header.Get("Connection"), ","), func(t string) bool {
			return strings.EqualFold(strings.TrimSpace(t), "upgrade")
		})
}

// resumeFrom reads last_seq and epoch (SEQ-3); a malformed one is an error (HS-7).
func resumeFrom(q url.Values) (resumeRequest, error) {
	r := resumeRequest{epoch: q.Get("epoch")}
	if q.Has("epoch") && (r.epoch == "" || len(r.epoch) > 128) {
		return r, fmt.Errorf("epoch is %d characters long, not 1 to 128", len(r.epoch))
	}
	if !q.Has("last_seq") {
		return r, nil
	}
	n, err := strconv.Atoi(q.Get("last_seq"))
	if err != nil || n < 0 {
		return r, fmt.Errorf("last_seq %q is not a number from 0", q.Get("last_seq"))
	}
	r.asked, r.lastSeq = true, n
	return r, nil
}

// originAllowed applies HS-8: the request's own host, or an allowed host pattern.
func (s *Server) originAllowed(origin, host string) bool {
	if origin == "null" { // an opaque origin: allowed by name only, never by a pattern (HS-8)
		return slices.Contains(s.cfg.AllowedOrigins, "null")
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, p := range s.cfg.AllowedOrigins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

func originHost(origin string) string {
	if u, err := url.Parse(origin); err == nil && u.Host != "" {
		return u.Host
	}
	return origin
}

// track adds one to wg unless the server is stopping. Adding under mu, before the
// stop is marked, orders every Add before the Wait of the drain.
func (s *Server) track(wg *sync.WaitGroup) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	wg.Add(1)
	return true
}

// startRunner runs fn as a query runner, unless the server is stopping.
func (s *Server) startRunner(fn func()) bool {
	if !s.track(&s.runners) {
		return false
	}
	go func() {
		defer s.runners.Done()
		fn()
	}()
	return true
}

// stop marks the server as stopping; it returns false when it already was.
func (s *Server) stop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.stopping
	s.stopping = true
	s.draining.Store(true)
	return !was
}
