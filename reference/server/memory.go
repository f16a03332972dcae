package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// memory is the server-wide count of the bytes held on behalf of clients, against the
// budget -max-memory-bytes (BUF-7): every encoded frame (once, however many of a
// session's history, offline buffer and connections' send queues hold it), remembered
// results, the text of queued and running queries, the answers being built, and the
// messages being read beyond the first readFree bytes. What grows it on a client's
// behalf reserves the bytes first (tryReserve, reserve), so that the count stays
// within the budget; only frames of a bounded size per connection (pongs, refusals,
// keepalive, connected) and per query (its terminal error) are counted without a
// reservation. Going over the budget, or a reservation that finds no room, wakes the
// reclaimer.
type memory struct {
	held atomic.Int64
	max  int64
	want atomic.Int64 // the reservation a runner waits to make, for the reclaimer
	wake func()

	mu      sync.Mutex
	room    chan struct{} // closed when bytes are released; nil when no reservation waits
	waiting atomic.Int32  // reservations waiting for room
}

// add counts n more bytes held (fewer when n is negative); growth past the budget wakes
// the reclaimer, a release wakes the reservations waiting for room. A nil memory
// counts nothing.
func (m *memory) add(n int) {
	if m == nil || n == 0 {
		return
	}
	h := m.held.Add(int64(n))
	switch {
	case n > 0 && h > m.max && m.wake != nil:
		m.wake()
	case n < 0 && m.waiting.Load() > 0:
		m.signal()
	}
}

// over reports whether more than the budget is held.
func (m *memory) over() bool { return m.held.Load() > m.max }

// pressure reports whether the reclaimer should take bytes back: more than the budget
// is held, or a waiting reservation needs more room than is left.
func (m *memory) pressure() bool { return m.held.Load()+m.want.Load() > m.max }

// tryReserve counts n more bytes held if that stays within the budget, and reports
// whether it did. The caller releases them with add(-n), or hands them on to what it
// builds.
func (m *memory) tryReserve(n int) bool {
	for {
		h := m.held.Load()
		if h+int64(n) > m.max {
			return false
		}
		if m.held.CompareAndSwap(h, h+int64(n)) {
			return true
		}
	}
}

// Why a reservation failed.
var (
	errNoRoom  = errors.New("no room in the memory budget")
	errStopped = errors.New("stopped while waiting for room in the memory budget")
)

// reserve is tryReserve that waits, at most patience, for room: for frames leaving the
// send queues and for the reclaimer. It returns errStopped when stop is closed first,
// errNoRoom when patience runs out.
func (m *memory) reserve(n int, stop <-chan struct{}, patience time.Duration) error {
	if m.tryReserve(n) {
		return nil
	}
	m.waiting.Add(1)
	defer m.waiting.Add(-1)
	timer := time.NewTimer(patience)
	defer timer.Stop()
	var woke time.Time
	for {
		room := m.roomSignal()
		if m.tryReserve(n) {
			m.want.CompareAndSwap(int64(n), 0)
			return nil
		}
		m.want.Store(int64(n))
		// A pass of the reclaimer walks every session: ask for one at most every
		// reclaimEvery, not on every release.
		if now := time.Now(); m.wake != nil && now.Sub(woke) >= reclaimEvery {
			woke = now
			m.wake()
		}
		select {
		case <-room:
		case <-stop:
			m.want.CompareAndSwap(int64(n), 0)
			return errStopped
		case <-timer.C:
			m.want.CompareAndSwap(int64(n), 0)
			return errNoRoom
		}
	}
}

// reclaimEvery is how often a waiting reservation asks the reclaimer for room.
const reclaimEvery = 10 * time.Millisecond

// roomSignal returns a channel that is closed when bytes are next released.
func (m *memory) roomSignal() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.room == nil {
		m.room = make(chan struct{})
	}
	return m.room
}

func (m *memory) signal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.room != nil {
		close(m.room)
		m.room = nil
	}
}

