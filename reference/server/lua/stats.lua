-- stats: the cluster's figures of GET /ws/health (spec section 9.3): the frames
-- waiting in the offline buffers of the sessions without a connection, how many
-- sessions have some (HEALTH-5), and the connections of the nodes whose lease has not
-- lapsed (HEALTH-4). KEYS: Z, the nodes, the connections by node. ARGV: lapsed ms.
-- Returns {frames, sessions, connections}.
local frames, sessions, conns = 0, 0, 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now_ms(), '(' .. ONLINE)) do
  local s, h = keys_of(sid)
  local m = redis.call('HMGET', s, 'seq', 'delivered')
  if m[1] then
    local n = math.min(redis.call('LLEN', h), tonumber(m[1]) - tonumber(m[2]))
    if n > 0 then
      frames, sessions = frames + n, sessions + 1
    end
  end
end
local counts = redis.call('HGETALL', KEYS[3])
for i = 1, #counts, 2 do
  local seen = redis.call('ZSCORE', KEYS[2], counts[i])
  if seen and tonumber(seen) > tonumber(ARGV[1]) then conns = conns + tonumber(counts[i + 1]) end
end
return {frames, sessions, conns}
