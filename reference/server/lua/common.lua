-- Shared by every script of the Redis session store (redis.go), prepended to each.
-- A session sid is five keys: s (a hash: user, epoch, seq, owner and token of its
-- connection, delivered, announced, running and runner of its query, the byte counts),
-- h (its history, a list of frames, seq from oldest to seq), q (its queued queries),
-- f (its finished queries' terminal frames, by query id; "" once dropped) and fo (their
-- ids, oldest first). The sorted set Z holds every session by its expiry in ms, ONLINE
-- while it has a connection.
local P = 'agentws:'
local ONLINE = 9007199254740991
local Z = P .. 'sessions'

local function keys_of(sid)
  return P .. 's:' .. sid, P .. 'h:' .. sid, P .. 'q:' .. sid, P .. 'f:' .. sid, P .. 'fo:' .. sid
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function node_chan(node) return P .. 'node:' .. node end
local function owns(node) return P .. 'n:' .. node .. ':owns' end
local function runs(node) return P .. 'n:' .. node .. ':runs' end

-- keep_ttl gives keys the session's remaining TTL, if it has one: a key created while
-- the session is offline expires with it.
local function keep_ttl(s, ...)
  local ttl = redis.call('PTTL', s)
  if ttl > 0 then
    for _, k in ipairs({...}) do redis.call('PEXPIRE', k, ttl) end
  end
end

-- emit appends the frame pre .. seq .. suf to the history with the session's next seq
-- (SEQ-1) and trims the history to maxn frames and maxb bytes, oldest first (SEQ-2).
-- trim drops the oldest frames of the history h of n frames and hb bytes while it is
-- over maxn frames or maxb bytes (SEQ-2).
local function trim(s, h, n, hb, maxn, maxb)
  local dropped = 0
  while n > maxn or hb > maxb do
    local old = redis.call('LPOP', h)
    if not old then break end
    hb, n, dropped = hb - #old, n - 1, dropped + #old
  end
  if dropped > 0 then redis.call('HINCRBY', s, 'hbytes', -dropped) end
end

local function emit(s, h, pre, suf, maxn, maxb)
  local seq = redis.call('HINCRBY', s, 'seq', 1)
  local f = pre .. seq .. suf
  local n = redis.call('RPUSH', h, f)
  trim(s, h, n, redis.call('HINCRBY', s, 'hbytes', #f), maxn, maxb)
  return seq, f
end

-- deliver publishes frames, the first numbered first, to the node of the session's
-- connection, if it has one, and counts them among the cluster's frames sent. It
-- returns how many frames the connection is behind (0 without one): the seq of the
-- last of them less the last its node acknowledged. Past half of maxn the node is
-- asked to acknowledge what its connection takes (the 1 after the seq), so that the
-- query's node can pace the stream to the reader (the memory store's full send
-- queue), the history never dropping a frame it has not had.
local function deliver(s, sid, first, frames, maxn)
  redis.call('INCRBY', P .. 'sent', #frames) -- HEALTH-3, counted as they are stored
  local m = redis.call('HMGET', s, 'owner', 'acked')
  if not m[1] then return 0 end
  local lag = first + #frames - 1 - tonumber(m[2] or '0')
  local pace = 0
  if 2 * lag > maxn then pace = 1 end
  redis.call('PUBLISH', node_chan(m[1]), 'F ' .. sid .. ' ' .. first .. ' ' .. pace .. '\n' .. table.concat(frames, '\n'))
  return lag
end

-- remember keeps the terminal frame of query qid for a repeat of its id (QID-4): the
-- last maxn ids, and their frames within maxb bytes, the oldest frame dropped first
-- (its id kept: the query never runs again).
local function remember(s, f, fo, qid, frame, maxn, maxb)
  redis.call('HSET', f, qid, frame)
  local n = redis.call('RPUSH', fo, qid)
  local fb = redis.call('HINCRBY', s, 'fbytes', #frame)
  while n > maxn do
    local old = redis.call('LPOP', fo)
    fb = redis.call('HINCRBY', s, 'fbytes', -#(redis.call('HGET', f, old) or ''))
    redis.call('HDEL', f, old)
    local kept = tonumber(redis.call('HGET', s, 'fkept') or '0')
    if kept > 0 then redis.call('HSET', s, 'fkept', kept - 1) end
    n = n - 1
  end
  while fb > maxb do
    local kept = tonumber(redis.call('HGET', s, 'fkept') or '0')
    local id = redis.call('LINDEX', fo, kept)
    if not id then break end
    fb = redis.call('HINCRBY', s, 'fbytes', -#(redis.call('HGET', f, id) or ''))
    redis.call('HSET', f, id, '')
    redis.call('HSET', s, 'fkept', kept + 1)
  end
  keep_ttl(s, f, fo)
end

-- entry_id is the query id of a queue entry: "id\nsize\nrequest".
local function entry_id(e) return string.match(e, '^([^\n]*)\n') end
local function entry_size(e) return tonumber(string.match(e, '^[^\n]*\n([^\n]*)\n')) end

-- queued returns the queue entry of query qid, if it waits.
local function queued(q, qid)
  for _, e in ipairs(redis.call('LRANGE', q, 0, -1)) do
    if entry_id(e) == qid then return e end
  end
  return nil
end

-- claim makes the first queued query the running one, run by node, and returns its
-- entry; nil when none waits.
local function claim(s, q, sid, node)
  local e = redis.call('LPOP', q)
  if not e then
    redis.call('HDEL', s, 'running', 'runner', 'cancel')
    return nil
  end
  redis.call('HINCRBY', s, 'qbytes', -entry_size(e))
  redis.call('HSET', s, 'running', entry_id(e), 'runner', node)
  redis.call('HDEL', s, 'cancel')
  redis.call('SADD', runs(node), sid)
  return e
end

-- hand_over tells another node to run the queued queries of session sid, which node
-- stops running: the node of the session's connection, or else the node that renewed
-- its lease last (BUF-2: the queries of a session without a connection run on).
local function hand_over(q, sid, node, owner)
  if redis.call('LLEN', q) == 0 then return end
  local target = nil
  if owner and owner ~= node then target = owner end
  if not target then
    for _, n in ipairs(redis.call('ZREVRANGE', P .. 'nodes', 0, 3)) do
      if n ~= node then target = n break end
    end
  end
  if target then redis.call('PUBLISH', node_chan(target), 'W ' .. sid) end
end

-- end_session ends session sid (DISC-3, BUF-6): its keys go, and the node running its
-- query is told to stop it.
local function end_session(sid)
  local s, h, q, f, fo = keys_of(sid)
  local m = redis.call('HMGET', s, 'runner', 'owner')
  if m[1] then
    redis.call('SREM', runs(m[1]), sid)
    redis.call('PUBLISH', node_chan(m[1]), 'E ' .. sid)
  end
  if m[2] then redis.call('SREM', owns(m[2]), sid) end
  redis.call('DEL', s, h, q, f, fo)
  redis.call('ZREM', Z, sid)
end
