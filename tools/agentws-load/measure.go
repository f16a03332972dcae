package main

import (
	"sync"
	"time"
)

// A measure brackets a run: wall time, the client's CPU time and, with -pid, the
// server's CPU time and RSS before and after, and its peak RSS sampled in between.
type measure struct {
	pid      int
	start    time.Time
	end      time.Time
	ownStart time.Duration
	ownEnd   time.Duration

	before, after procSample
	opened        procSample // with -idle: once every connection is open
	held          procSample // with -idle: while the connections are held
	procErr       error      // the server could not be read (it exited?)

	mu   sync.Mutex
	peak int64
	quit chan struct{}
	done sync.WaitGroup
}

func startMeasure(c *config) *measure {
	m := &measure{pid: c.pid, quit: make(chan struct{})}
	if m.pid > 0 {
		m.before, m.procErr = readProc(m.pid)
		m.peak = m.before.rss
		m.done.Go(func() { m.samplePeak(c.sample) })
	}
	m.ownStart = ownCPU()
	m.start = time.Now()
	return m
}

// samplePeak reads the server's RSS every interval until stop.
func (m *measure) samplePeak(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-t.C:
			if s, err := readProc(m.pid); err == nil {
				m.notePeak(s.rss)
			}
		}
	}
}

func (m *measure) notePeak(rss int64) {
	m.mu.Lock()
	m.peak = max(m.peak, rss)
	m.mu.Unlock()
}

// sampleOpened reads the server once every idle connection is open: its CPU time
// since the start is what opening them cost.
func (m *measure) sampleOpened() {
	if m.pid <= 0 || m.procErr != nil {
		return
	}
	m.opened, m.procErr = readProc(m.pid)
	m.notePeak(m.opened.rss)
}

// sampleHeld reads the server while every idle connection is held.
func (m *measure) sampleHeld() {
	if m.pid <= 0 || m.procErr != nil {
		return
	}
	m.held, m.procErr = readProc(m.pid)
	m.notePeak(m.held.rss)
}

// stop ends the measure.
func (m *measure) stop() {
	m.end = time.Now()
	m.ownEnd = ownCPU()
	if m.pid <= 0 {
		return
	}
	close(m.quit)
	m.done.Wait()
	if m.procErr == nil {
		m.after, m.procErr = readProc(m.pid)
		m.notePeak(m.after.rss)
	}
}

func (m *measure) wall() time.Duration { return m.end.Sub(m.start) }
