-- Complete (decisions) or fail (an error) leased requests, then end the event lease once
-- its holder has accounted for every request it leased. Each request changes at most
-- once: it must still be in line (`P:line:E`, one ZMSCORE for the whole batch).
-- A decided request is acknowledged and trimmed from the event's stream; a dead one is
-- moved to the dead-letter stream `P:dlq`; a failed one that may be retried stays pending
-- in the consumer group, where the next lease of the event reclaims it.
-- Publishes the event id on `P:decided`, which wakes every API's streams.
-- ARGV: prefix, event id, lease id, and a JSON list of requests, each a list of
--       [id, entry, buyer, quantity, status, reason, order_id] or, status "failed",
--       [id, entry, attempts, failed_at, "failed", error, dead ("1" to dead-letter)].
--       `entry`, `buyer` and `quantity` are what the lease delivered (its stream entry
--       id, '' for a redriven request).
local P, E, lease = ARGV[1], ARGV[2], ARGV[3]
local line, dead_line = P .. ':line:' .. E, P .. ':deadline:' .. E
local stream, redriven = P .. ':stream:' .. E, P .. ':redriven:' .. E
local lease_key = P .. ':lease:' .. E
local items = {}
for i, v in ipairs(cjson.decode(ARGV[4])) do
  local d = {id = v[1], entry = v[2], status = v[5]}
  if d.status == 'failed' then
    d.attempts, d.failed_at, d.error, d.dead = v[3], v[4], v[6], v[7]
  else
    d.buyer, d.quantity, d.reason, d.order_id = v[3], v[4], v[6], v[7]
  end
  items[i] = d
end
local done_entries, done_ids = {}, {}

local function in_chunks(command, key, extra, list)
  local out = {}
  for start = 1, #list, 1000 do
    local chunk = {unpack(list, start, math.min(start + 999, #list))}
    local got
    if extra then got = redis.call(command, key, extra, unpack(chunk))
    else got = redis.call(command, key, unpack(chunk)) end
    if type(got) == 'table' then
      for _, value in ipairs(got) do table.insert(out, value) end
    end
  end
  return out
end

-- The request leaves the line: its stream entry (or its redriven mark) goes with it.
local function leave(d)
  table.insert(done_ids, d.id)
  if d.entry ~= '' then table.insert(done_entries, d.entry) end
end
local function decide(key, d)
  redis.call('HSET', key, 'status', d.status, 'reason', d.reason, 'order_id', d.order_id)
  if d.status == 'rejected' then
    redis.call('HINCRBY', P .. ':held:' .. E, d.buyer, 0 - tonumber(d.quantity))
  end
end

local ids = {}
for i, d in ipairs(items) do ids[i] = d.id end
local in_line = in_chunks('ZMSCORE', line, nil, ids)
local changed = {}
for i, d in ipairs(items) do
  local key = P .. ':p:' .. d.id
  changed[i] = 0
  if in_line[i] then
    if d.status ~= 'failed' then
      leave(d)
      decide(key, d)
      changed[i] = 1
    else
      redis.call('HSET', key, 'last_error', d.error, 'attempts', d.attempts)
      if d.dead == '1' then
        leave(d)
        redis.call('ZADD', dead_line, in_line[i], d.id)
        local letter = redis.call('XADD', P .. ':dlq', '*', 'id', d.id, 'event_id', E)
        redis.call('HSET', key, 'status', 'failed', 'failed_at', d.failed_at,
          'dlq_entry', letter)
        changed[i] = 1
      end
    end
  elseif d.status ~= 'failed' and redis.call('ZSCORE', dead_line, d.id) then
    -- decided while dead-lettered (a late worker): complete it all the same
    redis.call('ZREM', dead_line, d.id)
    redis.call('XDEL', P .. ':dlq', redis.call('HGET', key, 'dlq_entry'))
    redis.call('HSET', key, 'dlq_entry', '')
    decide(key, d)
    changed[i] = 1
  end
end
in_chunks('ZREM', line, nil, done_ids)
if redis.call('EXISTS', redriven) == 1 then in_chunks('ZREM', redriven, nil, done_ids) end
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
-- Only the current lease's holder counts down its lease: a late worker whose lease
-- expired may finish requests of the newer lease, which its holder still accounts for.
if redis.call('HGET', lease_key, 'id') == lease then
  local left = redis.call('HINCRBY', lease_key, 'left', 0 - #items)
  if left <= 0 then
    redis.call('HSET', lease_key, 'until', 0)
  end
end
redis.call('PUBLISH', P .. ':decided', E)
return changed
