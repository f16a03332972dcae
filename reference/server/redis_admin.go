package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/agentws/agentws/schemas/adminapi"
	"github.com/agentws/agentws/schemas/msg"
)

// The admin API on the Redis store (spec section 12.7): a broadcast reaches every
// session of the cluster, whichever node holds its connection, exactly once; the
// session list is the cluster's.

// adminBatch is how many sessions one round trip to Redis handles.
const adminBatch = 500

// roundTrip bounds one round trip of the admin API to Redis by the store's call
// timeout. The request's cancellation does not reach it: a requester that goes away
// neither cuts a broadcast short nor makes the node count Redis as unreachable.
func roundTrip(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeCallTimeout)
}

// liveSessionIDs returns the ids of the cluster's sessions that have not expired.
func (st *redisStore) liveSessionIDs(ctx context.Context) ([]string, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ctx, cancel := roundTrip(ctx)
	defer cancel()
	ids, err := st.client.Do(ctx, st.client.B().Zrangebyscore().Key(redisSessions).Min(now).Max("+inf").Build()).AsStrSlice()
	st.noteCall(err)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errStoreDown, err)
	}
	return ids, nil
}

// users returns the user of each session of ids ("" for none, or for one that ended).
func (st *redisStore) users(ctx context.Context, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for chunk := range slices.Chunk(ids, adminBatch) {
		cmds := make(rueidis.Commands, len(chunk))
		for i, sid := range chunk {
			cmds[i] = st.client.B().Hget().Key(redisPrefix + "s:" + sid).Field("user").Build()
		}
		rctx, cancel := roundTrip(ctx)
		res := st.client.DoMulti(rctx, cmds...)
		cancel()
		for _, r := range res {
			u, err := r.ToString()
			if err != nil && !rueidis.IsRedisNil(err) {
				st.noteCall(err)
				return nil, fmt.Errorf("%w: %v", errStoreDown, err)
			}
			out = append(out, u)
		}
	}
	st.noteCall(nil)
	return out, nil
}

// broadcast gives the notice n to every session of the cluster that t reaches, each
// exactly once: one script per session stores it in the session's history, from which
// its connection's node delivers it, and a retry after a lost reply stores it not
// twice (notice.lua). It returns how many sessions it reached.
func (st *redisStore) broadcast(ctx context.Context, n msg.Notice, t broadcastTarget) (int, error) {
	var ids []string
	if t.all || len(t.users) > 0 || len(t.exclUser) > 0 {
		all, err := st.liveSessionIDs(ctx)
		if err != nil {
			return 0, err
		}
		ids = all
	} else {
		for sid := range t.sessions {
			ids = append(ids, sid)
		}
	}
	var users []string
	if len(t.users) > 0 || len(t.exclUser) > 0 {
		var err error
		if users, err = st.users(ctx, ids); err != nil {
			return 0, err
		}
	}
	var targets []string
	for i, sid := range ids {
		user := ""
		if users != nil {
			user = users[i]
		}
		if t.reaches(sid, user) {
			targets = append(targets, sid)
		}
	}
	maxn, maxb := strconv.Itoa(st.srv.cfg.BufferSize), strconv.Itoa(st.srv.cfg.BufferBytes)
	reached := 0
	for chunk := range slices.Chunk(targets, adminBatch) {
		pending := chunk
		for try := 0; len(pending) > 0; try++ {
			execs := make([]rueidis.LuaExec, len(pending))
			for i, sid := range pending {
				h := splice(noticeBuilder(n, sid))
				execs[i] = rueidis.LuaExec{Keys: sessionKeys(sid)[:2], Args: []string{sid, n.NoticeId, maxn, maxb, h[0], h[1]}}
			}
			var failed []string
			var lastErr error
			rctx, cancel := roundTrip(ctx)
			res := st.lua.notice.ExecMulti(rctx, st.client, execs...)
			cancel()
			for i, r := range res {
				v, err := r.AsInt64()
				if err != nil {
					failed, lastErr = append(failed, pending[i]), err
					continue
				}
				reached += int(v)
			}
			st.noteCall(lastErr)
			if len(failed) > 0 && try == 2 {
				return reached, fmt.Errorf("%w: the notice reached %d sessions, and %d could not be told: %v", errStoreDown, reached, len(failed), lastErr)
			}
			pending = failed
		}
	}
	return reached, nil
}

// sessionPage returns a page of the cluster's sessions, as adminSessions: the page is
// taken of their ids, and only its sessions are asked of Redis (a session that ended
// meanwhile is left out of it).
func (st *redisStore) sessionPage(ctx context.Context, after string, limit int) ([]adminapi.SessionInfo, string, error) {
	ids, err := st.liveSessionIDs(ctx)
	if err != nil {
		return nil, "", err
	}
	slices.Sort(ids)
	ids, next := pageOf(ids, func(id string) string { return id }, after, limit)
	var out []adminapi.SessionInfo
	for chunk := range slices.Chunk(ids, adminBatch) {
		infos, err := st.infos(ctx, chunk)
		if err != nil {
			return nil, "", err
		}
		out = append(out, infos...)
	}
	return out, next, nil
}

