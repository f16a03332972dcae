package selftest_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/agentws/agentws/conformance"
	"github.com/agentws/agentws/conformance/internal/reftest"
)

// A breakage is a way to break one rule, applied by a proxy in front of the reference
// server: what a server of another implementation might get wrong.
type breakage struct {
	// frame rewrites a frame from the server; it returns the frames to pass on.
	frame func(f map[string]any) []map[string]any
	// closeCode rewrites the server's close code.
	closeCode func(websocket.StatusCode) websocket.StatusCode
	// closeAfterError closes the connection after any error frame, as the original
	// implementation does after some bad frames.
	closeAfterError bool
	// binaryCloses1000 answers a binary frame with a close 1000, as the original does.
	binaryCloses1000 bool
	// health rewrites the server's /ws/health body; live is the number of frames the
	// connections that are still open have been sent.
	health func(body map[string]any, live int64)
}

// proxyState is what a proxy counts.
type proxyState struct {
	live atomic.Int64 // frames sent to the connections still open
}

// proxy serves the protocol by relaying to upstream (ws://host:port/ws), broken as b says.
func proxy(t *testing.T, upstream string, b breakage) string {
	u, _ := url.Parse(strings.Replace(upstream, "ws", "http", 1))
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: u.Host})
	ps := &proxyState{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case b.health != nil && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/health"):
			serveHealth(w, u.Host, r.URL.Path, b, ps)
		case !strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			rp.ServeHTTP(w, r)
		default:
			relay(w, r, upstream, b, ps)
		}
	}))
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

// serveHealth answers with the upstream's health body, rewritten by b.health.
func serveHealth(w http.ResponseWriter, host, path string, b breakage, ps *proxyState) {
	resp, err := http.Get("http://" + host + path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	b.health(body, ps.live.Load())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	json.NewEncoder(w).Encode(body)
}

func relay(w http.ResponseWriter, r *http.Request, upstream string, b breakage, ps *proxyState) {
	ctx := context.Background()
	up, resp, err := dialUpstream(r, upstream)
	if err != nil {
		status := http.StatusBadGateway
		if resp != nil {
			status = resp.StatusCode
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if resp != nil {
			var body json.RawMessage
			json.NewDecoder(resp.Body).Decode(&body)
			w.Write(body)
		}
		return
	}
	up.SetReadLimit(-1)
	down, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		up.CloseNow()
		return
	}
	down.SetReadLimit(-1)
	var sent atomic.Int64 // frames this connection was sent: they stop counting when it ends
	defer func() { ps.live.Add(-sent.Load()) }()
	done := make(chan struct{})
	go func() { // server to client
		defer close(done)
		for {
			typ, data, err := up.Read(ctx)
			if err != nil {
				code := websocket.CloseStatus(err)
				if code == -1 {
					down.CloseNow()
					return
				}
				if b.closeCode != nil {
					code = b.closeCode(code)
				}
				down.Close(code, "")
				return
			}
			frames := [][]byte{data}
			var f map[string]any
			if typ == websocket.MessageText && json.Unmarshal(data, &f) == nil && b.frame != nil {
				frames = nil
				for _, g := range b.frame(f) {
					out, _ := json.Marshal(g)
					frames = append(frames, out)
				}
			}
			for _, out := range frames {
				if down.Write(ctx, typ, out) != nil {
					return
				}
				sent.Add(1)
				ps.live.Add(1)
			}
			if b.closeAfterError && f["type"] == "error" {
				down.Close(websocket.StatusNormalClosure, "")
				up.CloseNow()
				return
			}
		}
	}()
	for { // client to server
		typ, data, err := down.Read(ctx)
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				up.Close(code, "")
			} else {
				up.drop(done)
			}
			break
		}
		if typ == websocket.MessageBinary && b.binaryCloses1000 {
			down.Close(websocket.StatusNormalClosure, "")
			up.CloseNow()
			break
		}
		if up.Write(ctx, typ, data) != nil {
			break
		}
	}
	<-done
}

func keep(f map[string]any) []map[string]any { return []map[string]any{f} }

func ofType(typ string, edit func(map[string]any) []map[string]any) func(map[string]any) []map[string]any {
	return func(f map[string]any) []map[string]any {
		if f["type"] == typ {
			return edit(f)
		}
		return keep(f)
	}
}

