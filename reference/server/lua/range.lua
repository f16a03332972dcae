-- range: up to n kept frames from seq from, for a connection that fell behind its
-- session's frames. KEYS: s h. ARGV: from n. Returns {oldest, seq, frames...}; the
-- frames start at max(from, oldest); {-1, -1} when the session is gone.
local s, h = KEYS[1], KEYS[2]
local from, n = tonumber(ARGV[1]), tonumber(ARGV[2])
if redis.call('EXISTS', s) == 0 then return {-1, -1} end -- the session is lost
local seq = tonumber(redis.call('HGET', s, 'seq') or '0')
local oldest = seq - redis.call('LLEN', h) + 1
local out = {oldest, seq}
local i = math.max(from, oldest) - oldest
for _, fr in ipairs(redis.call('LRANGE', h, i, i + n - 1)) do out[#out + 1] = fr end
return out