// sessionInfo returns session sid of the cluster; false when it does not exist.
func (st *redisStore) sessionInfo(ctx context.Context, sid string) (adminapi.SessionInfo, bool, error) {
	infos, err := st.infos(ctx, []string{sid})
	if err != nil || len(infos) == 0 {
		return adminapi.SessionInfo{}, false, err
	}
	return infos[0], true, nil
}

// infos returns what info.lua says of the sessions of ids that exist, in their order.
func (st *redisStore) infos(ctx context.Context, ids []string) ([]adminapi.SessionInfo, error) {
	ctx, cancel := roundTrip(ctx)
	defer cancel()
	resp := st.lua.info.Exec(ctx, st.client, nil, ids)
	st.noteCall(resp.Error())
	res, err := resp.ToArray()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errStoreDown, err)
	}
	out := make([]adminapi.SessionInfo, 0, len(res)/7)
	for i := 0; i+7 <= len(res); i += 7 {
		f := make([]string, 7)
		for j := range f {
			f[j] = str(res[i+j])
		}
		since, _ := strconv.ParseInt(f[3], 10, 64)
		active, _ := strconv.ParseInt(f[4], 10, 64)
		sent, _ := strconv.Atoi(f[5])
		buffered, _ := strconv.Atoi(f[6])
		info := adminapi.SessionInfo{
			SessionId: f[0], UserId: f[1], State: adminapi.SessionInfoStateDetached,
			ConnectedAt: millisStamp(since), LastActivity: millisStamp(active),
			FramesSent: sent + st.unflushed(f[0]), BufferedFrames: buffered,
		}
		if f[2] != "" {
			info.State, info.Node = adminapi.SessionInfoStateConnected, &f[2]
		}
		out = append(out, info)
	}
	return out, nil
}

// unflushed returns the frames this node's connection of session sid wrote that
// flushActivity has not added to Redis yet.
func (st *redisStore) unflushed(sid string) int {
	st.mu.Lock()
	rs := st.bySID[sid]
	st.mu.Unlock()
	if rs == nil {
		return 0
	}
	return int(rs.stats.sent.Load() - rs.flushed.Load())
}

// flushActivity adds to Redis what the connections of sessions did since the last
// flush: the frames they wrote and when they last read or wrote one (touch.lua). What
// a failed call did not add is added by the next.
func (st *redisStore) flushActivity(sessions ...*redisSession) {
	for chunk := range slices.Chunk(sessions, adminBatch) {
		args := make([]string, 0, 3*len(chunk))
		type added struct {
			rs *redisSession
			n  int64
		}
		var adds []added
		for _, rs := range chunk {
			cur, active := rs.stats.sent.Load(), rs.stats.active.Load()
			n := cur - rs.flushed.Swap(cur)
			if n == 0 && rs.flushedActive.Swap(active) == active {
				continue // nothing new: an idle connection costs Redis nothing
			}
			adds = append(adds, added{rs, n})
			args = append(args, rs.id, strconv.FormatInt(n, 10), strconv.FormatInt(active, 10))
		}
		if len(args) == 0 {
			continue
		}
		if _, err := st.call(st.lua.touch, nil, args...); err != nil {
			for _, a := range adds {
				a.rs.flushed.Add(-a.n)
				a.rs.flushedActive.Store(0)
			}
			st.log.Debug("could not add the sessions' activity to the session store; the next flush will", "err", err)
		}
	}
}

// endByOperator ends session sid of the cluster and has the node of its connection
// close it with 4003 (ADMIN-4); false when it does not exist.
func (st *redisStore) endByOperator(ctx context.Context, sid string) (bool, error) {
	res, err := st.call(st.lua.kill, nil, sid)
	if err != nil {
		return false, err
	}
	if num(res[0]) == 0 {
		return false, nil
	}
	st.log.Info("the operator ended the session through the admin API", "session_id", sid)
	return true, nil
}

// endedByOperator reports whether the operator ended session sid while connection
// token had it (kill.lua).
func (st *redisStore) endedByOperator(sid, token string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	got, err := st.client.Do(ctx, st.client.B().Get().Key(redisPrefix+"ended:"+sid).Build()).ToString()
	return err == nil && got == token
}

// ended closes this node's connection token of session sid with 4003: the operator
// ended the session (kill.lua).
func (st *redisStore) ended(sid, token string) {
	st.mu.Lock()
	rs := st.byToken[token]
	st.mu.Unlock()
	if rs == nil || rs.id != sid {
		return
	}
	rs.mu.Lock()
	c := rs.conn
	rs.leaveLocked()
	rs.mu.Unlock()
	if c != nil {
		st.srv.release(c)
		unsent, _ := c.closeNow(closeSessionEnded, "session ended")
		dropAll(unsent)
	}
}
