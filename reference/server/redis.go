package server

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/agentws/agentws/schemas/httpapi"
)

// The Redis store keeps every session in Redis, so that many nodes serve one set of
// sessions (spec/PROTOCOL.md section 9.3). Each change of a session is one Lua script
// (lua/*.lua), atomic in Redis; a node is told of what concerns it on its channel
// (agentws:node:<id>): the frames of the sessions whose connection it holds (F), a
// takeover of one of them (R) and its answer (D), a cancel (C) or the end (E) of a
// session whose query it runs, and a query left to run by a draining node (W). A frame
// is delivered at most once by the channel and then, should the channel have missed
// it, fetched from the session's history by seq: a connection never misses one.
//
// A node renews its lease in the sorted set agentws:nodes; when a node's lease lapses
// (-node-lease), the others end the queries it ran with unavailable, and its
// connections' sessions go offline as after a drop.

//go:embed lua/*.lua
var luaFiles embed.FS

type redisScripts struct {
	open, backlog, rangeOf, detach, end, submit, emit, finish, cancel, orphan, stats, sent, unclaim, ack, notice, info, kill, touch *rueidis.Lua
}

func loadScripts() redisScripts {
	read := func(name string) string {
		b, err := luaFiles.ReadFile("lua/" + name + ".lua")
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	common := read("common")
	load := func(name string) *rueidis.Lua { return rueidis.NewLuaScript(common + "\n" + read(name)) }
	return redisScripts{
		open: load("open"), backlog: load("backlog"), rangeOf: load("range"), detach: load("detach"),
		end: load("end"), submit: load("submit"), emit: load("emit"), finish: load("finish"),
		cancel: load("cancel"), orphan: load("orphan"), stats: load("stats"), sent: load("sent"), unclaim: load("unclaim"), ack: load("ack"),
		notice: load("notice"), info: load("info"), kill: load("kill"), touch: load("touch"),
	}
}

// Keys of the Redis store (lua/common.lua).
const (
	redisPrefix   = "agentws:"
	redisNodes    = redisPrefix + "nodes"
	redisSent     = redisPrefix + "sent"
	redisSessions = redisPrefix + "sessions"
	redisActive   = redisPrefix + "active" // a hash: the connections of each node (HEALTH-4)
)

func sessionKeys(sid string) []string {
	return []string{redisPrefix + "s:" + sid, redisPrefix + "h:" + sid, redisPrefix + "q:" + sid, redisPrefix + "f:" + sid, redisPrefix + "fo:" + sid}
}

// errStoreDown is why a node cannot serve: the session store does not answer.
var errStoreDown = errors.New("the session store (Redis) cannot be reached")

// handoffTimeout bounds how long a connection that takes a session over from another
// node waits for that node to close the older connection (4001) and say what it was
// given; past it, the new connection gets the frames after those recorded when the
// older one last left a session (spec section 9.3).
const handoffTimeout = time.Second

// storeCallTimeout bounds one call to Redis.
const storeCallTimeout = 5 * time.Second

type redisStore struct {
	srv    *Server
	client rueidis.Client
	node   string
	where  string // the store's URL without its password, for messages
	lua    redisScripts
	log    *slog.Logger

	mu       sync.Mutex
	bySID    map[string]*redisSession // the sessions whose connection this node holds
	byToken  map[string]*redisSession // the same, and those being taken over here, by connection token
	handoffs map[string]chan int      // connections waiting for a takeover's answer, by token
	queries  map[string]*redisQuery   // the queries this node runs, by session id
	unrun    map[string]bool          // sessions whose query Redis gives this node and it does not run (reconcile)

	acks      chan *redisSession // sessions whose connection took frames to acknowledge
	countMu   sync.Mutex         // orders the writes of the node's connection count
	countWake chan struct{}      // the count changed

	up         atomic.Bool  // the last call to Redis succeeded
	dirty      atomic.Bool  // a change this node owed Redis failed: reconcile its sessions
	unsent     atomic.Int64 // connection-scoped frames written that the cluster's count lacks: Redis did not answer
	sentTotal  atomic.Int64 // the cluster's count when last read
	subscribed chan struct{}
}

// newRedisStore connects to the Redis of url and checks that it answers.
func newRedisStore(srv *Server, rawURL, node string) (*redisStore, error) {
	where := redactURL(rawURL)
	opt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("session store %s: %w", where, err)
	}
	opt.DisableCache = true
	opt.Dialer.Timeout = storeCallTimeout
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("session store %s cannot be reached: %w", where, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("session store %s does not answer PING: %w", where, err)
	}
	if node == "" {
		node = defaultNodeID()
	}
	st := &redisStore{
		srv: srv, client: client, node: node, where: where, lua: loadScripts(),
		log:   srv.log.With("node", node),
		bySID: map[string]*redisSession{}, byToken: map[string]*redisSession{},
		handoffs: map[string]chan int{}, queries: map[string]*redisQuery{},
		subscribed: make(chan struct{}), countWake: make(chan struct{}, 1), acks: make(chan *redisSession, 4096),
	}
	st.up.Store(true)
	return st, nil
}

