package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/agentws/agentws/schemas/httpapi"
	"github.com/agentws/agentws/schemas/msg"
)

// A redisSession is this node's view of a session of the Redis store whose connection
// it holds: the connection, the seq of the last frame queued on it (cursor), and the
// frames the node's channel brought that wait for room in its send queue (inbox). Its
// pump moves frames, in seq order and each once, from the inbox or, when the inbox
// missed some (the channel lost them, or the connection fell behind), from the
// session's history, to the connection.
type redisSession struct {
	st    *redisStore
	id    string
	user  string
	token string // the connection's name in Redis
	log   *slog.Logger

	mu       sync.Mutex
	conn     *conn
	cursor   int     // the seq of the last frame queued on conn
	inbox    []frame // frames of the channel after cursor, not queued yet
	inboxB   int
	gap      bool // frames after cursor are to be fetched from the history
	replaced bool // taken over before its connection joined
	gone     bool
	gapGen   int      // counts the times gap was set: a fetch clears gap only if none came since it began
	left     int      // once gone by a detach: the seq of the last frame the connection was given
	start    int      // once known, the seq after which the connection's frames begin (-1: the recorded delivered)
	started  bool     // start is known
	waiting  []string // takeovers that came before start was known: "node token" to answer
	wake     chan struct{}

	// The pace of the stream: the seq the connection's writer took last, whether the
	// query's node asked for it, and whether it waits in the store's acks.
	taken     atomic.Int64
	wantAck   atomic.Bool
	ackQueued atomic.Bool

	stats         sessionStats // what its connection did, added to Redis by flushActivity
	flushed       atomic.Int64 // the stats.sent already added
	flushedActive atomic.Int64 // the stats.active last added
}

// sent is the connection's onSent: it queues an acknowledgement of seq when the
// query's node asked for one. It never blocks: with the queue full, the next frame
// taken tries again.
func (rs *redisSession) sent(seq int) {
	rs.taken.Store(int64(seq))
	if !rs.wantAck.Load() || rs.ackQueued.Swap(true) {
		return
	}
	select {
	case rs.st.acks <- rs:
	default:
		rs.ackQueued.Store(false)
	}
}

func (rs *redisSession) sessionID() string { return rs.id }

// openRedis is openSession for the Redis store: the connection joins the session in
// Redis, taking it over from any connection on any node, gets connected and its
// backlog, then is upgraded.
func (s *Server) openRedis(w http.ResponseWriter, r *http.Request, a *handshake) (*conn, liveSession) {
	st, log, user := s.redis, a.log, a.user
	if !st.up.Load() {
		s.refuse(w, http.StatusServiceUnavailable, httpapi.HTTPErrorCodeStoreUnavailable, "%v; try again later", errStoreDown)
		return nil, nil
	}
	c := newConn(s, log)
	c.rate = a.rate
	rs, err := st.open(c, a.sid, user, a.resume, log)
	if err != nil {
		if errors.Is(err, errStoreDown) {
			log.Warn("session store unreachable: refusing the connection", "err", err)
			s.refuse(w, http.StatusServiceUnavailable, httpapi.HTTPErrorCodeStoreUnavailable, "%v; try again later", errStoreDown)
			return nil, nil
		}
		s.refuseJoin(w, log, err)
		return nil, nil
	}
	st.writeCount() // before connected can reach the client: it counts in active_connections
	cw := &corkWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		log.Warn("upgrade failed", "err", err)
		s.release(c)
		rs.withdraw(c)
		return nil, nil
	}
	ws.SetReadLimit(s.cfg.MaxMessageBytes)
	log.Info("connected", "user_id", user, "node", st.node)
	c.start(ws, cw.conn)
	return c, rs
}