// skipAfterResumed drops the first frame after a connected that says resumed: true.
// The frame function of a breakage sees the frames of every connection; the one
// resume of the cases it is used with is alone.
func skipAfterResumed() func(map[string]any) []map[string]any {
	var skipNext atomic.Bool
	return func(f map[string]any) []map[string]any {
		switch {
		case f["type"] == "connected":
			skipNext.Store(f["resumed"] == true)
		case skipNext.Swap(false):
			return nil
		}
		return keep(f)
	}
}

// TestBrokenServers breaks the reference server one rule at a time, through a proxy,
// and checks that the harness reports that rule, by id, with the verdict of its level,
// and no other (exact blame): every multi-rule case used has a rule broken alone.
func TestBrokenServers(t *testing.T) {
	upstream, _ := reftest.Start(t, nil)
	tests := []struct {
		name  string
		b     breakage
		cases []string
		rule  string
		want  conformance.Verdict
	}{
		{"connected is not the first frame", breakage{frame: ofType("connected", func(map[string]any) []map[string]any { return nil })},
			[]string{"ping_pong"}, "CONN-1", conformance.Fail},
		{"chunks numbered from 2", breakage{frame: ofType("chunk", func(f map[string]any) []map[string]any {
			f["chunk_number"] = f["chunk_number"].(float64) + 1
			return keep(f)
		})}, []string{"stream_numbering"}, "STREAM-3", conformance.Fail},
		{"total_chunks one too many", breakage{frame: ofType("complete", func(f map[string]any) []map[string]any {
			f["total_chunks"] = f["total_chunks"].(float64) + 1
			return keep(f)
		})}, []string{"stream_totals", "stream_fixture_frames"}, "STREAM-4", conformance.Fail},
		{"full_response not the chunks joined", breakage{frame: ofType("complete", func(f map[string]any) []map[string]any {
			f["full_response"] = "something else"
			return keep(f)
		})}, []string{"stream_totals"}, "STREAM-5", conformance.Fail},
		{"chunks of another session", breakage{frame: ofType("chunk", func(f map[string]any) []map[string]any {
			f["session_id"] = "someone-else"
			return keep(f)
		})}, []string{"stream_start", "stream_fixture_frames"}, "STREAM-2", conformance.Fail},
		{"timestamps without an offset", breakage{frame: func(f map[string]any) []map[string]any {
			if ts, ok := f["timestamp"].(string); ok {
				f["timestamp"] = strings.TrimSuffix(ts[:19], "Z")
			}
			return keep(f)
		}}, []string{"env_timestamps", "ping_pong", "env_json_text_frames"}, "ENV-5", conformance.Warn},
		{"pong without a timestamp", breakage{frame: ofType("pong", func(f map[string]any) []map[string]any {
			delete(f, "timestamp")
			return keep(f)
		})}, []string{"ping_pong", "env_json_text_frames"}, "ENV-2", conformance.Fail},
		{"no pong", breakage{frame: ofType("pong", func(map[string]any) []map[string]any { return nil })},
			[]string{"ping_pong"}, "PING-1", conformance.Fail},
		{"an error closes the connection", breakage{closeAfterError: true},
			[]string{"env_bad_frames"}, "ENV-4", conformance.Fail},
		{"a binary frame closes with 1000", breakage{binaryCloses1000: true},
			[]string{"env_binary_frame"}, "ENV-6", conformance.Warn},
		{"takeover closes with 1000", breakage{closeCode: func(c websocket.StatusCode) websocket.StatusCode {
			if c == 4001 {
				return websocket.StatusNormalClosure
			}
			return c
		}}, []string{"take_replaced", "take_stream_moves", "take_newer_unaffected"}, "TAKE-1", conformance.Fail},
		{"the stream stops after query_start", breakage{frame: func(f map[string]any) []map[string]any {
			if f["type"] == "chunk" || f["type"] == "complete" {
				return nil
			}
			return keep(f)
		}}, []string{"stream_numbering"}, "STREAM-1", conformance.Fail},
		{"streams without query_start", breakage{frame: ofType("query_start", func(map[string]any) []map[string]any { return nil })},
			[]string{"stream_start"}, "STREAM-1", conformance.Fail},
		{"the fixture answers in capitals", breakage{frame: func(f map[string]any) []map[string]any {
			for _, k := range []string{"content", "full_response"} {
				if s, ok := f[k].(string); ok {
					f[k] = strings.ToUpper(s)
				}
			}
			return keep(f)
		}}, []string{"stream_echo", "stream_fixture_frames"}, "FIX-1", conformance.Fail},
		{"connected names another session", breakage{frame: ofType("connected", func(f map[string]any) []map[string]any {
			f["session_id"] = "someone-else"
			return keep(f)
		})}, []string{"conn_first_frame"}, "CONN-3", conformance.Fail},
		{"connected claims version 1.0", breakage{frame: ofType("connected", func(f map[string]any) []map[string]any {
			f["protocol_version"] = "1.0"
			return keep(f)
		})}, []string{"conn_connected_frame"}, "CAP-1", conformance.Fail},
		{"health says draining", breakage{health: func(body map[string]any, _ int64) { body["status"] = "draining" }},
			[]string{"health_body"}, "HEALTH-2", conformance.Fail},
		{"errors without a code", breakage{frame: ofType("error", func(f map[string]any) []map[string]any {
			delete(f, "code")
			return keep(f)
		})}, []string{"code_bad_frames", "code_query_errors"}, "CODE-1", conformance.Fail},
		{"errors with a code outside the table", breakage{frame: ofType("error", func(f map[string]any) []map[string]any {
			f["code"] = "oops"
			return keep(f)
		})}, []string{"code_query_session_id"}, "CODE-1", conformance.Fail},
		{"unknown_type called invalid_message", breakage{frame: ofType("error", func(f map[string]any) []map[string]any {
			if f["code"] == "unknown_type" {
				f["code"] = "invalid_message"
			}
			return keep(f)
		})}, []string{"code_bad_frames"}, "CODE-2", conformance.Fail},
		{"busy called query_failed", breakage{frame: ofType("error", func(f map[string]any) []map[string]any {
			if f["code"] == "busy" {
				f["code"] = "query_failed"
			}
			return keep(f)
		})}, []string{"code_query_errors"}, "CODE-2", conformance.Fail},
		{"a failed query completes too", breakage{frame: ofType("error", func(f map[string]any) []map[string]any {
			if f["code"] != "query_failed" {
				return keep(f)
			}
			return []map[string]any{f, {"type": "complete", "session_id": f["session_id"], "full_response": "", "total_chunks": 0, "timestamp": f["timestamp"]}}
		})}, []string{"stream_agent_failure"}, "STREAM-6", conformance.Fail},
		{"__fail__ fails after a chunk", breakage{frame: ofType("error", func(f map[string]any) []map[string]any {
			if f["code"] != "query_failed" {
				return keep(f)
			}
			return []map[string]any{{"type": "chunk", "session_id": f["session_id"], "content": "x", "chunk_number": 1, "timestamp": f["timestamp"]}, f}
		})}, []string{"stream_agent_failure"}, "FIX-2", conformance.Fail},
		{"a rejoined session's complete comes twice", breakage{frame: ofType("complete", func(f map[string]any) []map[string]any {
			return []map[string]any{f, f}
		})}, []string{"buf_drop_reconnect"}, "BUF-4", conformance.Fail},
		{"a resume skips the first frame after last_seq", breakage{frame: skipAfterResumed()},
			[]string{"seq_resume"}, "SEQ-3", conformance.Fail},
		{"notices carry a query_id", breakage{frame: ofType("notice", func(f map[string]any) []map[string]any {
			f["query_id"] = "auto-1"
			return keep(f)
		})}, []string{"notice_stream"}, "NOTICE-2", conformance.Fail},
		{"a broadcast's notice comes twice", breakage{frame: ofType("notice", func(f map[string]any) []map[string]any {
			return []map[string]any{f, f}
		})}, []string{"notice_targets", "notice_offline"}, "NOTICE-3", conformance.Fail},
		{"notices without a level", breakage{frame: ofType("notice", func(f map[string]any) []map[string]any {
			delete(f, "level")
			return keep(f)
		})}, []string{"notice_offline"}, "NOTICE-1", conformance.Fail},
		{"an operator's end closes with 1000", breakage{closeCode: func(c websocket.StatusCode) websocket.StatusCode {
			if c == 4003 {
				return websocket.StatusNormalClosure
			}
			return c
		}}, []string{"admin_delete"}, "ADMIN-4", conformance.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := proxy(t, upstream, tt.b)
			opts := conformance.DefaultOptions(url)
			opts.Cases, opts.FrameTimeout = tt.cases, time.Second
			opts.AdminURL, opts.AdminToken = reftest.AdminURL(url), reftest.AdminToken // through the proxy
			start := time.Now()
			rep, err := conformance.Run(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("the run took %v: a broken server must not hold the harness", took)
			}
			var got *conformance.RuleResult
			for i := range rep.Rules {
				if rep.Rules[i].ID == tt.rule {
					got = &rep.Rules[i]
				}
			}
			if got == nil || got.Verdict != tt.want {
				t.Fatalf("rule %s: got %+v, want %s\n%s", tt.rule, got, tt.want, failures(rep))
			}
			if diff := cmp.Diff([]string{tt.rule}, broken(rep)); diff != "" {
				t.Errorf("the rules failed or warned (-want +got):\n%s\n%s", diff, failures(rep))
			}
			if !strings.Contains(failures(rep), tt.rule) && !strings.Contains(got.Note, "want") {
				t.Errorf("no failure names %s or says what was wanted:\n%s", tt.rule, failures(rep))
			}
			if (tt.want == conformance.Fail) != rep.Failed() {
				t.Errorf("the run failed: %v, want %v (%s)", rep.Failed(), tt.want == conformance.Fail, rep.Tally())
			}
		})
	}
}

