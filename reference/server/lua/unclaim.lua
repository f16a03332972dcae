-- unclaim: node, which stops, gives back the query it was just made to run, before it
-- ran: the entry goes back to the front of the queue, and the node of the session's
-- connection, if another, is told to run it (else the next connection's node will).
-- KEYS: s q. ARGV: sid node entry.
local s, q = KEYS[1], KEYS[2]
local sid, node, e = ARGV[1], ARGV[2], ARGV[3]
local m = redis.call('HMGET', s, 'running', 'runner', 'owner')
if m[1] ~= entry_id(e) or m[2] ~= node then return 0 end
redis.call('LPUSH', q, e)
redis.call('HINCRBY', s, 'qbytes', entry_size(e))
redis.call('HDEL', s, 'running', 'runner', 'cancel')
redis.call('SREM', runs(node), sid)
if m[3] and m[3] ~= node then redis.call('PUBLISH', node_chan(m[3]), 'W ' .. sid) end
return 1
