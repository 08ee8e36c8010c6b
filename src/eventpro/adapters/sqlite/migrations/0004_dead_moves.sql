-- Dead letters made and redriven in each event's line, a count that only grows. The line's
-- mark (`line_mark`) counted the requests ready to lease instead, which a redrive put back
-- as it was before the dead letter: a stream that had read the mark before the dead letter
-- and the purchase after it took the redrive for no change.
ALTER TABLE lines ADD COLUMN dead_moves INTEGER NOT NULL DEFAULT 0;