// open joins c to session sid in Redis and queues connected and the backlog on it.
func (st *redisStore) open(c *conn, sid, user string, resume resumeRequest, log *slog.Logger) (*redisSession, error) {
	rs := &redisSession{st: st, id: sid, user: user, token: randomHex(8), log: log, wake: make(chan struct{}, 1), left: -1}
	handoff := make(chan int, 1)
	st.mu.Lock()
	prev := st.bySID[sid]
	st.bySID[sid], st.byToken[rs.token], st.handoffs[rs.token] = rs, rs, handoff
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.handoffs, rs.token)
		st.mu.Unlock()
	}()
	fail := func(err error) (*redisSession, error) {
		rs.mu.Lock()
		rs.gone = true
		rs.dropInboxLocked()
		waiting := rs.waiting
		rs.waiting = nil
		rs.mu.Unlock()
		for _, w := range waiting { // it gave nothing: what was recorded holds
			next, token, _ := strings.Cut(w, " ")
			st.publish(next, "D "+token+" -1")
		}
		restored := false
		st.mu.Lock()
		delete(st.byToken, rs.token)
		if st.bySID[sid] == rs {
			delete(st.bySID, sid)
			if prev != nil && st.byToken[prev.token] == prev {
				st.bySID[sid], restored = prev, true
			}
		}
		st.mu.Unlock()
		if restored { // its frames went to rs meanwhile: it fetches them
			prev.markGap()
		}
		return nil, err
	}
	if st.srv.draining.Load() {
		return fail(errShutdown)
	}
	res, err := st.call(st.lua.open, sessionKeys(sid), sid, user, randomHex(6), st.node, rs.token, strconv.Itoa(st.srv.cfg.MaxSessions))
	if err != nil {
		return fail(err)
	}
	switch str(res[0]) {
	case "user_mismatch":
		return fail(errUserMismatch)
	case "full":
		return fail(fmt.Errorf("%w: %d sessions, each with a connection or a handshake", errServerFull, num(res[1])))
	}
	epoch, oldNode, claimed := str(res[1]), str(res[2]), str(res[3])
	if claimed != "" {
		st.startRunner(sid, claimed)
	}
	start := -1
	if oldNode != "" {
		log.Info("session taken over by a new connection", "from_node", oldNode)
		if !resume.asked {
			select {
			case start = <-handoff:
			case <-time.After(handoffTimeout):
				log.Warn("the node of the replaced connection did not answer the takeover in time: sending the frames after those recorded when a connection last left", "node", oldNode, "waited", handoffTimeout)
			}
		}
	}
	// A connection that takes this one over before it has any frame gets the frames
	// this one was to get.
	rs.mu.Lock()
	rs.start, rs.started = start, true
	waiting := rs.waiting
	rs.waiting = nil
	rs.mu.Unlock()
	for _, w := range waiting {
		next, token, _ := strings.Cut(w, " ")
		st.publish(next, "D "+token+" "+strconv.Itoa(start))
	}
	k := -1
	if resume.asked {
		k = resume.lastSeq
	}
	res, err = st.call(st.lua.backlog, sessionKeys(sid)[:2], rs.token, strconv.Itoa(k), resume.epoch, strconv.Itoa(start))
	if err != nil {
		return fail(err)
	}
	connected := msg.Connected{
		Type: msg.ConnectedTypeConnected, Message: "WebSocket connection established",
		SessionId: sid, Timestamp: timestamp(), ProtocolVersion: ProtocolVersion,
		Capabilities: st.srv.capabilities, Epoch: epoch,
	}
	var frames []frame
	cursor, replaced := 0, false
	if str(res[0]) == "ok" {
		seq, from := num(res[1]), num(res[2])
		if resumed := num(res[3]); resumed >= 0 {
			yes := resumed == 1
			connected.Resumed = &yes
			if missed := num(res[4]); !yes && missed > 0 {
				connected.Missed = &missed
			}
		} else if evicted := num(res[5]); evicted > 0 {
			connected.Evicted = evicted
			log.Info("a connection joins after the offline buffer evicted frames; connected tells it how many", "evicted", evicted)
		}
		for i, m := range res[6:] {
			frames = append(frames, storedFrame(str(m), from+i))
		}
		cursor = seq
		c.sent = from - 1
		rs.taken.Store(int64(from - 1))
		c.onSent = rs.sent
	} else {
		replaced = true // a newer connection took the session over meanwhile
		c.sent = start  // it gives nothing: the next one starts where it would have
	}
	first := encode(connected)
	first.evicted = connected.Evicted
	st.srv.mem.charge(&first)
	rs.mu.Lock()
	rs.conn, rs.cursor = c, cursor
	rs.replaced = rs.replaced || replaced
	c.join(rs)
	rs.stats.joined()
	c.stats.Store(&rs.stats)
	c.enqueueAll(append([]frame{first}, frames...)...)
	first.held.drop()
	if rs.replaced {
		rs.replaceLocked()
	}
	rs.mu.Unlock()
	go rs.pump()
	return rs, nil
}

