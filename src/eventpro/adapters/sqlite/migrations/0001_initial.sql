-- The inventory store: events, sections, seats, orders and decisions.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    venue TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    sale_opens_at TEXT NOT NULL,
    per_buyer_limit INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sections (
    event_id TEXT NOT NULL,
    name TEXT NOT NULL,
    idx INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    capacity INTEGER NOT NULL,
    -- The CHECK is a second guard: a conditional write that went wrong still cannot oversell.
    remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= capacity),
    reserved INTEGER NOT NULL,
    PRIMARY KEY (event_id, name)
) WITHOUT ROWID;

CREATE TABLE seats (
    event_id TEXT NOT NULL,
    label TEXT NOT NULL,
    section TEXT NOT NULL,
    idx INTEGER NOT NULL,
    order_id TEXT,
    PRIMARY KEY (event_id, label)
) WITHOUT ROWID;
CREATE INDEX seats_by_section ON seats (event_id, section, idx);

CREATE TABLE orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    purchase_id TEXT NOT NULL UNIQUE,
    section TEXT NOT NULL,
    seats TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX orders_by_event ON orders (event_id, seq);

CREATE TABLE decisions (
    purchase_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    order_id TEXT,
    decided_at TEXT NOT NULL
) WITHOUT ROWID;

-- The purchase queue: the admission log, the line of undecided requests, and its counters.
CREATE TABLE purchases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    section TEXT NOT NULL,
    seats TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    position INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    order_id TEXT,
    idempotency_key TEXT,
    request_hash TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX purchases_by_position ON purchases (event_id, position)
    WHERE position IS NOT NULL;
CREATE UNIQUE INDEX purchases_by_key ON purchases (event_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX purchases_by_event ON purchases (event_id, seq);

-- One row per event: its position counter, undecided counts and the event-level lease
-- that keeps one batch of an event in flight at a time (decisions in position order).
CREATE TABLE lines (
    event_id TEXT PRIMARY KEY,
    next_position INTEGER NOT NULL,
    undecided INTEGER NOT NULL DEFAULT 0,
    ready INTEGER NOT NULL DEFAULT 0,
    lease_id TEXT,
    leased_until REAL NOT NULL DEFAULT 0,
    last_leased REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE line (
    event_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    purchase_id TEXT NOT NULL UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_id TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    failed_at TEXT,
    PRIMARY KEY (event_id, position)
) WITHOUT ROWID;

CREATE TABLE holdings (
    event_id TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    held INTEGER NOT NULL CHECK (held >= 0),
    PRIMARY KEY (event_id, buyer_id)
) WITHOUT ROWID;

CREATE TABLE sold_out (
    event_id TEXT NOT NULL,
    section TEXT NOT NULL,
    PRIMARY KEY (event_id, section)
) WITHOUT ROWID;
