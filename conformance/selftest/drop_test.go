package selftest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/conformance"
)

// slowReader hands out at most 16 KiB a call, a millisecond apart: a server that
// reads slower than the harness writes, so that the end of a big message still waits
// in the harness's socket when the case drops the connection.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return s.r.Read(p[:min(len(p), 16<<10)])
}

// A message sent before drop reaches the server whole, although frames the harness has
// not read yet are arriving when it drops: a close() with unread data resets the
// connection, and the kernel throws away what it had not sent yet.
func TestDropDeliversWhatWasSent(t *testing.T) {
	const size = 4 << 20
	got := make(chan string, 16)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(2 * size)
		ctx := r.Context()
		sid := r.URL.Query().Get("session_id")
		connected := fmt.Sprintf(`{"type":"connected","session_id":%q,"message":"WebSocket connection established","timestamp":"2026-01-01T00:00:00Z","protocol_version":"1.1","capabilities":[]}`, sid)
		if c.Write(ctx, websocket.MessageText, []byte(connected)) != nil {
			return
		}
		// Frames keep coming, so that some are always unread.
		go func() {
			for ctx.Err() == nil {
				if c.Write(ctx, websocket.MessageText, []byte(`{"type":"keepalive","timestamp":"2026-01-01T00:00:00Z"}`)) != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		for {
			_, rd, err := c.Reader(ctx)
			if err != nil {
				if strings.HasPrefix(sid, "cf-") {
					got <- fmt.Sprintf("no message: %v", err)
				}
				return
			}
			n, err := io.Copy(io.Discard, slowReader{rd})
			if strings.HasPrefix(sid, "cf-") {
				got <- fmt.Sprintf("%d bytes, %v", n, err)
			}
			if err != nil {
				return
			}
		}
	}))
	defer ts.Close()

	dir := t.TempDir()
	script := fmt.Sprintf(`# A big message, then a drop.
# rules: ENV-7
# level: MUST

open c 'session_id=$SID'
expect c '{"type": "connected"}'
sendbig c %d
drop c
`, size)
	if err := os.WriteFile(filepath.Join(dir, "drop_big.txtar"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := conformance.DefaultOptions("ws" + strings.TrimPrefix(ts.URL, "http") + "/ws")
	opts.Dir = dir
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rep, err := conformance.Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s in %v", rep.Tally(), rep.Duration)
	if rep.Failed() {
		t.Errorf("report: %s\n%s", rep.Tally(), failures(rep))
	}
	// The message, then the end of the connection: the server reads both, however
	// slowly, within the bound.
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for _, want := range []string{fmt.Sprintf("%d bytes, <nil>", size), "no message: "} {
		select {
		case g := <-got:
			if !strings.HasPrefix(g, want) {
				t.Fatalf("the server read %s, want %s", g, want)
			}
		case <-timer.C:
			t.Fatalf("the server did not read %s within 30s", want)
		}
	}
}
