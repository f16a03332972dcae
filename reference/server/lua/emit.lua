-- emit: frames of the query qid that node runs (STREAM-1 to STREAM-5), each spliced
-- around its seq, kept and delivered; with qid empty, answers to a client frame (a
-- replayed end) that need no runner. A query that node no longer runs (its session
-- ended, a survivor ended it as orphaned, the client cancelled it) emits nothing.
-- KEYS: s h. ARGV: sid node qid maxn maxb pre1 suf1 pre2 suf2 ...
-- Returns {'ok', last_seq} or {'lost'} or {'cancelled'}.
local s, h = KEYS[1], KEYS[2]
local sid, node, qid, maxn, maxb = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
if qid ~= '' then
  local m = redis.call('HMGET', s, 'running', 'runner', 'cancel')
  if m[1] ~= qid or m[2] ~= node then return {'lost'} end
  if m[3] == qid then return {'cancelled'} end
elseif redis.call('EXISTS', s) == 0 then
  return {'lost'}
end
local first, seq, frames = nil, 0, {}
for i = 6, #ARGV, 2 do
  local fr
  seq, fr = emit(s, h, ARGV[i], ARGV[i + 1], maxn, maxb)
  first = first or seq
  frames[#frames + 1] = fr
end
keep_ttl(s, h)
deliver(s, sid, first, frames)
return {'ok', seq}
