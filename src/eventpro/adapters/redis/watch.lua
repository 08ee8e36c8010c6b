-- Purchases by id, each with `ahead` if it is undecided: a whole group of polls (or a
-- tick of the live streams) in one call, instead of a hash and two counts per purchase
-- parsed one by one by the client.
-- ARGV: prefix, then the purchase ids.
-- Returns, per id in order, 0 for an unknown id, or the values of the hash's fields in
-- the order of `WATCHED` (queue.py) followed by `ahead`: undecided requests of the event
-- at lower positions, in line or dead-lettered (two ZCOUNTs, O(log n)).
local P = ARGV[1]
local FIELDS = {'event_id', 'buyer_id', 'section', 'seats', 'quantity', 'amount', 'position',
  'status', 'reason', 'created_at', 'order_id', 'key', 'hash'}
local out = {}
for i = 2, #ARGV do
  local h = redis.call('HMGET', P .. ':p:' .. ARGV[i], unpack(FIELDS))
  if not h[1] then
    out[i - 1] = 0
  else
    local position, status = h[7], h[8]
    local ahead = 0
    if position ~= '' and (status == 'queued' or status == 'failed') then
      local below = '(' .. position
      ahead = redis.call('ZCOUNT', P .. ':line:' .. h[1], '-inf', below)
        + redis.call('ZCOUNT', P .. ':deadline:' .. h[1], '-inf', below)
    end
    h[#FIELDS + 1] = ahead
    out[i - 1] = h
  end
end
return out
