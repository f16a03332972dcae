// Command agentws-server runs the agentws reference server (spec/PROTOCOL.md).
//
// With no flags it listens on localhost:8050 (loopback only), serves the protocol at /ws with the fixture
// agent, and GET /ws/health, /livez and /readyz. Every flag has an environment variable
// twin, AGENTWS_ and the flag's name in capitals with underscores
// (-session-ttl: AGENTWS_SESSION_TTL); a flag on the command line wins.
//
// To front a real model, point it at an OpenAI-compatible endpoint:
//
//	AGENTWS_AGENT_API_KEY=... agentws-server -agent openai -agent-url http://localhost:11434/v1 -agent-model llama3.2
//
// On SIGTERM or SIGINT it drains: new connections are refused, readiness fails,
// clients are closed with 1001, and running queries finish into their sessions' buffers
// until the drain timeout.
package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/agentws/agentws/reference/agent"
	"github.com/agentws/agentws/reference/server"
	"github.com/agentws/agentws/spec"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "agentws-server:", err)
		}
		os.Exit(2)
	}
}

// options are the command's settings.
type options struct {
	addr       string
	cfg        server.Config
	http       httpLimits
	origins    string
	hosts      string
	agentName  string
	agentURL   string
	agentModel string
	upstream   *agent.OpenAI // -agent openai, with its bounds from the -agent-* flags
	delay      time.Duration
	chunkRunes int
	logFormat  string
	logLevel   string
	version    bool
	authKey    string
	authIss    string
	authAud    string
	tlsCert    string
	tlsKey     string
	proxies    string
	adminAddr  string
	adminFile  string
}

// httpLimits bound an HTTP connection before it is upgraded or between requests.
type httpLimits struct {
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout time.Duration
	maxHeaderBytes                                            int
}

// newHTTPServer returns the HTTP server of h with the limits l. Its read and write
// deadlines bound plain HTTP answers and the handshake only: net/http clears them when
// websocket.Accept hijacks a connection, so they never cut a WebSocket connection.
func newHTTPServer(h http.Handler, l httpLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.readHeaderTimeout,
		ReadTimeout:       l.readTimeout,
		WriteTimeout:      l.writeTimeout,
		IdleTimeout:       l.idleTimeout,
		MaxHeaderBytes:    l.maxHeaderBytes,
	}
}

const envPrefix = "AGENTWS_"

