package server

import (
	"sync"
	"sync/atomic"
)

// memory is the server-wide count of the bytes all sessions hold in their offline
// buffers, histories, remembered results and queued query text, against the budget
// -max-memory-bytes. Each of those structures adds what it grows by and subtracts what
// it drops; a session that ends releases everything it held. Going over the budget
// wakes the reclaimer.
type memory struct {
	held atomic.Int64
	max  int64
	wake func()
}

// add counts n more bytes held (fewer when n is negative); growth past the budget wakes
// the reclaimer. A nil memory counts nothing.
func (m *memory) add(n int) {
	if m == nil || n == 0 {
		return
	}
	if m.held.Add(int64(n)) > m.max && n > 0 && m.wake != nil {
		m.wake()
	}
}

// over reports whether the sessions hold more than the budget.
func (m *memory) over() bool { return m.held.Load() > m.max }

// A reclaimer takes bytes back from sessions without a connection when the sessions
// hold more than the budget. It runs in one goroutine at a time, started on demand; a
// wake while it runs makes it run once more.
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

// reclaimPass sheds the sessions without a connection, the one offline the longest
// first, until the total is within the budget or none is left. It holds one lock at a
// time: the server's for the snapshot of the offline order, then each session's in
// turn. The caller holds no session's mu.
func (s *Server) reclaimPass() {
	s.reclaim.mu.Lock()
	defer s.reclaim.mu.Unlock()
	for _, sess := range s.offlineOrder() {
		if !s.mem.over() {
			return
		}
		sess.shed()
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

// shed drops the oldest frames of the session's buffer and history and its oldest
// remembered results, while the server is over its budget and the session, still
// without a connection, holds any. Buffered frames dropped are counted as evicted, so
// the next connection is told (BUF-8); a resume finds them missed (SEQ-4); a repeated
// query_id whose result was dropped gets result_dropped (QID-4).
func (s *session) shed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil || s.ended {
		return
	}
	for s.srv.mem.over() {
		n := s.buf.dropOldest()
		s.countEvictedLocked(n)
		n += s.hist.dropOldest()
		if n == 0 && !s.finished.dropOldest() {
			return
		}
	}
}
