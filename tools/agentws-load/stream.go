package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// A query is one query sent and the state of its stream as it arrives.
type query struct {
	k       int
	text    string
	id      string
	origin  time.Time // its intended send time in open loop, its send time otherwise
	started bool      // query_start arrived
	chunks  int64     // chunks received
	number  int64     // the chunk_number of the last one
	last    time.Time // when the last one arrived
	answer  strings.Builder
}

// queries sends the worker's queries one after another until -q are sent or the
// run's end. In open loop each has an intended send time fixed in advance; a query
// due while the previous one runs is sent as soon as it ends, and its latencies count
// from the intended time all the same (no coordinated omission).
func (w *worker) queries(ctx context.Context) error {
	c := w.r.cfg
	open := c.mode() == modeOpen
	var interval time.Duration
	base := time.Now()
	w.free = base
	if open {
		interval = time.Duration(float64(c.conns) / c.rate * float64(time.Second))
		base = base.Add(time.Duration(float64(w.id) / c.rate * float64(time.Second)))
	}
	for k := 0; ; k++ {
		var origin time.Time
		if open {
			origin = base.Add(time.Duration(k) * interval)
		} else {
			origin = time.Now()
		}
		if !w.r.more(k, origin) || ctx.Err() != nil {
			return nil
		}
		if open && !w.wait(ctx, origin) {
			return nil
		}
		var err error
		if c.echo {
			err = w.echo(ctx, k, origin)
		} else {
			err = w.ask(ctx, k, origin)
		}
		if err != nil {
			return err
		}
		if open {
			w.free = time.Now()
		}
	}
}

// wait sleeps until the intended send time, and records how late the send is beyond
// what its connection being busy explains: the client's own lag.
func (w *worker) wait(ctx context.Context, intended time.Time) bool {
	if d := time.Until(intended); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	due := intended
	if w.free.After(intended) {
		w.counts.lateSends++
		due = w.free
	}
	w.r.rec.latency(latSendLag, time.Since(due))
	return true
}

// ask sends query k and reads its stream to its terminal frame, checking it.
func (w *worker) ask(ctx context.Context, k int, origin time.Time) error {
	q := &query{k: k, text: queryText(w.id, k, w.r.cfg.querySize), id: "q" + strconv.Itoa(k)}
	msg, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Query   string `json:"query"`
		QueryID string `json:"query_id"`
	}{"query", q.text, q.id})
	sent := time.Now()
	if err := w.write(ctx, msg, "query "+q.id); err != nil {
		return err
	}
	w.counts.queriesSent++
	q.origin = origin
	if w.r.cfg.mode() != modeOpen {
		q.origin = sent
	}
	awaiting := "the stream of query " + q.id
	for {
		f, err := w.readFrame(ctx, awaiting)
		if err != nil {
			return err
		}
		if f == nil || ignorable(f.Type) {
			continue
		}
		if w.step(q, f) {
			w.counts.streams++
			return nil
		}
	}
}

// step applies one frame to the stream of q and reports whether it ended it.
func (w *worker) step(q *query, f *frame) bool {
	now := time.Now()
	if w.queryIDs && f.QueryID != q.id && (f.QueryID != "" || f.Type != typeError) {
		w.check(q, checkQueryID, "%s carries query_id %s, want %s (QID-1)", f.Type, quote(f.QueryID), quote(q.id))
	}
	switch f.Type {
	case typeQueryStart:
		if q.started || q.chunks > 0 {
			w.check(q, checkOrder, "a second query_start, or one after a chunk (STREAM-1)")
		}
		q.started = true
		if f.Query != q.text {
			w.check(q, checkQueryStart, "query_start carries query %s, want %s (STREAM-2)", quote(f.Query), quote(q.text))
		}
	case typeChunk:
		if !q.started {
			w.check(q, checkOrder, "chunk %d before query_start (STREAM-1)", f.ChunkNumber)
			q.started = true
		}
		if f.ChunkNumber != q.number+1 {
			w.check(q, checkChunkNumber, "chunk_number %d after %d, want %d (STREAM-3)", f.ChunkNumber, q.number, q.number+1)
		}
		if q.chunks == 0 {
			w.r.rec.latency(latFirstChunk, now.Sub(q.origin))
		} else {
			w.r.rec.latency(latChunkGap, now.Sub(q.last))
		}
		q.chunks, q.number, q.last = q.chunks+1, f.ChunkNumber, now
		q.answer.WriteString(f.Content)
	case typeComplete:
		w.completed(q, f, now)
		return true
	case typeError:
		code := f.Code
		if code == "" {
			code = "none"
		}
		w.r.rec.fail(errErrorFrame, code, fmt.Sprintf("connection %d, query %s: %s", w.id, q.id, quote(f.Error)))
		return true
	default:
		w.check(q, checkOrder, "%s in the stream (STREAM-1)", quote(f.Type))
	}
	return false
}

