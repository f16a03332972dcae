package pace

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Until waits until t, or until ctx is done; it returns ctx.Err() when ctx ended the
// wait, else nil. It never returns before t unless ctx is done.
func Until(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	if w := shared(); w != nil {
		return w.wait(ctx, d)
	}
	return timerWait(ctx, d)
}

// TimerUntil is Until with a time.Timer, everywhere: what a testing/synctest bubble's
// clock drives (Until's timerfd keeps the machine's time), or a wait whose millisecond
// does not matter.
func TimerUntil(ctx context.Context, t time.Time) error {
	if d := time.Until(t); d > 0 {
		return timerWait(ctx, d)
	}
	return ctx.Err()
}

// Sleep waits for d, or until ctx is done, as Until.
func Sleep(ctx context.Context, d time.Duration) error {
	return Until(ctx, time.Now().Add(d))
}

// timerWait is Until with a time.Timer.
func timerWait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// A clock is what a waker needs of its timer: the time now, and an alarm set to go
// off at a time of the same clock (in nanoseconds), which wakes the waker's loop.
type clock interface {
	now() int64
	set(at int64) error
	// alarm blocks until the alarm has gone off since it last returned, or until the
	// clock is closed (false).
	alarm() bool
	close()
}

// A waker keeps the waits of a process in a heap, earliest first, with its clock's
// alarm set for the earliest, and a time.Timer too: the runtime asks its poller (and so
// the timerfd) only when it has nothing to run, so while goroutines keep the
// processors busy, the timerfd's expiry waits; then Go's timers, which the scheduler
// checks each time it switches goroutines, are the ones on time. Whichever goes off
// first ends the waits that are due.
type waker struct {
	clock clock
	timer *time.Timer

	mu    sync.Mutex
	waits waitHeap
	set   int64 // when the alarm is set for; 0: not set
	dead  bool  // the clock failed: waits go to time.Timer
}

type waitFor struct {
	at   int64
	done chan struct{} // the loop sends to it (it has room for one) when the wait is due
	i    int           // index in the heap; -1 once out of it
}

// waits keeps the waitFors of the waits that ended, with their channels, empty: a
// wait allocates nothing.
var waits = sync.Pool{New: func() any { return &waitFor{done: make(chan struct{}, 1)} }}

func newWaker(c clock) *waker {
	w := &waker{clock: c}
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	go w.loop()
	return w
}

func (w *waker) wait(ctx context.Context, d time.Duration) error {
	wf := waits.Get().(*waitFor)
	wf.at = w.clock.now() + int64(d)
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		waits.Put(wf)
		return timerWait(ctx, d)
	}
	heap.Push(&w.waits, wf)
	if w.set == 0 || wf.at < w.set {
		w.setLocked(wf.at)
	}
	w.mu.Unlock()
	select {
	case <-wf.done:
		waits.Put(wf)
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	if wf.i >= 0 {
		heap.Remove(&w.waits, wf.i)
		waits.Put(wf)
	} // else it was due, or given to a time.Timer: it is not used again, whoever sends
	w.mu.Unlock()
	return ctx.Err()
}

// loop ends the waits that are due each time the alarm goes off.
func (w *waker) loop() {
	for w.clock.alarm() {
		w.fire()
	}
}

// fire ends the waits that are due, and sets the alarm and the timer for the next.
func (w *waker) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.now()
	for len(w.waits) > 0 && w.waits[0].at <= now {
		heap.Pop(&w.waits).(*waitFor).done <- struct{}{}
	}
	w.set = 0
	if len(w.waits) > 0 {
		w.setLocked(w.waits[0].at)
	}
}

// setLocked sets the alarm, and the timer, for at. Should the clock fail, the waits go on with
// time.Timer, from the same time, and so do the ones to come. w.mu is held.
func (w *waker) setLocked(at int64) {
	if w.dead {
		return
	}
	w.set = at
	if w.clock.set(at) == nil {
		w.timer.Reset(time.Duration(at - w.clock.now()))
		return
	}
	w.dead = true
	w.timer.Stop()
	w.clock.close() // the loop ends
	for len(w.waits) > 0 {
		wf := heap.Pop(&w.waits).(*waitFor)
		go func(d time.Duration) {
			timerWait(context.Background(), d)
			wf.done <- struct{}{}
		}(time.Duration(wf.at - w.clock.now()))
	}
}

type waitHeap []*waitFor

func (h waitHeap) Len() int           { return len(h) }
func (h waitHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].i, h[j].i = i, j
}
func (h *waitHeap) Push(x any) {
	wf := x.(*waitFor)
	wf.i = len(*h)
	*h = append(*h, wf)
}
func (h *waitHeap) Pop() any {
	old := *h
	wf := old[len(old)-1]
	old[len(old)-1] = nil
	wf.i = -1
	*h = old[:len(old)-1]
	return wf
}
