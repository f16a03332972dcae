package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/spec"
)

// Config is the server's configuration; [DefaultConfig] gives the defaults of
// spec/PROTOCOL.md table 15.4.
type Config struct {
	BufferSize        int           // frames kept per session while it has no connection (BUF-3)
	BufferBytes       int           // bytes kept per session while it has no connection (BUF-7)
	SessionTTL        time.Duration // how long a session outlives an abrupt drop (BUF-1)
	KeepaliveInterval time.Duration // idle time before a keepalive frame (KA-1)
	MaxMessageBytes   int64         // the largest client message (ENV-7)
	QueueDepth        int           // queries waiting behind the running one (STREAM-8)
	SendQueue         int           // frames waiting to be written to one connection; when full, the query waits for room
	SendQueueBytes    int           // bytes of those frames; when reached, the query waits for room, and answers to client frames have as many again (4002 beyond)
	QueueBytes        int           // bytes of query text waiting behind the running one, per session; one more gets busy (STREAM-8)
	RememberedBytes   int           // bytes of finished queries' terminal frames a session keeps for QID-4; their ids are kept beyond it
	WriteTimeout      time.Duration // the longest a client may take no frame before it is dropped as a slow consumer (4002)
	AllowedOrigins    []string      // host patterns allowed besides the request's own host (HS-8)
	DrainTimeout      time.Duration // how long running queries may finish on shutdown (SHUT-3)
	MaxSessions       int           // sessions held at once; more are refused (HS-10)
	MaxMemoryBytes    int           // bytes held for all clients together: frames, remembered results, query text, answers being built, messages being read; over it sessions are shed, then queries wait and new ones get busy (README, Memory)

	// Connection hygiene (HS-12 to HS-14): what one client may hold, and whom the
	// server answers to.
	MaxConnsPerIP   int      // connections at once from one client address; 0: no bound
	MaxConnsPerUser int      // connections at once of one user; 0: no bound
	AllowedHosts    []string // Host patterns answered besides IP addresses and localhost (HS-13); "*": any
	// TrustedProxies are the peers whose X-Forwarded-For names the client (its
	// address for MaxConnsPerIP, QueryRate and the logs); nil: none, every client is its peer.
	TrustedProxies []netip.Prefix
	QueryRate      float64 // queries a second per client, its user with Auth, its address without (STREAM-11); 0: no bound
	QueryBurst     int     // queries a client may send at once beyond the rate

	// Console serves the browser console at / and the JavaScript client at /agentws.js.
	Console bool

	// UpstreamCheckInterval is how often the agent, when it is an agent.Checker, is
	// asked whether it could answer; while the last check failed, /readyz fails. 0: never.
	UpstreamCheckInterval time.Duration

	// Store is where the sessions live: "" for this process's memory, or a redis:// (or
	// rediss://) URL of the Redis that many nodes share (spec section 9.3).
	Store string
	// NodeID names this node in the Redis store; "": its host name and a random suffix.
	NodeID string
	// NodeLease is how long the other nodes wait, after this node last renewed its
	// lease in the Redis store, before they end the queries it ran with unavailable and
	// take its connections' sessions offline.
	NodeLease time.Duration

	// The admin API (spec section 12.7, extension notice): off unless AdminToken is
	// set, or AdminScope with Auth.
	AdminToken string // the static bearer token of the admin API; at least 16 characters
	// AdminScope, with Auth, makes a valid JWT whose scope (or scp) claim holds it an
	// admin credential too.
	AdminScope string
	// AdminOwnAddress serves the admin API only through [Server.AdminHandler], on an
	// address of its own, not beside /ws.
	AdminOwnAddress bool
	AdminBodyBytes  int64 // the largest body of an admin request

	Agent  agent.Agent // answers the queries
	Auth   *Auth       // bearer-token authentication; nil: off
	Logger *slog.Logger
}

// DefaultConfig returns the defaults, with the fixture agent: those of table 15.4
// come from spec.Defaults, the others are the reference server's own.
func DefaultConfig() Config {
	d := spec.Defaults()
	return Config{
		BufferSize:        d.BufferSize,
		BufferBytes:       d.BufferBytes,
		SessionTTL:        d.SessionTTL,
		KeepaliveInterval: d.KeepaliveInterval,
		MaxMessageBytes:   int64(d.MaxMessageBytes),
		QueueDepth:        d.QueueDepth,
		SendQueue:         256,
		SendQueueBytes:    1 << 20,
		QueueBytes:        d.QueueBytes,
		RememberedBytes:   d.RememberedBytes,
		WriteTimeout:      10 * time.Second,
		DrainTimeout:      d.DrainTimeout,
		MaxSessions:       d.MaxSessions,
		MaxMemoryBytes:    d.MaxMemoryBytes,
		MaxConnsPerIP:     d.MaxConnsPerIP,
		MaxConnsPerUser:   d.MaxConnsPerUser,
		QueryRate:         d.QueryRate,
		QueryBurst:        d.QueryBurst,
		Console:           true,
		NodeLease:         5 * time.Second,
		AdminBodyBytes:    defaultAdminBodyBytes,
		Agent:             agent.Fixture{},
	}
}