// storedFrame is a frame of the history, numbered seq.
func storedFrame(data string, seq int) frame {
	return frame{data: []byte(data), session: true, seq: seq, typ: storedType(data)}
}

// storedType reads the type of an encoded frame, which encode writes first.
func storedType(data string) string {
	const head = `{"type":"`
	if len(data) > len(head) && data[:len(head)] == head {
		rest := data[len(head):]
		for i := 0; i < len(rest) && i < 32; i++ {
			if rest[i] == '"' {
				return rest[:i]
			}
		}
	}
	return "other"
}

// push takes frames of the node's channel, the first numbered first, into the inbox.
// A frame that would take the inbox over the bounds of the send queue and the
// buffer together is left out: it is fetched from the history once the inbox is
// queued, and a connection that fell behind what the history holds is a slow consumer.
func (rs *redisSession) push(first int, data []string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.gone {
		return
	}
	cfg := rs.st.srv.cfg
	for i, d := range data {
		f := storedFrame(d, first+i)
		if f.seq <= rs.cursor {
			continue
		}
		if len(rs.inbox) > 0 && (len(rs.inbox) >= cfg.SendQueue+cfg.BufferSize || rs.inboxB+len(f.data) > cfg.SendQueueBytes+cfg.BufferBytes) {
			rs.gap, rs.gapGen = true, rs.gapGen+1 // fetched from the history once the inbox is queued
			continue
		}
		rs.st.srv.mem.charge(&f)
		rs.inbox = append(rs.inbox, f)
		rs.inboxB += len(f.data)
	}
	rs.notify()
}

func (rs *redisSession) notify() {
	select {
	case rs.wake <- struct{}{}:
	default:
	}
}

func (rs *redisSession) dropInboxLocked() {
	dropAll(rs.inbox)
	rs.inbox, rs.inboxB = nil, 0
}

// markGap makes the pump fetch from the history the frames after the cursor.
func (rs *redisSession) markGap() {
	rs.mu.Lock()
	rs.gap, rs.gapGen = true, rs.gapGen+1
	rs.mu.Unlock()
	rs.notify()
}

