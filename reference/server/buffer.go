package server

// frameBuffer is a session's offline buffer: frames in order, bounded by count and by
// bytes; when full, the oldest frames are evicted (BUF-3, BUF-7).
type frameBuffer struct {
	frames   []frame // oldest first: the end of arr, whose front the evicted frames left
	arr      []frame // the array of frames, to move them back to its front when it is full
	bytes    int
	maxCount int
	maxBytes int
	evicted  int // frames evicted to make room since the buffer was last taken (BUF-8)
}

// push appends f, which it holds (charge), evicting the oldest frames while the buffer is over a bound, and
// returns how many it evicted. A frame larger than the byte bound on its own is
// evicted too.
func (b *frameBuffer) push(f frame) int {
	f.held.hold()
	full := len(b.frames) == cap(b.frames)
	if full && cap(b.arr) > 0 && cap(b.arr)-cap(b.frames) >= len(b.frames) {
		// As many frames were evicted from the front as remain: move those back
		// rather than append to a new array, which a buffer at its bound, evicting
		// one frame for each it takes, would do every so many frames.
		n := copy(b.arr[:cap(b.arr)], b.frames)
		clear(b.arr[n:cap(b.arr)])
		b.frames, full = b.arr[:n], false
	}
	b.frames = append(b.frames, f)
	if full {
		b.arr = b.frames // append moved them to a new array
	}
	b.bytes += len(f.data)
	return b.evictOver()
}

// evictOver evicts the oldest frames while the buffer is over a bound, and returns
// how many.
func (b *frameBuffer) evictOver() int {
	n := 0
	for len(b.frames) > b.maxCount || b.bytes > b.maxBytes {
		n += b.dropOldest()
	}
	return n
}

// dropOldest evicts the oldest frame, if any, and returns how many it evicted.
func (b *frameBuffer) dropOldest() int {
	if len(b.frames) == 0 {
		return 0
	}
	b.bytes -= len(b.frames[0].data)
	b.frames[0].held.drop()
	b.frames[0] = frame{}
	b.frames = b.frames[1:]
	b.evicted++
	return 1
}

// pushFront puts f, which it holds, before the buffered frames, as the oldest, and returns how many
// frames it evicted (f itself first, when the buffer is over a bound).
func (b *frameBuffer) pushFront(f frame) int {
	f.held.hold()
	b.frames = append([]frame{f}, b.frames...)
	b.arr = b.frames
	b.bytes += len(f.data)
	return b.evictOver()
}

// take empties the buffer and returns its frames, oldest first, with their holds, and
// how many frames it evicted since it was last taken.
func (b *frameBuffer) take() (frames []frame, evicted int) {
	frames, evicted = b.frames, b.evicted
	b.frames, b.arr, b.bytes, b.evicted = nil, nil, 0, 0
	return frames, evicted
}

func (b *frameBuffer) len() int { return len(b.frames) }