// A charge is the bytes of one encoded frame, counted once for all the structures that
// hold the frame: each holds it (hold) while it keeps the frame and drops it when it
// lets go; the bytes are released with the last drop. The code that charges a frame
// owns one hold, which it drops once it has stored the frame where it goes. A function
// that takes frames out of a structure and returns them hands over their holds. A nil
// charge counts nothing.
type charge struct {
	n    int
	refs atomic.Int32
	mem  *memory
}

// frameOverhead bounds what a frame holds besides its bytes: its place in a slice and
// its charge.
const frameOverhead = 96

// charge counts f's bytes as held, with one hold for the caller, unless f is charged
// already.
func (m *memory) charge(f *frame) {
	if f.held != nil || m == nil {
		return
	}
	f.held = &charge{n: cap(f.data) + frameOverhead, mem: m}
	f.held.refs.Store(1)
	m.add(f.held.n)
}

func (c *charge) hold() {
	if c != nil {
		c.refs.Add(1)
	}
}

func (c *charge) drop() {
	if c != nil && c.refs.Add(-1) == 0 {
		c.mem.add(-c.n)
	}
}

// dropAll drops the holds of frames handed over.
func dropAll(frames []frame) {
	for _, f := range frames {
		f.held.drop()
	}
}

// A reclaimer takes bytes back from sessions when the server is under pressure: more
// than the budget held, or a reservation waiting for room. It runs in one goroutine at
// a time, started on demand; a wake while it runs makes it run once more.
type reclaimer struct {
	mu      sync.Mutex // serialises reclaim passes; taken with no session's mu held
	running atomic.Bool
	pending atomic.Bool
}

// wakeReclaim asks for a reclaim pass; it never blocks on a session, and may be called
// with a session's mu held (the lock order is session, then server).
func (s *Server) wakeReclaim() {
	s.reclaim.pending.Store(true)
	if !s.reclaim.running.CompareAndSwap(false, true) {
		return
	}
	// Close waits for it. A stopping server starts none: while it drains, its budget
	// is not enforced (new connections are refused, and running queries only finish).
	if !s.track(&s.background) {
		s.reclaim.running.Store(false)
		return
	}
	go func() {
		defer s.background.Done()
		s.reclaimLoop()
	}()
}

func (s *Server) reclaimLoop() {
	for {
		for s.reclaim.pending.Swap(false) {
			s.reclaimPass()
		}
		s.reclaim.running.Store(false)
		if !s.reclaim.pending.Load() || !s.reclaim.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// reclaimPass sheds, while the server is under pressure, first the sessions without a
// connection, the one offline the longest first (their buffers, histories and
// remembered results), then the histories and remembered results of the sessions with
// one, which only a resume or a repeated query_id would ask for. It holds one lock at
// a time: the server's for the snapshots, then each session's in turn. The caller
// holds no session's mu.
func (s *Server) reclaimPass() {
	s.reclaim.mu.Lock()
	defer s.reclaim.mu.Unlock()
	for _, sess := range s.offlineOrder() {
		if !s.mem.pressure() {
			return
		}
		sess.shed(false)
	}
	for _, sess := range s.snapshot() {
		if !s.mem.pressure() {
			return
		}
		sess.shed(true)
	}
}

// offlineOrder returns the sessions without a connection, oldest first.
func (s *Server) offlineOrder() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	order := make([]*session, 0, s.offline.order.Len())
	for e := s.offline.order.Front(); e != nil; e = e.Next() {
		order = append(order, e.Value.(*session))
	}
	return order
}

// shed drops, while the server is under pressure, the oldest frames of the session's
// buffer and history and its oldest remembered results: of a session without a
// connection, or with one when online is true (it has no buffer then). Buffered frames
// dropped are counted as evicted, so the next connection is told (BUF-8); a resume
// finds them missed (SEQ-4); a repeated query_id whose result was dropped gets
// result_dropped (QID-4). A frame still waiting in a send queue stays counted until it
// is written.
func (s *session) shed(online bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if (s.conn != nil) != online || s.ended {
		return
	}
	for s.srv.mem.pressure() {
		n := s.buf.dropOldest()
		s.countEvictedLocked(n)
		n += s.hist.dropOldest()
		if n == 0 && !s.finished.dropOldest() {
			return
		}
	}
}
