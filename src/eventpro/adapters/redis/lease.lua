-- Lease up to ARGV[4] requests of one event, lowest positions first.
-- ARGV: prefix, now (s), visibility timeout (s), max items, lease id, consumer name, and
--       for a continuing lease the lease to continue and its event ('' and '' otherwise).
-- A fresh lease takes an event with no batch in flight. Its batch is, in this order of
-- preference: redriven dead letters; entries of the event's stream still pending in the
-- consumer group (delivered to a lease that expired or failed, reclaimed with XAUTOCLAIM:
-- one batch per event is in flight, so any pending entry is stale); then new entries
-- (XREADGROUP). A continuing lease takes only new entries, and only while the lease it
-- continues is the event's, nothing is redriven, and the entries pending are that lease's
-- requests not completed yet (so no retried request waits below it).
-- Returned sorted by position, each with the fields its stream entry carries:
-- {event, {{id, attempts, position, packed, entry id}, ...}}.
-- Attempts of stream entries are the consumer group's delivery counts (1 for a new entry,
-- one more at each XAUTOCLAIM), so a lease writes nothing per entry; a redriven request's
-- attempts, reset by redrive, are counted in its hash.
local P, now, vt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max, lease, consumer = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local after, after_event = ARGV[7], ARGV[8]
local PACKED = {'event_id', 'buyer_id', 'section', 'seats', 'quantity', 'amount', 'key', 'hash',
  'created_at'}
local rows = {}  -- {id, attempts, position, packed, entry id}

local function take(entries, attempts)
  for _, entry in ipairs(entries) do
    local f = entry[2]  -- {'id', id, 'position', position, 'packed', packed}
    if #rows < max and f then
      table.insert(rows, {f[2], attempts[entry[1]] or 1, f[4], f[6], entry[1]})
    end
  end
end
local function read_new(stream)
  if #rows < max then
    local read = redis.call('XREADGROUP', 'GROUP', 'workers', consumer, 'COUNT', max - #rows,
      'STREAMS', stream, '>')
    if read then take(read[1][2], {}) end
  end
end
-- `left` counts down as the lease's holder completes or fails its requests (finish.lua);
-- `first` is its first stream entry, which a continuing lease checks.
local function hold(E, last)
  local first = ''
  for _, row in ipairs(rows) do
    if row[5] ~= '' then first = row[5]; break end
  end
  redis.call('HSET', P .. ':lease:' .. E, 'id', lease, 'until', now + vt, 'last', last,
    'left', #rows, 'first', first)
  return {E, rows}
end

if after ~= '' then
  local E = after_event
  local state = redis.call('HMGET', P .. ':lease:' .. E, 'id', 'first', 'last', 'left')
  if state[1] ~= after or redis.call('EXISTS', P .. ':redriven:' .. E) == 1 then return {} end
  local stream = P .. ':stream:' .. E
  -- what is pending must be exactly the lease's requests not accounted for yet
  local pending = redis.call('XPENDING', stream, 'workers')
  if pending[1] ~= tonumber(state[4]) or (pending[1] > 0 and pending[2] ~= state[2]) then
    return {}
  end
  read_new(stream)
  if #rows == 0 then return {} end
  return hold(E, state[3])
end

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
local stream = P .. ':stream:' .. best
for _, id in ipairs(redis.call('ZRANGE', P .. ':redriven:' .. best, 0, max - 1)) do
  local key = P .. ':p:' .. id
  local h = redis.call('HMGET', key, 'position', unpack(PACKED))
  local position = table.remove(h, 1)
  h[5], h[6] = tonumber(h[5]), tonumber(h[6])
  table.insert(rows, {id, redis.call('HINCRBY', key, 'attempts', 1), position, cjson.encode(h), ''})
end
local in_order = #rows == 0  -- stream entries alone come in position order already
if #rows < max and redis.call('EXISTS', stream) == 1 then
  local before = #rows
  local claimed = redis.call('XAUTOCLAIM', stream, 'workers', consumer, 0, '0-0', 'COUNT',
    max - #rows)[2]
  if #claimed > 0 then
    local counts = {}  -- delivery counts, XAUTOCLAIM's included: {entry id = attempts}
    for _, p in ipairs(redis.call('XPENDING', stream, 'workers', claimed[1][1],
        claimed[#claimed][1], #claimed)) do
      counts[p[1]] = p[4]
    end
    take(claimed, counts)
  end
  in_order = in_order and #rows == before
  -- consumers of earlier leases that hold nothing are forgotten, so the group stays small
  for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, 'workers')) do
    if c[2] ~= consumer and c[4] == 0 then
      redis.call('XGROUP', 'DELCONSUMER', stream, 'workers', c[2])
    end
  end
  read_new(stream)
end
if #rows == 0 then return {} end
if not in_order then
  table.sort(rows, function(x, y) return tonumber(x[3]) < tonumber(y[3]) end)
end
return hold(best, redis.call('INCR', P .. ':leases'))
