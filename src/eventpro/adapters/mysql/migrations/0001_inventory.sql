-- The inventory store on MySQL or MariaDB: events, sections, seats, orders, decisions.
-- Binary collation: names and labels compare exactly, as on every other backend.
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT AUTO_INCREMENT PRIMARY KEY,
    id VARCHAR(64) NOT NULL UNIQUE,
    name VARCHAR(200) NOT NULL,
    venue VARCHAR(200) NOT NULL,
    starts_at DATETIME(6) NOT NULL,
    sale_opens_at DATETIME(6) NOT NULL,
    per_buyer_limit INT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    paused BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sections (
    event_id VARCHAR(64) NOT NULL,
    name VARCHAR(100) NOT NULL,
    idx INT NOT NULL,
    price_cents BIGINT NOT NULL,
    capacity INT NOT NULL,
    remaining INT NOT NULL,
    reserved BOOLEAN NOT NULL,
    PRIMARY KEY (event_id, name),
    -- A second guard: a conditional write that went wrong still cannot oversell.
    CONSTRAINT sections_stock CHECK (remaining >= 0 AND remaining <= capacity)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS seats (
    event_id VARCHAR(64) NOT NULL,
    label VARCHAR(64) NOT NULL,
    section VARCHAR(100) NOT NULL,
    idx INT NOT NULL,
    order_id VARCHAR(64) NULL,
    PRIMARY KEY (event_id, label),
    KEY seats_in_order (event_id, section, idx),
    KEY seats_by_order (order_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS orders (
    seq BIGINT AUTO_INCREMENT PRIMARY KEY,
    id VARCHAR(64) NOT NULL UNIQUE,
    event_id VARCHAR(64) NOT NULL,
    buyer_id VARCHAR(64) NOT NULL,
    purchase_id VARCHAR(64) NOT NULL UNIQUE,
    section VARCHAR(100) NOT NULL,
    seats TEXT NOT NULL,  -- a JSON array of labels
    quantity INT NOT NULL,
    amount_cents BIGINT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    KEY orders_by_event (event_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS decisions (
    purchase_id VARCHAR(64) PRIMARY KEY,
    status VARCHAR(16) NOT NULL,
    reason VARCHAR(32) NULL,
    order_id VARCHAR(64) NULL,
    decided_at DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
