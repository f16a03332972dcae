-- ack: connection token's node acknowledges that its writer took the session's frames
-- up to seq (deliver asked it to), for the pace of the stream. KEYS: s. ARGV: token seq.
local s = KEYS[1]
local m = redis.call('HMGET', s, 'token', 'acked')
if m[1] ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > tonumber(m[2] or '0') then redis.call('HSET', s, 'acked', ARGV[2]) end
return 1
