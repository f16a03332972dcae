-- sent: add delta frames to the cluster's count of frames sent (HEALTH-3), and return
-- it. A count below floor, the highest this node has read, was lost (Redis restarted
-- empty): it is set back to floor first, so that it never decreases.
-- KEYS: the count. ARGV: delta floor.
local delta, floor = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('INCRBY', KEYS[1], delta)
if v < floor + delta then
  v = floor + delta
  redis.call('SET', KEYS[1], v)
end
return v
