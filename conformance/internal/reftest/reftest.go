// Package reftest runs the reference server in-process for the harness's tests and
// for the default target of go test ./conformance. The harness itself
// (package conformance) never imports the reference server; only tests use this.
package reftest

import (
	"context"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/reference/clustertest"
	"github.com/agentws/agentws/reference/server"
)

// The reference server's settings when it runs in-process: short, so that the
// keepalive and TTL cases run quickly.
const (
	Keepalive  = 400 * time.Millisecond
	SessionTTL = 4 * time.Second
	BufferSize = 40 // small enough for buf_bounded to overflow it
	// AdminToken is the admin API's token (extension notice), served beside /ws.
	AdminToken = "the-in-process-conformance-admin-token"
)

// AdminURL returns the origin of the admin API of the server at url (ws://h:p/ws):
// the reference server serves it on the handler of /ws.
func AdminURL(url string) string {
	origin, _, _ := strings.Cut(strings.TrimPrefix(url, "ws"), "/ws")
	return "http" + origin
}

// Start runs the reference server in-process with the settings above, edited by edit,
// and returns its URL and the server. The server stops when the test ends. It serves
// the admin API with AdminToken.
func Start(t testing.TB, edit func(*server.Config)) (string, *server.Server) {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.KeepaliveInterval = Keepalive
	cfg.SessionTTL = SessionTTL
	cfg.BufferSize = BufferSize
	// The catalogue sends about 160 queries from one address, close to a burst: no
	// bound, so that its size never decides a case. The case of the query rate runs on
	// a server of its own (OwnServerCases).
	cfg.QueryRate = 0
	cfg.AdminToken = AdminToken
	if edit != nil {
		edit(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws", srv
}

// Options returns the harness's options for a server started by Start.
func Options(url string) conformance.Options {
	opts := conformance.DefaultOptions(url)
	opts.KeepaliveInterval, opts.SessionTTL, opts.BufferSize = Keepalive, SessionTTL, BufferSize
	opts.AdminURL, opts.AdminToken = AdminURL(url), AdminToken
	return opts
}

// The reference server's session limit, query rate and burst in the cases that need
// them.
const (
	OwnServerMaxSessions = 3
	OwnServerQueryRate   = 2
	OwnServerQueryBurst  = 20
)

// OwnServerCases runs, each on a fresh reference server of its own, the selected
// cases that need one, and returns their results and what the run-wide checks found:
// the session limit (a server holding only the case's sessions), the query rate (a
// client's whole allowance), the shutdown cases (which end the server), and the auth
// cases (a server that refuses every connection without a token).
func OwnServerCases(t testing.TB, opts conformance.Options) ([]*conformance.CaseResult, []conformance.Finding) {
	t.Helper()
	cases, err := conformance.Catalog("")
	if err != nil {
		t.Fatal(err)
	}
	var out []*conformance.CaseResult
	var findings []conformance.Finding
	for _, c := range cases {
		auth := slices.Contains(c.Needs, "auth")
		if !auth && !slices.ContainsFunc(c.Settings, func(s string) bool { return s == "max-sessions" || s == "shutdown" || s == "query-rate" }) {
			continue
		}
		if len(opts.Cases) > 0 && !slices.ContainsFunc(opts.Cases, func(p string) bool { return strings.HasPrefix(c.Name, p) }) {
			continue
		}
		secret := []byte("the in-process conformance run's secret")
		url, srv := Start(t, func(cfg *server.Config) {
			cfg.MaxSessions = OwnServerMaxSessions
			cfg.QueryRate, cfg.QueryBurst = OwnServerQueryRate, OwnServerQueryBurst
			if auth {
				cfg.Auth = &server.Auth{Secret: secret}
			}
		})
		own := opts
		own.URL, own.Cases, own.MaxSessions = url, []string{c.Name}, OwnServerMaxSessions
		own.AdminURL, own.AdminToken = AdminURL(url), AdminToken
		own.QueryRate, own.QueryBurst = OwnServerQueryRate, OwnServerQueryBurst
		own.Shutdown = func() { srv.Drain(context.Background()) }
		if auth {
			own.Token = Sign(t, secret, time.Hour)
			own.ExpiredToken = Sign(t, secret, -time.Hour)
		}
		rep, err := conformance.Run(t.Context(), own)
		if err != nil {
			t.Fatalf("case %s on a server of its own: %v", c.Name, err)
		}
		out = append(out, rep.Cases...)
		findings = append(findings, rep.Findings...)
	}
	return out, findings
}

// Sign makes an HS256 token for the subject conformance-user that expires in d.
func Sign(t testing.TB, secret []byte, d time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "conformance-user", "exp": time.Now().Add(d).Unix(),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartNode runs a reference server process with the in-process run's settings,
// sharing the Redis of store: a node of a cluster.
func StartNode(t testing.TB, store, id string) *clustertest.Node {
	t.Helper()
	return clustertest.StartNode(t, id, "-store", store,
		"-keepalive", Keepalive.String(), "-session-ttl", SessionTTL.String(), "-buffer-size", strconv.Itoa(BufferSize),
		"-query-rate", "0", "-log-level", "warn")
}
