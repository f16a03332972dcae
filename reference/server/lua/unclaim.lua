-- unclaim: node, which stops, gives back the query it was just made to run, before it
-- ran: the entry goes back to the front of the queue, and another node is told to run
-- it (hand_over).
-- KEYS: s q. ARGV: sid node entry.
local s, q = KEYS[1], KEYS[2]
local sid, node, e = ARGV[1], ARGV[2], ARGV[3]
local m = redis.call('HMGET', s, 'running', 'runner', 'owner')
if m[1] ~= entry_id(e) or m[2] ~= node then return 0 end
redis.call('LPUSH', q, e)
redis.call('HINCRBY', s, 'qbytes', entry_size(e))
keep_ttl(s, q)
redis.call('HDEL', s, 'running', 'runner', 'cancel')
redis.call('SREM', runs(node), sid)
hand_over(q, sid, node, m[3])
return 1
