-- open: a connection (token, on node) joins session sid, created for user with epoch
-- when it does not exist (HS-10: at max sessions, the one offline the longest ends to
-- make room), and takes it over from the connection it had (TAKE-1), whose node is
-- told to close it. A session whose query nobody runs (its runner drained) gets this
-- node as its runner.
-- KEYS: s h q f fo. ARGV: sid user epoch node token max_sessions.
-- Returns {'ok', epoch, old_node, claimed_entry} or {'user_mismatch'} or {'full', n}.
local s, h, q, f, fo = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sid, user, epoch, node, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_sessions = tonumber(ARGV[6])
if redis.call('EXISTS', s) == 0 then
  redis.call('ZREMRANGEBYSCORE', Z, '-inf', now_ms())
  local n = redis.call('ZCARD', Z)
  if n >= max_sessions then
    local oldest = redis.call('ZRANGE', Z, 0, 0, 'WITHSCORES')
    if #oldest == 0 or tonumber(oldest[2]) >= ONLINE then return {'full', n} end
    end_session(oldest[1])
  end
  redis.call('DEL', h, q, f, fo)
  redis.call('HSET', s, 'user', user, 'epoch', epoch, 'seq', 0, 'delivered', 0, 'announced', 0,
    'hbytes', 0, 'qbytes', 0, 'fbytes', 0, 'fkept', 0, 'qn', 0)
elseif redis.call('HGET', s, 'user') ~= user then
  return {'user_mismatch'}
end
local m = redis.call('HMGET', s, 'owner', 'token', 'epoch', 'running')
local now = now_ms()
redis.call('HSET', s, 'owner', node, 'token', token, 'since', now, 'active', now)
redis.call('PERSIST', s)
redis.call('PERSIST', h)
redis.call('PERSIST', q)
redis.call('PERSIST', f)
redis.call('PERSIST', fo)
redis.call('ZADD', Z, ONLINE, sid)
redis.call('SADD', owns(node), sid)
if m[1] then
  if m[1] ~= node then redis.call('SREM', owns(m[1]), sid) end
  redis.call('PUBLISH', node_chan(m[1]), 'R ' .. sid .. ' ' .. m[2] .. ' ' .. node .. ' ' .. token)
end
local claimed = ''
if not m[4] then claimed = claim(s, q, sid, node) or '' end
return {'ok', m[3], m[1] or '', claimed}
