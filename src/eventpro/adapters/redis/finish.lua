-- Complete (decisions) or fail (an error) leased requests, then end the event lease once
-- none of its requests is left. Each request changes at most once: it must still be in line.
-- ARGV: prefix, event id, JSON list of {id, status, reason, order_id, dead,
--       error, failed_at}; status "failed" means a failed delivery (dead: "1" to dead-letter).
local P, E = ARGV[1], ARGV[2]
local line, dead_line = P .. ':line:' .. E, P .. ':deadline:' .. E
local current = redis.call('HGET', P .. ':lease:' .. E, 'id')
local changed = {}
for i, d in ipairs(cjson.decode(ARGV[3])) do
  local key = P .. ':p:' .. d.id
  changed[i] = 0
  local position = redis.call('ZSCORE', line, d.id)
  if position then
    -- Count down the event's current lease (a late worker may finish a newer lease's work).
    if redis.call('HGET', key, 'lease') == current then
      redis.call('HINCRBY', P .. ':lease:' .. E, 'left', -1)
    end
    redis.call('HSET', key, 'lease', '')
    if d.status ~= 'failed' then
      redis.call('ZREM', line, d.id)
      redis.call('HSET', key, 'status', d.status, 'reason', d.reason, 'order_id', d.order_id)
      if d.status == 'rejected' then
        local purchase = redis.call('HMGET', key, 'buyer_id', 'quantity')
        redis.call('HINCRBY', P .. ':held:' .. E, purchase[1], -tonumber(purchase[2]))
      end
      changed[i] = 1
    else
      redis.call('HSET', key, 'last_error', d.error)
      if d.dead == '1' then
        redis.call('ZREM', line, d.id)
        redis.call('ZADD', dead_line, position, d.id)
        redis.call('ZADD', P .. ':dead', redis.call('HGET', key, 'seq'), d.id)
        redis.call('HSET', key, 'status', 'failed', 'failed_at', d.failed_at)
        changed[i] = 1
      end
    end
  elseif d.status ~= 'failed' and redis.call('ZSCORE', dead_line, d.id) then
    -- decided while dead-lettered (a late worker): complete it all the same
    redis.call('ZREM', dead_line, d.id)
    redis.call('ZREM', P .. ':dead', d.id)
    redis.call('HSET', key, 'status', d.status, 'reason', d.reason, 'order_id', d.order_id)
    changed[i] = 1
  end
end
local left = tonumber(redis.call('HGET', P .. ':lease:' .. E, 'left') or '0')
if left <= 0 then
  redis.call('HSET', P .. ':lease:' .. E, 'until', 0)
end
return changed
