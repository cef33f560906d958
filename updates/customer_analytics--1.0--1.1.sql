-- customer_analytics 1.0 -> 1.1: the incremental order rollup and
-- incremental campaign refresh
\echo Use "ALTER EXTENSION customer_analytics UPDATE TO '1.1'" to load this file. \quit

------------------------------------------------------------------------------
-- target_customers() and targeting_funnel() gain a customers filter, which
-- the incremental campaign refresh uses to recompute only changed customers.
------------------------------------------------------------------------------
DROP FUNCTION target_customers(text[], daterange, numeric, daterange, numeric, int,
                               daterange, daterange, numeric, boolean, text, text);
DROP FUNCTION targeting_funnel(text[], daterange, numeric, daterange, numeric, int,
                               daterange, daterange, numeric, boolean, text, text);

CREATE FUNCTION target_customers(
    routes            text[]    DEFAULT '{K1,K2,PS}',
    spend_window      daterange DEFAULT '[2025-01-01,2025-12-31]',
    min_spend         numeric   DEFAULT 1000,
    low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-07]',
    low_ticket_below  numeric   DEFAULT 3000,
    min_low_tickets   int       DEFAULT 3,
    base_window       daterange DEFAULT '[2025-08-31,2025-10-30]',
    recent_window     daterange DEFAULT '[2025-10-31,2025-12-31]',
    decline_pct       numeric   DEFAULT 30,
    exclude_closed    boolean   DEFAULT false,
    route_source      text      DEFAULT 'customer',
    source_schema     text      DEFAULT NULL,
    customers         text[]    DEFAULT NULL,
    OUT customer_code    text,
    OUT trade_name       text,
    OUT delivery_route   text,
    OUT shipping_address text,
    OUT csm              text,
    OUT total_spend      numeric,
    OUT total_orders     bigint,
    OUT low_ticket_count bigint,
    OUT base_sales       numeric,
    OUT recent_sales     numeric,
    OUT pct_change       numeric,
    OUT target_reason    text,
    OUT is_low_ticket    boolean,
    OUT is_declining     boolean,
    OUT last_order_date  date,
    OUT avg_ticket_size  numeric)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'target_customers'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER ROWS 500;

COMMENT ON FUNCTION target_customers IS
'Promo targets: customers on the routes whose spend reaches min_spend and who have many low-value orders or declining sales; one row each with the reason (customers: only these codes)';

