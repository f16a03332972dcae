package client

import (
	"context"
	"iter"
)

// Answer is a whole answer: the complete frame of a query.
type Answer struct {
	Text        string // full_response
	TotalChunks int    // total_chunks
	Replayed    bool   // the server sent the end of a query it had already answered (QID-4)
	QueryID     string // the query's id (the client's, when the server does not claim query_id)
}

// A Query is one query sent by [Client.Query]: its chunks as they arrive, and its end.
// Its fields are guarded by the client's mutex.
type Query struct {
	c     *Client
	id    string
	frame queryFrame

	sent    bool // its frame was handed to a connection's writer
	started bool // query_start arrived
	ended   bool // its stream is over for the client: no frame of it is expected any more
	next    int  // the chunk_number expected next

	chunks  []string
	done    chan struct{} // closed when the caller's outcome (answer or err) is set
	changed chan struct{} // closed and replaced at each new chunk, and at the end
	answer  Answer
	err     error

	stopCtx    func() bool // stops the AfterFunc that cancels on the query's context
	sentWithID bool        // it was last sent with its query_id
}

// ID returns the query's id: the one given with WithQueryID or assigned by the client.
func (q *Query) ID() string { return q.id }

// Done is closed when the query has ended, with its answer or its error.
func (q *Query) Done() <-chan struct{} { return q.done }

// Result waits for the end of the query and returns its answer, or the error it ended
// with (an [*Error]).
func (q *Query) Result() (Answer, error) {
	<-q.done
	q.c.mu.Lock()
	defer q.c.mu.Unlock()
	return q.answer, q.err
}

// Chunks ranges over the contents of the query's chunks, in order, each once, as they
// arrive; when the query fails, the last iteration yields its error. Each range starts
// from the first chunk.
func (q *Query) Chunks() iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for i := 0; ; {
			q.c.mu.Lock()
			if i < len(q.chunks) {
				s := q.chunks[i]
				q.c.mu.Unlock()
				i++
				if !yield(s, nil) {
					return
				}
				continue
			}
			finished, err, changed := q.isDone(), q.err, q.changed
			q.c.mu.Unlock()
			if finished {
				if err != nil {
					yield("", err)
				}
				return
			}
			<-changed
		}
	}
}

// The methods below are called with the client's mutex held.

func (q *Query) isDone() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

func (q *Query) notify() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// addChunk delivers a chunk, or fails the query with gap when its number is not the
// next one. It reports whether the chunk was taken.
func (q *Query) addChunk(f serverFrame) bool {
	if f.ChunkNumber != nil && *f.ChunkNumber != q.next {
		q.settle(Answer{}, newError(CodeGap, "chunk %d of query %s arrived after chunk %d: the answer is incomplete", *f.ChunkNumber, q.id, q.next-1))
		return false
	}
	q.next++
	q.chunks = append(q.chunks, f.Content)
	q.notify()
	return true
}

// complete ends the query with its answer. A complete that announces more chunks than
// arrived is a gap; a replayed one of a query that delivered none gives the answer in
// one piece.
func (q *Query) complete(f serverFrame) {
	a := Answer{Replayed: f.Replayed, QueryID: q.id, TotalChunks: len(q.chunks)}
	if f.TotalChunks != nil {
		a.TotalChunks = *f.TotalChunks
	}
	for _, c := range q.chunks {
		a.Text += c
	}
	if f.FullResponse != nil {
		a.Text = *f.FullResponse
	}
	switch {
	case f.Replayed && len(q.chunks) == 0:
		if a.Text != "" {
			q.chunks = append(q.chunks, a.Text)
		}
	case a.TotalChunks > len(q.chunks):
		q.settle(Answer{}, newError(CodeGap, "query %s completed with %d chunks, of which %d arrived: the answer is incomplete", q.id, a.TotalChunks, len(q.chunks)))
		return
	}
	q.settle(a, nil)
}

// settle sets the caller's outcome, once; later calls do nothing.
func (q *Query) settle(a Answer, err error) {
	if q.isDone() {
		return
	}
	q.answer, q.err = a, err
	if q.stopCtx != nil {
		q.stopCtx()
	}
	close(q.done)
	q.notify()
}

// watch cancels the query when ctx is done, until the query ends.
func (q *Query) watch(ctx context.Context) {
	if ctx.Done() == nil {
		return
	}
	q.stopCtx = context.AfterFunc(ctx, func() { q.c.cancel(q) })
}
