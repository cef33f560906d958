-- Issue 21, item 7: a refresh from the order changes refuses what a build
-- refuses.  Every check the full computation makes on the source's rows
-- (order_date.c: a confirmed order's date NULL, 22004; malformed or not a
-- calendar day, 22007; infinite in a date column, 22007.  targeting.c: a
-- customer_code twice among a campaign's customers, 23505.  kmeans: a NaN
-- amount or quantity, which reaches a segmentation's features, 22023) is
-- made to fail after a successful build and refresh from the changes.  The
-- build of the same definition on the same data and the refresh must raise
-- the same (SQLSTATE, message naming the same order, detail, hint), and the
-- refresh must publish nothing: views, state tables, refresh state and
-- catalog row as they were.  Then the row is corrected, and the refresh
-- succeeds from the changes and equals a recompute.  The paths: a
-- campaign's delta from its state (dvc), a segmentation's delta from its
-- feature state (dvs), a campaign whose changed customers' histories are
-- recomputed (dvo, routes from the orders: no state); over a sharded source
-- (loopback postgres_fdw) a campaign refreshed from the shards' changes.
-- The definitions belong to a non-superuser analyst; the ERP's writes are a
-- writer's with nothing but its privileges on the tables.
--
-- Before 1.5's fix both deltas applied a NULL date silently (the order was
-- dropped from the state and the views), fell back to a full refresh on a
-- malformed one, even one corrected since, and kept a NaN sum in the state
-- after the amount was corrected (a segmentation then failed for good).
-- The duplicated customer and the sharded source held already (their
-- refreshes read the changed customers through the full readers): they stay
-- here as guards.
\set VERBOSITY terse

CREATE ROLE ca_dv_owner LOGIN;  -- LOGIN: its user mapping for the sharded source below
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_dv_owner;  -- the state of its definitions
CREATE ROLE ca_dv_erp;
CREATE SCHEMA dv;
CREATE TABLE dv.customers (customer_code varchar(12), trade_name text, delivery_route varchar(4),
    shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE dv.sales_orders (order_type varchar(4), order_number varchar(12), customer_code varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1));
CREATE TABLE dv.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2));
-- 30 customers on K1, K2, T9; customer c has 4 + c % 5 orders from 2025-06
-- to 2026-01, two lines each; one unconfirmed order with a malformed date
INSERT INTO dv.customers
SELECT lpad(c::text, 4, '0'), 'Customer ' || c, (ARRAY['K1', 'K2', 'T9'])[1 + c % 3], 'addr', NULL, '00' || c % 4
  FROM generate_series(1, 30) c;
INSERT INTO dv.sales_orders
SELECT 'SO', (c * 100 + k)::text, lpad(c::text, 4, '0'), 'K1',
       to_char(date '2025-06-03' + ((k * 37 + c * 11) % 215), 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 30) c, generate_series(0, 3 + c % 5) k;
INSERT INTO dv.sales_orders VALUES ('SO', '9901', '0001', 'K1', '2025-1-5', 'N');
INSERT INTO dv.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || ((o.order_number::int * l) % 7),
       round((1 + (o.order_number::int * 31 % 70) / 10.0)::numeric, 2),
       round((150 + (o.order_number::int * 7919 % 1800) + l * 0.25)::numeric, 2)
  FROM dv.sales_orders o, generate_series(1, 2) l;
GRANT USAGE ON SCHEMA dv TO ca_dv_owner, ca_dv_erp;
GRANT SELECT ON ALL TABLES IN SCHEMA dv TO ca_dv_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA dv TO ca_dv_erp;
SET client_min_messages = warning;
SELECT rollup_rows FROM customer_analytics.enable_rollup('dv', readers => '{ca_dv_owner}');
CREATE SCHEMA dv_bi AUTHORIZATION ca_dv_owner;

