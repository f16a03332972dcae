package server

// frameBuffer is a session's offline buffer: frames in order, bounded by count and by
// bytes; when full, the oldest frames are dropped (BUF-3, BUF-7).
type frameBuffer struct {
	frames   []frame
	bytes    int
	maxCount int
	maxBytes int
	dropped  int // frames dropped to make room, over the buffer's life
}

// push appends f, dropping the oldest frames while the buffer is over a bound. A frame
// larger than the byte bound on its own is dropped too.
func (b *frameBuffer) push(f frame) {
	b.frames = append(b.frames, f)
	b.bytes += len(f.data)
	for len(b.frames) > b.maxCount || b.bytes > b.maxBytes {
		b.bytes -= len(b.frames[0].data)
		b.frames[0] = frame{}
		b.frames = b.frames[1:]
		b.dropped++
	}
}

// take empties the buffer and returns its frames, oldest first.
func (b *frameBuffer) take() []frame {
	out := b.frames
	b.frames, b.bytes = nil, 0
	return out
}

func (b *frameBuffer) len() int { return len(b.frames) }
