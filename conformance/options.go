package conformance

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/agentws/agentws/spec"
)

// Options says which server to check and what the cases need to know about it.
type Options struct {
	// URL is the server's WebSocket endpoint, such as ws://localhost:8050/ws.
	URL string
	// Client, when not empty, is the command of a client's adapter, and its
	// arguments (README.md, "Check your own client"): the run plays the scripted server
	// of the client cases against it, instead of checking a server at URL.
	Client []string
	// ClientFeatures are what the client's adapter declares it can do beyond the
	// contract's minimum (ClientFeatures lists them); the client cases that need
	// another are skipped.
	ClientFeatures []string
	// Capabilities, when not nil, are the capabilities to test, instead of those the
	// server's connected frame claims.
	Capabilities []string
	// Strict turns warnings (broken SHOULD rules) into failures.
	Strict bool
	// Dir holds the cases; "" means the package's testdata.
	Dir string
	// Cases, when not empty, selects cases whose name starts with one of them.
	Cases []string
	// Parallel is how many cases run at once.
	Parallel int
	// FrameTimeout bounds every wait for a frame, an HTTP answer or a close. It is a
	// total bound: frames a command skips (keepalives, frames before a close) do not
	// extend it.
	FrameTimeout time.Duration
	// CaseTimeout bounds each case as a whole, beyond the waits its settings declare
	// (the session TTL, the keepalive window); 0 means DefaultCaseTimeout. A case that
	// hits it fails, saying so.
	CaseTimeout time.Duration

	// What the server is configured with; a zero duration means unknown, and the
	// cases that need it are skipped.
	KeepaliveInterval time.Duration // KA-1
	SessionTTL        time.Duration // BUF-6
	BufferSize        int           // BUF-3
	BufferBytes       int           // BUF-7
	MaxMessageBytes   int           // ENV-7
	QueueDepth        int           // STREAM-8
	MaxSessions       int           // HS-10; 0: unknown
	QueryRate         float64       // STREAM-11: queries a second per client; 0: unknown
	QueryBurst        int           // STREAM-11: queries a client may send at once beyond the rate
	Token             string        // AUTH-2: a valid bearer token; "": unknown
	ExpiredToken      string        // AUTH-3: an expired token for the same server

	// AdminURL is the origin of the server's admin API (extension notice, section
	// 12.7), such as http://localhost:8050: the cases request AdminURL+"/admin/...".
	// "" (or no AdminToken): unknown, and the cases that need it are skipped.
	AdminURL string
	// AdminToken is the admin API's bearer token (ADMIN-1).
	AdminToken string

	// Update re-blesses the expectations of expectfile: a frame that does not match is
	// written into the case's archive instead of failing it. Use it against the
	// reference server only, with Dir set to the cases' directory.
	Update bool

	// Shutdown, when not nil, tells the server to shut down (SHUT-1 to SHUT-3). The
	// cases that use it end the server, so each needs a server of its own.
	Shutdown func()
}

// DefaultOptions returns, for url, the settings of the reference server's defaults
// (spec.Defaults, table 15.4 of spec/PROTOCOL.md) and the harness's own defaults.
func DefaultOptions(url string) Options {
	d := spec.Defaults()
	return Options{
		URL: url, Parallel: 8, FrameTimeout: 5 * time.Second,
		BufferSize: d.BufferSize, BufferBytes: d.BufferBytes, MaxMessageBytes: d.MaxMessageBytes, QueueDepth: d.QueueDepth,
	}
}

// DefaultCaseTimeout bounds a case when Options.CaseTimeout is 0: twenty times the
// slowest built-in case against the in-process reference server, beyond the waits its
// settings declare (3 s, for buf_bounded and buf_byte_bound).
const DefaultCaseTimeout = 60 * time.Second

// caseTimeout returns the bound of a case that needs settings: CaseTimeout (or its
// default) plus the waits those settings make the case take.
func (o *Options) caseTimeout(settings []string) time.Duration {
	d := o.CaseTimeout
	if d == 0 {
		d = DefaultCaseTimeout
	}
	for _, s := range settings {
		switch s {
		case "session-ttl":
			d += o.ttlWait()
		case "keepalive":
			d += o.keepaliveWindow()
		}
	}
	return d
}

// ttlWait is how long a case waits for a session's TTL to pass: $TTL_WAIT, the TTL and
// a margin of half of it, at most 5 s, plus 500 ms.
func (o *Options) ttlWait() time.Duration {
	return o.SessionTTL + min(o.SessionTTL/2, 5*time.Second) + 500*time.Millisecond
}

