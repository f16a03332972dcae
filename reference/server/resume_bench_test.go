package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkResume measures a reconnect that resumes a full history of 100 frames over
// loopback: from the dial (the upgrade included) to the last of the 100 frames read.
func BenchmarkResume(b *testing.B) {
	s := start(b, nil)
	ctx := context.Background()
	sid := "bench-resume"
	ws, _, err := websocket.Dial(ctx, s.wsURL("session_id="+sid), nil)
	if err != nil {
		b.Fatal(err)
	}
	_, data, _ := ws.Read(ctx)
	epoch := between(string(data), `"epoch":"`, `"`)
	// Two answers of some 65 frames each: more than the history's 100.
	for i := range 2 {
		ws.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"type":"query","query":"%d %s"}`, i, strings.Repeat("x", 1000))))
	}
	last := 0
	for completes := 0; completes < 2; {
		_, data, err := ws.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if strings.Contains(string(data), `"type":"complete"`) {
			completes++
		}
		fmt.Sscan(between(string(data), `"seq":`, `,`), &last)
	}
	ws.CloseNow()
	lastSeq := last - 100 // resume exactly the 100 kept frames
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		ws, _, err := websocket.Dial(ctx, s.wsURL(fmt.Sprintf("session_id=%s&last_seq=%d&epoch=%s", sid, lastSeq, epoch)), nil)
		if err != nil {
			b.Fatal(err)
		}
		ws.SetReadLimit(-1)
		_, data, err := ws.Read(ctx)
		if err != nil || !strings.Contains(string(data), `"resumed":true`) {
			b.Fatalf("connected %s, %v", data, err)
		}
		for range 100 {
			if _, _, err := ws.Read(ctx); err != nil {
				b.Fatal(err)
			}
		}
		total += time.Since(start)
		ws.CloseNow()
	}
	b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/resume")
}

func between(s, open, close string) string {
	_, after, _ := strings.Cut(s, open)
	v, _, _ := strings.Cut(after, close)
	return v
}
