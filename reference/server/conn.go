package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Close codes of spec/PROTOCOL.md table 15.1.
const (
	closeSessionReplaced = websocket.StatusCode(4001)
	closeSlowConsumer    = websocket.StatusCode(4002)
)

// A conn is one WebSocket connection of a session: the reader runs in the handler's
// goroutine, the writer in its own while frames wait in a bounded queue (an idle
// connection has none), writing them a batch at a time. ws and cork are set once, by
// start, before the writer and the reader run; nothing else uses them.
type conn struct {
	srv  *Server
	ws   *websocket.Conn
	cork *corkConn // ws's socket; nil: write each frame with its own system call
	log  *slog.Logger

	// sent is the seq of the last session-scoped frame the writer took (or, for a
	// connection of the Redis store, was given by its backlog): what the session's
	// next connection without last_seq need not get again. Guarded by mu.
	sent int
	// onSent, set before the writer starts, is told each seq the writer takes: the
	// Redis store's pacing. It must not block, nor take a lock.
	onSent func(seq int)

	mu       sync.Mutex
	out      []frame // frames waiting to be written
	bytes    int     // the bytes of out
	limit    int     // the most frames out may hold for the runner to offer one more
	maxB     int     // the most bytes out may hold for the runner to offer one more, and answers may hold
	closing  bool    // no more frames are accepted
	code     websocket.StatusCode
	reason   string
	flush    bool          // write what is queued before closing
	counted  bool          // counted in active_connections
	sess     liveSession   // the session it belongs to, once attached
	rate     *queryRate    // its client's queries (STREAM-11); nil: no bound
	refusals refusalLog    // bounds the log lines of its refused frames
	answers  int           // queued frames that answer a client frame
	ansB     int           // their bytes
	started  bool          // start gave c its socket
	running  bool          // the writer runs
	inflight int           // the frames the writer took and writes (none: it writes nothing), which count against the limits
	inflB    int           // their bytes
	room     chan struct{} // closed when out drops below limit or c closes; nil when none waits
	ansRoom  chan struct{} // closed when one more answer may be queued or c closes; nil when none waits

	lastSent atomic.Int64                 // when the writer last wrote a frame, in Unix nanoseconds
	stats    atomic.Pointer[sessionStats] // its session's, once it joined one

	done chan struct{} // the writer has closed the connection, or dropped it
}

// controlReserve is how many frames that answer a client frame (pong, refusals, a
// replayed end) may wait to be written, beyond the send queue's limit: a full queue of
// stream frames never costs a client its pong. Their bytes have a reserve too, the send
// queue's byte limit again (-send-queue-bytes). A client that keeps sending without
// reading fills either, and is a slow consumer.
const controlReserve = 32

// newConn returns a connection without its socket: it joins its session, and queues
// its first frames, before the upgrade; start gives it the socket.
func newConn(srv *Server, log *slog.Logger) *conn {
	return &conn{
		srv: srv, log: log, limit: srv.cfg.SendQueue, maxB: srv.cfg.SendQueueBytes,
		done: make(chan struct{}),
	}
}

