-- Decide a batch with one statement per table instead of five per purchase.
--
-- Fast path: when every purchase of the batch is new, in a general-admission section, and
-- each section has stock for all of them, the whole batch is confirmed set-wise: one
-- conditional UPDATE per section, one INSERT of the orders, one of the decisions.
--
-- The batch's sections are locked first (FOR UPDATE, in (event, name) order: the lock order
-- rule of docs/atomicity.md), so counting their stock down in variables is exact; each
-- section is then written once with a conditional UPDATE (remaining >= what was taken)
-- that raises if it ever disagrees. Orders and decisions are inserted in bulk. Reserved
-- sections still take their seat rows one purchase at a time, in label order.
-- A purchase decided before returns its stored decision and takes nothing.
CREATE OR REPLACE FUNCTION eventpro_decide(batch jsonb, decided_at timestamptz)
RETURNS TABLE (purchase_id text, status text, reason text, order_id text, seats text[],
               created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p record;
    known text[];
    keys text[];          -- event_id || E'\x1f' || section, one per locked section
    k_event text[];
    k_name text[];
    stock integer[];      -- what remains of each, counted down here
    taken integer[];      -- what this batch took of each
    reserved boolean[];
    k integer;
    wanted integer;
    got integer;
    sold text[];
    o_id text[] := '{}'; o_event text[] := '{}'; o_buyer text[] := '{}';
    o_purchase text[] := '{}'; o_section text[] := '{}'; o_seats text[] := '{}';
    o_quantity integer[] := '{}'; o_amount bigint[] := '{}';
    d_purchase text[] := '{}'; d_status text[] := '{}'; d_reason text[] := '{}';
    d_order text[] := '{}';
BEGIN
    SELECT coalesce(array_agg(d.purchase_id), '{}') INTO known FROM decisions d
    WHERE d.purchase_id IN (SELECT x->>'purchase_id' FROM jsonb_array_elements(batch) x);

    SELECT coalesce(array_agg(s.event_id || E'\x1f' || s.name ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.event_id ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.name ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.remaining ORDER BY s.event_id, s.name), '{}'),
           coalesce(array_agg(s.reserved ORDER BY s.event_id, s.name), '{}')
    INTO keys, k_event, k_name, stock, reserved
    FROM (SELECT s.* FROM sections s
          WHERE (s.event_id, s.name) IN (SELECT x->>'event_id', x->>'section'
                                         FROM jsonb_array_elements(batch) x)
          ORDER BY s.event_id, s.name FOR UPDATE) s;
    taken := array_fill(0, ARRAY[coalesce(cardinality(keys), 0)]);

    IF cardinality(known) = 0 AND NOT (true = ANY (reserved)) AND NOT EXISTS (
        SELECT 1 FROM (SELECT x->>'event_id' AS e, x->>'section' AS s,
                              sum((x->>'quantity')::integer) AS total
                       FROM jsonb_array_elements(batch) x GROUP BY 1, 2) w
        WHERE coalesce(stock[array_position(keys, w.e || E'\x1f' || w.s)], -1) < w.total)
    THEN
        UPDATE sections s SET remaining = s.remaining - w.total
        FROM (SELECT x->>'event_id' AS e, x->>'section' AS n,
                     sum((x->>'quantity')::integer) AS total
              FROM jsonb_array_elements(batch) x GROUP BY 1, 2) w
        WHERE s.event_id = w.e AND s.name = w.n AND s.remaining >= w.total;
        GET DIAGNOSTICS got := ROW_COUNT;
        IF got <> (SELECT count(DISTINCT (x->>'event_id', x->>'section'))
                   FROM jsonb_array_elements(batch) x) THEN
            RAISE EXCEPTION 'a section''s stock changed under its lock';
        END IF;
        RETURN QUERY WITH wanted AS (
            SELECT x.* FROM ROWS FROM (jsonb_to_recordset(batch) AS (
                purchase_id text, event_id text, buyer_id text, section text,
                quantity integer, amount_cents bigint, order_id text))
            WITH ORDINALITY AS x(purchase_id, event_id, buyer_id, section, quantity,
                                 amount_cents, order_id, ord)
        ), ordered AS (
            INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats,
                                quantity, amount_cents, created_at)
            SELECT w.order_id, w.event_id, w.buyer_id, w.purchase_id, w.section, '{}',
                   w.quantity, w.amount_cents, decided_at
            FROM wanted w ORDER BY w.ord  -- orders.seq follows the allocation order
        ), recorded AS (
            INSERT INTO decisions
            SELECT w.purchase_id, 'confirmed', NULL, w.order_id, decided_at FROM wanted w
        )
        SELECT w.purchase_id, 'confirmed'::text, NULL::text, w.order_id, '{}'::text[],
               decided_at
        FROM wanted w ORDER BY w.ord;
        RETURN;
    END IF;

    FOR p IN
        SELECT x.* FROM ROWS FROM (jsonb_to_recordset(batch) AS (
            purchase_id text, event_id text, buyer_id text, section text, quantity integer,
            seats text[], amount_cents bigint, order_id text))
        WITH ORDINALITY AS x(purchase_id, event_id, buyer_id, section, quantity, seats,
                             amount_cents, order_id, ord)
        ORDER BY x.ord
    LOOP
        IF p.purchase_id = ANY (known) THEN
            RETURN QUERY SELECT d.purchase_id, d.status, d.reason, d.order_id, o.seats,
                                o.created_at
                         FROM decisions d LEFT JOIN orders o ON o.id = d.order_id
                         WHERE d.purchase_id = p.purchase_id;
            CONTINUE;
        END IF;
        k := array_position(keys, p.event_id || E'\x1f' || p.section);
        wanted := coalesce(cardinality(p.seats), 0);
        sold := '{}';
        IF k IS NULL OR stock[k] < p.quantity THEN
            got := 0;
        ELSIF NOT reserved[k] THEN
            got := p.quantity;
        ELSIF wanted > 0 THEN  -- these seats or none: lock them in label order, then check
            PERFORM 1 FROM seats t WHERE t.event_id = p.event_id AND t.label = ANY (p.seats)
            ORDER BY t.label FOR UPDATE;
            UPDATE seats t SET order_id = p.order_id
            WHERE t.event_id = p.event_id AND t.label = ANY (p.seats) AND t.order_id IS NULL
              AND (SELECT count(*) FROM seats f WHERE f.event_id = p.event_id
                   AND f.label = ANY (p.seats) AND f.order_id IS NULL) = wanted;
            GET DIAGNOSTICS got := ROW_COUNT;
        ELSE  -- any free seats of the section, in seat order
            UPDATE seats t SET order_id = p.order_id
            WHERE t.event_id = p.event_id AND t.label IN (
                SELECT f.label FROM seats f
                WHERE f.event_id = p.event_id AND f.section = p.section AND f.order_id IS NULL
                ORDER BY f.idx LIMIT p.quantity FOR UPDATE);
            GET DIAGNOSTICS got := ROW_COUNT;
            IF got <> p.quantity THEN
                RAISE EXCEPTION 'section %: seats and remaining disagree', p.section;
            END IF;
        END IF;
        IF got = 0 THEN
            status := 'rejected';
            reason := CASE WHEN wanted > 0 THEN 'seat_taken' ELSE 'sold_out' END;
            order_id := NULL; seats := NULL; created_at := NULL;
        ELSE
            stock[k] := stock[k] - p.quantity;
            taken[k] := taken[k] + p.quantity;
            IF reserved[k] THEN
                SELECT array_agg(t.label ORDER BY t.idx) INTO sold FROM seats t
                WHERE t.event_id = p.event_id AND t.order_id = p.order_id;
            END IF;
            status := 'confirmed'; reason := NULL; order_id := p.order_id;
            seats := sold; created_at := decided_at;
            o_id := o_id || p.order_id; o_event := o_event || p.event_id;
            o_buyer := o_buyer || p.buyer_id; o_purchase := o_purchase || p.purchase_id;
            o_section := o_section || p.section;
            o_seats := o_seats || array_to_string(sold, E'\x1f');
            o_quantity := o_quantity || p.quantity; o_amount := o_amount || p.amount_cents;
        END IF;
        purchase_id := p.purchase_id;
        d_purchase := d_purchase || p.purchase_id; d_status := d_status || status;
        d_reason := d_reason || reason; d_order := d_order || order_id;
        RETURN NEXT;
    END LOOP;

    FOR k IN 1 .. coalesce(cardinality(keys), 0) LOOP
        CONTINUE WHEN taken[k] = 0;
        UPDATE sections s SET remaining = s.remaining - taken[k]
        WHERE s.event_id = k_event[k] AND s.name = k_name[k] AND s.remaining >= taken[k];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'section %: stock changed under its lock', keys[k];
        END IF;
    END LOOP;
    INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats, quantity,
                        amount_cents, created_at)
    SELECT i, e, b, pu, s, CASE WHEN st = '' THEN '{}' ELSE string_to_array(st, E'\x1f') END,
           q, a, decided_at
    FROM unnest(o_id, o_event, o_buyer, o_purchase, o_section, o_seats, o_quantity, o_amount)
         WITH ORDINALITY AS u(i, e, b, pu, s, st, q, a, n)
    ORDER BY n;  -- orders.seq follows the allocation order
    INSERT INTO decisions
    SELECT pu, st, r, o, decided_at FROM unnest(d_purchase, d_status, d_reason, d_order)
         AS u(pu, st, r, o);
END;
$$;