// pump queues the session's frames on the connection in seq order, each once, while
// the connection has room, until the session leaves the node.
func (rs *redisSession) pump() {
	retry := 50 * time.Millisecond
	for {
		rs.mu.Lock()
		c := rs.conn
		if rs.gone {
			rs.dropInboxLocked()
			rs.mu.Unlock()
			return
		}
		if room := c.roomSignal(); room != nil {
			rs.mu.Unlock()
			select {
			case <-room:
			case <-rs.wake:
			}
			continue
		}
		next := len(rs.inbox) > 0 && rs.inbox[0].seq <= rs.cursor+1
		if !next && (rs.gap || len(rs.inbox) > 0) {
			from, gen := rs.cursor+1, rs.gapGen
			rs.mu.Unlock()
			frames, oldest, seq, err := rs.st.fetch(rs.id, from, rs.st.srv.cfg.SendQueue)
			if err != nil {
				select {
				case <-time.After(retry):
				case <-rs.wake:
				}
				retry = min(2*retry, time.Second)
				continue
			}
			retry = 50 * time.Millisecond
			if !rs.queueFetched(c, frames, oldest, seq, gen) {
				return
			}
			continue
		}
		if len(rs.inbox) == 0 {
			rs.mu.Unlock()
			<-rs.wake
			continue
		}
		f := rs.inbox[0]
		rs.inbox[0] = frame{}
		rs.inbox = rs.inbox[1:]
		rs.inboxB -= len(f.data)
		if f.seq == rs.cursor+1 && c.offer(f, false) {
			rs.cursor = f.seq
		}
		f.held.drop()
		rs.mu.Unlock()
	}
}

// queueFetched queues the fetched frames after the cursor, the first numbered oldest
// when the history holds nothing older. A connection whose next frame the history no
// longer holds fell behind by more than the buffer: it is closed as a slow consumer
// (4002), and the next connection learns what it missed. It returns false then.
func (rs *redisSession) queueFetched(c *conn, frames []frame, oldest, seq, gen int) bool {
	rs.mu.Lock()
	if rs.gone || rs.conn != c {
		rs.mu.Unlock()
		return true
	}
	if oldest < 0 {
		rs.mu.Unlock()
		rs.lost(c)
		return false
	}
	if oldest > rs.cursor+1 && seq > rs.cursor {
		rs.mu.Unlock()
		rs.log.Warn("slow consumer: the connection fell behind its session's frames by more than the history holds; closing it with 4002", "buffer_size", rs.st.srv.cfg.BufferSize, "buffer_bytes", rs.st.srv.cfg.BufferBytes)
		rs.st.srv.dropped(c, closeSlowConsumer, "slow consumer")
		return false
	}
	for _, f := range frames {
		if f.seq == rs.cursor+1 && c.offer(f, false) {
			rs.cursor = f.seq
		}
	}
	if rs.cursor >= seq && rs.gapGen == gen {
		rs.gap = false
	}
	for len(rs.inbox) > 0 && rs.inbox[0].seq <= rs.cursor { // fetched already
		rs.inboxB -= len(rs.inbox[0].data)
		rs.inbox[0].held.drop()
		rs.inbox = rs.inbox[1:]
	}
	rs.mu.Unlock()
	return true
}

// lost closes c with 1001 when the session store no longer holds its session (Redis
// restarted empty): its client reconnects, and starts a new session with a new epoch
// (SEQ-5).
func (rs *redisSession) lost(c *conn) {
	if rs.st.endedByOperator(rs.id, rs.token) {
		rs.st.ended(rs.id, rs.token)
		return
	}
	rs.log.Warn("the session store no longer gives this node the session's connection (Redis restarted or was flushed, or this node's lease lapsed): closing it with 1001")
	rs.st.srv.dropped(c, websocket.StatusGoingAway, "session lost by the session store")
}

// fetch reads up to n kept frames from seq from, and the history's oldest and last seq.
func (st *redisStore) fetch(sid string, from, n int) (frames []frame, oldest, seq int, err error) {
	res, err := st.call(st.lua.rangeOf, sessionKeys(sid)[:2], strconv.Itoa(from), strconv.Itoa(n))
	if err != nil {
		return nil, 0, 0, err
	}
	oldest, seq = num(res[0]), num(res[1])
	start := max(from, oldest)
	for i, m := range res[2:] {
		frames = append(frames, storedFrame(str(m), start+i))
	}
	return frames, oldest, seq, nil
}

