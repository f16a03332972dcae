-- backlog: what connection token gets right after connected. With resume (k >= 0):
-- the kept frames after k, or from the first when k is of another history (SEQ-3 to
-- SEQ-5). Without: the frames after start (the last the previous connection was given;
-- -1: the one recorded at its detach), and the evictions of frames after it that no
-- connected announced yet (BUF-4, BUF-8).
-- KEYS: s h. ARGV: token k epoch start.
-- Returns {'ok', seq, from, resumed, missed, evicted, frames...} or {'replaced'}.
local s, h = KEYS[1], KEYS[2]
local token, k, repoch, start = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local m = redis.call('HMGET', s, 'token', 'seq', 'delivered', 'announced', 'epoch')
if m[1] ~= token then return {'replaced'} end
local seq = tonumber(m[2])
local oldest = seq - redis.call('LLEN', h) + 1
local resumed, missed, evicted, from = -1, 0, 0, 0
if k >= 0 then
  if (repoch ~= '' and repoch ~= m[5]) or k > seq then
    resumed, from = 0, oldest
  else
    from = math.max(k + 1, oldest)
    if k + 1 >= oldest then resumed = 1 else resumed, missed = 0, oldest - (k + 1) end
  end
else
  if start < 0 then start = tonumber(m[3]) end
  local base = math.max(start, tonumber(m[4]))
  evicted = math.max(0, oldest - 1 - base)
  if evicted > 0 then redis.call('HSET', s, 'announced', oldest - 1) end
  from = math.max(start + 1, oldest)
end
redis.call('HSET', s, 'acked', from - 1) -- what the connection has, for the pace of the stream
local out = {'ok', seq, from, resumed, missed, evicted}
if from <= seq then
  for _, fr in ipairs(redis.call('LRANGE', h, from - oldest, -1)) do out[#out + 1] = fr end
end
return out
