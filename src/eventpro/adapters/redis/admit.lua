-- Admit a group of requests in order, atomically (one script = one step of the server).
-- ARGV[1]: key prefix; ARGV[2]: JSON list of admissions. Empty strings mean "none".
-- A request that enters the line gets the next position of its event and is appended to
-- the event's stream, which the workers' consumer group `workers` reads.
-- Returns, per admission: {id, "new", position, status, reason} or, for an
-- Idempotency-Key seen before, {first id, "replayed" | "mismatch"}.
local P = ARGV[1]
local out = {}
for i, a in ipairs(cjson.decode(ARGV[2])) do
  local E = a.event_id
  local earlier = false
  if a.key ~= '' then earlier = redis.call('HGET', P .. ':key:' .. E, a.key) end
  if earlier then
    local first_hash = redis.call('HGET', P .. ':p:' .. earlier, 'hash')
    out[i] = {earlier, first_hash == a.hash and 'replayed' or 'mismatch'}
  else
    local reason = a.rejected_for
    if reason == '' then
      if redis.call('SISMEMBER', P .. ':soldout:' .. E, a.section) == 1 then
        reason = 'sold_out'
      else
        local held = tonumber(redis.call('HGET', P .. ':held:' .. E, a.buyer_id) or '0')
        if held + a.quantity > a.limit then
          reason = 'limit_exceeded'
        else
          redis.call('HINCRBY', P .. ':held:' .. E, a.buyer_id, a.quantity)
        end
      end
    end
    local seq = redis.call('INCR', P .. ':seq')
    local position, status, entry = '', 'rejected', ''
    if reason == '' then
      position = redis.call('INCR', P .. ':next:' .. E)
      status = 'queued'
      local stream = P .. ':stream:' .. E
      if redis.call('EXISTS', stream) == 0 then
        redis.call('XGROUP', 'CREATE', stream, 'workers', '0', 'MKSTREAM')
      end
      entry = redis.call('XADD', stream, '*', 'id', a.id, 'position', position, 'packed',
        a.packed)
      redis.call('ZADD', P .. ':line:' .. E, position, a.id)
      redis.call('SADD', P .. ':active', E)
    end
    redis.call('HSET', P .. ':p:' .. a.id,
      'event_id', E, 'buyer_id', a.buyer_id, 'section', a.section, 'seats', a.seats,
      'quantity', a.quantity, 'amount', a.amount, 'position', position, 'status', status,
      'reason', reason, 'order_id', '', 'key', a.key, 'hash', a.hash,
      'created_at', a.created_at, 'seq', seq, 'attempts', 0, 'lease', '', 'entry', entry,
      'last_error', '', 'failed_at', '', 'dlq_entry', '')
    redis.call('ZADD', P .. ':log:' .. E, seq, a.id)
    if a.key ~= '' then redis.call('HSET', P .. ':key:' .. E, a.key, a.id) end
    out[i] = {a.id, 'new', tostring(position), status, reason}
  end
end
return out
