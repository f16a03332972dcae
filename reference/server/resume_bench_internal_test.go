package server

import (
	"testing"

	"github.com/agentws/agentws/schemas/msg"
)

// BenchmarkResumeAttach measures the server's work to resume a full history of 100
// frames: finding the frames after last_seq and queueing them, behind connected, for
// the connection's writer.
func BenchmarkResumeAttach(b *testing.B) {
	cfg := DefaultConfig()
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	s := newSession(srv, "bench", "")
	for i := range 130 {
		s.emit(func(seq int) any {
			return msg.Chunk{Type: msg.ChunkTypeChunk, Content: "some forty characters of an answer here.", ChunkNumber: i + 1, SessionId: s.id, QueryId: "q1", Seq: seq, Timestamp: timestamp()}
		})
	}
	if len(s.hist.frames) != cfg.BufferSize {
		b.Fatalf("history holds %d frames, want %d", len(s.hist.frames), cfg.BufferSize)
	}
	resume := resumeRequest{asked: true, lastSeq: s.hist.frames[0].seq - 1, epoch: s.epoch}
	b.ReportAllocs()
	for b.Loop() {
		c := &conn{srv: srv, limit: cfg.SendQueue, done: make(chan struct{})}
		if _, err := s.attach(c, resume); err != nil {
			b.Fatalf("attach: %v", err)
		}
		if len(c.out) != cfg.BufferSize+1 {
			b.Fatalf("queued %d frames, want connected and %d", len(c.out), cfg.BufferSize)
		}
		s.conn = nil
	}
}
