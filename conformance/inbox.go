package conformance

import (
	"sync"
	"time"
)

// The bounds of what a connection holds unread: a server that sends faster than the
// case reads cannot make the harness hold more, nor block its reader.
const (
	maxQueued      = 1 << 14 // frames
	maxQueuedBytes = 64 << 20
)

// inbox holds the events a connection received and the case has not read yet: at most
// maxQueued frames and maxQueuedBytes bytes, then the end of the connection, which
// always gets in. The reader goroutine puts, the case's goroutine takes; neither blocks.
type inbox struct {
	mu     sync.Mutex
	frames []event
	bytes  int
	end    *event
	wake   chan struct{} // holds a token when something arrived since the last take
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

// put queues a frame; when the inbox is full it queues nothing and reports false.
func (q *inbox) put(e event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) >= maxQueued || q.bytes+len(e.data) > maxQueuedBytes {
		return false
	}
	q.frames = append(q.frames, e)
	q.bytes += len(e.data)
	q.signal()
	return true
}

// finish records the end of the connection, which comes after every queued frame.
func (q *inbox) finish(e event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.end = &e
	q.signal()
}

func (q *inbox) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the oldest frame, or the end once no frame is left (the end stays: every
// later take sees it); ok is false when there is neither yet.
func (q *inbox) take() (e event, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) > 0 {
		e, q.frames[0] = q.frames[0], event{}
		q.frames = q.frames[1:]
		q.bytes -= len(e.data)
		return e, true
	}
	if q.end != nil {
		return *q.end, true
	}
	return event{}, false
}

// A wait is the total bound of a command's read: the frames it skips do not extend it.
type wait struct {
	until time.Time
	of    time.Duration // for messages: "within 5s"
}

func within(d time.Duration) wait { return wait{until: time.Now().Add(d), of: d} }
