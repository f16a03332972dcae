package main

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The range and precision of the latency histograms: 1 µs to 1 hour, 3 significant
// digits (an error of at most 0.1%). A longer value is recorded as the highest.
const (
	histMaxMicros = int64(time.Hour / time.Microsecond)
	histDigits    = 3
)

// The latencies measured, by their name in the report.
const (
	latConnect    = "connect"
	latFirstChunk = "first_chunk"
	latChunkGap   = "chunk_gap"
	latQuery      = "query"
	latSendLag    = "send_lag"
)

var latencyNames = []string{latConnect, latFirstChunk, latChunkGap, latQuery, latSendLag}

// The kinds of error, a server's or the network's, which -max-errors tolerates.
const (
	errDial       = "dial"        // the handshake failed; detail: the HTTP status and code, or the cause
	errClose      = "close"       // the server closed the connection; detail: the close code
	errErrorFrame = "error_frame" // a query ended with an error frame; detail: its code
	errTimeout    = "timeout"     // no frame, handshake or write within -timeout; detail: what was awaited
	errRead       = "read"        // reading failed otherwise (a reset connection)
	errWrite      = "write"       // writing failed
)

// The stream checks, which fail the run whatever -max-errors says.
const (
	checkInvalidFrame = "invalid_frame" // a frame is not valid against the server schemas (ENV-1, ENV-2)
	checkConnected    = "connected"     // the first frame is not connected, or names another session (CONN-1, CONN-3)
	checkOrder        = "order"         // a frame out of its place in a stream (STREAM-1)
	checkQueryStart   = "query_start"   // query_start does not carry the query (STREAM-2)
	checkChunkNumber  = "chunk_number"  // chunk_number is not the next one (STREAM-3)
	checkQueryID      = "query_id"      // a frame of the stream carries another query_id (QID-1)
	checkComplete     = "complete"      // total_chunks or full_response do not match the chunks (STREAM-4, STREAM-5)
	checkContent      = "content"       // the answer is not the fixture's "Echo: " + query (FIX-1)
	checkEcho         = "echo"          // an echo server sent back something else
)

// A recorder collects the measurements of every connection. Latencies are recorded
// as they happen, under its lock; counters are added once per connection.
type recorder struct {
	mu     sync.Mutex
	hists  map[string]*hdrhistogram.Histogram
	counts counts
	errors map[problemKey]*problem
	checks map[problemKey]*problem
}

// counts are the counters of a run, or of one connection.
type counts struct {
	opened        int64 // connections that got connected (or the upgrade, with -echo)
	queriesSent   int64
	queriesDone   int64 // ended with complete (with -echo: came back)
	streams       int64 // streams that ended, with complete or error
	lateSends     int64 // open loop: sends due while their connection was busy
	framesRead    int64
	bytesRead     int64
	framesWritten int64
}

func (c *counts) add(o counts) {
	c.opened += o.opened
	c.queriesSent += o.queriesSent
	c.queriesDone += o.queriesDone
	c.streams += o.streams
	c.lateSends += o.lateSends
	c.framesRead += o.framesRead
	c.bytesRead += o.bytesRead
	c.framesWritten += o.framesWritten
}

type problemKey struct{ kind, detail string }

// A problem is an error or a failed check, counted, with its first example.
type problem struct {
	Kind    string `json:"kind"`
	Detail  string `json:"detail,omitempty"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

func newRecorder() *recorder {
	r := &recorder{
		hists:  map[string]*hdrhistogram.Histogram{},
		errors: map[problemKey]*problem{},
		checks: map[problemKey]*problem{},
	}
	for _, name := range latencyNames {
		r.hists[name] = hdrhistogram.New(1, histMaxMicros, histDigits)
	}
	return r
}

// latency records d in the histogram name.
func (r *recorder) latency(name string, d time.Duration) {
	us := min(max(d.Microseconds(), 0), histMaxMicros)
	r.mu.Lock()
	r.hists[name].RecordValue(us) // within range: never an error
	r.mu.Unlock()
}

func (r *recorder) addCounts(c counts) {
	r.mu.Lock()
	r.counts.add(c)
	r.mu.Unlock()
}

// fail counts an error of the given kind.
func (r *recorder) fail(kind, detail, example string) {
	r.note(r.errors, kind, detail, example)
}

// failCheck counts a failed stream check.
func (r *recorder) failCheck(check, example string) {
	r.note(r.checks, check, "", example)
}

func (r *recorder) note(m map[problemKey]*problem, kind, detail, example string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := problemKey{kind, detail}
	p := m[k]
	if p == nil {
		p = &problem{Kind: kind, Detail: detail, Example: example}
		m[k] = p
	}
	p.Count++
}

// sorted returns the problems, the most frequent first.
func sorted(m map[problemKey]*problem) []problem {
	out := make([]problem, 0, len(m))
	for _, p := range m {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b problem) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Detail, b.Detail))
	})
	return out
}

func total(ps []problem) int64 {
	var n int64
	for _, p := range ps {
		n += p.Count
	}
	return n
}

// Percentiles summarises one histogram, in microseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Min   int64   `json:"min"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99_9"`
	Max   int64   `json:"max"`
}

func summarise(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.TotalCount(),
		Min:   h.Min(),
		Mean:  float64(int64(h.Mean()*10)) / 10,
		P50:   h.ValueAtQuantile(50),
		P90:   h.ValueAtQuantile(90),
		P99:   h.ValueAtQuantile(99),
		P999:  h.ValueAtQuantile(99.9),
		Max:   h.Max(),
	}
}