// broken returns the rules the report fails or warns, sorted.
func broken(rep *conformance.Report) []string {
	var out []string
	for _, r := range rep.Rules {
		if r.Verdict == conformance.Fail || r.Verdict == conformance.Warn {
			out = append(out, r.ID)
		}
	}
	return out
}

func failures(rep *conformance.Report) string {
	var b strings.Builder
	for _, c := range rep.Cases {
		if c.Verdict != conformance.Pass {
			b.WriteString(c.Name + " " + string(c.Verdict) + ": " + c.Failure + "\n")
			for _, f := range c.Findings {
				b.WriteString("  finding " + f.Rule + ": " + f.Message + "\n")
			}
			for _, v := range c.Verdicts {
				b.WriteString("  " + v.Rule + " " + string(v.Verdict) + ": " + v.Note + "\n")
			}
		}
	}
	for _, f := range rep.Findings {
		b.WriteString("run-wide finding " + f.Rule + ": " + f.Message + "\n")
	}
	return b.String()
}

// A server that accepts connections but never says anything: the run ends in bounded
// time, reports CONN-1 broken, and says why it tested no capability.
func TestSilentServer(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		c.Read(context.Background()) // reads until the client goes; never writes
	}))
	defer ts.Close()
	opts := conformance.DefaultOptions("ws" + strings.TrimPrefix(ts.URL, "http") + "/ws")
	opts.FrameTimeout = 500 * time.Millisecond
	opts.Cases = []string{"conn_", "ping_", "stream_"}
	start := time.Now()
	rep, err := conformance.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	if !rep.Failed() || !strings.Contains(rep.Probe, "did not send connected first") {
		t.Errorf("report: %s, probe %q", rep.Tally(), rep.Probe)
	}
	for _, r := range rep.Rules {
		if r.ID == "CONN-1" && r.Verdict != conformance.Fail {
			t.Errorf("CONN-1: %+v", r)
		}
	}
}

