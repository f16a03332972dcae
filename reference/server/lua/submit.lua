-- submit: a query arrives (STREAM-7 to STREAM-11, QID-3, QID-4). A query_id the
-- session knows is not run again: one queued or running is ignored, a finished one's
-- terminal frame is returned for a replay. Else a query over its client's rate
-- (limited) or of another session (mismatch) is refused, and one that finds the queue
-- full; an accepted one is queued, and when none runs, this node runs the first
-- queued.
-- KEYS: s q f. ARGV: sid node qid size request depth max_bytes limited mismatch.
-- Returns {'ended'} {'known'} {'replay', frame} {'dropped'} {'limited'} {'mismatch'}
-- {'busy_depth', n} {'busy_bytes', n, bytes} {'queued', qid} {'run', qid, entry}.
local s, q, f = KEYS[1], KEYS[2], KEYS[3]
local sid, node, qid, size, request = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local depth, max_bytes = tonumber(ARGV[6]), tonumber(ARGV[7])
if redis.call('EXISTS', s) == 0 then return {'ended'} end
if qid ~= '' then
  if redis.call('HGET', s, 'running') == qid or queued(q, qid) then return {'known'} end
  local t = redis.call('HGET', f, qid)
  if t then
    if t == '' then return {'dropped'} end
    return {'replay', t}
  end
end
if ARGV[8] == '1' then return {'limited'} end
if ARGV[9] == '1' then return {'mismatch'} end
local waiting = redis.call('LLEN', q)
local running = redis.call('HGET', s, 'running')
if waiting >= depth and running then return {'busy_depth', waiting} end
local qbytes = tonumber(redis.call('HGET', s, 'qbytes'))
if waiting > 0 and qbytes + size > max_bytes then return {'busy_bytes', waiting, qbytes} end
if qid == '' then qid = 'auto-' .. redis.call('HINCRBY', s, 'qn', 1) end
redis.call('RPUSH', q, qid .. '\n' .. size .. '\n' .. request)
redis.call('HINCRBY', s, 'qbytes', size)
keep_ttl(s, q)
if running then return {'queued', qid} end
return {'run', qid, claim(s, q, sid, node)}
