package pace

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func newTestWaker(t *testing.T) *waker {
	t.Helper()
	c, err := newTimerfd()
	if err != nil {
		t.Fatalf("timerfd: %v", err)
	}
	w := newWaker(c)
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.dead = true
		c.close()
	})
	return w
}

// Many waits at once, due in any order: each ends at its time, never before.
func TestWaitNeverEarly(t *testing.T) {
	w := newTestWaker(t)
	var wg sync.WaitGroup
	for range 300 {
		wg.Go(func() {
			d := rand.N(20 * time.Millisecond)
			due := time.Now().Add(d)
			if err := w.wait(context.Background(), d); err != nil {
				t.Errorf("wait(%v): %v", d, err)
			}
			if now := time.Now(); now.Before(due) {
				t.Errorf("wait(%v) ended %v early", d, due.Sub(now))
			}
		})
	}
	wg.Wait()
	if n := w.pending(); n != 0 {
		t.Errorf("%d waits left in the heap after all ended", n)
	}
}

// A wait that its context ends returns the context's error and leaves the heap, while
// the others go on.
func TestWaitCancelled(t *testing.T) {
	w := newTestWaker(t)
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error)
	for range 3 {
		go func() { errs <- w.wait(ctx, time.Hour) }()
	}
	go func() { errs <- w.wait(context.Background(), time.Millisecond) }()
	if err := <-errs; err != nil {
		t.Fatalf("the 1 ms wait: %v", err)
	}
	for w.pending() != 3 {
		time.Sleep(time.Millisecond) // polling: the three hour-long waits join the heap
	}
	cancel()
	for range 3 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled wait: got %v, want %v", err, context.Canceled)
		}
	}
	if n := w.pending(); n != 0 {
		t.Errorf("%d cancelled waits left in the heap", n)
	}
}

// failingClock is a clock whose alarm cannot be set.
type failingClock struct{ closed chan struct{} }

func (failingClock) now() int64      { return time.Now().UnixNano() }
func (failingClock) set(int64) error { return errors.New("set: bad clock") }
func (c failingClock) alarm() bool   { <-c.closed; return false }
func (c failingClock) close()        { close(c.closed) }

// When the alarm cannot be set, the waits go on with time.Timer: they end, at their
// time.
func TestWaitClockFails(t *testing.T) {
	w := newWaker(failingClock{closed: make(chan struct{})})
	for _, d := range []time.Duration{2 * time.Millisecond, 0, time.Millisecond} {
		due := time.Now().Add(d)
		if err := w.wait(context.Background(), d); err != nil {
			t.Fatalf("wait(%v): %v", d, err)
		}
		if now := time.Now(); now.Before(due) {
			t.Errorf("wait(%v) ended %v early", d, due.Sub(now))
		}
	}
	if !w.dead {
		t.Error("the waker did not give up its clock")
	}
}

// stuckClock is a clock whose alarm never goes off, as a timerfd's expiry waits for
// the poller while goroutines keep the processors busy.
type stuckClock struct{ closed chan struct{} }

func (stuckClock) now() int64      { return time.Now().UnixNano() }
func (stuckClock) set(int64) error { return nil }
func (c stuckClock) alarm() bool   { <-c.closed; return false }
func (c stuckClock) close()        { close(c.closed) }

// The waits end at their time without the alarm: the timer set with it ends them.
func TestWaitWithoutAlarm(t *testing.T) {
	c := stuckClock{closed: make(chan struct{})}
	w := newWaker(c)
	defer c.close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			d := rand.N(5 * time.Millisecond)
			due := time.Now().Add(d)
			if err := w.wait(context.Background(), d); err != nil {
				t.Errorf("wait(%v): %v", d, err)
			}
			if now := time.Now(); now.Before(due) {
				t.Errorf("wait(%v) ended %v early", d, due.Sub(now))
			}
		})
	}
	wg.Wait()
}

// Until of a past time returns at once, with ctx's error if it has one.
func TestUntilPast(t *testing.T) {
	if err := Until(context.Background(), time.Now().Add(-time.Second)); err != nil {
		t.Errorf("Until(past): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Until(ctx, time.Now().Add(-time.Second)); !errors.Is(err, context.Canceled) {
		t.Errorf("Until(past) with a cancelled context: got %v, want %v", err, context.Canceled)
	}
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep(hour) with a cancelled context: got %v, want %v", err, context.Canceled)
	}
}

func (w *waker) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waits)
}

// BenchmarkLateness is how late 50 goroutines waiting 5 ms at a time wake, with Until
// and with a time.Timer: the lateness percentiles are the figures.
func BenchmarkLateness(b *testing.B) {
	for _, bc := range []struct {
		name string
		wait func(time.Duration)
	}{
		{"pace", func(d time.Duration) { Sleep(context.Background(), d) }},
		{"timer", func(d time.Duration) { timerWait(context.Background(), d) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const d = 5 * time.Millisecond
			var mu sync.Mutex
			var late []time.Duration
			var wg sync.WaitGroup
			n := b.N
			for range 50 {
				wg.Go(func() {
					for {
						mu.Lock()
						if n <= 0 {
							mu.Unlock()
							return
						}
						n--
						mu.Unlock()
						start := time.Now()
						bc.wait(d)
						l := time.Since(start) - d
						mu.Lock()
						late = append(late, l)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			slices.Sort(late)
			at := func(q float64) float64 { return float64(late[int(q*float64(len(late)-1))].Microseconds()) }
			b.ReportMetric(at(0.5), "p50-late-µs")
			b.ReportMetric(at(0.99), "p99-late-µs")
			b.ReportMetric(at(0.999), "p99.9-late-µs")
		})
	}
}

// A wait allocates nothing: its state and channel are kept for the next.
func TestWaitAllocs(t *testing.T) {
	w := newTestWaker(t)
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(200, func() { w.wait(ctx, time.Microsecond) }); allocs != 0 {
		t.Errorf("a wait allocates %.0f times, want 0", allocs)
	}
}