// Nothing listens: the run says it cannot connect.
func TestNoServer(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
	ts.Close()
	_, err := conformance.Run(t.Context(), conformance.DefaultOptions(url))
	if err == nil || !strings.Contains(err.Error(), "cannot connect to the server at "+url) {
		t.Fatalf("got %v", err)
	}
	// The reports of a run that could not start say why, and fail.
	dir := t.TempDir()
	rep := conformance.RunError(conformance.DefaultOptions(url), err)
	if err := rep.WriteFiles(dir+"/r.json", dir+"/r.xml", dir+"/r.md", ""); err != nil {
		t.Fatal(err)
	}
	var back struct{ Error string }
	data, _ := os.ReadFile(dir + "/r.json")
	if json.Unmarshal(data, &back); !rep.Failed() || !strings.Contains(back.Error, "cannot connect") {
		t.Errorf("JSON report of a run that could not start: %s", data)
	}
	var junit struct {
		Failures int `xml:"failures,attr"`
	}
	data, _ = os.ReadFile(dir + "/r.xml")
	if err := xml.Unmarshal(data, &junit); err != nil || junit.Failures != 1 {
		t.Errorf("JUnit report of a run that could not start (%v): %s", err, data)
	}
	if data, _ = os.ReadFile(dir + "/r.md"); !strings.Contains(string(data), "could not start") {
		t.Errorf("Markdown summary of a run that could not start: %s", data)
	}
	for _, bad := range []string{"", "http://x/ws", "ws://x/ws?session_id=a"} {
		if _, err := conformance.Run(t.Context(), conformance.DefaultOptions(bad)); err == nil {
			t.Errorf("URL %q: want an error", bad)
		}
	}
	// A -case prefix that selects nothing is a mistake, even beside one that does.
	typo := conformance.DefaultOptions(url)
	typo.Cases = []string{"stream_", "strem_"}
	if _, err := conformance.Run(t.Context(), typo); err == nil || !strings.Contains(err.Error(), `no case name starts with "strem_"`) {
		t.Errorf("-case stream_,strem_: got %v", err)
	}
	// A web server that answers the URL with a page: it did not upgrade, and the error
	// says to check the endpoint rather than calling a 200 a refusal.
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html></html>")) }))
	defer page.Close()
	pageURL := "ws" + strings.TrimPrefix(page.URL, "http") + "/"
	if _, err := conformance.Run(t.Context(), conformance.DefaultOptions(pageURL)); err == nil || !strings.Contains(err.Error(), "did not upgrade to WebSocket (HTTP 200 OK)") {
		t.Errorf("a page at %s: got %v", pageURL, err)
	}
}