// defaultNodeID names this node by its host and a random suffix.
func defaultNodeID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	return host + "-" + randomHex(4)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// redactURL drops the password of a store URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an invalid URL)"
	}
	return u.Redacted()
}

// start runs the store's background work until the server stops: the subscription to
// the node's channel, and the lease with the sweep of lapsed nodes. It returns once
// the node is subscribed, or with the error that kept it from subscribing.
func (st *redisStore) start() error {
	// What Redis records as this node's may be an earlier process's of the same node id
	// (a restart): the first renewal reconciles it with what this process holds, so
	// that the sessions it left go offline and the queries it ran end (unavailable),
	// as those of a node whose lease lapsed, which sweep leaves to this node.
	st.dirty.Store(true)
	st.srv.background.Add(4)
	go func() {
		defer st.srv.background.Done()
		st.ackLoop()
	}()
	go func() {
		defer st.srv.background.Done()
		for {
			select {
			case <-st.countWake:
				st.writeCount()
			case <-st.srv.ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer st.srv.background.Done()
		st.subscribe()
	}()
	go func() {
		defer st.srv.background.Done()
		st.leaseLoop()
	}()
	select {
	case <-st.subscribed:
		return nil
	case <-time.After(storeCallTimeout):
		return fmt.Errorf("session store %s: subscribing to the node's channel took over %v", st.where, storeCallTimeout)
	}
}

// close leaves the cluster: the node's connection count goes, and its lease too when
// Redis records no query as still the node's (one whose end it could not store): else
// the lease lapses, and another node ends those queries. Then the client closes.
func (st *redisStore) close() {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	st.client.Do(ctx, st.client.B().Hdel().Key(redisActive).Field(st.node).Build())
	if n, err := st.client.Do(ctx, st.client.B().Scard().Key(redisPrefix+"n:"+st.node+":runs").Build()).AsInt64(); err == nil && n == 0 {
		st.client.Do(ctx, st.client.B().Zrem().Key(redisNodes).Member(st.node).Build())
	}
	st.client.Close()
}

// call runs a script with the store's call timeout, and records whether Redis answered.
func (st *redisStore) call(lua *rueidis.Lua, keys []string, args ...string) ([]rueidis.RedisMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	resp := lua.Exec(ctx, st.client, keys, args)
	err := resp.Error()
	st.noteCall(err)
	var re *rueidis.RedisError
	switch {
	case errors.As(err, &re):
		return nil, fmt.Errorf("session store script failed: %w", err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", errStoreDown, err)
	}
	if res, err := resp.ToArray(); err == nil {
		return res, nil
	}
	m, _ := resp.ToMessage()
	return []rueidis.RedisMessage{m}, nil
}

// noteCall records whether a call reached Redis; a Redis error reply is a fault of
// this program, not of the store's reachability.
func (st *redisStore) noteCall(err error) {
	var re *rueidis.RedisError
	switch {
	case err == nil, errors.As(err, &re):
		if !st.up.Swap(true) {
			st.log.Info("session store reachable again", "store", st.where)
		}
	default:
		if st.up.Swap(false) {
			st.log.Error("session store unreachable: refusing new connections and queries until it answers", "store", st.where, "err", err)
		}
		st.dirty.Store(true)
	}
}

func str(m rueidis.RedisMessage) string {
	s, _ := m.ToString()
	return s
}

func num(m rueidis.RedisMessage) int {
	if n, err := m.ToInt64(); err == nil {
		return int(n)
	}
	n, _ := m.AsInt64()
	return int(n)
}

// subscribe keeps the node subscribed to its channel; after a lost subscription every
// connection of the node fetches from the histories what it may have missed.
func (st *redisStore) subscribe() {
	channel := redisPrefix + "node:" + st.node
	first := true
	backoff := 50 * time.Millisecond
	for st.srv.ctx.Err() == nil {
		dc, release := st.client.Dedicate()
		ready := make(chan struct{}, 1)
		wait := dc.SetPubSubHooks(rueidis.PubSubHooks{
			OnMessage: func(m rueidis.PubSubMessage) { st.onMessage(m.Message) },
			OnSubscription: func(s rueidis.PubSubSubscription) {
				if s.Kind == "subscribe" {
					select {
					case ready <- struct{}{}:
					default:
					}
				}
			},
		})
		ctx, cancel := context.WithTimeout(st.srv.ctx, storeCallTimeout)
		err := dc.Do(ctx, dc.B().Subscribe().Channel(channel).Build()).Error()
		cancel()
		if err == nil {
			select {
			case <-ready:
			case err = <-wait:
			case <-time.After(storeCallTimeout):
				err = errors.New("no confirmation of the subscription")
			}
		}
		if err == nil {
			backoff = 50 * time.Millisecond
			if first {
				close(st.subscribed)
				first = false
			} else {
				st.log.Info("subscribed again to the node's channel: every connection fetches what it missed")
				st.fetchAll()
			}
			select {
			case err = <-wait:
			case <-st.srv.ctx.Done():
			}
		}
		release()
		if st.srv.ctx.Err() != nil {
			return
		}
		st.noteCall(err)
		st.log.Warn("subscription to the node's channel lost; subscribing again", "err", err, "retry_in", backoff)
		select {
		case <-time.After(backoff):
		case <-st.srv.ctx.Done():
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// onMessage handles a message of the node's channel.
func (st *redisStore) onMessage(m string) {
	head, body, _ := strings.Cut(m, "\n")
	f := strings.Fields(head)
	if len(f) == 0 {
		return
	}
	switch {
	case f[0] == "F" && len(f) == 4:
		first, _ := strconv.Atoi(f[2])
		st.mu.Lock()
		rs := st.bySID[f[1]]
		st.mu.Unlock()
		if rs != nil {
			pace := f[3] == "1"
			rs.wantAck.Store(pace)
			if pace { // what the writer took so far, at once: it may have taken all
				rs.sent(int(rs.taken.Load()))
			}
			rs.push(first, strings.Split(body, "\n"))
		}
	case f[0] == "R" && len(f) == 5: // off the channel's goroutine: it calls Redis
		st.async(func() { st.replaced(f[1], f[2], f[3], f[4]) })
	case f[0] == "D" && len(f) == 3:
		written, _ := strconv.Atoi(f[2])
		st.mu.Lock()
		ch := st.handoffs[f[1]]
		st.mu.Unlock()
		if ch != nil {
			select {
			case ch <- written:
			default:
			}
		}
	case f[0] == "C" && len(f) == 3:
		st.stopQuery(f[1], f[2], errCancelled)
	case f[0] == "E" && len(f) == 2:
		st.stopQuery(f[1], "", errSessionEnded)
	case f[0] == "K" && len(f) == 3:
		st.ended(f[1], f[2])
	case f[0] == "W" && len(f) == 2:
		st.async(func() { st.claim(f[1]) })
	}
}

// async runs fn in a goroutine of its own, unless the server stops.
func (st *redisStore) async(fn func()) {
	if !st.srv.track(&st.srv.background) {
		return
	}
	go func() {
		defer st.srv.background.Done()
		fn()
	}()
}

// replaced closes the connection token of session sid with 4001 (TAKE-1): a connection
// on node next took it over, and is told which frames this one was given.
func (st *redisStore) replaced(sid, token, next, nextToken string) {
	st.mu.Lock()
	rs := st.byToken[token]
	st.mu.Unlock()
	written := -1
	if rs != nil {
		var now bool
		if written, now = rs.replace(next, nextToken); !now {
			return // answered by open
		}
	}
	st.publish(next, "D "+nextToken+" "+strconv.Itoa(written))
}

func (st *redisStore) publish(node, message string) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	err := st.client.Do(ctx, st.client.B().Publish().Channel(redisPrefix+"node:"+node).Message(message).Build()).Error()
	st.noteCall(err)
	if err != nil {
		st.log.Warn("could not tell a node", "to", node, "err", err)
	}
}

// fetchAll makes every connection of the node fetch the frames it may have missed.
func (st *redisStore) fetchAll() {
	for _, rs := range st.held() {
		rs.markGap()
	}
}

// held returns the sessions whose connection the node holds. The caller may then
// lock each: the lock order is a session's, then the store's.
func (st *redisStore) held() []*redisSession {
	st.mu.Lock()
	defer st.mu.Unlock()
	all := make([]*redisSession, 0, len(st.bySID))
	for _, rs := range st.bySID {
		all = append(all, rs)
	}
	return all
}

// conns returns the node's connections that joined a session.
func (st *redisStore) conns() []*conn {
	st.mu.Lock()
	all := make([]*redisSession, 0, len(st.byToken))
	for _, rs := range st.byToken {
		all = append(all, rs)
	}
	st.mu.Unlock()
	out := make([]*conn, 0, len(all))
	for _, rs := range all { // the lock order is a session's, then the store's
		rs.mu.Lock()
		if rs.conn != nil && !rs.gone {
			out = append(out, rs.conn)
		}
		rs.mu.Unlock()
	}
	return out
}

// leaseLoop renews the node's lease, adds its frames to the cluster's count, sweeps
// the nodes whose lease lapsed and, after a failed call, reconciles what Redis records
// of this node with what it holds.
func (st *redisStore) leaseLoop() {
	lease := st.srv.cfg.NodeLease
	tick := time.NewTicker(max(lease/4, 10*time.Millisecond))
	defer tick.Stop()
	st.renew()
	renewed := time.Now()
	for {
		select {
		case <-st.srv.ctx.Done():
			st.flushSent()
			return
		case <-tick.C:
		}
		if !st.renew() {
			continue
		}
		// A node that could not renew for half a lease was cut off from Redis, or Redis
		// stalled for all: it judges no other node this round (they could not renew
		// either), and mends what the others may have done to it meanwhile.
		cutOff := time.Since(renewed) > lease/2
		renewed = time.Now()
		if cutOff {
			st.log.Warn("the lease could not be renewed for over half a lease: sweeping no node this round, and checking this node's sessions", "lease", lease)
			st.dirty.Store(true)
		}
		st.flushSent()
		st.flushActivity(st.held()...)
		if st.dirty.Swap(false) {
			st.reconcile()
		}
		if !cutOff {
			st.sweep()
		}
	}
}

// renew renews the node's lease. A Redis that takes half a lease to answer counts as
// unreachable: it stalls, and the node must say so (/readyz) before its lease lapses.
func (st *redisStore) renew() bool {
	ctx, cancel := context.WithTimeout(context.Background(), min(storeCallTimeout, st.srv.cfg.NodeLease/2))
	defer cancel()
	now := time.Now().UnixMilli()
	err := st.client.Do(ctx, st.client.B().Zadd().Key(redisNodes).ScoreMember().ScoreMember(float64(now), st.node).Build()).Error()
	st.noteCall(err)
	return err == nil
}

// countSent adds n connection-scoped frames about to be written to the cluster's count
// of frames sent (HEALTH-3), before the client can see them; session-scoped frames are
// counted as they are stored. When Redis does not answer within a second, the frames
// are counted at the next flush.
func (st *redisStore) countSent(n int64) {
	if !st.up.Load() { // a pong must not wait for a Redis that does not answer
		st.unsent.Add(n)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := st.client.Do(ctx, st.client.B().Incrby().Key(redisSent).Increment(n).Build()).Error(); err != nil {
		st.unsent.Add(n)
	}
}

// flushSent adds the frames counted while Redis did not answer to the cluster's count,
// and returns the count (HEALTH-3).
func (st *redisStore) flushSent() (int64, error) {
	delta := st.unsent.Swap(0)
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	resp := st.lua.sent.Exec(ctx, st.client, []string{redisSent}, []string{strconv.FormatInt(delta, 10), strconv.FormatInt(st.sentTotal.Load(), 10)})
	total, err := resp.AsInt64()
	if err != nil {
		total, err = resp.ToInt64()
	}
	st.noteCall(resp.Error())
	if err != nil {
		st.unsent.Add(delta)
		return st.sentTotal.Load() + st.unsent.Load(), err
	}
	for {
		old := st.sentTotal.Load()
		if total <= old || st.sentTotal.CompareAndSwap(old, total) {
			break
		}
	}
	return st.sentTotal.Load(), nil
}

// reconcile, after a call to Redis failed, mends what Redis and this node may see
// differently: it detaches the sessions Redis records as this node's that it no longer
// holds (their detach failed); it closes with 1001 the connections whose session
// Redis no longer gives this node (its lease lapsed meanwhile, and another node took
// its sessions offline), so that their clients reconnect; and it ends the queries
// Redis records as this node's that it does not run (a reply that gave it one was
// lost), once they are seen so twice.
func (st *redisStore) reconcile() {
	st.closeStrays()
	st.endUnrun()
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	owned, err := st.client.Do(ctx, st.client.B().Smembers().Key(redisPrefix+"n:"+st.node+":owns").Build()).AsStrSlice()
	st.noteCall(err)
	if err != nil {
		st.dirty.Store(true)
		return
	}
	for _, sid := range owned {
		st.mu.Lock()
		rs := st.bySID[sid]
		st.mu.Unlock()
		if rs == nil {
			st.orphan(sid, st.node, "")
		}
	}
}

// clusterStats fills in the figures of GET /ws/health that are the cluster's (spec
// section 9.3): the frames of every node, the frames buffered for the sessions
// without a connection, the connections of every node. When Redis does not answer,
// total_messages_sent is this node's last reading with the frames it counted since:
// it still never decreases.
func (st *redisStore) clusterStats(h *httpapi.Health) {
	total, _ := st.flushSent()
	h.TotalMessagesSent = int(total)
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	lapsed := strconv.FormatInt(time.Now().Add(-st.srv.cfg.NodeLease).UnixMilli(), 10)
	res, err := st.lua.stats.Exec(ctx, st.client, []string{redisSessions, redisNodes, redisActive}, []string{lapsed}).ToArray()
	st.noteCall(err)
	if err == nil && len(res) == 3 {
		h.TotalBufferedMessages, h.SessionsWithBuffer, h.ActiveConnections = num(res[0]), num(res[1]), num(res[2])
	}
}

// countChanged asks for the node's connection count to be written to Redis; it never
// waits.
func (st *redisStore) countChanged() {
	select {
	case st.countWake <- struct{}{}:
	default:
	}
}

// writeCount writes the node's connection count to Redis, for the cluster's
// active_connections (HEALTH-4). The writes are ordered, each with the count when it
// is made: the last one written is the newest.
func (st *redisStore) writeCount() {
	st.countMu.Lock()
	defer st.countMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	n := st.srv.stats.active.Load()
	err := st.client.Do(ctx, st.client.B().Hset().Key(redisActive).FieldValue().FieldValue(st.node, strconv.FormatInt(n, 10)).Build()).Error()
	st.noteCall(err)
}

// ackLoop acknowledges, for the sessions whose query's node asked (deliver), the
// frames their connections' writers took: one call for all the sessions that took
// some while the previous call was on its way.
func (st *redisStore) ackLoop() {
	for {
		var batch []*redisSession
		select {
		case rs := <-st.acks:
			batch = append(batch, rs)
		case <-st.srv.ctx.Done():
			return
		}
		for more := true; more; {
			select {
			case rs := <-st.acks:
				batch = append(batch, rs)
			default:
				more = false
			}
		}
		execs := make([]rueidis.LuaExec, 0, len(batch))
		for _, rs := range batch {
			rs.ackQueued.Store(false)
			execs = append(execs, rueidis.LuaExec{Keys: []string{redisPrefix + "s:" + rs.id}, Args: []string{rs.token, strconv.FormatInt(rs.taken.Load(), 10)}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
		for _, r := range st.lua.ack.ExecMulti(ctx, st.client, execs...) {
			st.noteCall(r.Error())
		}
		cancel()
	}
}

// closeStrays closes with 1001 the connections whose session no longer names them.
func (st *redisStore) closeStrays() {
	for _, rs := range st.held() {
		ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
		token, err := st.client.Do(ctx, st.client.B().Hget().Key(redisPrefix+"s:"+rs.id).Field("token").Build()).ToString()
		cancel()
		if err != nil && !rueidis.IsRedisNil(err) {
			st.dirty.Store(true)
			return
		}
		if token != rs.token {
			rs.mu.Lock()
			c := rs.conn
			rs.mu.Unlock()
			if c != nil {
				rs.lost(c)
			}
		}
	}
}

// endUnrun ends the queries Redis records as this node's to run that it has not run
// for two reconciles in a row.
func (st *redisStore) endUnrun() {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	sids, err := st.client.Do(ctx, st.client.B().Smembers().Key(redisPrefix+"n:"+st.node+":runs").Build()).AsStrSlice()
	if err != nil {
		st.dirty.Store(true)
		return
	}
	st.mu.Lock()
	seen := st.unrun
	st.unrun = map[string]bool{}
	for _, sid := range sids {
		if st.queries[sid] == nil {
			st.unrun[sid] = true
		}
	}
	var end []string
	for sid := range st.unrun {
		if seen[sid] {
			end = append(end, sid)
		}
	}
	if len(st.unrun) > 0 {
		st.dirty.Store(true) // look again at the next renewal
	}
	st.mu.Unlock()
	for _, sid := range end {
		running, err := st.client.Do(ctx, st.client.B().Hmget().Key(redisPrefix+"s:"+sid).Field("running", "runner").Build()).ToArray()
		if err != nil {
			return
		}
		st.mu.Lock()
		runs := st.queries[sid] != nil
		st.mu.Unlock()
		if str(running[1]) == st.node && !runs {
			st.log.Warn("a query Redis gives this node to run was never started (a reply was lost): ending it", "session_id", sid, "query_id", str(running[0]))
			st.endLeft(sid, st.node, str(running[0]), false)
		}
	}
}
