-- The last position of each event's current lease, so that its holder can lease the
-- requests that follow while it completes the batch (a continuing lease).
ALTER TABLE lines ADD COLUMN leased_through INTEGER NOT NULL DEFAULT 0;
