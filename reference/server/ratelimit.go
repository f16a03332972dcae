package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// queryRates holds a token bucket per client (STREAM-11): its user with
// authentication, its address without. A client's bucket lives while it has a
// connection, and after its last one until the bucket is full again, so that
// reconnecting never refills it; idle full buckets are swept at most once a second.
type queryRates struct {
	limit rate.Limit // 0: no bound
	burst int

	mu      sync.Mutex
	clients map[string]*queryRate
	swept   time.Time
}

type queryRate struct {
	lim   *rate.Limiter
	conns int // connections of the client
}

func newQueryRates(perSecond float64, burst int) *queryRates {
	return &queryRates{limit: rate.Limit(perSecond), burst: burst, clients: map[string]*queryRate{}}
}

// on reports whether queries are bounded at all.
func (r *queryRates) on() bool { return r.limit > 0 }

// acquire returns the bucket of client for a new connection of it; release gives it
// back when the connection ends. Without a bound both do nothing (nil).
func (r *queryRates) acquire(client string) *queryRate {
	if !r.on() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(time.Now())
	q := r.clients[client]
	if q == nil {
		q = &queryRate{lim: rate.NewLimiter(r.limit, r.burst)}
		r.clients[client] = q
	}
	q.conns++
	return q
}

func (r *queryRates) release(q *queryRate) {
	if q == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q.conns--
	r.sweepLocked(time.Now())
}

// sweepLocked forgets the clients without a connection whose bucket is full again:
// for them a new bucket is the same. The caller holds r.mu.
func (r *queryRates) sweepLocked(now time.Time) {
	if now.Sub(r.swept) < time.Second {
		return
	}
	r.swept = now
	for client, q := range r.clients {
		if q.conns == 0 && q.lim.TokensAt(now) >= float64(r.burst) {
			delete(r.clients, client)
		}
	}
}

// take spends one query of the bucket; when none is left it returns how long until
// one is. A nil bucket (no bound) always has one.
func (q *queryRate) take(now time.Time) (ok bool, wait time.Duration) {
	if q == nil {
		return true, 0
	}
	res := q.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// takeOrRefund is take, and when it spent a query, a refund that gives it back: for a
// query found to be a repeat of a known query_id only after the take.
func (q *queryRate) takeOrRefund(now time.Time) (ok bool, wait time.Duration, refund func()) {
	if q == nil {
		return true, 0, func() {}
	}
	res := q.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d, func() {}
	}
	return true, 0, func() { res.CancelAt(now) }
}