// completed checks the complete of q against its chunks (STREAM-4, STREAM-5) and,
// with -fixture, against the fixture agent's answer (FIX-1).
func (w *worker) completed(q *query, f *frame, now time.Time) {
	w.counts.queriesDone++
	w.r.rec.latency(latQuery, now.Sub(q.origin))
	if !q.started {
		w.check(q, checkOrder, "complete without query_start (STREAM-1)")
	}
	answer := q.answer.String()
	if f.TotalChunks != q.chunks {
		w.check(q, checkComplete, "total_chunks %d after %d chunks (STREAM-4)", f.TotalChunks, q.chunks)
	}
	if f.FullResponse != answer {
		w.check(q, checkComplete, "full_response %s, but the chunks say %s (STREAM-5)", quote(f.FullResponse), quote(answer))
	}
	if want := "Echo: " + q.text; w.r.cfg.fixture && answer != want {
		w.check(q, checkContent, "the answer is %s, want %s (FIX-1)", quote(answer), quote(want))
	}
}

func (w *worker) check(q *query, check, format string, args ...any) {
	w.r.rec.failCheck(check, fmt.Sprintf("connection %d, query %s: ", w.id, q.id)+fmt.Sprintf(format, args...))
}

// echo sends frame k, of -query-size bytes, and waits for it to come back.
func (w *worker) echo(ctx context.Context, k int, origin time.Time) error {
	// Write returns when the frame is written: the buffer serves every frame.
	w.echoBuf = appendQueryText(w.echoBuf[:0], w.id, k, w.r.cfg.querySize)
	msg := w.echoBuf
	sent := time.Now()
	if err := w.write(ctx, msg, "frame "+strconv.Itoa(k)); err != nil {
		return err
	}
	w.counts.queriesSent++
	if w.r.cfg.mode() != modeOpen {
		origin = sent
	}
	typ, data, err := w.readMessage(ctx, "the echo of frame "+strconv.Itoa(k))
	if err != nil {
		return err
	}
	w.counts.queriesDone++
	w.counts.streams++
	w.r.rec.latency(latQuery, time.Since(origin))
	if typ != websocket.MessageText || !bytes.Equal(data, msg) {
		w.r.rec.failCheck(checkEcho, fmt.Sprintf("connection %d, frame %d: %v %s came back, want text %s", w.id, k, typ, quote(string(data)), quote(string(msg))))
	}
	return nil
}

// hold keeps an idle connection open until release is closed, reading (and checking)
// whatever the server sends meanwhile, such as keepalives; then it disconnects.
func (w *worker) hold(ctx context.Context, release <-chan struct{}) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.readUntilDisconnected(ctx, "a frame on an idle connection", "on an idle connection")
	}()
	select {
	case <-release:
	case <-done: // the connection failed
		return
	}
	if w.r.cfg.echo { // an echo server knows no disconnect
		w.closing.Store(true)
		w.conn.Close(websocket.StatusNormalClosure, "")
		<-done
		return
	}
	if w.write(ctx, []byte(`{"type":"disconnect"}`), "disconnect") != nil {
		w.closing.Store(true)
		w.conn.CloseNow()
		<-done
		return
	}
	t := time.NewTimer(w.r.cfg.timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.r.rec.fail(errTimeout, "disconnected", fmt.Sprintf("connection %d: no disconnected within %v", w.id, w.r.cfg.timeout))
		w.closing.Store(true)
		w.conn.CloseNow()
		<-done
	}
	w.conn.CloseNow()
}
