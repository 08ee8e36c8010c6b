-- Complete (decisions) or fail (an error) leased requests, then end the event lease once
-- none of its requests is left. Each request changes at most once: it must still be in line.
-- A decided request is acknowledged and deleted from the event's stream; a dead one is
-- moved to the dead-letter stream `P:dlq`; a failed one that may be retried stays pending
-- in the consumer group, where the next lease of the event reclaims it.
-- ARGV: prefix, event id, JSON list of {id, status, reason, order_id, dead,
--       error, failed_at}; status "failed" means a failed delivery (dead: "1" to dead-letter).
local P, E = ARGV[1], ARGV[2]
local line, dead_line = P .. ':line:' .. E, P .. ':deadline:' .. E
local stream, redriven = P .. ':stream:' .. E, P .. ':redriven:' .. E
local lease_key = P .. ':lease:' .. E
local current = redis.call('HGET', lease_key, 'id')
local done_entries, done_ids, counted = {}, {}, 0

-- The request leaves the line: its stream entry (or its redriven mark) goes with it.
local function leave(d, entry)
  table.insert(done_ids, d.id)
  if entry ~= '' then table.insert(done_entries, entry) end
end
local function decide(key, d, buyer, quantity)
  redis.call('HSET', key, 'status', d.status, 'reason', d.reason, 'order_id', d.order_id)
  if d.status == 'rejected' then
    redis.call('HINCRBY', P .. ':held:' .. E, buyer, 0 - tonumber(quantity))
  end
end
local function in_chunks(command, key, extra, items)
  for start = 1, #items, 1000 do
    local chunk = {unpack(items, start, math.min(start + 999, #items))}
    if extra then redis.call(command, key, extra, unpack(chunk))
    else redis.call(command, key, unpack(chunk)) end
  end
end

local changed = {}
for i, d in ipairs(cjson.decode(ARGV[3])) do
  local key = P .. ':p:' .. d.id
  changed[i] = 0
  -- status 'queued' <=> in line; 'failed' <=> dead-lettered
  local state = redis.call('HMGET', key, 'status', 'lease', 'entry', 'position', 'buyer_id',
    'quantity')
  if state[1] == 'queued' then
    -- Count down the event's current lease (a late worker may finish a newer lease's work).
    if state[2] == current then counted = counted + 1 end
    if d.status ~= 'failed' then
      leave(d, state[3])
      decide(key, d, state[5], state[6])
      changed[i] = 1
    else
      redis.call('HSET', key, 'last_error', d.error)
      if d.dead == '1' then
        leave(d, state[3])
        redis.call('ZADD', dead_line, state[4], d.id)
        local letter = redis.call('XADD', P .. ':dlq', '*', 'id', d.id, 'event_id', E)
        redis.call('HSET', key, 'status', 'failed', 'failed_at', d.failed_at,
          'dlq_entry', letter)
        changed[i] = 1
      end
    end
  elseif d.status ~= 'failed' and state[1] == 'failed' then
    -- decided while dead-lettered (a late worker): complete it all the same
    redis.call('ZREM', dead_line, d.id)
    redis.call('XDEL', P .. ':dlq', redis.call('HGET', key, 'dlq_entry'))
    redis.call('HSET', key, 'dlq_entry', '')
    decide(key, d, state[5], state[6])
    changed[i] = 1
  end
end
in_chunks('ZREM', line, nil, done_ids)
in_chunks('ZREM', redriven, nil, done_ids)
in_chunks('XACK', stream, 'workers', done_entries)
if #done_entries > 0 then
  -- Forget the stream's decided head: entries before the oldest one still pending, or
  -- before the last one delivered when none is pending (one XTRIM, not an XDEL per entry).
  local pending = redis.call('XPENDING', stream, 'workers')
  local floor = pending[2]
  if not floor then
    local group = redis.call('XINFO', 'GROUPS', stream)[1]
    for k = 1, #group, 2 do
      if group[k] == 'last-delivered-id' then floor = group[k + 1] end
    end
  end
  redis.call('XTRIM', stream, 'MINID', floor)
end
local left = redis.call('HINCRBY', lease_key, 'left', 0 - counted)  -- (never -0)
if left <= 0 then
  redis.call('HSET', lease_key, 'until', 0)
end
return changed
