package client

import (
	"testing"
	"time"
)

// The wait before attempt n is min(Max, Initial·2^n) times a factor in [0.5, 1): it
// doubles, stops at Max, and never overflows.
func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 250 * time.Millisecond, Max: 10 * time.Second}
	for attempt := range 100 {
		ceiling := b.Max
		if attempt < 6 {
			ceiling = b.Initial << attempt
		}
		for range 50 {
			if d := b.delay(attempt); d < ceiling/2 || d >= ceiling {
				t.Fatalf("attempt %d: %v, want in [%v, %v)", attempt, d, ceiling/2, ceiling)
			}
		}
	}
}
