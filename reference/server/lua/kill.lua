-- kill: the operator ends session sid through the admin API (ADMIN-4): the node of its
-- connection, if it has one, is told to close it with 4003, then it ends as with
-- disconnect (DISC-3). A node that finds the session gone before the message comes
-- (its pump, a query) learns from the key agentws:ended:<sid>, which names the
-- connection for a minute, that it closes with 4003 too. ARGV: sid. Returns 1, or 0
-- when it does not exist.
local sid = ARGV[1]
local s = keys_of(sid)
if redis.call('EXISTS', s) == 0 then return 0 end
local m = redis.call('HMGET', s, 'owner', 'token')
if m[1] and m[2] then
  redis.call('SET', P .. 'ended:' .. sid, m[2], 'PX', 60000)
  redis.call('PUBLISH', node_chan(m[1]), 'K ' .. sid .. ' ' .. m[2])
end
end_session(sid)
return 1
