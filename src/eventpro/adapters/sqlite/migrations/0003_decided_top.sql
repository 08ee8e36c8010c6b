-- The highest position decided in each event's line, so that `ahead` costs O(log n):
-- above it every position is undecided (counted from the line's counters); below it
-- only the few requests left behind (retried, dead-lettered) remain in `line`.
ALTER TABLE lines ADD COLUMN decided_top INTEGER NOT NULL DEFAULT 0;
UPDATE lines SET decided_top = coalesce((
    SELECT max(p.position) FROM purchases p
    WHERE p.event_id = lines.event_id AND p.status IN ('confirmed', 'rejected')
), 0)