// envName returns the environment variable twin of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	d := spec.Defaults()
	o := &options{cfg: server.DefaultConfig(), upstream: &agent.OpenAI{}}
	fs := flag.NewFlagSet("agentws-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", d.ListenAddress, "listen `address`; the default listens on loopback only: use :8050 for every interface")
	fs.IntVar(&o.cfg.BufferSize, "buffer-size", o.cfg.BufferSize, "frames buffered per session while it has no connection")
	fs.IntVar(&o.cfg.BufferBytes, "buffer-bytes", o.cfg.BufferBytes, "bytes buffered per session while it has no connection")
	fs.DurationVar(&o.cfg.SessionTTL, "session-ttl", o.cfg.SessionTTL, "how long a session outlives an abrupt drop")
	fs.DurationVar(&o.cfg.KeepaliveInterval, "keepalive", o.cfg.KeepaliveInterval, "idle time before a keepalive frame")
	fs.Int64Var(&o.cfg.MaxMessageBytes, "max-message-bytes", o.cfg.MaxMessageBytes, "the largest client message; a larger one closes the connection with 1009")
	fs.IntVar(&o.cfg.QueueDepth, "queue-depth", o.cfg.QueueDepth, "queries a session may have waiting behind the running one")
	fs.IntVar(&o.cfg.SendQueue, "send-queue", o.cfg.SendQueue, "frames waiting to be written to one client; when it is full the query waits for room (a client that takes no frame for -write-timeout is a slow consumer, closed with 4002)")
	fs.IntVar(&o.cfg.SendQueueBytes, "send-queue-bytes", o.cfg.SendQueueBytes, "bytes of the frames waiting to be written to one client; at the bound the query waits for room, and answers to the client's own frames (pongs, refusals, replayed results) have as many bytes again: a client that fills those too without reading is a slow consumer, closed with 4002")
	fs.IntVar(&o.cfg.QueueBytes, "queue-bytes", o.cfg.QueueBytes, "bytes of query text a session may have waiting behind the running one; a query that would take it past the bound gets busy (one query may always wait)")
	fs.IntVar(&o.cfg.RememberedBytes, "remembered-bytes", o.cfg.RememberedBytes, "bytes of finished queries' results a session keeps to answer a repeated query_id; beyond them the oldest results are dropped, their ids kept: a repeat gets result_dropped and never runs again")
	fs.DurationVar(&o.cfg.WriteTimeout, "write-timeout", o.cfg.WriteTimeout, "the longest a client may take no frame: then it is a slow consumer, dropped with 4002, and its session's frames go to the buffer")
	fs.StringVar(&o.origins, "allowed-origins", "", "comma-separated host `patterns` of browser origins allowed besides the server's own, such as localhost:3000,*.example.com; null, by that name only, allows pages opened from a file, and any page in a sandboxed frame")
	fs.DurationVar(&o.cfg.DrainTimeout, "drain-timeout", o.cfg.DrainTimeout, "how long running queries may finish on shutdown")
	fs.IntVar(&o.cfg.MaxSessions, "max-sessions", o.cfg.MaxSessions, "sessions held at once; at the bound the one without a connection the longest makes room, and a new one gets 503 only when all have a connection")
	fs.IntVar(&o.cfg.MaxMemoryBytes, "max-memory-bytes", o.cfg.MaxMemoryBytes, "bytes held for all clients together: frames (once, in buffers, histories and send queues), remembered results, query text, answers being built, messages being read; at least 8 × -max-message-bytes. Over it sessions lose their oldest kept frames and results (offline the longest first, evictions counted), and what cannot be dropped makes new queries get busy and running ones wait for room (unavailable after -write-timeout)")
	fs.IntVar(&o.cfg.MaxConnsPerIP, "max-conns-per-ip", o.cfg.MaxConnsPerIP, "connections at once from one client address, handshakes included; one more gets 429 (0: no bound)")
	fs.IntVar(&o.cfg.MaxConnsPerUser, "max-conns-per-user", o.cfg.MaxConnsPerUser, "connections at once of one user (user_id, or the token's subject); one more gets 429 (0: no bound)")
	fs.Float64Var(&o.cfg.QueryRate, "query-rate", o.cfg.QueryRate, "queries a second each client may send, its user with authentication, its address without; one more gets rate_limited (0: no bound)")
	fs.IntVar(&o.cfg.QueryBurst, "query-burst", o.cfg.QueryBurst, "queries a client may send at once beyond -query-rate")
	fs.StringVar(&o.proxies, "trusted-proxies", "", "comma-separated addresses or CIDR `prefixes` of reverse proxies whose X-Forwarded-For names the client, such as 127.0.0.1,10.0.0.0/8: the client's address then bounds its connections and queries and is logged; from any other peer the header is ignored")
	fs.StringVar(&o.hosts, "allowed-hosts", "", "comma-separated host `patterns` the Host header may name besides IP addresses, localhost and the -addr host, such as agent.example.com,*.example.com; * allows any")
	fs.DurationVar(&o.http.readHeaderTimeout, "read-header-timeout", d.ReadHeaderTimeout, "the longest a client may take to send a request's headers")
	fs.DurationVar(&o.http.readTimeout, "read-timeout", d.ReadTimeout, "the longest a client may take to send a whole HTTP request (not a WebSocket connection)")
	fs.DurationVar(&o.http.writeTimeout, "http-write-timeout", d.HTTPWriteTimeout, "the longest writing a plain HTTP answer may take (not a WebSocket connection)")
	fs.DurationVar(&o.http.idleTimeout, "idle-timeout", d.IdleTimeout, "how long a keep-alive HTTP connection may wait for its next request")
	fs.IntVar(&o.http.maxHeaderBytes, "max-header-bytes", d.MaxHeaderBytes, "the largest request line and headers; a larger request gets 431")
	fs.StringVar(&o.agentName, "agent", "fixture", "the agent: `fixture` (deterministic, spec section 13) or openai (an OpenAI-compatible endpoint)")
	fs.StringVar(&o.agentURL, "agent-url", "", "with -agent openai: the API base `URL`, such as http://localhost:11434/v1")
	fs.StringVar(&o.agentModel, "agent-model", "", "with -agent openai: the model name")
	fs.DurationVar(&o.upstream.ConnectTimeout, "agent-connect-timeout", agent.DefaultConnectTimeout, "with -agent openai: the longest wait to connect to the upstream and get its response headers")
	fs.DurationVar(&o.upstream.FirstTokenTimeout, "agent-first-token-timeout", agent.DefaultFirstTokenTimeout, "with -agent openai: the longest wait from the request to the first token")
	fs.DurationVar(&o.upstream.TokenTimeout, "agent-token-timeout", agent.DefaultTokenTimeout, "with -agent openai: the longest wait between two tokens")
	fs.DurationVar(&o.upstream.Timeout, "agent-timeout", agent.DefaultTimeout, "with -agent openai: the longest a whole answer may take")
	fs.DurationVar(&o.cfg.UpstreamCheckInterval, "agent-check-interval", 0, "with -agent openai: how often to ask the upstream for its models (GET /models, with the key); while the last check failed, /readyz fails and upstream_up is 0 (0: no check)")
	fs.IntVar(&o.upstream.Retries, "agent-retries", agent.DefaultRetries, "with -agent openai: how many times a request that failed before its first token (no connection, HTTP 5xx or 429, no first token in time) is tried again, with backoff; 0: never")
	fs.DurationVar(&o.delay, "fixture-delay", 0, "with -agent fixture: the pause before each chunk, to emulate a model's token rate")
	fs.IntVar(&o.chunkRunes, "fixture-chunk-size", 16, "with -agent fixture: the characters of each chunk (a longer answer than 100 chunks of it gets larger chunks; a __slow__ query, chunks of 8)")
	fs.BoolVar(&o.cfg.Console, "console", o.cfg.Console, "serve the browser console at / and the JavaScript client at /agentws.js (-console=false: neither)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve TLS (wss://, https://) with the PEM certificate chain in this `file`, with -tls-key; both are read again when they change, at most once a second")
	fs.StringVar(&o.tlsKey, "tls-key", "", "the PEM private key `file` of -tls-cert")
	fs.StringVar(&o.authKey, "auth-public-key", "", "turn on bearer-token authentication with the RS256 or ES256 public key in this PEM `file`")
	fs.StringVar(&o.authIss, "auth-issuer", "", "with authentication: the issuer (iss) tokens must have")
	fs.StringVar(&o.authAud, "auth-audience", "", "with authentication: an audience (aud) tokens must have")
	fs.StringVar(&o.cfg.Store, "store", "", "where sessions live: none for this process's memory, or the `URL` of a Redis 7 that many nodes share, such as redis://localhost:6379/0 (rediss:// for TLS; a password as redis://:password@host:6379/0); every node of one cluster names the same")
	fs.StringVar(&o.cfg.NodeID, "node-id", "", "with -store: this node's `name` among the nodes sharing the store (default: its host name and a random suffix)")
	fs.DurationVar(&o.cfg.NodeLease, "node-lease", o.cfg.NodeLease, "with -store: how long after a node last renewed its lease the others end the queries it ran (unavailable) and take its connections' sessions offline; a node renews it four times a lease")
	fs.StringVar(&o.adminFile, "admin-token-file", "", "turn on the admin API (POST /admin/broadcast, GET and DELETE /admin/sessions) with the bearer token in this `file` (at least 16 characters; AGENTWS_ADMIN_TOKEN gives it directly)")
	fs.StringVar(&o.cfg.AdminScope, "admin-scope", "", "with authentication: a `scope` that makes a valid JWT holding it in its scope or scp claim an admin credential too, such as agentws:admin")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "serve the admin API on this listen `address` of its own, such as localhost:8051, and not beside /ws (default: beside /ws)")
	fs.Int64Var(&o.cfg.AdminBodyBytes, "admin-max-body-bytes", o.cfg.AdminBodyBytes, "the largest body of an admin request; a larger one gets 400 invalid_body")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.BoolVar(&o.version, "version", false, "print the version (from the build information) and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: agentws-server [flags]\n\nEvery flag can also be set with its environment variable, %sNAME (-session-ttl: %s).\nThe API key of -agent openai comes from %sAGENT_API_KEY or OPENAI_API_KEY.\nBearer-token authentication with an HS256 secret is turned on by %sAUTH_SECRET.\nThe admin API's token can come from %sADMIN_TOKEN instead of -admin-token-file.\n\n", envPrefix, envName("session-ttl"), envPrefix, envPrefix, envPrefix)
		fs.PrintDefaults()
	}
	usage := fs.Usage
	fs.Usage = func() {} // a bad flag gets its error and a hint, not the whole usage
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
		}
		return nil, fmt.Errorf("%w (agentws-server -help lists the flags)", err)
	}
	if o.version {
		return o, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: every setting is a flag", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && !set[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together: give both, or neither for plain ws://")
	}
	for _, p := range splitList(o.proxies) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("-trusted-proxies: %q is not an IP address or a CIDR prefix such as 10.0.0.0/8", p)
			}
			prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		o.cfg.TrustedProxies = append(o.cfg.TrustedProxies, prefix.Masked())
	}
	o.cfg.AllowedOrigins = splitList(o.origins)
	o.cfg.AllowedHosts = append(splitList(o.hosts), listenHost(o.addr)...)
	if secret, key := getenv(envPrefix+"AUTH_SECRET"), o.authKey; secret != "" || key != "" {
		auth := &server.Auth{Secret: []byte(secret), Issuer: o.authIss, Audience: o.authAud}
		if key != "" {
			pub, err := readPublicKey(key)
			if err != nil {
				return nil, fmt.Errorf("-auth-public-key: %w", err)
			}
			auth.PublicKey = pub
		}
		o.cfg.Auth = auth
	}
	if err := o.adminToken(getenv); err != nil {
		return nil, err
	}
	switch o.agentName {
	case "fixture":
		if o.delay < 0 {
			return nil, fmt.Errorf("-fixture-delay must be 0 or more, not %s", o.delay)
		}
		if o.cfg.UpstreamCheckInterval != 0 {
			return nil, errors.New("-agent-check-interval checks a model upstream: it needs -agent openai")
		}
		if o.chunkRunes < 1 {
			return nil, fmt.Errorf("-fixture-chunk-size must be 1 or more, not %d", o.chunkRunes)
		}
		o.cfg.Agent = agent.Fixture{Delay: o.delay, ChunkRunes: o.chunkRunes}
	case "openai":
		if o.agentURL == "" || o.agentModel == "" {
			return nil, errors.New("-agent openai needs -agent-url and -agent-model")
		}
		if u, err := url.Parse(o.agentURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("-agent-url %q is not an http:// or https:// URL with a host, such as http://localhost:11434/v1", o.agentURL)
		}
		key := getenv(envPrefix + "AGENT_API_KEY")
		if key == "" {
			key = getenv("OPENAI_API_KEY")
		}
		for name, d := range map[string]time.Duration{"-agent-connect-timeout": o.upstream.ConnectTimeout, "-agent-first-token-timeout": o.upstream.FirstTokenTimeout, "-agent-token-timeout": o.upstream.TokenTimeout, "-agent-timeout": o.upstream.Timeout} {
			if d <= 0 {
				return nil, fmt.Errorf("%s must be positive, not %s", name, d)
			}
		}
		if o.cfg.UpstreamCheckInterval < 0 {
			return nil, fmt.Errorf("-agent-check-interval must be 0 (no check) or positive, not %s", o.cfg.UpstreamCheckInterval)
		}
		if o.upstream.Retries < 0 {
			return nil, fmt.Errorf("-agent-retries must be 0 or more, not %d", o.upstream.Retries)
		}
		o.upstream.URL, o.upstream.Model, o.upstream.APIKey = o.agentURL, o.agentModel, key
		o.cfg.Agent = o.upstream
	default:
		return nil, fmt.Errorf("-agent: unknown agent %q: want fixture or openai", o.agentName)
	}
	return o, nil
}

