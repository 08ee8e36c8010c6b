-- A confirmed decision is its order: `decisions` gives way to `rejections`, so a batch
-- that sells writes one row per purchase instead of two.
--
-- The batch comes as parallel arrays (one element per purchase; the seats as one JSON
-- array of label arrays) instead of one JSON object per purchase read again by every
-- statement. The answer has a row for each purchase not confirmed as sent (with the
-- order id it was given, no seats, at `decided_at`): one rejected, one decided before
-- (its stored decision), one in a reserved section (its seats); then a row with status
-- 'emptied' naming each section the batch left empty. A full batch of a sale that
-- still has stock answers no purchase row at all. It is one statement, so the caller
-- may run it as its own transaction (autocommit): one round trip per batch.
CREATE TABLE rejections (
    purchase_id text PRIMARY KEY,
    reason text NOT NULL,
    decided_at timestamptz NOT NULL
);
INSERT INTO rejections (purchase_id, reason, decided_at)
SELECT purchase_id, reason, decided_at FROM decisions WHERE status = 'rejected';
DROP FUNCTION eventpro_decide(jsonb, timestamptz);
DROP TABLE decisions;
-- An order is found by its purchase (deciding), its id (GET) or its event's allocation
-- order (listing): `seq` needs no index of its own, one fewer per order written.
ALTER TABLE orders DROP CONSTRAINT orders_pkey, DROP CONSTRAINT orders_purchase_id_key,
    ADD PRIMARY KEY (purchase_id);

-- Lock order: the batch's section rows first (FOR UPDATE, in (event, name) order, the
-- rule of docs/atomicity.md), then seats in label order. Under the section locks the
-- stock counted down in variables is exact; each section is still written with a
-- conditional UPDATE (remaining >= what was taken) that raises if it ever disagrees.
--
-- Fast path, in a subtransaction: every section general admission with stock for the
-- whole batch, none of the purchases decided before. One conditional UPDATE per
-- section and one INSERT of the orders; a purchase confirmed before makes the INSERT
-- (ON CONFLICT DO NOTHING) come up short, and one rejected before is found in
-- `rejections`: then the subtransaction is undone and the batch is decided one by one.
CREATE FUNCTION eventpro_decide(
    ids text[], events text[], buyers text[], names text[], quantities integer[],
    amounts bigint[], order_ids text[], seat_lists jsonb, decided_at timestamptz)
