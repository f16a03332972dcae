package server

import (
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"

	"github.com/agentws/agentws/schemas/httpapi"
)

// hostAllowed applies HS-13: an IP address, localhost (or a name under .localhost),
// or a name that matches one of the allowed patterns ("*" matches any). A request
// without Host (HTTP/1.0) names no host an attacker could have rebound.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, p := range s.cfg.AllowedHosts {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// checkHost refuses a request whose Host the server does not answer to (HS-13); it
// returns false when it did.
func (s *Server) checkHost(w http.ResponseWriter, r *http.Request) bool {
	if s.hostAllowed(r.Host) {
		return true
	}
	s.log.Warn("host refused", "host", r.Host, "remote", r.RemoteAddr, "allow_with", "-allowed-hosts")
	s.refuse(w, http.StatusForbidden, httpapi.HTTPErrorCodeHostNotAllowed, "host %q is not one this server answers to", r.Host)
	return false
}

// checkUpgrade refuses, with a JSON body, an upgrade request that breaks RFC 6455
// section 4.2.1 (HS-9, HS-12), before websocket.Accept would answer it in plain text.
// It returns false when it refused.
func (s *Server) checkUpgrade(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		s.refuse(w, http.StatusMethodNotAllowed, httpapi.HTTPErrorCodeMethodNotAllowed, "%s does not allow %s: a WebSocket upgrade is a GET", r.URL.Path, r.Method)
	case !isUpgrade(r) || !r.ProtoAtLeast(1, 1):
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		s.refuse(w, http.StatusUpgradeRequired, httpapi.HTTPErrorCodeNotWebsocket, "this endpoint speaks WebSocket: send an HTTP/1.1 upgrade request, not %s %s", r.Proto, r.Method)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		w.Header().Set("Sec-WebSocket-Version", "13")
		s.refuse(w, http.StatusUpgradeRequired, httpapi.HTTPErrorCodeUnsupportedVersion, "Sec-WebSocket-Version %q is not supported: only 13", r.Header.Get("Sec-WebSocket-Version"))
	case !validKey(r.Header.Values("Sec-WebSocket-Key")):
		s.refuse(w, http.StatusBadRequest, httpapi.HTTPErrorCodeInvalidHandshake, "Sec-WebSocket-Key %q is not one 16-byte value in base64", r.Header.Values("Sec-WebSocket-Key"))
	default:
		return true
	}
	return false
}

// validKey reports whether the request has one Sec-WebSocket-Key of 16 bytes in base64
// (RFC 6455 section 4.1, item 7).
func validKey(keys []string) bool {
	if len(keys) != 1 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0]))
	return err == nil && len(b) == 16
}

// A connLimiter counts the connections of each key (a client address, a user), and
// admits one more only under its bound (HS-14). The check and the count are one
// critical section, so concurrent handshakes never take a key past it.
type connLimiter struct {
	max int // 0: no bound

	mu sync.Mutex
	n  map[string]int
}

// acquire counts one more connection of key; it returns false, counting nothing,
// when key holds max already. A true result must be given back with release.
func (l *connLimiter) acquire(key string) bool {
	if l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		return false
	}
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.n[key]++
	return true
}

// release gives back a place that acquire took.
func (l *connLimiter) release(key string) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key]--; l.n[key] <= 0 {
		delete(l.n, key)
	}
}

// count returns the connections key holds.
func (l *connLimiter) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[key]
}

// clientAddr returns the address of the client: the peer's, or, when the peer is a
// trusted proxy (Config.TrustedProxies), the last address of X-Forwarded-For that is
// not a trusted proxy itself, read from the right, where each proxy appended the
// address it got the request from. Entries left of it could be anything a client
// wrote, and are never taken.
func (s *Server) clientAddr(r *http.Request) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	if a, err := netip.ParseAddr(peer); err != nil || !s.trusted(a) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed entry: what lies left of it is unknown
		}
		if !s.trusted(a) {
			return a.Unmap().String()
		}
	}
	return peer // only proxies: the request began at one
}

// trusted reports whether a is one of the trusted proxies.
func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// tooMany refuses a connection beyond a bound of HS-14.
func (s *Server) tooMany(w http.ResponseWriter, what string, n int) {
	s.refuse(w, http.StatusTooManyRequests, httpapi.HTTPErrorCodeTooManyConnections, "%s holds %d connections, as many as the server allows; close one first", what, n)
}
