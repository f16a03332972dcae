package server

import (
	"fmt"
	"testing"
)

// A buffer at its bound keeps the newest frames in order, evicting one for each it
// takes, and does so in the array it has: no allocation once it is full.
func TestBufferAtItsBound(t *testing.T) {
	const bound = 10
	b := frameBuffer{maxCount: bound, maxBytes: 1 << 20}
	data := []byte("frame")
	seq := 0
	push := func() {
		seq++
		if n := b.push(frame{data: data, seq: seq}); seq > bound && n != 1 {
			t.Fatalf("push %d evicted %d frames, want 1", seq, n)
		}
	}
	for range 3 * bound {
		push()
	}
	pushes := func() { // AllocsPerRun rounds down: an allocation every so many pushes counts
		for range 10 * bound {
			push()
		}
	}
	if allocs := testing.AllocsPerRun(100, pushes); allocs != 0 {
		t.Errorf("%d pushes at the bound allocate %.0f times, want 0", 10*bound, allocs)
	}
	if got := b.len(); got != bound {
		t.Fatalf("%d frames buffered, want %d", got, bound)
	}
	for i, f := range b.frames {
		if want := seq - bound + 1 + i; f.seq != want {
			t.Errorf("frame %d has seq %d, want %d", i, f.seq, want)
		}
	}
	// The slots the evicted frames left hold nothing (their data is free).
	for i, f := range b.arr[:cap(b.arr)] {
		live := i >= cap(b.arr)-cap(b.frames) && i < cap(b.arr)-cap(b.frames)+len(b.frames)
		if !live && f.data != nil {
			t.Errorf("slot %d of the array still holds frame %d", i, f.seq)
		}
	}
	if b.bytes != bound*len(data) {
		t.Errorf("bytes %d, want %d", b.bytes, bound*len(data))
	}
}

// Frames pushed to the front, taken, and pushed again keep their order.
func TestBufferOrder(t *testing.T) {
	b := frameBuffer{maxCount: 4, maxBytes: 1 << 20}
	var got []string
	for i := range 7 {
		b.push(frame{data: []byte(fmt.Sprint(i)), seq: i})
	}
	b.pushFront(frame{data: []byte("front")}) // evicts itself: the buffer is full
	b.dropOldest()
	b.push(frame{data: []byte("7")})
	frames, evicted := b.take()
	for _, f := range frames {
		got = append(got, string(f.data))
	}
	if fmt.Sprint(got) != "[4 5 6 7]" || evicted != 5 {
		t.Errorf("took %v with %d evicted, want [4 5 6 7] with 5", got, evicted)
	}
	b.push(frame{data: []byte("8")})
	if frames, _ := b.take(); len(frames) != 1 || string(frames[0].data) != "8" {
		t.Errorf("after a take: %v, want the one frame 8", frames)
	}
}

// Frames that come one at a time, each written before the next (a paced agent), cost
// their connection's queue no allocation: the queue gives its array back when it
// empties, and takes one from the pool for the next frame.
func TestQueueOneAtATime(t *testing.T) {
	srv := testServer(t, nil)
	c := socketless(srv)
	f := frame{data: []byte(`{"type":"pong"}`), typ: "pong"}
	var batch []frame
	cycle := func() {
		if !c.offer(f, false) {
			t.Fatal("offer refused")
		}
		batch = c.take(batch[:0])
		if len(batch) != 1 {
			t.Fatalf("took %d frames, want 1", len(batch))
		}
		c.wrote(batch)
		if c.out != nil {
			t.Fatal("an empty queue keeps its array")
		}
	}
	cycle()
	if allocs := testing.AllocsPerRun(1000, cycle); allocs != 0 {
		t.Errorf("a frame queued, taken and written allocates %.0f times, want 0", allocs)
	}
}
