-- emit: frames of the query qid that node runs (STREAM-1 to STREAM-5), each spliced
-- around its seq, kept and delivered; with qid empty, answers to a client frame (a
-- replayed end) that need no runner. A query that node no longer runs (its session
-- ended, a survivor ended it as orphaned, the client cancelled it) emits nothing.
-- A batch named again (a retry after a lost reply) is not stored twice.
-- KEYS: s h. ARGV: sid node qid maxn maxb batch pre1 suf1 pre2 suf2 ...
-- Returns {'ok', last_seq, lag} (deliver) or {'lost'} or {'cancelled'}.
local s, h = KEYS[1], KEYS[2]
local sid, node, qid, maxn, maxb = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if qid ~= '' then
  local m = redis.call('HMGET', s, 'running', 'runner', 'cancel')
  if m[1] ~= qid or m[2] ~= node then
    redis.call('SREM', runs(node), sid) -- the session ended, or another node took the query
    return {'lost'}
  end
  if m[3] == qid then return {'cancelled'} end
elseif redis.call('EXISTS', s) == 0 then
  return {'lost'}
end
local batch = ARGV[6]
if batch ~= '' then
  if redis.call('HGET', s, 'batch') == batch then
    return {'ok', tonumber(redis.call('HGET', s, 'seq')), 0}
  end
  redis.call('HSET', s, 'batch', batch)
end
local count = (#ARGV - 6) / 2
local seq = redis.call('HINCRBY', s, 'seq', count)
local first = seq - count + 1
local frames, bytes = {}, 0
for i = 1, count do
  local fr = ARGV[5 + 2 * i] .. (first + i - 1) .. ARGV[6 + 2 * i]
  frames[i] = fr
  bytes = bytes + #fr
end
local n = redis.call('RPUSH', h, unpack(frames))
trim(s, h, n, redis.call('HINCRBY', s, 'hbytes', bytes), maxn, maxb)
keep_ttl(s, h)
return {'ok', seq, deliver(s, sid, first, frames, maxn)}
