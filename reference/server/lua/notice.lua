-- notice: the notice nid for session sid (NOTICE-1, NOTICE-3), spliced around its seq
-- (SEQ-1), kept and delivered like any session-scoped frame; buffered while the
-- session has no connection. A broadcast retried after a lost reply finds its notice
-- among the session's last 16 (other broadcasts may have come between) and stores it
-- not twice.
-- KEYS: s h. ARGV: sid nid maxn maxb pre suf.
-- Returns 1 when the session got it (now or before), 0 when it does not exist.
local s, h = KEYS[1], KEYS[2]
local sid, nid, maxn, maxb = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', s) == 0 then return 0 end
local seen = redis.call('HGET', s, 'notices') or ''
if string.find(' ' .. seen .. ' ', ' ' .. nid .. ' ', 1, true) then return 1 end
local recent = {nid}
for id in string.gmatch(seen, '%S+') do
  if #recent == 16 then break end
  table.insert(recent, id)
end
redis.call('HSET', s, 'notices', table.concat(recent, ' '))
local seq, f = emit(s, h, ARGV[5], ARGV[6], maxn, maxb)
keep_ttl(s, h)
deliver(s, sid, seq, {f}, maxn)
return 1