-- dv_write(statement): the ERP sync's write, as ca_dv_erp; how many rows
-- it wrote
CREATE FUNCTION dv_write(statement text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE statement;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
ALTER FUNCTION dv_write(text) OWNER TO ca_dv_erp;

-- rolled_back(statement): what the statement raises, as err() shows it, or
-- 'no error'; either way nothing it did stays
CREATE FUNCTION rolled_back(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text; message text; detail text; hint text;
BEGIN
    EXECUTE statement;
    RAISE EXCEPTION 'no error' USING ERRCODE = 'P0001', HINT = 'rolled_back';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    IF state = 'P0001' AND hint = 'rolled_back' THEN
        RETURN 'no error';
    END IF;
    RETURN state || ' | ' || message
        || CASE WHEN detail <> '' THEN ' | DETAIL: ' || detail ELSE '' END
        || CASE WHEN hint <> '' THEN ' | HINT: ' || hint ELSE '' END;
END $$;

-- The build of a copy of definition `name`, as stored, named `copy`.
CREATE FUNCTION dv_build_sql(name text, copy text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        (SELECT format('SELECT customer_analytics.create_campaign(%L, %L, %L::text[], %L::daterange, %L::numeric,'
                       ' %L::daterange, %L::numeric, %L::int, %L::daterange, %L::daterange, %L::numeric, %L::boolean,'
                       ' %L, %L::daterange, ''{}'', %L)',
                       copy, c.view_schema, c.routes, c.spend_window, c.min_spend, c.low_ticket_window,
                       c.low_ticket_below, c.min_low_tickets, c.base_window, c.recent_window, c.decline_pct,
                       c.exclude_closed, c.route_source, c.revenue_window, c.source_schema)
           FROM customer_analytics.campaigns c WHERE c.name = dv_build_sql.name),
        (SELECT format('SELECT customer_analytics.create_segmentation(%L, %L, %s, %L, %L::daterange, %L::date,'
                       ' %L::jsonb, %s, %s, %s, ''{}'', %L)',
                       copy, s.view_schema, s.k, s.segment, s.feature_window, s.as_of, s.options, s.k_from,
                       s.k_to, s.silhouette_sample, s.source_schema)
           FROM customer_analytics.segmentations s WHERE s.name = dv_build_sql.name))
$$;

-- The refresh (or drop) of definition `name`.
CREATE FUNCTION dv_call_sql(verb text, name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('SELECT customer_analytics.%s_%s(%L)', verb,
                  CASE WHEN EXISTS (SELECT 1 FROM customer_analytics.campaigns c WHERE c.name = dv_call_sql.name)
                       THEN 'campaign' ELSE 'segmentation' END, name)
$$;

-- The relations of definition `name` in its view schema: its views and its
-- state tables.
CREATE FUNCTION dv_relations(name text) RETURNS TABLE (suffix text, rel regclass)
LANGUAGE sql STABLE AS $$
    SELECT substr(c.relname, length(name) + 1), c.oid::regclass FROM pg_class c
     WHERE c.relnamespace = (SELECT oid FROM pg_namespace
                              WHERE nspname = (SELECT view_schema FROM customer_analytics.campaigns WHERE campaigns.name = dv_relations.name
                                               UNION ALL
                                               SELECT view_schema FROM customer_analytics.segmentations WHERE segmentations.name = dv_relations.name))
       AND c.relkind IN ('r', 'm') AND c.relname LIKE name || '\_%'
     ORDER BY 1
$$;

-- What definition `name` publishes and keeps: the rows of its views and
-- state tables, its refresh state and its catalog row, as one digest.
CREATE FUNCTION dv_published(name text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    part text;
    acc text := '';
BEGIN
    FOR r IN SELECT * FROM dv_relations(name) LOOP
        EXECUTE format('SELECT md5(COALESCE(string_agg(x::text, E''\n'' ORDER BY x::text), '''')) FROM %s x', r.rel) INTO part;
        acc := acc || r.suffix || ' ' || part || E'\n';
    END LOOP;
    RETURN md5(acc || COALESCE((SELECT x::text FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = name), '')
                   || COALESCE((SELECT x::text FROM customer_analytics.segmentation_refresh_state x WHERE x.segmentation = name), '')
                   || COALESCE((SELECT x::text FROM customer_analytics.campaigns x WHERE x.name = dv_published.name), '')
                   || COALESCE((SELECT x::text FROM customer_analytics.segmentations x WHERE x.name = dv_published.name), ''));
END $$;

-- Rows differing between definition `name` and a copy of it built now and
-- refreshed once (its views computed and its state built in full from the
-- rollup): every view and state table compared row by row, as text.
CREATE FUNCTION dv_differs(name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n bigint;
    total bigint := 0;
BEGIN
    EXECUTE dv_build_sql(name, 'dv_copy');
    EXECUTE dv_call_sql('refresh', 'dv_copy');
    FOR r IN SELECT a.suffix, a.rel AS a, b.rel AS b FROM dv_relations(name) a FULL JOIN dv_relations('dv_copy') b USING (suffix) LOOP
        IF r.a IS NULL OR r.b IS NULL THEN
            RAISE WARNING '%: % only on one side', name, r.suffix;
            total := total + 1;
            CONTINUE;
        END IF;
        -- (rows as jsonb text: numeric scale kept; a model's row without
        -- the segmentation's name)
        EXECUTE format('SELECT count(*) FROM ((SELECT (to_jsonb(x) - ''segmentation'')::text FROM %1$s x'
                       ' EXCEPT ALL SELECT (to_jsonb(y) - ''segmentation'')::text FROM %2$s y)'
                       ' UNION ALL (SELECT (to_jsonb(y) - ''segmentation'')::text FROM %2$s y'
                       ' EXCEPT ALL SELECT (to_jsonb(x) - ''segmentation'')::text FROM %1$s x)) d', r.a, r.b) INTO n;
        IF n > 0 THEN
            RAISE WARNING '%: % rows of % differ from a recompute', name, n, r.suffix;
        END IF;
        total := total + n;
    END LOOP;
    EXECUTE dv_call_sql('drop', 'dv_copy');
    RETURN total;
END $$;

-- After a bad row arrived: per definition, what its build raises on the
-- data now (rolled back), whether its refresh raises exactly that, and
-- whether the refresh published anything.
CREATE FUNCTION dv_attack(VARIADIC names text[])
RETURNS TABLE (definition text, build_raises text, refresh_raises text, published text)
LANGUAGE plpgsql AS $$
DECLARE
    before text;
BEGIN
    FOREACH definition IN ARRAY names LOOP
        before := dv_published(definition);
        build_raises := rolled_back(dv_build_sql(definition, 'dv_copy'));
        refresh_raises := err(dv_call_sql('refresh', definition));
        IF refresh_raises = build_raises THEN
            refresh_raises := 'the same';
        END IF;
        published := CASE WHEN dv_published(definition) = before THEN 'nothing' ELSE 'its refresh' END;
        RETURN NEXT;
    END LOOP;
END $$;

-- After the row was corrected (or when nothing is wrong): per definition,
-- whether its refresh succeeds, how it ran, and the rows differing from a
-- recompute.
CREATE FUNCTION dv_check(VARIADIC names text[])
RETURNS TABLE (definition text, refresh text, mode text, rows_differing bigint)
LANGUAGE plpgsql AS $$
BEGIN
    FOREACH definition IN ARRAY names LOOP
        refresh := err(dv_call_sql('refresh', definition));
        SELECT h.mode INTO mode FROM customer_analytics.refresh_history h WHERE h.name = definition ORDER BY h.id DESC LIMIT 1;
        mode := regexp_replace(mode, '\d+ (changed customers|order changes)', 'n \1', 'g');
        rows_differing := dv_differs(definition);
        RETURN NEXT;
    END LOOP;
END $$;

-- the analyst's campaign (kept from per-customer state), segmentation (from
-- feature state, which its build makes) and campaign with routes from the
-- orders (no state): each built, refreshed, then refreshed from its changes
SET ROLE ca_dv_owner;
SELECT name, target_rows FROM customer_analytics.create_campaign('dvc', 'dv_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dv');
SELECT name, member_rows FROM customer_analytics.create_segmentation('dvs', 'dv_bi', k => 3, segment => 'all',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 4, silhouette_sample => 0,
    source_schema => 'dv');
SELECT name, target_rows FROM customer_analytics.create_campaign('dvo', 'dv_bi', routes => '{K1}',
    route_source => 'order', min_spend => 2000, source_schema => 'dv');
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_order_lines SET pretax_subtotal = pretax_subtotal + 10 WHERE order_number::int % 9 = 0$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 1. A confirmed order's date set to NULL (order 401, customer 0004 on K2)
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = NULL WHERE order_number = '401'$$) AS rows_written;
-- the reading functions refuse it
SELECT err($$SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'dv')$$);
SELECT err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'dv')$$);
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '20251016' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 2. to 4. Malformed dates: empty, not eight digits, not a calendar day
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '2025-9-5' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '20250229' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '20250905' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 5. A new confirmed order without a date (header and lines in one
-- transaction), for customer 0007 on K1
SELECT dv_write($$WITH h AS (INSERT INTO dv.sales_orders VALUES ('SO', '9902', '0007', 'K1', NULL, 'Y') RETURNING order_number)
                  INSERT INTO dv.sales_order_lines SELECT 'SO', order_number, 1, 'P1', 2, 420.50 FROM h$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '20251120' WHERE order_number = '9902'$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 6. An unconfirmed order with a malformed date (9901, customer 0001 on K2)
-- confirmed; corrected by withdrawing the confirmation again
SELECT dv_write($$UPDATE dv.sales_orders SET confirmed_code = 'Y' WHERE order_number = '9901'$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_orders SET confirmed_code = 'N' WHERE order_number = '9901'$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 7. An order moved to another customer, losing its date on the way
SELECT dv_write($$UPDATE dv.sales_orders SET customer_code = '0010', order_date = NULL WHERE order_number = '1102'$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '20251201' WHERE order_number = '1102'$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 8. A date broken and corrected again before the refresh: nothing to
-- refuse, and the refresh still follows the changes
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = 'x' WHERE order_number = '1203'$$) AS rows_written;
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = NULL WHERE order_number = '1203'$$) AS rows_written;
SELECT dv_write($$UPDATE dv.sales_orders SET order_date = '20251111' WHERE order_number = '1203'$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 9. A customer_code twice among a campaign's route customers (0004): the
-- campaigns refuse it; a segmentation does not read the customers
SELECT dv_write($$INSERT INTO dv.customers SELECT * FROM dv.customers WHERE customer_code = '0004'$$) AS rows_written;
SELECT err($$SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'dv')$$);
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$DELETE FROM dv.customers WHERE ctid IN (SELECT max(ctid) FROM dv.customers
                                                          WHERE customer_code = '0004')$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 10. A line amount set to NaN: the campaigns take it as the build does
-- (their sums are NaN); a segmentation's k-means refuses it.  Corrected,
-- the sums that took in NaN are recomputed.
SELECT dv_write($$UPDATE dv.sales_order_lines SET pretax_subtotal = 'NaN' WHERE order_number = '702' AND line_no = 1$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT * FROM dv_check('dvc', 'dvo');
SELECT dv_write($$UPDATE dv.sales_order_lines SET pretax_subtotal = 815.25 WHERE order_number = '702' AND line_no = 1$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');

-- 11. A line quantity set to NaN (only a segmentation reads quantities)
SELECT dv_write($$UPDATE dv.sales_order_lines SET quantity = 'NaN' WHERE order_number = '1305' AND line_no = 2$$) AS rows_written;
SELECT * FROM dv_attack('dvc', 'dvs', 'dvo');
SELECT dv_write($$UPDATE dv.sales_order_lines SET quantity = 3.5 WHERE order_number = '1305' AND line_no = 2$$) AS rows_written;
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');
SELECT * FROM dv_check('dvc', 'dvs', 'dvo');
RESET ROLE;

-- 12. order_date a date column: an infinite date is refused like a
-- malformed one, NULL as NULL (schema dvd, a copy of dv with real dates)
CREATE SCHEMA dvd;
CREATE TABLE dvd.customers AS SELECT * FROM dv.customers;
CREATE TABLE dvd.sales_orders AS
SELECT order_type, order_number, customer_code, delivery_route, to_date(order_date, 'YYYYMMDD') AS order_date, confirmed_code
  FROM dv.sales_orders WHERE confirmed_code = 'Y';
CREATE TABLE dvd.sales_order_lines AS
SELECT l.* FROM dv.sales_order_lines l JOIN dvd.sales_orders o USING (order_type, order_number);
GRANT USAGE ON SCHEMA dvd TO ca_dv_owner, ca_dv_erp;
GRANT SELECT ON ALL TABLES IN SCHEMA dvd TO ca_dv_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA dvd TO ca_dv_erp;
SELECT rollup_rows FROM customer_analytics.enable_rollup('dvd', readers => '{ca_dv_owner}');
SET ROLE ca_dv_owner;
SELECT name, target_rows FROM customer_analytics.create_campaign('dvdc', 'dv_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dvd');
SELECT name, member_rows FROM customer_analytics.create_segmentation('dvds', 'dv_bi', k => 3, segment => 'all',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 4, silhouette_sample => 0,
    source_schema => 'dvd');
SELECT * FROM dv_check('dvdc', 'dvds');
SELECT * FROM dv_check('dvdc', 'dvds');
SELECT dv_write($$UPDATE dvd.sales_orders SET order_date = 'infinity' WHERE order_number = '401'$$) AS rows_written;
SELECT err($$SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'dvd')$$);
SELECT * FROM dv_attack('dvdc', 'dvds');
SELECT dv_write($$UPDATE dvd.sales_orders SET order_date = '-infinity' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_attack('dvdc', 'dvds');
SELECT dv_write($$UPDATE dvd.sales_orders SET order_date = NULL WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_attack('dvdc', 'dvds');
SELECT dv_write($$UPDATE dvd.sales_orders SET order_date = '2025-10-17' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_check('dvdc', 'dvds');
RESET ROLE;

-- 13. A sharded source (docs/sharding.md): coordinator schema dvh
-- whose tables are hash-partitioned by customer_code over two "shards",
-- schemas dvh1 and dvh2 of this database reached through loopback
-- postgres_fdw servers, each shard with its own rollup whose changes the
-- coordinator reads (dvh.rollup_changes, with their order rows).  The
-- campaign's refresh applies the shards' order changes as a delta; a bad
-- row written directly on a shard must make it raise what the build raises
-- (its full recompute, when the delta cannot read the order's date).
-- (The loopback servers connect to this cluster's first socket directory,
-- as scripts/test.sh's clusters allow: local connections are trusted.)
CREATE EXTENSION postgres_fdw;
DO $$
BEGIN
    FOR i IN 1 .. 2 LOOP
        EXECUTE format('CREATE SERVER dv_shard%s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L,'
                       ' extensions ''customer_analytics'', fetch_size ''1000'')',
                       i, split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
                       current_database());
        EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER dv_shard%s', i);
        -- the analyst reaches the shards as itself (a superuser lets it do so
        -- without a password: the test cluster trusts local connections)
        EXECUTE format('CREATE USER MAPPING FOR ca_dv_owner SERVER dv_shard%s'
                       ' OPTIONS (user ''ca_dv_owner'', password_required ''false'')', i);
    END LOOP;
END $$;
CREATE SCHEMA dvh;
CREATE TABLE dvh.customers (LIKE dv.customers) PARTITION BY HASH (customer_code);
CREATE TABLE dvh.sales_orders (LIKE dv.sales_orders) PARTITION BY HASH (customer_code);
CREATE TABLE dvh.sales_order_lines (LIKE dv.sales_order_lines, customer_code varchar(12)) PARTITION BY HASH (customer_code);
CREATE TABLE dvh.order_totals (customer_code varchar(12), order_type varchar(4), order_number varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1), order_total numeric,
    quantity numeric, product_codes text[]) PARTITION BY HASH (customer_code);
CREATE TABLE dvh.rollup_changes (customer_code text, xid xid8, generation bigint, rollup_state text,
    snapshot pg_snapshot, campaigns bigint, system_identifier bigint, order_date date, total numeric, quantity numeric,
    sign smallint) PARTITION BY HASH (customer_code);
DO $$
DECLARE
    t text;
BEGIN
    FOR i IN 1 .. 2 LOOP
        EXECUTE format('CREATE SCHEMA dvh%s', i);
        EXECUTE format('CREATE TABLE dvh%1$s.customers AS SELECT * FROM dv.customers'
                       ' WHERE satisfies_hash_partition(''dvh.customers''::regclass, 2, %2$s, customer_code)', i, i - 1);
        EXECUTE format('CREATE TABLE dvh%1$s.sales_orders AS SELECT * FROM dv.sales_orders'
                       ' WHERE satisfies_hash_partition(''dvh.customers''::regclass, 2, %2$s, customer_code)', i, i - 1);
        EXECUTE format('CREATE TABLE dvh%1$s.sales_order_lines AS SELECT l.*, o.customer_code FROM dv.sales_order_lines l'
                       ' JOIN dvh%1$s.sales_orders o USING (order_type, order_number)', i);
        EXECUTE format('CREATE VIEW dvh%1$s.order_totals AS'
                       ' SELECT o.customer_code, o.order_type, o.order_number, o.delivery_route, o.order_date, o.confirmed_code,'
                       '        sum(l.pretax_subtotal) AS order_total, sum(l.quantity) AS quantity,'
                       '        array_agg(l.product_code::text) FILTER (WHERE l.product_code IS NOT NULL) AS product_codes'
                       '   FROM dvh%1$s.sales_orders o LEFT JOIN dvh%1$s.sales_order_lines l'
                       '     ON l.order_type = o.order_type AND l.order_number = o.order_number'
                       '  GROUP BY o.order_type, o.order_number, o.customer_code, o.delivery_route, o.order_date, o.confirmed_code', i);
        PERFORM customer_analytics.enable_rollup(format('dvh%s', i), readers => '{ca_dv_owner}');
        -- shard 1's view over rollup_order_changes() (1.5's way), shard 2's
        -- by create_rollup_changes_view (its filter reaches the changes' index)
        IF i = 1 THEN
            EXECUTE format('CREATE VIEW dvh%1$s.rollup_changes AS SELECT * FROM customer_analytics.rollup_order_changes(''dvh%1$s'')', i);
        ELSE
            PERFORM customer_analytics.create_rollup_changes_view(format('dvh%s', i));
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA dvh%s TO ca_dv_owner, ca_dv_erp', i);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA dvh%s TO ca_dv_owner', i);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA dvh%s TO ca_dv_erp', i);
        FOREACH t IN ARRAY ARRAY['customers', 'sales_orders', 'sales_order_lines', 'order_totals', 'rollup_changes'] LOOP
            EXECUTE format('CREATE FOREIGN TABLE dvh.%1$s_%2$s PARTITION OF dvh.%1$s FOR VALUES WITH (MODULUS 2, REMAINDER %3$s)'
                           ' SERVER dv_shard%2$s OPTIONS (schema_name %4$L, table_name %1$L)', t, i, i - 1, 'dvh' || i);
        END LOOP;
    END LOOP;
END $$;
GRANT USAGE ON SCHEMA dvh TO ca_dv_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA dvh TO ca_dv_owner;
-- the shards hold every customer once
SELECT (SELECT count(*) FROM dvh.customers) AS customers, (SELECT count(*) FROM dvh.sales_orders) AS orders,
       (SELECT count(*) FROM dvh1.customers) > 0 AND (SELECT count(*) FROM dvh2.customers) > 0 AS on_both_shards;
SET ROLE ca_dv_owner;
SELECT name, target_rows FROM customer_analytics.create_campaign('dvh', 'dv_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dvh');
SELECT * FROM dv_check('dvh');
SELECT dv_write($$UPDATE dvh1.sales_order_lines SET pretax_subtotal = pretax_subtotal + 10 WHERE order_number::int % 9 = 0$$) AS rows_written;
SELECT dv_write($$UPDATE dvh2.sales_order_lines SET pretax_subtotal = pretax_subtotal + 10 WHERE order_number::int % 9 = 0$$) AS rows_written;
SELECT * FROM dv_check('dvh');
-- a date set to NULL, then a malformed one, on the shard that holds the
-- order (both are written: only one has it)
SELECT dv_write($$UPDATE dvh1.sales_orders SET order_date = NULL WHERE order_number = '401'$$) AS rows_written;
SELECT dv_write($$UPDATE dvh2.sales_orders SET order_date = NULL WHERE order_number = '401'$$) AS rows_written;
SELECT err($$SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'dvh')$$);
SELECT * FROM dv_attack('dvh');
SELECT dv_write($$UPDATE dvh1.sales_orders SET order_date = '2025-9-1' WHERE order_number = '401'$$) AS rows_written;
SELECT dv_write($$UPDATE dvh2.sales_orders SET order_date = '2025-9-1' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_attack('dvh');
SELECT dv_write($$UPDATE dvh1.sales_orders SET order_date = '20251001' WHERE order_number = '401'$$) AS rows_written;
SELECT dv_write($$UPDATE dvh2.sales_orders SET order_date = '20251001' WHERE order_number = '401'$$) AS rows_written;
SELECT * FROM dv_check('dvh');
-- a customer twice on its shard
SELECT dv_write($$INSERT INTO dvh1.customers SELECT * FROM dvh1.customers WHERE customer_code = '0004'$$) AS rows_written;
SELECT dv_write($$INSERT INTO dvh2.customers SELECT * FROM dvh2.customers WHERE customer_code = '0004'$$) AS rows_written;
SELECT * FROM dv_attack('dvh');
SELECT dv_write($$DELETE FROM dvh1.customers WHERE ctid IN (SELECT max(ctid) FROM dvh1.customers WHERE customer_code = '0004'
                                                            HAVING count(*) > 1)$$) AS rows_written;
SELECT dv_write($$DELETE FROM dvh2.customers WHERE ctid IN (SELECT max(ctid) FROM dvh2.customers WHERE customer_code = '0004'
                                                            HAVING count(*) > 1)$$) AS rows_written;
SELECT * FROM dv_check('dvh');

-- shard 2's view (create_rollup_changes_view) has the rows of
-- rollup_order_changes() (but the snapshot, taken per statement)
SELECT (SELECT count(*) FROM (SELECT customer_code, xid, generation, rollup_state, campaigns, system_identifier, order_date, total, quantity, sign
                                FROM dvh2.rollup_changes
                              EXCEPT ALL
                              SELECT customer_code, xid, generation, rollup_state, campaigns, system_identifier, order_date, total, quantity, sign
                                FROM customer_analytics.rollup_order_changes('dvh2')) a) AS only_in_view,
       (SELECT count(*) FROM (SELECT customer_code, xid, generation, rollup_state, campaigns, system_identifier, order_date, total, quantity, sign
                                FROM customer_analytics.rollup_order_changes('dvh2')
                              EXCEPT ALL
                              SELECT customer_code, xid, generation, rollup_state, campaigns, system_identifier, order_date, total, quantity, sign
                                FROM dvh2.rollup_changes) a) AS only_in_function,
       (SELECT count(*) FROM dvh2.rollup_changes WHERE xid IS NOT NULL) > 0 AS has_changes,
       (SELECT rollup_state FROM dvh2.rollup_changes WHERE xid IS NULL) AS state;
-- a role granted SELECT on that view but not a reader of the rollup: no
-- change, and its status row says why
RESET ROLE;
SET ROLE ca_dv_erp;
SELECT count(*) FILTER (WHERE xid IS NOT NULL) AS changes, regexp_replace(min(rollup_state), '[0-9]+', 'N', 'g') AS state
  FROM dvh2.rollup_changes;
RESET ROLE;
SET ROLE ca_dv_owner;

-- cleaning up
SELECT customer_analytics.drop_campaign(name) FROM customer_analytics.campaigns WHERE name IN ('dvc', 'dvo', 'dvdc', 'dvh');
SELECT customer_analytics.drop_segmentation(name) FROM customer_analytics.segmentations WHERE name IN ('dvs', 'dvds');
RESET ROLE;
-- a rollup whose changes a view of create_rollup_changes_view reads: refused, naming it
SELECT err($$SELECT customer_analytics.drop_rollup('dvh2')$$);
DROP VIEW dvh2.rollup_changes;
SELECT customer_analytics.drop_rollup(s) FROM unnest(ARRAY['dv', 'dvd', 'dvh1', 'dvh2']) s;
DROP SCHEMA dvh, dvh1, dvh2, dvd, dv, dv_bi CASCADE;
DROP SERVER dv_shard1, dv_shard2 CASCADE;
DROP EXTENSION postgres_fdw;
DROP FUNCTION dv_write(text), rolled_back(text), dv_build_sql(text, text), dv_call_sql(text, text), dv_relations(text),
    dv_published(text), dv_differs(text), dv_attack(text[]), dv_check(text[]);
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_dv_owner;
DROP ROLE ca_dv_owner, ca_dv_erp;
RESET client_min_messages;