// start gives c its socket (cork, when the upgrade went through a corkWriter) and
// starts its writer, which writes what was queued so far (connected first) or closes
// the connection if it was closed meanwhile.
func (c *conn) start(ws *websocket.Conn, cork *corkConn) {
	c.ws, c.cork = ws, cork
	c.lastSent.Store(time.Now().UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
	c.notify()
}

// notify starts the writer, unless it runs or c has no socket yet: frames wait, or c
// closes. c.mu is held.
func (c *conn) notify() {
	if c.started && !c.running {
		c.running = true
		go c.writeLoop()
	}
}

// offer queues a session-scoped frame: one of the query runner, which waited for room
// (session.awaitRoom), or an answer to a client frame (a replayed end, the end of a
// cancelled queued query), which never waits but counts against controlReserve. offer
// returns false when the connection is closing or the reserve is full.
func (c *conn) offer(f frame, answer bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || (answer && !c.reserveLocked()) {
		return false
	}
	c.queueLocked(f, answer)
	return true
}

// reserveLocked reports whether one more answer to a client frame may be queued: the
// answers queued are under controlReserve frames and under the byte limit, which one
// answer may overshoot. c.mu is held.
func (c *conn) reserveLocked() bool {
	return c.answers < controlReserve && c.ansB < c.maxB
}

// fullLocked reports whether the runner must wait to offer a frame: the queue holds
// the send queue's frames or bytes. One frame may overshoot the byte limit. c.mu is
// held.
func (c *conn) fullLocked() bool {
	return len(c.out)+c.inflight >= c.limit || c.bytes+c.inflB >= c.maxB
}

// queueLocked appends f to the queue, which holds it until the writer has written it
// (charge), and wakes the writer. c.mu is held.
func (c *conn) queueLocked(f frame, answer bool) {
	f.held.hold()
	f.answer = answer
	if answer {
		c.answers++
		c.ansB += len(f.data)
	}
	c.bytes += len(f.data)
	if c.out == nil {
		c.out = getFrames()
	}
	c.out = append(c.out, f)
	c.notify()
}

// roomSignal returns nil when the runner may offer a frame now: the queue is below its
// limit, or c is closing (the session's detach follows in the same critical section
// that closed it). Else it returns a channel that is closed when either becomes true.
func (c *conn) roomSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || !c.fullLocked() {
		return nil
	}
	if c.room == nil {
		c.room = make(chan struct{})
	}
	return c.room
}

// stalled reports whether c's queue is full while its writer writes nothing: not
// started yet, as before the upgrade. A writer that writes is bounded by its own write
// timeout.
func (c *conn) stalled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closing && c.fullLocked() && c.inflight == 0
}

// signalRoomLocked wakes a runner waiting for room, and the reader waiting to queue
// an answer. c.mu is held.
func (c *conn) signalRoomLocked() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
	c.signalAnswerRoomLocked()
}

// signalAnswerRoomLocked wakes the reader waiting to queue an answer. c.mu is held.
func (c *conn) signalAnswerRoomLocked() {
	if c.ansRoom != nil {
		close(c.ansRoom)
		c.ansRoom = nil
	}
}

// awaitAnswerRoom waits, before the reader reads the next client frame, until one
// more answer to it may be queued (reserveLocked) or c closes. A client that reads
// gets its answers as fast as the writer writes them, however many frames it sends
// at once, while its frames wait in the network; one that does not read stops the
// writer, which drops it as a slow consumer (4002) when a write takes the write
// timeout. awaitAnswerRoom drops it too if the reserve stays full that long, and
// then returns false.
func (c *conn) awaitAnswerRoom() bool {
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		if c.closing || c.reserveLocked() {
			c.mu.Unlock()
			return true
		}
		if c.ansRoom == nil {
			c.ansRoom = make(chan struct{})
		}
		room := c.ansRoom
		c.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(c.srv.cfg.WriteTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-room:
		case <-timeout:
			c.log.Warn("slow consumer: the client sends but does not read its answers; closing it with 4002", "write_timeout", c.srv.cfg.WriteTimeout)
			c.srv.dropped(c, closeSlowConsumer, "slow consumer")
			return false
		}
	}
}

