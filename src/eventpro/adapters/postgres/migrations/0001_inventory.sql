-- The inventory store: events, sections, seats, orders and decisions.
CREATE TABLE events (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    name text NOT NULL,
    venue text NOT NULL,
    starts_at timestamptz NOT NULL,
    sale_opens_at timestamptz NOT NULL,
    per_buyer_limit integer NOT NULL,
    created_at timestamptz NOT NULL,
    paused boolean NOT NULL DEFAULT false
);

CREATE TABLE sections (
    event_id text NOT NULL REFERENCES events (id),
    name text NOT NULL,
    idx integer NOT NULL,
    price_cents bigint NOT NULL,
    capacity integer NOT NULL,
    -- A second guard: a conditional write that went wrong still cannot oversell.
    remaining integer NOT NULL CHECK (remaining >= 0 AND remaining <= capacity),
    reserved boolean NOT NULL,
    PRIMARY KEY (event_id, name)
);

CREATE TABLE seats (
    event_id text NOT NULL,
    label text NOT NULL,
    section text NOT NULL,
    idx integer NOT NULL,
    order_id text,
    PRIMARY KEY (event_id, label)
);
CREATE INDEX seats_free ON seats (event_id, section, idx) WHERE order_id IS NULL;
CREATE INDEX seats_by_order ON seats (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE orders (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    event_id text NOT NULL,
    buyer_id text NOT NULL,
    purchase_id text NOT NULL UNIQUE,
    section text NOT NULL,
    seats text[] NOT NULL,
    quantity integer NOT NULL,
    amount_cents bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX orders_by_event ON orders (event_id, seq);

CREATE TABLE decisions (
    purchase_id text PRIMARY KEY,
    status text NOT NULL,
    reason text,
    order_id text,
    decided_at timestamptz NOT NULL
);
