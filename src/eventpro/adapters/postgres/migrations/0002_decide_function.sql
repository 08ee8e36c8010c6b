-- Decide a batch of purchases in order, in one round trip, with conditional writes only.
-- A purchase decided before returns its stored decision and takes nothing.
-- Named seats are locked in label order (the lock order rule of docs/atomicity.md).
CREATE FUNCTION eventpro_decide(batch jsonb, decided_at timestamptz)
RETURNS TABLE (purchase_id text, status text, reason text, order_id text, seats text[],
               created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p record;
    known record;
    is_reserved boolean;
    free_count integer;
    taken integer;
    wanted integer;
BEGIN
    FOR p IN
        SELECT x.* FROM ROWS FROM (jsonb_to_recordset(batch) AS (
            purchase_id text, event_id text, buyer_id text, section text, quantity integer,
            seats text[], amount_cents bigint, order_id text))
        WITH ORDINALITY AS x(purchase_id, event_id, buyer_id, section, quantity, seats,
                             amount_cents, order_id, ord)
        ORDER BY x.ord
    LOOP
        SELECT d.status, d.reason, d.order_id, o.seats, o.created_at INTO known
        FROM decisions d LEFT JOIN orders o ON o.id = d.order_id
        WHERE d.purchase_id = p.purchase_id;
        IF FOUND THEN
            RETURN QUERY SELECT p.purchase_id, known.status, known.reason, known.order_id,
                                known.seats, known.created_at;
            CONTINUE;
        END IF;
        wanted := coalesce(cardinality(p.seats), 0);
        UPDATE sections s SET remaining = s.remaining - p.quantity
        WHERE s.event_id = p.event_id AND s.name = p.section AND s.remaining >= p.quantity
        RETURNING s.reserved INTO is_reserved;
        IF NOT FOUND THEN
            INSERT INTO decisions VALUES (p.purchase_id, 'rejected',
                CASE WHEN wanted > 0 THEN 'seat_taken' ELSE 'sold_out' END, NULL, decided_at);
            RETURN QUERY SELECT p.purchase_id, 'rejected'::text,
                CASE WHEN wanted > 0 THEN 'seat_taken' ELSE 'sold_out' END, NULL::text,
                NULL::text[], NULL::timestamptz;
            CONTINUE;
        END IF;
        IF is_reserved AND wanted > 0 THEN
            PERFORM 1 FROM seats t WHERE t.event_id = p.event_id AND t.label = ANY (p.seats)
            ORDER BY t.label FOR UPDATE;
            SELECT count(*) INTO free_count FROM seats t
            WHERE t.event_id = p.event_id AND t.label = ANY (p.seats) AND t.order_id IS NULL;
            IF free_count <> wanted THEN
                UPDATE sections s SET remaining = s.remaining + p.quantity
                WHERE s.event_id = p.event_id AND s.name = p.section;
                INSERT INTO decisions VALUES (p.purchase_id, 'rejected', 'seat_taken', NULL,
                                              decided_at);
                RETURN QUERY SELECT p.purchase_id, 'rejected'::text, 'seat_taken'::text,
                                    NULL::text, NULL::text[], NULL::timestamptz;
                CONTINUE;
            END IF;
            UPDATE seats t SET order_id = p.order_id
            WHERE t.event_id = p.event_id AND t.label = ANY (p.seats) AND t.order_id IS NULL;
        ELSIF is_reserved THEN
            UPDATE seats t SET order_id = p.order_id
            WHERE t.event_id = p.event_id AND t.label IN (
                SELECT f.label FROM seats f
                WHERE f.event_id = p.event_id AND f.section = p.section AND f.order_id IS NULL
                ORDER BY f.idx LIMIT p.quantity FOR UPDATE);
            GET DIAGNOSTICS taken = ROW_COUNT;
            IF taken <> p.quantity THEN
                RAISE EXCEPTION 'section %: seats and remaining disagree', p.section;
            END IF;
        END IF;
        INSERT INTO orders (id, event_id, buyer_id, purchase_id, section, seats, quantity,
                            amount_cents, created_at)
        VALUES (p.order_id, p.event_id, p.buyer_id, p.purchase_id, p.section,
                coalesce((SELECT array_agg(t.label ORDER BY t.idx) FROM seats t
                          WHERE t.event_id = p.event_id AND t.order_id = p.order_id), '{}'),
                p.quantity, p.amount_cents, decided_at);
        INSERT INTO decisions VALUES (p.purchase_id, 'confirmed', NULL, p.order_id, decided_at);
        RETURN QUERY SELECT o.purchase_id, 'confirmed'::text, NULL::text, o.id, o.seats,
                            o.created_at
                     FROM orders o WHERE o.id = p.order_id;
    END LOOP;
END;
$$;