// adminToken reads the admin API's token, from -admin-token-file or AGENTWS_ADMIN_TOKEN,
// and checks the admin flags that need it; the server checks the token's length and
// that -admin-scope has authentication.
func (o *options) adminToken(getenv func(string) string) error {
	env := getenv(envPrefix + "ADMIN_TOKEN")
	switch {
	case o.adminFile != "" && env != "":
		return fmt.Errorf("-admin-token-file and %sADMIN_TOKEN both give the admin token: give one", envPrefix)
	case o.adminFile != "":
		data, err := os.ReadFile(o.adminFile)
		if err != nil {
			return fmt.Errorf("-admin-token-file: %w", err)
		}
		o.cfg.AdminToken = strings.TrimSpace(string(data))
		if o.cfg.AdminToken == "" {
			return fmt.Errorf("-admin-token-file: %s is empty", o.adminFile)
		}
	default:
		o.cfg.AdminToken = env
	}
	if o.adminAddr != "" {
		if o.cfg.AdminToken == "" && o.cfg.AdminScope == "" {
			return fmt.Errorf("-admin-addr serves the admin API, which is off: give its token (-admin-token-file or %sADMIN_TOKEN) or -admin-scope", envPrefix)
		}
		o.cfg.AdminOwnAddress = true
	}
	return nil
}

