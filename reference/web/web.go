// Package web holds what the reference server serves to browsers: agentws.js, the
// protocol's JavaScript client (one dependency-free ES module, for browsers and Node 22
// and later), and console.html, a page built on it to connect, ask, watch the frames
// stream with their types and timings, cancel, drop and resume, and see health.
//
// Beside them, not served: agentws.d.ts, the client's TypeScript declarations, over
// messages.gen.d.ts, generated from schemas/*.json by tools/tsgen (generate.go);
// node.mjs, a Node WebSocket that tells the client a refused handshake's HTTP status;
// ask.mjs, the client's command-line adapter (Node 22); test/, its Node tests, run by
// reference/server/node_test.go; typecheck/, the TypeScript check (make typecheck).
package web

import (
	"embed"
	"net/http"
)

//go:embed agentws.js console.html
var files embed.FS

// Register serves the console at / and the client at /agentws.js on mux.
func Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", serve("console.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /agentws.js", serve("agentws.js", "text/javascript; charset=utf-8"))
}

func serve(name, contentType string) http.HandlerFunc {
	data, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded above
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY") // no other site frames the console's buttons
		h.Set("Referrer-Policy", "no-referrer")
		w.Write(data)
	}
}