// memoryPerMessage is how many times the largest message the memory budget must hold
// at least: reading it reserves decodeFactor times its size, answering it (its
// query_start, then its complete and the remembered result) about three.
const memoryPerMessage = 8

// minMessageBytes is the smallest message size limit the server accepts: room for any
// ping, cancel or short query. Below 64 KiB a limit breaks rule ENV-9, a SHOULD.
const minMessageBytes = 1 << 10

// minAdminToken is the shortest admin token the server accepts.
const minAdminToken = 16

func (c *Config) check() error {
	var errs []error
	positive := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %d", name, v))
		}
	}
	positiveDuration := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %s", name, d))
		}
	}
	positive("buffer size", int64(c.BufferSize))
	positive("buffer byte limit", int64(c.BufferBytes))
	positiveDuration("session TTL", c.SessionTTL)
	positiveDuration("keepalive interval", c.KeepaliveInterval)
	positive("send queue", int64(c.SendQueue))
	positive("send queue byte limit", int64(c.SendQueueBytes))
	positive("query queue byte limit", int64(c.QueueBytes))
	positive("remembered byte limit", int64(c.RememberedBytes))
	positiveDuration("write timeout", c.WriteTimeout)
	positiveDuration("drain timeout", c.DrainTimeout)
	positive("session limit", int64(c.MaxSessions))
	positive("memory byte limit", int64(c.MaxMemoryBytes))
	if c.MaxConnsPerIP < 0 || c.MaxConnsPerUser < 0 {
		errs = append(errs, fmt.Errorf("connection bounds must be 0 (none) or positive, not %d per address and %d per user", c.MaxConnsPerIP, c.MaxConnsPerUser))
	}
	if c.UpstreamCheckInterval < 0 {
		errs = append(errs, fmt.Errorf("upstream check interval must be 0 (none) or positive, not %v", c.UpstreamCheckInterval))
	}
	switch {
	case c.QueryRate < 0 || math.IsNaN(c.QueryRate) || math.IsInf(c.QueryRate, 0):
		errs = append(errs, fmt.Errorf("query rate must be 0 (none) or a positive number of queries a second, not %v", c.QueryRate))
	case c.QueryRate > 0 && c.QueryBurst < 1:
		errs = append(errs, fmt.Errorf("query burst must be at least 1 when the query rate is bounded, not %d", c.QueryBurst))
	}
	for _, p := range c.AllowedHosts {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			errs = append(errs, fmt.Errorf("allowed host %q is not a valid pattern", p))
		}
	}
	if c.MaxMessageBytes < minMessageBytes {
		errs = append(errs, fmt.Errorf("max message size must be at least %d bytes, not %d", minMessageBytes, c.MaxMessageBytes))
	}
	if c.MaxMemoryBytes > 0 && int64(c.MaxMemoryBytes) < memoryPerMessage*c.MaxMessageBytes {
		errs = append(errs, fmt.Errorf("memory byte limit must be at least %d × the max message size (%d), not %d: reading, decoding and answering one message of the largest size reserve up to that much", memoryPerMessage, memoryPerMessage*c.MaxMessageBytes, c.MaxMemoryBytes))
	}
	if c.QueueDepth < 1 {
		errs = append(errs, fmt.Errorf("query queue depth must be at least 1 (rule STREAM-8), not %d", c.QueueDepth))
	}
	for _, p := range c.AllowedOrigins {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("allowed origin %q is not a valid pattern: %w", p, err))
		}
	}
	if c.Auth != nil {
		if err := c.Auth.check(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Store != "" {
		if !strings.HasPrefix(c.Store, "redis://") && !strings.HasPrefix(c.Store, "rediss://") && !strings.HasPrefix(c.Store, "unix://") {
			errs = append(errs, fmt.Errorf("session store %q is not a redis://, rediss:// or unix:// URL (none: this process's memory)", clip(c.Store, maxLogValue)))
		}
		positiveDuration("node lease", c.NodeLease)
		if c.NodeID != "" && !idSyntax.MatchString(c.NodeID) {
			errs = append(errs, fmt.Errorf("node id %q is not 1 to 128 characters of A-Z a-z 0-9 . _ : ~ -", clip(c.NodeID, maxLogValue)))
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminToken {
		errs = append(errs, fmt.Errorf("admin token must be at least %d characters, not %d: it guards broadcasting to and ending every session", minAdminToken, len(c.AdminToken)))
	}
	if c.AdminScope != "" && c.Auth == nil {
		errs = append(errs, errors.New("an admin scope names a scope of the JWTs that authentication verifies: it needs authentication on"))
	}
	positive("admin body byte limit", c.AdminBodyBytes)
	if c.Agent == nil {
		errs = append(errs, errors.New("no agent"))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}
