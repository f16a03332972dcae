package agent

import (
	"context"
	"iter"
	"strings"
	"time"
	"unicode/utf8"
)

// The fixture contract, spec/PROTOCOL.md rules FIX-1 to FIX-3.
const (
	FailQuery      = "__fail__"             // FIX-2: fail before the first chunk
	SlowPrefix     = "__slow__"             // FIX-3: a slow stream
	SlowDelay      = 100 * time.Millisecond // FIX-3: the wait before each chunk
	SlowChunkRunes = 8                      // FIX-3: the largest chunk of a slow stream
)

// ErrFixtureFailure is the failure the fixture agent reports for FailQuery; its text
// is public.
var ErrFixtureFailure error = &failure{kind: "failed", public: "the fixture agent fails on " + FailQuery}

// Fixture is the deterministic agent of the fixture contract: the answer to q is
// "Echo: " + q.
type Fixture struct {
	// Delay paces the chunks (the server's -fixture-delay), to emulate a model's token
	// rate: chunk k is due k delays after the start. A slow query always waits
	// SlowDelay before each chunk.
	Delay time.Duration
	// ChunkRunes is the smallest chunk size, in characters; 0 means 16. Long answers
	// use larger chunks, so that no answer has more than MaxChunks chunks.
	ChunkRunes int
}

// MaxChunks bounds the chunks of an answer that is not slow: an agent that produces
// them all at once never fills a connection's send queue.
const MaxChunks = 100

// Stream implements Agent.
func (f Fixture) Stream(ctx context.Context, req Request, emit func(string) error) error {
	if req.Query == FailQuery {
		return ErrFixtureFailure
	}
	answer := "Echo: " + req.Query
	size, delay := f.ChunkRunes, f.Delay
	if size <= 0 {
		size = 16
	}
	size = max(size, (utf8.RuneCountInString(answer)+MaxChunks-1)/MaxChunks)
	// A slow query waits SlowDelay before each chunk (FIX-3). Delay is a token rate:
	// chunk k is due k delays after the start, however long emitting the ones before
	// took, as a model's tokens come at its pace whatever the reader does with them.
	slow := strings.HasPrefix(req.Query, SlowPrefix)
	if slow {
		size, delay = SlowChunkRunes, SlowDelay
	}
	start := time.Now()
	var timer *time.Timer
	for k, chunk := range split(answer, size) {
		if delay > 0 {
			wait := delay
			if !slow {
				wait = time.Until(start.Add(time.Duration(k+1) * delay))
			}
			if timer == nil {
				timer = time.NewTimer(wait)
				defer timer.Stop()
			} else {
				timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := emit(chunk); err != nil {
			return err
		}
	}
	return nil
}

// split cuts s into pieces of at most n characters, never inside a character, in
// order, with their index.
func split(s string, n int) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		for k := 0; len(s) > 0; k++ {
			i, count := 0, 0
			for i < len(s) && count < n {
				_, w := utf8.DecodeRuneInString(s[i:])
				i += w
				count++
			}
			if !yield(k, s[:i]) {
				return
			}
			s = s[i:]
		}
	}
}