CREATE FUNCTION targeting_funnel(
    routes            text[]    DEFAULT '{K1,K2,PS}',
    spend_window      daterange DEFAULT '[2025-01-01,2025-12-31]',
    min_spend         numeric   DEFAULT 1000,
    low_ticket_window daterange DEFAULT '[2025-09-15,2026-01-07]',
    low_ticket_below  numeric   DEFAULT 3000,
    min_low_tickets   int       DEFAULT 3,
    base_window       daterange DEFAULT '[2025-08-31,2025-10-30]',
    recent_window     daterange DEFAULT '[2025-10-31,2025-12-31]',
    decline_pct       numeric   DEFAULT 30,
    exclude_closed    boolean   DEFAULT false,
    route_source      text      DEFAULT 'customer',
    source_schema     text      DEFAULT NULL,
    customers         text[]    DEFAULT NULL,
    OUT step_no     int,
    OUT step        text,
    OUT description text,
    OUT customers   bigint,
    OUT orders      bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'targeting_funnel'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY INVOKER ROWS 6;

COMMENT ON FUNCTION targeting_funnel IS
'The promo funnel step by step (geo, spend, low_ticket, decline, either, both): customers and their orders in the data window';

------------------------------------------------------------------------------
-- The order rollup: per source schema, one row per confirmed order, kept
-- current by statement-level triggers with transition tables.
------------------------------------------------------------------------------

-- order_date as a date, or NULL where it is not one (the triggers must not
-- refuse an ERP write; the reading functions raise on such rows instead)
CREATE FUNCTION _order_date_or_null(order_date text) RETURNS date
AS 'MODULE_PATHNAME', 'order_date_or_null_text'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION _order_date_or_null(order_date date) RETURNS date
AS 'MODULE_PATHNAME', 'order_date_or_null_date'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- the whole data contract of a source, with the reading functions' errors;
-- true when order_date is a date column
CREATE FUNCTION _check_rollup_source(source_schema text) RETURNS boolean
AS 'MODULE_PATHNAME', 'check_rollup_source'
LANGUAGE C STABLE STRICT;

-- The catalog, kept by pg_dump like campaigns.  The rollup and dirty tables
-- it names are ordinary tables, dumped with their data.
CREATE TABLE rollups (
    source_schema      text PRIMARY KEY,
    id                 int NOT NULL UNIQUE,
    order_date_is_date boolean NOT NULL,
    state              text NOT NULL CONSTRAINT rollup_state CHECK (state IN ('current', 'disabled')),
    generation         bigint NOT NULL DEFAULT 1,
    readers            text[] NOT NULL DEFAULT '{}',
    writers            text[] NOT NULL DEFAULT '{}',
    owner              name NOT NULL DEFAULT current_user,
    enabled_at         timestamptz NOT NULL DEFAULT now(),
    rebuilt_at         timestamptz,
    rebuild_ms         numeric,
    rollup_rows        bigint
);
SELECT pg_catalog.pg_extension_config_dump('rollups', '');
GRANT SELECT ON rollups TO PUBLIC;
COMMENT ON TABLE rollups IS
'Order rollups: per source schema, one row per confirmed order kept current by triggers; state, generation, last rebuild';

CREATE FUNCTION _rollup_table(id int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'customer_analytics.order_rollup_' || id $$;
CREATE FUNCTION _rollup_dirty_table(id int) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 'customer_analytics.rollup_dirty_' || id $$;

-- Trigger names on the source tables: one per table and kind of write.
CREATE FUNCTION _rollup_trigger_names() RETURNS TABLE (tab text, op text, name text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t, o, 'customer_analytics_rollup_' || lower(o)
      FROM unnest(ARRAY['customers', 'sales_orders', 'sales_order_lines']) t,
           unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) o
$$;

-- The source schema a call means: the argument, else the GUC, else the default.
CREATE FUNCTION _source_schema(source_schema text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT COALESCE(source_schema, current_setting('customer_analytics.source_schema', true), 'cosmos_sync')
$$;

-- A source's rollup (NULL: the GUC's source), or an error that says how to create it.
CREATE FUNCTION _rollup(source_schema text) RETURNS rollups
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups;
BEGIN
    source_schema := customer_analytics._source_schema(source_schema);
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = _rollup.source_schema;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source schema "%" has no order rollup', source_schema
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with SELECT customer_analytics.enable_rollup(''' || source_schema || ''').';
    END IF;
    RETURN r;
END $$;

-- The rollup's rows for the confirmed orders whose keys the relation `keys`
-- (SQL text with columns order_type, order_number in the source's types)
-- lists; every confirmed order when keys is NULL.  The same sums as the
-- reading functions' source query.  A full build joins and groups in bulk;
-- a set of keys sums each order's lines through the lines' key index.
CREATE FUNCTION _rollup_rows_sql(r rollups, keys text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN keys IS NULL THEN format(
        'SELECT o.order_type::text, o.order_number::text, o.customer_code::text, o.delivery_route::text,'
        ' customer_analytics._order_date_or_null(o.order_date%1$s),'
        ' CASE WHEN customer_analytics._order_date_or_null(o.order_date%1$s) IS NULL THEN o.order_date::text END,'
        ' sum(l.pretax_subtotal)::numeric, count(l.order_number)::int, sum(l.quantity)::numeric,'
        ' array_agg(l.product_code::text) FILTER (WHERE l.product_code IS NOT NULL)'
        ' FROM %2$I.sales_orders o'
        ' LEFT JOIN %2$I.sales_order_lines l ON l.order_type = o.order_type AND l.order_number = o.order_number'
        ' WHERE o.confirmed_code = ''Y'''
        ' GROUP BY o.order_type, o.order_number, o.customer_code, o.delivery_route, o.order_date',
        CASE WHEN r.order_date_is_date THEN '' ELSE '::text' END, r.source_schema)
    ELSE format(
        'SELECT o.order_type::text, o.order_number::text, o.customer_code::text, o.delivery_route::text,'
        ' customer_analytics._order_date_or_null(o.order_date%1$s),'
        ' CASE WHEN customer_analytics._order_date_or_null(o.order_date%1$s) IS NULL THEN o.order_date::text END,'
        ' l.total, l.line_count, l.quantity, l.product_codes'
        ' FROM %2$I.sales_orders o'
        ' JOIN (SELECT DISTINCT order_type, order_number FROM (%3$s) k0) k'
        ' ON o.order_type = k.order_type AND o.order_number = k.order_number,'
        ' LATERAL (SELECT sum(l.pretax_subtotal)::numeric AS total, count(*)::int AS line_count,'
        ' sum(l.quantity)::numeric AS quantity,'
        ' array_agg(l.product_code::text) FILTER (WHERE l.product_code IS NOT NULL) AS product_codes'
        ' FROM %2$I.sales_order_lines l WHERE l.order_type = o.order_type AND l.order_number = o.order_number) l'
        ' WHERE o.confirmed_code = ''Y''',
        CASE WHEN r.order_date_is_date THEN '' ELSE '::text' END, r.source_schema, keys) END
$$;

-- The statements that bring the rollup rows of the orders listed by `keys`
-- up to date, recording the customers they touch as dirty.  The first locks
-- the orders' header rows: two transactions writing lines of one order then
-- take turns, and the second recomputes the order with a snapshot taken
-- after the first committed (plpgsql takes one per statement), instead of
-- both writing a total that misses the other's lines.
CREATE FUNCTION _rollup_resync_sql(r rollups, keys text) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[
        format('SELECT count(*) FROM (SELECT 1 FROM %1$I.sales_orders o'
               ' JOIN (SELECT DISTINCT order_type, order_number FROM (%2$s) k0) k'
               ' ON o.order_type = k.order_type AND o.order_number = k.order_number'
               ' ORDER BY o.order_type, o.order_number FOR NO KEY UPDATE OF o) locked',
               r.source_schema, keys),
        format('WITH gone AS (DELETE FROM %1$s r USING (SELECT DISTINCT order_type::text AS t, order_number::text AS n FROM (%3$s) k0) k'
               ' WHERE r.order_type = k.t AND r.order_number = k.n RETURNING r.customer_code)'
               ' INSERT INTO %2$s (customer_code) SELECT DISTINCT customer_code FROM gone WHERE customer_code IS NOT NULL',
               customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id), keys),
        format('WITH added AS (INSERT INTO %1$s %3$s RETURNING customer_code)'
               ' INSERT INTO %2$s (customer_code) SELECT DISTINCT customer_code FROM added WHERE customer_code IS NOT NULL',
               customer_analytics._rollup_table(r.id), customer_analytics._rollup_dirty_table(r.id),
               customer_analytics._rollup_rows_sql(r, keys))]
$$;

-- SQL text reading `columns` from the statement's transition tables: the new
-- rows of an INSERT, the old rows of a DELETE, both for an UPDATE.
CREATE FUNCTION _transition_rows(op text, columns text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE op WHEN 'INSERT' THEN format('SELECT %s FROM new_rows', columns)
                   WHEN 'DELETE' THEN format('SELECT %s FROM old_rows', columns)
                   ELSE format('SELECT %1$s FROM new_rows UNION ALL SELECT %1$s FROM old_rows', columns) END
$$;

-- The trigger on the three source tables (argument: the rollup's id).  It
-- runs once per statement and reads the statement's transition tables.
CREATE FUNCTION _rollup_sync() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups;
    keys text;
    stmt text;
BEGIN
    SELECT * INTO r FROM customer_analytics.rollups WHERE id = TG_ARGV[0]::int;
    IF NOT FOUND OR r.state <> 'current' THEN
        RETURN NULL;
    END IF;

    IF TG_OP = 'TRUNCATE' THEN
        -- every order may be affected: resync them all, and mark every
        -- customer dirty (a NULL code) so that campaigns recompute in full
        IF TG_TABLE_NAME <> 'customers' THEN
            EXECUTE format('DELETE FROM %s', customer_analytics._rollup_table(r.id));
            EXECUTE format('INSERT INTO %s %s', customer_analytics._rollup_table(r.id),
                           customer_analytics._rollup_rows_sql(r, NULL));
        END IF;
        EXECUTE format('INSERT INTO %s (customer_code) VALUES (NULL)', customer_analytics._rollup_dirty_table(r.id));
        RETURN NULL;
    END IF;

    IF TG_TABLE_NAME = 'customers' THEN
        -- the rollup keeps no customer data; changed customers are dirty
        keys := customer_analytics._transition_rows(TG_OP, 'customer_code::text AS c');
        EXECUTE format('INSERT INTO %s (customer_code) SELECT DISTINCT c FROM (%s) k WHERE c IS NOT NULL',
                       customer_analytics._rollup_dirty_table(r.id), keys);
        RETURN NULL;
    END IF;

    -- orders or lines: the orders they name are recomputed from the source
    keys := customer_analytics._transition_rows(TG_OP, 'order_type, order_number');
    FOREACH stmt IN ARRAY customer_analytics._rollup_resync_sql(r, keys) LOOP
        EXECUTE stmt;
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION _rollup_create_triggers(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    PERFORM customer_analytics._rollup_drop_triggers(r);
    FOR t IN SELECT * FROM customer_analytics._rollup_trigger_names() LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I.%I %s FOR EACH STATEMENT '
                       'EXECUTE FUNCTION customer_analytics._rollup_sync(%L)',
                       t.name, t.op, r.source_schema, t.tab,
                       CASE t.op WHEN 'INSERT' THEN 'REFERENCING NEW TABLE AS new_rows'
                                 WHEN 'UPDATE' THEN 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                                 WHEN 'DELETE' THEN 'REFERENCING OLD TABLE AS old_rows'
                                 ELSE '' END,
                       r.id);
        -- ALWAYS: writes applied by logical replication must reach the rollup too
        EXECUTE format('ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER %I', r.source_schema, t.tab, t.name);
    END LOOP;
END $$;

CREATE FUNCTION _rollup_drop_triggers(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM customer_analytics._rollup_trigger_names() LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgname = t.name
                      AND g.tgrelid = to_regclass(format('%I.%I', r.source_schema, t.tab))) THEN
            EXECUTE format('DROP TRIGGER %I ON %I.%I', t.name, r.source_schema, t.tab);
        END IF;
    END LOOP;
END $$;

-- Is the rollup usable by this caller, instead of the source tables?  The
-- reading functions ask this (C, order_rollup.c) and say which at DEBUG1.
-- The rollup bypasses the source tables' privileges and row-level security,
-- so it is read only by callers who could read the same rows there.
CREATE FUNCTION _rollup_for_reading(source_schema text, OUT rollup text, OUT reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups;
    t text;
    enabled int;
BEGIN
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = _rollup_for_reading.source_schema;
    IF NOT FOUND THEN
        reason := 'no rollup: customer_analytics.enable_rollup() creates one';
        RETURN;
    END IF;
    IF r.state <> 'current' THEN
        reason := 'the rollup is ' || r.state || ': customer_analytics.rebuild_rollup() makes it current';
        RETURN;
    END IF;
    SELECT count(*) INTO enabled
      FROM customer_analytics._rollup_trigger_names() n
      JOIN pg_trigger g ON g.tgname = n.name
       AND g.tgrelid = to_regclass(format('%I.%I', r.source_schema, n.tab))
     WHERE g.tgenabled <> 'D';
    IF enabled <> 12 THEN
        reason := 'a rollup trigger on the source tables is missing or disabled: customer_analytics.rebuild_rollup() restores them';
        RETURN;
    END IF;
    IF NOT has_table_privilege(customer_analytics._rollup_table(r.id), 'SELECT') THEN
        reason := 'no SELECT privilege on ' || customer_analytics._rollup_table(r.id);
        RETURN;
    END IF;
    FOREACH t IN ARRAY ARRAY['customers', 'sales_orders', 'sales_order_lines'] LOOP
        IF NOT has_table_privilege(format('%I.%I', r.source_schema, t), 'SELECT') THEN
            reason := format('no SELECT privilege on %I.%I', r.source_schema, t);
            RETURN;
        END IF;
        IF row_security_active(format('%I.%I', r.source_schema, t)) THEN
            reason := format('row-level security applies to %I.%I', r.source_schema, t);
            RETURN;
        END IF;
    END LOOP;
    rollup := customer_analytics._rollup_table(r.id);
END $$;

CREATE FUNCTION rebuild_rollup(source_schema text DEFAULT NULL) RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
    started timestamptz := clock_timestamp();
    n bigint;
BEGIN
    PERFORM customer_analytics._check_rollup_source(r.source_schema);
    -- writers wait for the rebuild (readers of the source do not), so no
    -- write slips between the copy and the triggers
    EXECUTE format('LOCK TABLE %1$I.customers, %1$I.sales_orders, %1$I.sales_order_lines IN SHARE MODE',
                   r.source_schema);
    PERFORM customer_analytics._rollup_create_triggers(r);
    EXECUTE format('TRUNCATE %s, %s', customer_analytics._rollup_table(r.id),
                   customer_analytics._rollup_dirty_table(r.id));
    -- stored in customer order: refreshing a set of customers then reads
    -- few pages of the rollup
    EXECUTE format('INSERT INTO %s SELECT * FROM (%s) x ORDER BY 3', customer_analytics._rollup_table(r.id),
                   customer_analytics._rollup_rows_sql(r, NULL));
    GET DIAGNOSTICS n = ROW_COUNT;
    EXECUTE format('ANALYZE %s', customer_analytics._rollup_table(r.id));
    UPDATE customer_analytics.rollups x
       SET state = 'current', generation = x.generation + 1, rebuilt_at = now(),
           rebuild_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           rollup_rows = n
     WHERE x.id = r.id
    RETURNING * INTO r;
    RAISE NOTICE 'order rollup of "%" rebuilt: % orders in %', r.source_schema, n, customer_analytics._rollup_table(r.id);
    RETURN r;
END $$;
COMMENT ON FUNCTION rebuild_rollup IS
'Recompute a source''s order rollup from its tables and (re)enable its triggers; writers wait meanwhile';

CREATE FUNCTION enable_rollup(source_schema text DEFAULT NULL,
                              readers text[] DEFAULT '{}',
                              writers text[] DEFAULT '{}')
RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src text := customer_analytics._source_schema(source_schema);
    is_date boolean := customer_analytics._check_rollup_source(src);
    r customer_analytics.rollups;
    t text;
    role text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'sales_orders', 'sales_order_lines'] LOOP
        IF (SELECT relkind FROM pg_class WHERE oid = format('%I.%I', src, t)::regclass) NOT IN ('r', 'p') THEN
            RAISE EXCEPTION 'source "%.%" is not a table', src, t
                USING ERRCODE = 'wrong_object_type',
                      HINT = 'The rollup is kept by triggers on the tables the ERP writes; enable it on the schema that holds the tables, not views over them.';
        END IF;
    END LOOP;
    FOREACH role IN ARRAY readers || writers LOOP
        IF to_regrole(quote_ident(role)) IS NULL THEN
            RAISE EXCEPTION 'role "%" does not exist', role
                USING ERRCODE = 'undefined_object', HINT = 'readers and writers list existing roles.';
        END IF;
    END LOOP;
    -- the table lock serialises concurrent enables
    LOCK TABLE customer_analytics.rollups IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM customer_analytics.rollups x WHERE x.source_schema = src) THEN
        RAISE EXCEPTION 'source schema "%" already has an order rollup', src
            USING ERRCODE = 'duplicate_object',
                  HINT = 'customer_analytics.rebuild_rollup() recomputes it; customer_analytics.drop_rollup() removes it.';
    END IF;
    INSERT INTO customer_analytics.rollups (source_schema, id, order_date_is_date, state, readers, writers)
    VALUES (src, (SELECT COALESCE(max(id), 0) + 1 FROM customer_analytics.rollups), is_date, 'current',
            readers, writers)
    RETURNING * INTO r;

    EXECUTE format('CREATE TABLE %s (order_type text NOT NULL, order_number text NOT NULL,'
                   ' customer_code text, delivery_route text, order_date date, order_date_raw text,'
                   ' total numeric, line_count int NOT NULL, quantity numeric, product_codes text[])',
                   customer_analytics._rollup_table(r.id));
    EXECUTE format('CREATE INDEX ON %s (order_type, order_number)', customer_analytics._rollup_table(r.id));
    EXECUTE format('CREATE INDEX ON %s (customer_code)', customer_analytics._rollup_table(r.id));
    EXECUTE format('COMMENT ON TABLE %s IS %L', customer_analytics._rollup_table(r.id),
                   format('Order rollup of source schema %s: one row per confirmed order, kept by triggers. '
                          'Check: SELECT * FROM customer_analytics.check_rollup(%L).', src, src));
    EXECUTE format('CREATE TABLE %s (customer_code text, xid xid8 NOT NULL DEFAULT pg_current_xact_id())',
                   customer_analytics._rollup_dirty_table(r.id));
    EXECUTE format('COMMENT ON TABLE %s IS %L', customer_analytics._rollup_dirty_table(r.id),
                   format('Customers of source schema %s changed by each transaction (NULL: all), for incremental campaign refresh', src));
    FOREACH role IN ARRAY readers LOOP
        EXECUTE format('GRANT SELECT ON %s, %s TO %I', customer_analytics._rollup_table(r.id),
                       customer_analytics._rollup_dirty_table(r.id), role);
    END LOOP;
    FOREACH role IN ARRAY writers LOOP
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON %s, %s TO %I', customer_analytics._rollup_table(r.id),
                       customer_analytics._rollup_dirty_table(r.id), role);
    END LOOP;
    RETURN customer_analytics.rebuild_rollup(src);
END $$;
COMMENT ON FUNCTION enable_rollup IS
'Create the order rollup of a source schema, its triggers, and fill it; readers may read it, writers may write the source tables';

CREATE FUNCTION disable_rollup(source_schema text DEFAULT NULL) RETURNS rollups
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._rollup_drop_triggers(r);
    UPDATE customer_analytics.rollups x SET state = 'disabled' WHERE x.id = r.id RETURNING * INTO r;
    RAISE NOTICE 'order rollup of "%" disabled: functions read the source tables until customer_analytics.rebuild_rollup(%)',
        r.source_schema, quote_literal(r.source_schema);
    RETURN r;
END $$;
COMMENT ON FUNCTION disable_rollup IS
'Drop a rollup''s triggers (for a bulk load); functions read the source tables until rebuild_rollup()';

CREATE FUNCTION drop_rollup(source_schema text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._rollup_drop_triggers(r);
    EXECUTE format('DROP TABLE IF EXISTS %s, %s', customer_analytics._rollup_table(r.id),
                   customer_analytics._rollup_dirty_table(r.id));
    DELETE FROM customer_analytics.rollups x WHERE x.id = r.id;
END $$;
COMMENT ON FUNCTION drop_rollup IS 'Drop a source''s order rollup, its triggers and tables';

-- Every difference between the rollup and the source tables, one row per
-- order key; no rows when the rollup is exact.
CREATE FUNCTION check_rollup(source_schema text DEFAULT NULL)
RETURNS TABLE (order_type text, order_number text, difference text, in_rollup text, in_source text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups := customer_analytics._rollup(source_schema);
BEGIN
    PERFORM customer_analytics._check_rollup_source(r.source_schema);
    -- product codes compare as sorted lists: array_agg's order is the plan's
    RETURN QUERY EXECUTE format(
        'WITH s AS (%s), '
        'a AS (SELECT x.order_type, x.order_number, '
        '        ROW(x.customer_code, x.delivery_route, x.order_date, x.order_date_raw, x.total, x.line_count, x.quantity,'
        '            ARRAY(SELECT p FROM unnest(x.product_codes) p ORDER BY p COLLATE "C"))::text AS v FROM %s x), '
        'bb AS (SELECT y.order_type, y.order_number, '
        '        ROW(y.customer_code, y.delivery_route, y.order_date, y.order_date_raw, y.total, y.line_count, y.quantity,'
        '            ARRAY(SELECT p FROM unnest(y.product_codes) p ORDER BY p COLLATE "C"))::text AS v '
        '      FROM s AS y (order_type, order_number, customer_code, delivery_route, order_date, order_date_raw,'
        '                   total, line_count, quantity, product_codes)) '
        'SELECT COALESCE(a.order_type, bb.order_type), COALESCE(a.order_number, bb.order_number), '
        '       CASE WHEN a.v IS NULL THEN ''missing from the rollup'' '
        '            WHEN bb.v IS NULL THEN ''not a confirmed order in the source'' '
        '            ELSE ''values differ'' END, a.v, bb.v '
        'FROM a FULL JOIN bb ON a.order_type = bb.order_type AND a.order_number = bb.order_number '
        'WHERE a.v IS DISTINCT FROM bb.v ORDER BY 1, 2',
        customer_analytics._rollup_rows_sql(r, NULL), customer_analytics._rollup_table(r.id));
END $$;
COMMENT ON FUNCTION check_rollup IS
'Compare a source''s order rollup with its tables: one row per order that differs; none when exact';

CREATE FUNCTION list_rollups()
RETURNS TABLE (source_schema text, rollup text, state text, usable_here boolean, reason text,
               rollup_rows bigint, dirty_rows bigint, rebuilt_at timestamptz, rebuild_ms numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r customer_analytics.rollups;
    u record;
    n bigint;
BEGIN
    FOR r IN SELECT * FROM customer_analytics.rollups ORDER BY 1 LOOP
        u := customer_analytics._rollup_for_reading(r.source_schema);
        n := NULL;
        IF has_table_privilege(customer_analytics._rollup_dirty_table(r.id), 'SELECT') THEN
            EXECUTE format('SELECT count(*) FROM %s', customer_analytics._rollup_dirty_table(r.id)) INTO n;
        END IF;
        RETURN QUERY SELECT r.source_schema, customer_analytics._rollup_table(r.id), r.state,
                            u.rollup IS NOT NULL, u.reason, r.rollup_rows, n, r.rebuilt_at, r.rebuild_ms;
    END LOOP;
END $$;
COMMENT ON FUNCTION list_rollups IS
'The order rollups, whether this role''s queries read them (and why not), size of the dirty set';

------------------------------------------------------------------------------
-- Incremental campaign refresh.  A campaign's <name>_targets view is its own
-- cache: after a refresh that read the rollup, the snapshot of that refresh
-- is kept, and the next computation reuses the view's rows of every customer
-- whose data no transaction invisible to that snapshot touched (the rollup
-- triggers record those customers), recomputing only the others.  A plain
-- REFRESH MATERIALIZED VIEW runs the same computation, so it is incremental
-- too.  Not dumped: after a restore, xids mean nothing, and the first
-- refresh is a full one.
------------------------------------------------------------------------------
CREATE TABLE campaign_refresh_state (
    campaign     text PRIMARY KEY REFERENCES campaigns (name) ON DELETE CASCADE ON UPDATE CASCADE,
    fingerprint  text NOT NULL,     -- the targeting parameters the view was computed with
    targets_view oid NOT NULL,      -- the view that holds the rows (rebuilt view: new oid)
    generation   bigint NOT NULL,   -- the rollup generation (a rebuild starts a new one)
    snapshot     pg_snapshot NOT NULL
);
GRANT SELECT ON campaign_refresh_state TO PUBLIC;
COMMENT ON TABLE campaign_refresh_state IS
'Per campaign: the snapshot its targets view reflects, for incremental refresh';

CREATE FUNCTION _campaign_fingerprint(c campaigns) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT md5(ROW(c.source_schema, c.routes, c.spend_window, c.min_spend, c.low_ticket_window,
                   c.low_ticket_below, c.min_low_tickets, c.base_window, c.recent_window,
                   c.decline_pct, c.exclude_closed, c.route_source)::text)
$$;

-- Can the campaign's targets be computed incrementally by this caller, and
-- which customers changed since the view's snapshot?  usable is false with
-- the reason otherwise.
CREATE FUNCTION _campaign_changes(c campaigns, OUT usable boolean, OUT changed text[], OUT reason text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s customer_analytics.campaign_refresh_state;
    r customer_analytics.rollups;
    v regclass := to_regclass(format('%I.%I', c.view_schema, c.name || '_targets'));
    everything boolean;
BEGIN
    usable := false;
    SELECT * INTO s FROM customer_analytics.campaign_refresh_state WHERE campaign = c.name;
    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = c.source_schema;
    IF s IS NULL THEN
        reason := 'no incremental state yet';
    ELSIF r IS NULL OR (customer_analytics._rollup_for_reading(c.source_schema)).rollup IS NULL THEN
        reason := 'the rollup is not usable';
    ELSIF s.generation <> r.generation THEN
        reason := 'the rollup was rebuilt';
    ELSIF s.fingerprint <> customer_analytics._campaign_fingerprint(c) THEN
        reason := 'the campaign changed';
    ELSIF v IS NULL OR v <> s.targets_view
          OR NOT (SELECT relispopulated FROM pg_class WHERE oid = v)
          OR NOT has_table_privilege(v, 'SELECT') THEN
        reason := 'the targets view was rebuilt or cannot be read';
    ELSE
        EXECUTE format('SELECT COALESCE(array_agg(DISTINCT customer_code) FILTER (WHERE customer_code IS NOT NULL), ''{}''),'
                       ' COALESCE(bool_or(customer_code IS NULL), false)'
                       ' FROM %s WHERE NOT pg_visible_in_snapshot(xid, $1)',
                       customer_analytics._rollup_dirty_table(r.id))
           INTO changed, everything USING s.snapshot;
        IF everything THEN
            reason := 'a source table was truncated';
            changed := NULL;
        ELSE
            usable := true;
        END IF;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION campaign_targets(campaign text)
RETURNS TABLE (customer_code text, trade_name text, delivery_route text, shipping_address text,
               csm text, total_spend numeric, total_orders bigint, low_ticket_count bigint,
               base_sales numeric, recent_sales numeric, pct_change numeric, target_reason text,
               is_low_ticket boolean, is_declining boolean, last_order_date date,
               avg_ticket_size numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    d record := customer_analytics._campaign_changes(c);
BEGIN
    IF d.usable THEN
        -- unchanged customers keep their rows; changed ones are recomputed
        RETURN QUERY EXECUTE format('SELECT * FROM %I.%I t WHERE NOT (t.customer_code = ANY ($1))',
                                    c.view_schema, c.name || '_targets') USING d.changed;
        IF cardinality(d.changed) = 0 THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM customer_analytics.target_customers(
        routes => c.routes, spend_window => c.spend_window, min_spend => c.min_spend,
        low_ticket_window => c.low_ticket_window, low_ticket_below => c.low_ticket_below,
        min_low_tickets => c.min_low_tickets, base_window => c.base_window,
        recent_window => c.recent_window, decline_pct => c.decline_pct,
        exclude_closed => c.exclude_closed, route_source => c.route_source,
        source_schema => c.source_schema,
        customers => CASE WHEN d.usable THEN d.changed END);
END $$;

CREATE OR REPLACE FUNCTION refresh_campaign(campaign text, concurrently boolean DEFAULT true)
RETURNS campaigns
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
    started timestamptz := clock_timestamp();
    snap pg_snapshot;
    d record;
    r customer_analytics.rollups;
BEGIN
    -- refreshes of one source take turns (readers never wait): the dirty
    -- set is pruned below, and no other refresh may be between snapshot
    -- and state
    PERFORM pg_advisory_xact_lock(hashtext('customer_analytics.refresh'), hashtext(c.source_schema));
    -- taken before the views are computed: every change it sees, they see
    SELECT pg_current_snapshot() INTO snap;
    d := customer_analytics._campaign_changes(c);
    PERFORM customer_analytics._refresh_views(c.view_schema, customer_analytics._campaign_views(c.name),
                                              refresh_campaign.concurrently);

    SELECT * INTO r FROM customer_analytics.rollups x WHERE x.source_schema = c.source_schema;
    IF r IS NOT NULL AND (customer_analytics._rollup_for_reading(c.source_schema)).rollup IS NOT NULL THEN
        INSERT INTO customer_analytics.campaign_refresh_state AS s
        VALUES (c.name, customer_analytics._campaign_fingerprint(c),
                format('%I.%I', c.view_schema, c.name || '_targets')::regclass, r.generation, snap)
        ON CONFLICT ON CONSTRAINT campaign_refresh_state_pkey DO UPDATE
            SET fingerprint = excluded.fingerprint, targets_view = excluded.targets_view,
                generation = excluded.generation, snapshot = excluded.snapshot;
        PERFORM customer_analytics._prune_dirty(r);
    ELSE
        DELETE FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = c.name;
    END IF;

    c := customer_analytics._record_refresh(c.name, started);
    -- the duration goes to the catalog (refresh_ms), not the message
    RAISE NOTICE 'campaign "%" refreshed%: % targets, % monthly rows',
        c.name, CASE WHEN refresh_campaign.concurrently THEN ' concurrently' ELSE '' END
                || CASE WHEN r IS NULL THEN ''
                        WHEN d.usable THEN format(' incrementally (%s changed customers)', cardinality(d.changed))
                        ELSE ' in full (' || d.reason || ')' END,
        c.target_rows, c.monthly_rows;
    RETURN c;
END $$;
COMMENT ON FUNCTION refresh_campaign IS
'Recompute both views of a campaign (CONCURRENTLY by default: readers are never blocked; with a current rollup only changed customers) and record the refresh';

-- Forget the dirty rows every incremental campaign of the source has seen.
CREATE FUNCTION _prune_dirty(r rollups) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF has_table_privilege(customer_analytics._rollup_dirty_table(r.id), 'DELETE') THEN
        EXECUTE format('DELETE FROM %s d WHERE NOT EXISTS ('
                       'SELECT 1 FROM customer_analytics.campaign_refresh_state s'
                       ' JOIN customer_analytics.campaigns c ON c.name = s.campaign'
                       ' WHERE c.source_schema = $1 AND s.generation = $2'
                       ' AND NOT pg_visible_in_snapshot(d.xid, s.snapshot))',
                       customer_analytics._rollup_dirty_table(r.id))
        USING r.source_schema, r.generation;
    END IF;
END $$;
