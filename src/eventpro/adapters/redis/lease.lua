-- Lease up to ARGV[4] requests of one event with no batch in flight, lowest positions first.
-- ARGV: prefix, now (s), visibility timeout (s), max items, lease id.
local P, now, vt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max, lease = tonumber(ARGV[4]), ARGV[5]
local best, best_last = false, 0
for _, E in ipairs(redis.call('SMEMBERS', P .. ':active')) do
  if redis.call('ZCARD', P .. ':line:' .. E) == 0 then
    redis.call('SREM', P .. ':active', E)
  else
    local state = redis.call('HMGET', P .. ':lease:' .. E, 'until', 'last')
    local busy_until, last = tonumber(state[1] or '0'), tonumber(state[2] or '0')
    if busy_until <= now and (not best or last < best_last) then
      best, best_last = E, last
    end
  end
end
if not best then return {} end
local ids = redis.call('ZRANGE', P .. ':line:' .. best, 0, max - 1)
redis.call('HSET', P .. ':lease:' .. best, 'id', lease, 'until', now + vt,
  'last', redis.call('INCR', P .. ':leases'), 'left', #ids)
local attempts = {}
for i, id in ipairs(ids) do
  attempts[i] = redis.call('HINCRBY', P .. ':p:' .. id, 'attempts', 1)
  redis.call('HSET', P .. ':p:' .. id, 'lease', lease)
end
return {best, ids, attempts}
