-- orphan: node dead stopped renewing its lease. Its connection to session sid is gone
-- (the session lives on for ttl ms, as after a drop); its query qid there ends with
-- the error frame pre .. seq .. suf, remembered, and the next queued query, if any,
-- is node's to run.
-- With detach 0 only the query ends (this node's own, never started).
-- KEYS: s h q f fo. ARGV: sid dead node qid maxn maxb pre suf remember_n remember_bytes ttl detach.
-- Returns {'next', entry} or {'idle'}.
local s, h, q, f, fo = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sid, dead, node, qid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', s) == 0 then return {'idle'} end
local m = redis.call('HMGET', s, 'owner', 'running', 'runner')
if m[1] == dead and ARGV[12] == '1' then
  local ttl = tonumber(ARGV[11])
  redis.call('HDEL', s, 'owner', 'token')
  for _, k in ipairs({s, h, q, f, fo}) do redis.call('PEXPIRE', k, ttl) end
  redis.call('ZADD', Z, now_ms() + ttl, sid)
end
if m[3] == dead and m[2] == qid and qid ~= '' then
  local seq, fr = emit(s, h, ARGV[7], ARGV[8], tonumber(ARGV[5]), tonumber(ARGV[6]))
  keep_ttl(s, h)
  deliver(s, sid, seq, {fr}, tonumber(ARGV[5]))
  remember(s, f, fo, qid, fr, tonumber(ARGV[9]), tonumber(ARGV[10]))
  local e = claim(s, q, sid, node)
  if e then return {'next', e} end
elseif not m[2] then
  local e = claim(s, q, sid, node)
  if e then return {'next', e} end
end
return {'idle'}