// reply queues a connection-scoped frame, an answer to a client frame, charged to the
// memory budget unless the caller charged it. A client that does not read while it
// keeps sending fills even the reserve, and is closed with 4002; reply then returns
// false.
func (c *conn) reply(f frame) bool {
	if f.refusal != nil {
		c.logRefusal(f.refusal)
	}
	if f.held == nil {
		c.srv.mem.charge(&f)
		defer f.held.drop()
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if c.reserveLocked() {
		c.queueLocked(f, true)
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	c.log.Warn("slow consumer: the client sends but does not read; closing it with 4002")
	c.srv.dropped(c, closeSlowConsumer, "slow consumer")
	return false
}

// join records that c joined sess, which counts it as active (HEALTH-4). sess.mu is
// held.
func (c *conn) join(sess liveSession) {
	c.mu.Lock()
	c.sess, c.counted = sess, true
	c.mu.Unlock()
	c.srv.stats.active.Add(1)
}

// enqueueAll queues frames past the limit: the start of a connection, where
// connected and the buffered frames must all go first. The queue holds each; the
// caller keeps its own holds.
func (c *conn) enqueueAll(fs ...frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range fs {
		c.queueLocked(f, false)
	}
}

// closeAfter closes the connection with code once the frames queued so far are written.
func (c *conn) closeAfter(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.closing, c.code, c.reason, c.flush = true, code, reason, true
	}
	c.signalRoomLocked()
	c.notify()
}

// closeNow closes the connection with code without writing what is queued, and
// returns the session-scoped frames that were queued, with their holds, for the
// session's buffer, and the evictions that an unwritten connected frame was to
// announce (BUF-8), for the next one. The other frames are dropped.
func (c *conn) closeNow(code websocket.StatusCode, reason string) (unsent []frame, unannounced int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.out {
		if f.session {
			unsent = append(unsent, f)
		} else {
			f.held.drop()
		}
		unannounced += f.evicted
	}
	putFrames(c.out)
	c.out, c.answers, c.bytes, c.ansB = nil, 0, 0, 0
	if !c.closing || c.flush {
		c.closing, c.code, c.reason, c.flush = true, code, reason, false
		c.srv.metrics.closed(code)
	}
	c.signalRoomLocked()
	c.notify()
	return unsent, unannounced
}

// queueArray is the backing array of a connection's queue, or of its writer's batch,
// while frames wait: the arrays go back to framesPool when the queue empties, so that
// a connection whose frames come one at a time (a paced agent, pongs) allocates none,
// and an idle connection holds none. A queue that grows past it gets an array of its
// own, which goes to the garbage collector.
type queueArray = [16]frame

var framesPool = sync.Pool{New: func() any { return new(queueArray) }}

func getFrames() []frame { return framesPool.Get().(*queueArray)[:0] }

// putFrames gives back the array of fs when it has a queueArray's capacity: one from
// the pool, or (after a partial take of a queue that grew past one) the end of a larger
// array, whose slots nothing else holds any more.
func putFrames(fs []frame) {
	if cap(fs) != len(queueArray{}) {
		return
	}
	a := (*queueArray)(fs[:cap(fs)])
	clear(a[:])
	framesPool.Put(a)
}

// writeLoop writes queued frames, a batch at a time, until none waits, or until the
// connection closes.
func (c *conn) writeLoop() {
	batch := getFrames()
	defer func() { putFrames(batch) }()
	for {
		batch = c.take(batch[:0])
		if len(batch) > 0 {
			if err := c.write(batch); err != nil {
				c.writeFailed(batch, err)
				close(c.done)
				return
			}
			c.wrote(batch)
			continue
		}
		// A frame queued after take found none is taken by the next round: take and
		// this check hold c.mu, as queueing does.
		c.mu.Lock()
		if c.closing && (!c.flush || len(c.out) == 0) {
			code, reason := c.code, c.reason
			c.mu.Unlock()
			c.close(code, reason)
			close(c.done)
			return
		}
		if len(c.out) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// take appends to batch the next frames to write, with the queue's holds: the first,
// and those after it that fit in corkBatchBytes with it; none when none is queued or c
// closes without writing what is queued. The frames taken count against the queue's
// limits until they are written (wrote); a runner waiting for room is woken when
// there is room without them.
func (c *conn) take(batch []frame) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 || (c.closing && !c.flush) {
		return batch
	}
	size, n := 0, 0
	for n < len(c.out) && (n == 0 || (c.cork != nil && size+len(c.out[n].data) <= corkBatchBytes)) {
		f := c.out[n]
		n++
		if f.session {
			c.sent = f.seq
			if c.onSent != nil {
				c.onSent(f.seq)
			}
		}
		if f.answer {
			c.answers--
			c.ansB -= len(f.data)
		}
		c.bytes -= len(f.data)
		c.inflight++
		c.inflB += len(f.data)
		size += len(f.data)
		batch = append(batch, f)
	}
	if n == len(c.out) {
		putFrames(c.out)
		c.out = nil // an idle connection keeps no queue
	} else {
		clear(c.out[:n])
		c.out = c.out[n:]
	}
	if c.reserveLocked() {
		c.signalAnswerRoomLocked()
	}
	if !c.fullLocked() {
		c.signalRoomLocked()
	}
	return batch
}

// wrote drops the holds of a batch the writer has written, and counts it.
func (c *conn) wrote(batch []frame) {
	c.mu.Lock()
	c.inflight, c.inflB = 0, 0
	if !c.fullLocked() {
		c.signalRoomLocked()
	}
	c.mu.Unlock()
	for i := range batch {
		batch[i].held.drop()
		c.srv.metrics.sent(batch[i].typ)
		batch[i] = frame{}
	}
	now := time.Now()
	c.lastSent.Store(now.UnixNano())
	if st := c.stats.Load(); st != nil {
		st.sent.Add(int64(len(batch)))
		st.active.Store(now.UnixMilli())
	}
	c.srv.stats.sent.Add(int64(len(batch)))
}

// writeFailed drops c after the write of batch failed; its frames go first to the
// session's buffer, which takes over the writer's holds (the client may have got some
// of them: a resume skips what it has, SEQ-4). A client that took no frame for the
// write timeout is a slow consumer: it is dropped with 4002, though the close frame
// cannot reach a client that does not read. The session gets the frames before the
// socket is closed for good, which waits for the reader.
func (c *conn) writeFailed(batch []frame, err error) {
	defer c.ws.CloseNow()
	c.mu.Lock()
	c.inflight, c.inflB = 0, 0
	c.mu.Unlock()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		c.log.Warn("slow consumer: it took no frame for the write timeout; dropping it (4002) and buffering the session's frames", "write_timeout", c.srv.cfg.WriteTimeout)
		c.srv.dropped(c, closeSlowConsumer, "slow consumer", batch...)
		return
	}
	c.log.Debug("write failed", "err", err)
	c.srv.dropped(c, websocket.StatusGoingAway, "", batch...)
}

// idleSince reports whether the writer has written nothing since t.
func (c *conn) idleSince(t time.Time) bool { return c.lastSent.Load() <= t.UnixNano() }

// write writes a batch of frames corked, so that they leave in one system call with
// whatever the socket holds (the 101 of the upgrade), which flush bounds by the write
// timeout (corked, the library's writes only copy). A frame larger than a batch is
// written alone, as the library writes it, bounded by the write timeout.
func (c *conn) write(batch []frame) error {
	if c.srv.redis != nil {
		n := int64(0)
		for _, f := range batch {
			if !f.session {
				n++
			}
		}
		if n > 0 { // one call for the batch
			c.srv.redis.countSent(n)
		}
	}
	if c.cork == nil || len(batch[0].data) > corkBatchBytes {
		if c.cork != nil {
			if err := c.cork.flush(c.srv.cfg.WriteTimeout); err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.WriteTimeout)
		defer cancel()
		for _, f := range batch {
			if err := c.ws.Write(ctx, websocket.MessageText, f.data); err != nil {
				return err
			}
		}
		return nil
	}
	c.cork.cork()
	for _, f := range batch {
		if err := c.ws.Write(context.Background(), websocket.MessageText, f.data); err != nil {
			c.cork.flush(c.srv.cfg.WriteTimeout)
			return err
		}
	}
	return c.cork.flush(c.srv.cfg.WriteTimeout)
}

// close ends the connection with a close frame; it waits a short while for the client's
// answer, as the close handshake asks.
func (c *conn) close(code websocket.StatusCode, reason string) {
	if c.cork != nil {
		c.cork.flush(c.srv.cfg.WriteTimeout) // the 101, when no frame followed it
	}
	if err := c.ws.Close(code, reason); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Debug("close", "code", code, "err", err)
	}
}
