-- notice: the notice nid for session sid (NOTICE-1, NOTICE-3), spliced around its seq
-- (SEQ-1), kept and delivered like any session-scoped frame; buffered while the
-- session has no connection. A broadcast retried after a lost reply finds its notice
-- stored already and stores it not twice.
-- KEYS: s h. ARGV: sid nid maxn maxb pre suf.
-- Returns 1 when the session got it (now or before), 0 when it does not exist.
local s, h = KEYS[1], KEYS[2]
local sid, nid, maxn, maxb = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', s) == 0 then return 0 end
if redis.call('HGET', s, 'notice') == nid then return 1 end
redis.call('HSET', s, 'notice', nid)
local seq, f = emit(s, h, ARGV[5], ARGV[6], maxn, maxb)
keep_ttl(s, h)
deliver(s, sid, seq, {f}, maxn)
return 1