// splitList returns the items of a comma-separated list.
func splitList(list string) []string {
	var out []string
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// listenHost returns the host name of a listen address, which the server answers to
// (HS-13); none for an IP address or no host.
func listenHost(addr string) []string {
	host, _, err := net.SplitHostPort(addr)
	if _, perr := netip.ParseAddr(host); err != nil || host == "" || perr == nil {
		return nil
	}
	return []string{host}
}

// readPublicKey reads an RSA or ECDSA public key from a PEM file.
func readPublicKey(file string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if key, err := jwt.ParseRSAPublicKeyFromPEM(data); err == nil {
		return key, nil
	}
	if key, err := jwt.ParseECPublicKeyFromPEM(data); err == nil {
		return key, nil
	}
	return nil, fmt.Errorf("%s holds no RSA or ECDSA public key in PEM", file)
}

// readableDurations logs durations as Go writes them (30s, 1m0s), not as nanoseconds.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: readableDurations}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format: unknown format %q: want text or json", format)
}

// adminListening, when set, is told the address of -admin-addr once it listens.
var adminListening func(addr string)

// stdout is where -version prints.
var stdout io.Writer = os.Stdout

// version describes the build: the module's version, the commit and its time when the
// build recorded them, and the Go version.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "agentws-server (no build information)"
	}
	v := "agentws-server " + info.Main.Version
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	if rev := vcs["vcs.revision"]; rev != "" {
		v += " commit " + rev
		if vcs["vcs.modified"] == "true" {
			v += " (modified)"
		}
		if t := vcs["vcs.time"]; t != "" {
			v += " of " + t
		}
	}
	return v + ", " + info.GoVersion
}

