-- info: what the admin API shows of sessions (ADMIN-3). ARGV: sid...
-- Returns, for each session that exists, sid, user, owner ('' without a connection),
-- since and active (ms), frames sent and buffered frames, one after the other.
local out = {}
for _, sid in ipairs(ARGV) do
  local s, h = keys_of(sid)
  local m = redis.call('HMGET', s, 'user', 'owner', 'since', 'active', 'sent', 'seq', 'delivered')
  if m[6] then
    local buffered = 0
    if not m[2] then
      buffered = math.max(0, math.min(redis.call('LLEN', h), tonumber(m[6]) - tonumber(m[7] or '0')))
    end
    local since = m[3] or '0'
    local active = m[4] or since
    table.insert(out, sid)
    table.insert(out, m[1] or '')
    table.insert(out, m[2] or '')
    table.insert(out, since)
    table.insert(out, active)
    table.insert(out, m[5] or '0')
    table.insert(out, tostring(buffered))
  end
end
return out