// replace closes the connection with 4001 (TAKE-1) and returns the seq of the last
// frame it was given, for the connection that took the session over.
// A connection still in its handshake answers once it knows where its frames begin
// (open): replace then returns false, having noted next and nextToken.
func (rs *redisSession) replace(next, nextToken string) (int, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	switch {
	case rs.gone: // its detach is on its way to Redis
		return rs.left, true
	case rs.conn == nil:
		rs.replaced = true
		if rs.started {
			return rs.start, true
		}
		rs.waiting = append(rs.waiting, next+" "+nextToken)
		return 0, false
	}
	return rs.replaceLocked(), true
}

// replaceLocked closes the connection with 4001 and returns the seq of the last frame
// it was given. Its token stays known for the handoff timeout: a connection that finds
// itself replaced (backlog) may get the takeover's question after it closed, and must
// still answer it with what it gave. rs.mu is held.
func (rs *redisSession) replaceLocked() int {
	c := rs.conn
	unsent, _ := c.closeNow(closeSessionReplaced, "session replaced")
	dropAll(unsent)
	rs.st.srv.release(c)
	c.mu.Lock()
	sent := c.sent
	c.mu.Unlock()
	if !rs.gone {
		rs.left = sent
		rs.leaveKeepingToken()
		time.AfterFunc(handoffTimeout, rs.forgetToken)
	}
	return sent
}

// leaveLocked takes the session off the node's tables and stops its pump. rs.mu is
// held.
func (rs *redisSession) leaveLocked() {
	rs.leaveKeepingToken()
	rs.forgetToken()
}

// leaveKeepingToken is leaveLocked but for the table of tokens: a takeover that
// arrives before the detach is recorded in Redis still finds what the connection
// was given (replaced). rs.mu is held.
func (rs *redisSession) leaveKeepingToken() {
	if rs.gone {
		return
	}
	rs.gone = true
	rs.dropInboxLocked()
	rs.notify()
	rs.st.mu.Lock()
	if rs.st.bySID[rs.id] == rs {
		delete(rs.st.bySID, rs.id)
	}
	rs.st.mu.Unlock()
}

// forgetToken takes rs off the table of tokens.
func (rs *redisSession) forgetToken() {
	rs.st.mu.Lock()
	if rs.st.byToken[rs.token] == rs {
		delete(rs.st.byToken, rs.token)
	}
	rs.st.mu.Unlock()
}

// detach closes c and leaves the session offline in Redis, its frames after the last
// one c was given (before failed) its buffer (BUF-1 to BUF-3).
func (rs *redisSession) detach(c *conn, code websocket.StatusCode, reason string, failed []frame) {
	unsent, _ := c.closeNow(code, reason)
	dropAll(unsent)
	c.mu.Lock()
	written := c.sent
	c.mu.Unlock()
	for _, f := range failed {
		if f.session && f.seq <= written {
			written = f.seq - 1
		}
	}
	dropAll(failed)
	rs.mu.Lock()
	if rs.gone {
		rs.mu.Unlock()
		return
	}
	rs.left = written
	rs.leaveKeepingToken()
	rs.mu.Unlock()
	st := rs.st
	st.flushActivity(rs)
	_, err := st.call(st.lua.detach, sessionKeys(rs.id), rs.id, st.node, rs.token, strconv.Itoa(written), strconv.FormatInt(st.srv.cfg.SessionTTL.Milliseconds(), 10))
	rs.forgetToken()
	if err != nil {
		rs.log.Warn("could not record in the session store that the connection left; done when it answers again", "err", err)
	}
}

// withdraw undoes the join of c, whose upgrade failed.
func (rs *redisSession) withdraw(c *conn) { rs.detach(c, websocket.StatusGoingAway, "", nil) }

// end ends the session in Redis (DISC-3).
func (rs *redisSession) end(error) {
	rs.mu.Lock()
	rs.leaveLocked()
	rs.mu.Unlock()
	if _, err := rs.st.call(rs.st.lua.end, sessionKeys(rs.id), rs.id); err != nil {
		rs.log.Warn("could not end the session in the session store", "err", err)
	}
}
