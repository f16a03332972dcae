-- touch: a node adds what its connections did to their sessions' activity (ADMIN-3):
-- frames written and the time of the last frame read or written. ARGV: sid sent
-- active, for each session. A session that ended is left alone.
for i = 1, #ARGV, 3 do
  local s = keys_of(ARGV[i])
  if redis.call('EXISTS', s) == 1 then
    local n = tonumber(ARGV[i + 1])
    if n > 0 then redis.call('HINCRBY', s, 'sent', n) end
    local active = tonumber(ARGV[i + 2])
    if active > tonumber(redis.call('HGET', s, 'active') or '0') then redis.call('HSET', s, 'active', active) end
  end
end
return 1
