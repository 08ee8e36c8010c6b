-- Put dead letters back in line at their original positions, attempts reset: they leave
-- the dead-letter stream and wait in `P:redriven:E`, which the next lease takes first.
-- ARGV: prefix, event id ('' for none), JSON list of purchase ids.
local P, E = ARGV[1], ARGV[2]
local ids = cjson.decode(ARGV[3])
if E ~= '' then
  for _, id in ipairs(redis.call('ZRANGE', P .. ':deadline:' .. E, 0, -1)) do
    table.insert(ids, id)
  end
end
local count = 0
for _, id in ipairs(ids) do
  local key = P .. ':p:' .. id
  local event_id = redis.call('HGET', key, 'event_id')
  if event_id then
    local position = redis.call('ZSCORE', P .. ':deadline:' .. event_id, id)
    if position then
      redis.call('ZREM', P .. ':deadline:' .. event_id, id)
      redis.call('XDEL', P .. ':dlq', redis.call('HGET', key, 'dlq_entry'))
      redis.call('ZADD', P .. ':redriven:' .. event_id, position, id)
      redis.call('ZADD', P .. ':line:' .. event_id, position, id)
      redis.call('INCR', P .. ':deadmoves:' .. event_id)
      redis.call('SADD', P .. ':active', event_id)
      redis.call('HSET', key, 'status', 'queued', 'attempts', 0, 'last_error', '',
        'failed_at', '', 'lease', '', 'dlq_entry', '', 'entry', '')
      count = count + 1
    end
  end
end
return count