// run serves until ctx is done, then drains. When ready is not nil, it receives the
// address the server listens on.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready chan<- string) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, version())
		return nil
	}
	log, err := newLogger(o.logFormat, o.logLevel, stderr)
	if err != nil {
		return err
	}
	o.cfg.Logger = log
	ws, web := "ws://", "http://"
	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		certs, err := loadCertFiles(o.tlsCert, o.tlsKey, log)
		if err != nil {
			return err
		}
		tlsConfig, ws, web = certs.tlsConfig(), "wss://", "https://"
	}
	srv, err := server.New(o.cfg)
	if err != nil {
		return err
	}
	if o.agentName == "openai" {
		o.upstream.Observe = srv.ObserveUpstream // before any query
	}
	hs := newHTTPServer(srv, o.http)
	if tlsConfig != nil {
		// HTTP/1.1 only: browsers open WebSocket connections on it (RFC 6455); the
		// reference does not serve WebSocket over HTTP/2 (RFC 8441).
		hs.TLSConfig, hs.Protocols = tlsConfig, new(http.Protocols)
		hs.Protocols.SetHTTP1(true)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		srv.Close()
		return err
	}
	served := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			served <- hs.ServeTLS(ln, "", "")
			return
		}
		served <- hs.Serve(ln)
	}()
	log.Info("agentws reference server listening",
		"url", ws+displayAddr(ln.Addr())+"/ws", "health", web+displayAddr(ln.Addr())+"/ws/health",
		"agent", o.agentName, "capabilities", srv.Capabilities())
	if o.cfg.Auth == nil && !loopback(ln.Addr()) {
		log.Warn("OPEN TO THE NETWORK WITH AUTHENTICATION OFF: anyone who can reach " + ln.Addr().String() +
			" can run queries on this server as any user. Turn authentication on (AGENTWS_AUTH_SECRET or -auth-public-key)," +
			" or listen on loopback (-addr localhost:8050); see README, Before you expose it")
	}
	var as *http.Server // the admin API's own server, with -admin-addr
	if o.adminAddr != "" {
		aln, err := net.Listen("tcp", o.adminAddr)
		if err != nil {
			hs.Close()
			srv.Close()
			return fmt.Errorf("-admin-addr: %w", err)
		}
		as = newHTTPServer(srv.AdminHandler(), o.http)
		if tlsConfig != nil {
			as.TLSConfig = tlsConfig.Clone()
		}
		go func() {
			var err error
			if as.TLSConfig != nil {
				err = as.ServeTLS(aln, "", "")
			} else {
				err = as.Serve(aln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("-admin-addr: %w", err)
			}
		}()
		log.Info("admin API listening", "url", web+displayAddr(aln.Addr())+"/admin/sessions")
		if adminListening != nil {
			adminListening(aln.Addr().String())
		}
	} else if o.cfg.AdminToken != "" || o.cfg.AdminScope != "" {
		log.Info("admin API beside /ws", "url", web+displayAddr(ln.Addr())+"/admin/sessions")
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-served:
		if as != nil {
			as.Close()
		}
		hs.Close()
		srv.Close()
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	if as != nil {
		as.Close() // no operator request waits for the drain
	}
	srv.Drain(context.Background())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// loopback reports whether a listen address reaches this machine only.
func loopback(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().IsLoopback()
}

// displayAddr turns a listen address such as [::]:8050 into one a client can dial.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
