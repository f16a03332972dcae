-- cancel: the client cancels query qid (CANCEL-1 to CANCEL-3). The running one is
-- marked, and its node told to stop it; a queued one leaves the queue and its stream
-- is the error frame pre .. seq .. suf, remembered as its end.
-- KEYS: s h q f fo. ARGV: sid qid maxn maxb pre suf remember_n remember_bytes.
-- Returns {'running'} or {'cancelled'} or {'unknown'}.
local s, h, q, f, fo = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sid, qid = ARGV[1], ARGV[2]
if redis.call('EXISTS', s) == 0 then return {'unknown'} end
local m = redis.call('HMGET', s, 'running', 'runner')
if m[1] == qid then
  redis.call('HSET', s, 'cancel', qid)
  redis.call('PUBLISH', node_chan(m[2]), 'C ' .. sid .. ' ' .. qid)
  return {'running'}
end
local e = queued(q, qid)
if not e then return {'unknown'} end
redis.call('LREM', q, 1, e)
redis.call('HINCRBY', s, 'qbytes', -entry_size(e))
local seq, fr = emit(s, h, ARGV[5], ARGV[6], tonumber(ARGV[3]), tonumber(ARGV[4]))
keep_ttl(s, h)
deliver(s, sid, seq, {fr}, tonumber(ARGV[3]))
remember(s, f, fo, qid, fr, tonumber(ARGV[7]), tonumber(ARGV[8]))
return {'cancelled'}