RETURNS TABLE (purchase_id text, status text, reason text, order_id text, seats text[],
               created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n integer := coalesce(cardinality(ids), 0);
    keys text[];          -- event_id || E'\x1f' || section, one per locked section
    k_event text[];
    k_name text[];
    stock integer[];      -- what remains of each, counted down here
    taken integer[];      -- what this batch took of each
    reserved boolean[];
    i integer;
    k integer;
    wanted text[];
    got integer;
    sold text[];
    done boolean := false;
    why text;
    known_orders text[];
    known_rejections text[];
    confirmed integer[] := '{}';  -- indexes of the purchases confirmed one by one
    o_seats jsonb := '[]';        -- their seats, one JSON array each
    rejected integer[] := '{}';
    r_reason text[] := '{}';
BEGIN
    SELECT coalesce(array_agg(s.event_id || E'\x1f' || s.name ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.event_id ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.name ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.remaining ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.reserved ORDER BY s.event_id, s.name), '{}')
    INTO keys, k_event, k_name, stock, reserved
    FROM (SELECT s.* FROM sections s
          WHERE (s.event_id, s.name) IN (SELECT * FROM unnest(events, names))
          ORDER BY s.event_id, s.name FOR UPDATE) s;
    taken := array_fill(0, ARRAY[cardinality(keys)]);

    IF n > 0 AND NOT (true = ANY (reserved)) THEN
        BEGIN
            UPDATE sections s SET remaining = s.remaining - w.total
            FROM (SELECT u.e, u.s, sum(u.q) AS total
                  FROM unnest(events, names, quantities) AS u(e, s, q) GROUP BY 1, 2) w
            WHERE s.event_id = w.e AND s.name = w.s AND s.remaining >= w.total;
            GET DIAGNOSTICS got := ROW_COUNT;
            IF got = cardinality(keys)
               AND got = (SELECT count(*) FROM (SELECT DISTINCT * FROM unnest(events, names)) d)
               AND NOT EXISTS (SELECT 1 FROM rejections r WHERE r.purchase_id = ANY (ids)) THEN
                INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats,
                                    quantity, amount_cents, created_at)
                SELECT u.o, u.e, u.b, u.p, u.s, '{}', u.q, u.a, decided_at
                FROM unnest(order_ids, events, buyers, ids, names, quantities, amounts)
                     WITH ORDINALITY AS u(o, e, b, p, s, q, a, nr)
                ORDER BY u.nr  -- orders.seq follows the allocation order
                ON CONFLICT (purchase_id) DO NOTHING;
                GET DIAGNOSTICS got := ROW_COUNT;
                done := got = n;
            END IF;
            IF NOT done THEN
                RAISE EXCEPTION USING ERRCODE = 'EP001';  -- undo, decide one by one
            END IF;
        EXCEPTION WHEN SQLSTATE 'EP001' THEN
            NULL;
        END;
    END IF;

    IF NOT done THEN
        SELECT coalesce(array_agg(o.purchase_id), '{}') INTO known_orders
        FROM orders o WHERE o.purchase_id = ANY (ids);
        SELECT coalesce(array_agg(r.purchase_id), '{}') INTO known_rejections
        FROM rejections r WHERE r.purchase_id = ANY (ids);

        FOR i IN 1 .. n LOOP
            IF ids[i] = ANY (known_orders) THEN
                RETURN QUERY SELECT o.purchase_id, 'confirmed'::text, NULL::text, o.id, o.seats,
                                    o.created_at
                             FROM orders o WHERE o.purchase_id = ids[i];
                CONTINUE;
            ELSIF ids[i] = ANY (known_rejections) THEN
                RETURN QUERY SELECT r.purchase_id, 'rejected'::text, r.reason, NULL::text,
                                    NULL::text[], NULL::timestamptz
                             FROM rejections r WHERE r.purchase_id = ids[i];
                CONTINUE;
            END IF;
            k := array_position(keys, events[i] || E'\x1f' || names[i]);
            wanted := ARRAY(SELECT jsonb_array_elements_text(seat_lists->(i - 1)));
            sold := '{}';
            IF k IS NULL OR stock[k] < quantities[i] THEN
                got := 0;
            ELSIF NOT reserved[k] THEN
                got := quantities[i];
            ELSIF cardinality(wanted) > 0 THEN  -- these seats or none: lock them in label order
                PERFORM 1 FROM seats t WHERE t.event_id = events[i] AND t.label = ANY (wanted)
                ORDER BY t.label FOR UPDATE;
                UPDATE seats t SET order_id = order_ids[i]
                WHERE t.event_id = events[i] AND t.label = ANY (wanted) AND t.order_id IS NULL
                  AND (SELECT count(*) FROM seats f WHERE f.event_id = events[i]
                       AND f.label = ANY (wanted) AND f.order_id IS NULL) = cardinality(wanted);
                GET DIAGNOSTICS got := ROW_COUNT;
            ELSE  -- any free seats of the section, in seat order
                UPDATE seats t SET order_id = order_ids[i]
                WHERE t.event_id = events[i] AND t.label IN (
                    SELECT f.label FROM seats f
                    WHERE f.event_id = events[i] AND f.section = names[i] AND f.order_id IS NULL
                    ORDER BY f.idx LIMIT quantities[i] FOR UPDATE);
                GET DIAGNOSTICS got := ROW_COUNT;
                IF got <> quantities[i] THEN
                    RAISE EXCEPTION 'section %: seats and remaining disagree', names[i];
                END IF;
            END IF;
            IF got = 0 THEN
                why := CASE WHEN cardinality(wanted) > 0 THEN 'seat_taken' ELSE 'sold_out' END;
                rejected := rejected || i;
                r_reason := r_reason || why;
                RETURN QUERY SELECT ids[i], 'rejected'::text, why, NULL::text, NULL::text[],
                                    NULL::timestamptz;
                CONTINUE;
            END IF;
            stock[k] := stock[k] - quantities[i];
            taken[k] := taken[k] + quantities[i];
            IF reserved[k] THEN
                SELECT array_agg(t.label ORDER BY t.idx) INTO sold FROM seats t
                WHERE t.event_id = events[i] AND t.order_id = order_ids[i];
                RETURN QUERY SELECT ids[i], 'confirmed'::text, NULL::text, order_ids[i], sold,
                                    decided_at;
            END IF;
            confirmed := confirmed || i;
            o_seats := o_seats || jsonb_build_array(to_jsonb(sold));
        END LOOP;

        FOR k IN 1 .. cardinality(keys) LOOP
            CONTINUE WHEN taken[k] = 0;
            UPDATE sections s SET remaining = s.remaining - taken[k]
            WHERE s.event_id = k_event[k] AND s.name = k_name[k] AND s.remaining >= taken[k];
            IF NOT FOUND THEN
                RAISE EXCEPTION 'section %: stock changed under its lock', keys[k];
            END IF;
        END LOOP;
        INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats, quantity,
                            amount_cents, created_at)
        SELECT order_ids[c.i], events[c.i], buyers[c.i], ids[c.i], names[c.i],
               ARRAY(SELECT jsonb_array_elements_text(o_seats->(c.nr::integer - 1))),
               quantities[c.i], amounts[c.i], decided_at
        FROM unnest(confirmed) WITH ORDINALITY AS c(i, nr)
        ORDER BY c.nr;  -- orders.seq follows the allocation order
        INSERT INTO rejections (purchase_id, reason, decided_at)
        SELECT ids[r.i], r.reason, decided_at FROM unnest(rejected, r_reason) AS r(i, reason);
    END IF;

    -- the sections this batch left empty, so that admission can refuse at once
    RETURN QUERY SELECT s.name, 'emptied'::text, NULL::text, NULL::text, NULL::text[],
                        NULL::timestamptz
                 FROM sections s
                 WHERE (s.event_id, s.name) IN (SELECT * FROM unnest(k_event, k_name))
                   AND s.remaining = 0;
END;
$$;
