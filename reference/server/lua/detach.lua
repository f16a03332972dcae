-- detach: connection token, on node, left session sid after it was given the frames up
-- to written: the session lives on for ttl ms (BUF-1), and the frames after written are
-- its offline buffer (BUF-3). Nothing changes when another connection took it over.
-- KEYS: s h q f fo. ARGV: sid node token written ttl.
local s, h, q, f, fo = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sid, node, token, written, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('HGET', s, 'token') ~= token then return 0 end
redis.call('HSET', s, 'delivered', written)
redis.call('HDEL', s, 'owner', 'token')
redis.call('SREM', owns(node), sid)
for _, k in ipairs({s, h, q, f, fo}) do redis.call('PEXPIRE', k, ttl) end
redis.call('ZADD', Z, now_ms() + ttl, sid)
return 1