// keepaliveWindow is how long a case waits for a keepalive: $KEEPALIVE_WINDOW.
func (o *Options) keepaliveWindow() time.Duration { return 2*o.KeepaliveInterval + time.Second }

// readLimit is the largest frame the harness reads: four client messages of the
// largest size (an answer may echo a query several times over, JSON-escaped) plus the
// session's buffer, and at least 16 MiB. A larger frame ends its connection with a
// finding, so that a server cannot make the harness hold unbounded memory.
func (o *Options) readLimit() int64 {
	return max(16<<20, 4*int64(o.MaxMessageBytes)+int64(o.BufferBytes))
}

func (o *Options) check() error {
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		return errors.New("no server URL: give one such as ws://localhost:8050/ws")
	case err != nil:
		return fmt.Errorf("server URL %q: %w", o.URL, err)
	case u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("server URL %q: the scheme must be ws or wss", o.URL)
	case u.RawQuery != "":
		return fmt.Errorf("server URL %q: give the endpoint without a query; the cases add session_id", o.URL)
	case o.Parallel < 1:
		return fmt.Errorf("parallel must be at least 1, not %d", o.Parallel)
	case o.FrameTimeout <= 0:
		return fmt.Errorf("frame timeout must be positive, not %v", o.FrameTimeout)
	case o.CaseTimeout < 0:
		return fmt.Errorf("case timeout must be positive (or 0 for the default), not %v", o.CaseTimeout)
	case o.MaxSessions < 0:
		return fmt.Errorf("max sessions must be positive (or 0, unknown), not %d", o.MaxSessions)
	case o.QueryRate < 0 || math.IsNaN(o.QueryRate) || math.IsInf(o.QueryRate, 0):
		return fmt.Errorf("query rate must be a positive number of queries a second (or 0, unknown), not %v", o.QueryRate)
	case o.QueryRate > 0 && (o.QueryBurst < 1 || o.QueryBurst+o.rateMargin() > maxSendMany):
		return fmt.Errorf("query burst must be from 1 to %d with a query rate of %v a second, not %d", maxSendMany-o.rateMargin(), o.QueryRate, o.QueryBurst)
	case o.AdminURL != "" && !isHTTPOrigin(o.AdminURL):
		return fmt.Errorf("admin URL %q: give the origin of the admin API, such as http://localhost:8050, without a path or query", o.AdminURL)
	case o.Update && o.Dir == "":
		return errors.New("update rewrites case files: give the directory of the cases")
	}
	return nil
}

// isHTTPOrigin reports whether s is an http or https URL with a host and no query;
// a path is allowed (a server may serve its admin API under a prefix), without a
// trailing slash.
func isHTTPOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && !strings.HasSuffix(u.Path, "/")
}

// httpBase returns the server's HTTP origin: ws://h:p/ws gives http://h:p.
func (o *Options) httpBase() string {
	u, _ := url.Parse(o.URL)
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

// wsPath returns the endpoint's path, /ws by default.
func (o *Options) wsPath() string {
	u, _ := url.Parse(o.URL)
	return strings.TrimSuffix(u.Path, "/")
}

// The waits and sizes the cases derive from the settings.
const (
	// fixtureSettle is long enough for the fixture's slow queries of the cases (at
	// most 6 chunks, 100 ms each) and the quick ones queued behind them to finish.
	fixtureSettle = 1500 * time.Millisecond
	// smallFrameBytes bounds a frame of a short fixture query, seq and query_id included.
	smallFrameBytes = 300
	// minFrameBytes is less than any session-scoped frame: type, timestamp and the
	// case's session id alone take more.
	minFrameBytes = 80
)

// offlineWait is how long a case leaves a session without a connection for its
// queries to finish into the buffer: fixtureSettle, or half the session TTL when that
// is shorter, so that the session is still there.
func (o *Options) offlineWait() time.Duration {
	if o.SessionTTL > 0 && o.SessionTTL/2 < fixtureSettle {
		return o.SessionTTL / 2
	}
	return fixtureSettle
}

// rateMargin is how many queries beyond the burst a case sends to be over a client's
// query rate (STREAM-11): as many as the rate brings back in a frame timeout, and one.
func (o *Options) rateMargin() int {
	return int(math.Ceil(min(o.QueryRate*o.FrameTimeout.Seconds(), maxSendMany))) + 1
}

// bigQueryBytes is the size of a query frame that the server accepts and whose stream
// fits in the buffer's byte bound with room to spare: half the bound, at most the
// message size limit.
func (o *Options) bigQueryBytes() int { return min(o.MaxMessageBytes, o.BufferBytes/2) }
