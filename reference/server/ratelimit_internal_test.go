package server

import (
	"testing"
	"time"
)

// held returns how many clients have a bucket.
func (r *queryRates) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

// A client's bucket outlives its connections until it is full again, so that
// reconnecting does not restore the allowance; then it is forgotten (STREAM-11).
func TestQueryRatesForgetFullBuckets(t *testing.T) {
	r := newQueryRates(1, 2) // a query a second, bursts of 2
	now := time.Now()
	a := r.acquire("address 192.0.2.1")
	for i := range 2 {
		if ok, _ := a.take(now); !ok {
			t.Fatalf("query %d of the burst refused", i+1)
		}
	}
	if ok, wait := a.take(now); ok || wait <= 0 || wait > time.Second {
		t.Fatalf("the query after the burst: ok %v, wait %v; want refused, allowed again within a second", ok, wait)
	}
	r.release(a)

	r.mu.Lock()
	r.sweepLocked(now.Add(1500 * time.Millisecond)) // 1.5 of the 2 queries back
	r.mu.Unlock()
	if r.held() != 1 {
		t.Fatalf("a bucket not yet full was forgotten")
	}
	b := r.acquire("address 192.0.2.1")
	if b != a {
		t.Fatalf("a reconnection got a new bucket")
	}
	r.release(b)

	busy := r.acquire("address 192.0.2.2") // connected: kept however full
	r.mu.Lock()
	r.sweepLocked(now.Add(time.Minute))
	r.mu.Unlock()
	if r.held() != 1 || r.clients["address 192.0.2.2"] != busy {
		t.Fatalf("after a minute: %d buckets held, want only the connected client's", r.held())
	}
	r.release(busy)
}

// With no rate there are no buckets: every query is allowed.
func TestQueryRatesOff(t *testing.T) {
	r := newQueryRates(0, 0)
	q := r.acquire("address 192.0.2.1")
	for range 1000 {
		if ok, _ := q.take(time.Now()); !ok {
			t.Fatal("a query refused with no rate")
		}
	}
	r.release(q)
	if r.held() != 0 {
		t.Fatalf("%d buckets held with no rate", r.held())
	}
}