// The wire log of a failed case, written with -wirelogs, is a case of its own: run
// against a server broken the same way, it reproduces the failure.
func TestWireLogReplays(t *testing.T) {
	broken := breakage{frame: ofType("chunk", func(f map[string]any) []map[string]any {
		f["chunk_number"] = f["chunk_number"].(float64) + 1
		return keep(f)
	})}
	first, _ := reftest.Start(t, nil)
	opts := conformance.DefaultOptions(proxy(t, first, broken))
	opts.Cases, opts.FrameTimeout = []string{"stream_numbering"}, time.Second
	rep, err := conformance.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rep.WriteWireLogs(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := conformance.Catalog(dir); err != nil {
		t.Fatalf("the wire log is not a case: %v", err)
	}
	second, _ := reftest.Start(t, nil)
	again := conformance.DefaultOptions(proxy(t, second, broken))
	again.Dir, again.FrameTimeout = dir, time.Second
	replay, err := conformance.Run(t.Context(), again)
	if err != nil {
		t.Fatal(err)
	}
	if len(replay.Cases) != 1 || replay.Cases[0].Verdict != conformance.Fail || !strings.Contains(replay.Cases[0].Failure, "STREAM-3") {
		t.Errorf("the replay: %s\n%s", replay.Tally(), failures(replay))
	}
}

// A server whose total_messages_sent counts only the connections still open (it
// falls when they leave) passes health_messages_sent, where other cases keep the sum
// up; the run-wide check over every /ws/health body of the run fails HEALTH-3, and
// nothing else, in a full run.
func TestRunWideHealthCounter(t *testing.T) {
	upstream, _ := reftest.Start(t, nil)
	b := breakage{health: func(body map[string]any, live int64) { body["total_messages_sent"] = live }}
	opts := reftest.Options(proxy(t, upstream, b))
	opts.FrameTimeout = 2 * time.Second
	start := time.Now()
	rep, err := conformance.Run(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("the run took %v", took)
	}
	if diff := cmp.Diff([]string{"HEALTH-3"}, broken(rep)); diff != "" {
		t.Errorf("the rules failed or warned (-want +got):\n%s\n%s", diff, failures(rep))
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Rule != "HEALTH-3" || !strings.Contains(rep.Findings[0].Message, "total_messages_sent fell from") {
		t.Errorf("run-wide findings: %+v", rep.Findings)
	}
	if !rep.Failed() {
		t.Errorf("the run passed (%s), want it failed on HEALTH-3", rep.Tally())
	}
}
