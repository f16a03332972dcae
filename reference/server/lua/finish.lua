-- finish: the terminal frame of query qid, which node runs, is kept, delivered and
-- remembered (QID-4), and the next queued query becomes the running one, run by node,
-- unless node drains: then another node is told to run it (hand_over).
-- A retry after a lost reply gets the first reply again.
-- KEYS: s h q f fo. ARGV: sid node qid maxn maxb pre suf remember_n remember_bytes draining.
-- Returns {'next', entry} or {'idle'} or {'lost'}.
local s, h, q, f, fo = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sid, node, qid = ARGV[1], ARGV[2], ARGV[3]
local m = redis.call('HMGET', s, 'running', 'runner', 'done', 'donenext')
if m[1] ~= qid or m[2] ~= node then
  if m[3] == node .. ' ' .. qid then -- a retry after a lost reply: the same answer
    if m[4] and m[4] ~= '' then return {'next', m[4]} end
    return {'idle'}
  end
  redis.call('SREM', runs(node), sid) -- the session ended, or another node took the query
  return {'lost'}
end
redis.call('HSET', s, 'done', node .. ' ' .. qid, 'donenext', '')
local seq, fr = emit(s, h, ARGV[6], ARGV[7], tonumber(ARGV[4]), tonumber(ARGV[5]))
keep_ttl(s, h)
deliver(s, sid, seq, {fr}, tonumber(ARGV[4]))
remember(s, f, fo, qid, fr, tonumber(ARGV[8]), tonumber(ARGV[9]))
redis.call('SREM', runs(node), sid)
if ARGV[10] == '1' then
  redis.call('HDEL', s, 'running', 'runner', 'cancel')
  hand_over(q, sid, node, redis.call('HGET', s, 'owner'))
  return {'idle'}
end
local e = claim(s, q, sid, node)
if e then
  redis.call('HSET', s, 'donenext', e)
  return {'next', e}
end
return {'idle'}
