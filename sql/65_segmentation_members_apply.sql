-- The members view of a segmentation after a delta refresh of its feature
-- state (issue 25): its rows replaced in place (_matview_apply) for the
-- changed customers and for the members whose label the new model changes,
-- instead of REFRESH ... CONCURRENTLY.  After random changes (orders added,
-- removed, changed; customers entering and leaving the segment) and a
-- refresh_segmentation(), each of the four views must equal a fresh
-- computation of its query (EXCEPT ALL both ways, row counts).
\set VERBOSITY terse

CREATE SCHEMA ma;
CREATE TABLE ma.customers (LIKE fx.customers);
CREATE TABLE ma.sales_orders (LIKE fx.sales_orders);
CREATE TABLE ma.sales_order_lines (LIKE fx.sales_order_lines);
ALTER TABLE ma.customers SET (autovacuum_enabled = off);
ALTER TABLE ma.sales_orders SET (autovacuum_enabled = off);
ALTER TABLE ma.sales_order_lines SET (autovacuum_enabled = off);
-- 300 customers, customer c with c % 5 orders (0 .. 4: some one-visit)
INSERT INTO ma.customers
SELECT lpad(c::text, 4, '0'), 'Customer ' || c, 'K1', 'addr', NULL, '001' FROM generate_series(1, 300) c;
INSERT INTO ma.sales_orders
SELECT 'SO', (c * 100 + k)::text, lpad(c::text, 4, '0'), 'K1',
       to_char(date '2025-06-10' + ((k * 41 + c * 13) % 220), 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 300) c, generate_series(1, c % 5) k;
INSERT INTO ma.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || ((o.order_number::int * l) % 9),
       round((1 + (o.order_number::int * 31 % 70) / 10.0)::numeric, 2),
       round((40 + (o.order_number::int * 7919 % 900) + l * 0.25)::numeric, 2)
  FROM ma.sales_orders o, generate_series(1, 1 + o.order_number::int % 3) l;

SET client_min_messages = warning;
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('ma');
RESET client_min_messages;
CREATE SCHEMA ma_bi;
SELECT name, member_rows FROM customer_analytics.create_segmentation('mag', 'ma_bi', k => 3, segment => 'all',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 4, silhouette_sample => 0,
    source_schema => 'ma');
SELECT name, member_rows FROM customer_analytics.create_segmentation('mar', 'ma_bi', k => 4, segment => 'repeat',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 5, silhouette_sample => 0,
    source_schema => 'ma');

-- Each view of a segmentation against a fresh computation of its own query
-- (outside refresh_segmentation() segmentation_features() computes the
-- features from the source tables): rows differing either way, and the
-- row counts; one line per segmentation.
CREATE FUNCTION ma_exact(seg text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v text;
    def text;
    only_view bigint;
    only_fresh bigint;
    n_view bigint;
    n_fresh bigint;
    problems text := '';
BEGIN
    FOREACH v IN ARRAY customer_analytics._segmentation_views(seg) LOOP
        def := rtrim(pg_get_viewdef(format('ma_bi.%I', v)::regclass), '; ');
        EXECUTE format('SELECT count(*) FROM (SELECT * FROM ma_bi.%I EXCEPT ALL (%s)) d', v, def) INTO only_view;
        EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL SELECT * FROM ma_bi.%I) d', def, v) INTO only_fresh;
        EXECUTE format('SELECT count(*) FROM ma_bi.%I', v) INTO n_view;
        EXECUTE format('SELECT count(*) FROM (%s) d', def) INTO n_fresh;
        IF only_view <> 0 OR only_fresh <> 0 OR n_view <> n_fresh THEN
            problems := problems || format(' %s: %s only in the view, %s only fresh, %s / %s rows;',
                                           v, only_view, only_fresh, n_view, n_fresh);
        END IF;
    END LOOP;
    RETURN CASE WHEN problems = '' THEN 'exact' ELSE problems END;
END $$;

SELECT ma_exact('mag') AS mag, ma_exact('mar') AS mar;

-- The last refresh's mode, and whether it replaced the members view's
-- rows in place (its phase, recorded in refresh_history.phases)
CREATE FUNCTION ma_mode(seg text) RETURNS text
LANGUAGE sql AS $$
    SELECT h.mode || CASE WHEN h.phases::text LIKE '%in place (segmentation%' THEN ', members in place'
                          ELSE ', members refreshed' END
      FROM customer_analytics.refresh_history h
     WHERE h.kind = 'segmentation' AND h.name = seg ORDER BY h.started_at DESC, h.id DESC LIMIT 1
$$;

-- Random changes: some orders removed, some added (new customers too, and
-- one-visit customers becoming repeat ones), some lines' amounts changed.
CREATE FUNCTION ma_change(round int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM setseed(round / 100.0);
    DELETE FROM ma.sales_order_lines l USING (
        SELECT o.order_type, o.order_number FROM ma.sales_orders o ORDER BY o.order_number LIMIT 1000) o
     WHERE l.order_type = o.order_type AND l.order_number = o.order_number AND random() < 0.03;
    DELETE FROM ma.sales_orders o WHERE NOT EXISTS (
        SELECT 1 FROM ma.sales_order_lines l WHERE l.order_type = o.order_type AND l.order_number = o.order_number);
    INSERT INTO ma.customers
    SELECT lpad(c::text, 4, '0'), 'Customer ' || c, 'K1', 'addr', NULL, '001'
      FROM generate_series(300 + round * 3 + 1, 300 + round * 3 + 3) c;
    INSERT INTO ma.sales_orders
    SELECT 'SO', (900000 + round * 1000 + i)::text,
           lpad((CASE WHEN i <= 3 THEN 300 + round * 3 + i ELSE 1 + (i * 37 + round * 11) % 300 END)::text, 4, '0'), 'K1',
           to_char(date '2025-07-01' + ((i * 17 + round * 29) % 180), 'YYYYMMDD'), 'Y'
      FROM generate_series(1, 12) i;
    INSERT INTO ma.sales_order_lines
    SELECT o.order_type, o.order_number, 1, 'P' || (o.order_number::int % 13),
           round((1 + random() * 9)::numeric, 2), round((20 + random() * 3000)::numeric, 2)
      FROM ma.sales_orders o WHERE o.order_number::int >= 900000 + round * 1000 AND o.order_number::int < 900000 + round * 1000 + 1000;
    UPDATE ma.sales_order_lines l SET pretax_subtotal = round((l.pretax_subtotal * (0.5 + random()))::numeric, 2)
     WHERE l.order_number::int % 97 = round % 97 AND l.order_number::int < 900000;
END $$;

-- six rounds, each its own transactions: the change, then each refresh
SELECT ma_change(1);
SELECT 1 AS round, (customer_analytics.refresh_segmentation('mag')).member_rows AS mag_members,
       ma_mode('mag') AS mag_mode, ma_exact('mag') AS mag;
SELECT 1 AS round, (customer_analytics.refresh_segmentation('mar')).member_rows AS mar_members,
       ma_mode('mar') AS mar_mode, ma_exact('mar') AS mar;
SELECT ma_change(2);
SELECT 2 AS round, (customer_analytics.refresh_segmentation('mag')).member_rows AS mag_members,
       ma_mode('mag') AS mag_mode, ma_exact('mag') AS mag;
SELECT 2 AS round, (customer_analytics.refresh_segmentation('mar')).member_rows AS mar_members,
       ma_mode('mar') AS mar_mode, ma_exact('mar') AS mar;
SELECT ma_change(3);
SELECT 3 AS round, (customer_analytics.refresh_segmentation('mag')).member_rows AS mag_members,
       ma_mode('mag') AS mag_mode, ma_exact('mag') AS mag;
SELECT 3 AS round, (customer_analytics.refresh_segmentation('mar')).member_rows AS mar_members,
       ma_mode('mar') AS mar_mode, ma_exact('mar') AS mar;
SELECT ma_change(4);
SELECT 4 AS round, (customer_analytics.refresh_segmentation('mag')).member_rows AS mag_members,
       ma_mode('mag') AS mag_mode, ma_exact('mag') AS mag;
SELECT 4 AS round, (customer_analytics.refresh_segmentation('mar')).member_rows AS mar_members,
       ma_mode('mar') AS mar_mode, ma_exact('mar') AS mar;
SELECT ma_change(5);
SELECT 5 AS round, (customer_analytics.refresh_segmentation('mag')).member_rows AS mag_members,
       ma_mode('mag') AS mag_mode, ma_exact('mag') AS mag;
SELECT 5 AS round, (customer_analytics.refresh_segmentation('mar')).member_rows AS mar_members,
       ma_mode('mar') AS mar_mode, ma_exact('mar') AS mar;
SELECT ma_change(6);
SELECT 6 AS round, (customer_analytics.refresh_segmentation('mag')).member_rows AS mag_members,
       ma_mode('mag') AS mag_mode, ma_exact('mag') AS mag;
SELECT 6 AS round, (customer_analytics.refresh_segmentation('mar')).member_rows AS mar_members,
       ma_mode('mar') AS mar_mode, ma_exact('mar') AS mar;

-- the members' row counts recorded against the views'
SELECT s.name, s.member_rows = (SELECT count(*) FROM ma_bi.mag_members) OR s.name <> 'mag' AS mag_count,
       s.member_rows = (SELECT count(*) FROM ma_bi.mar_members) OR s.name <> 'mar' AS mar_count
  FROM customer_analytics.segmentations s WHERE s.name IN ('mag', 'mar') ORDER BY 1;

-- a new as_of changes every member's recency: the views refreshed in full
SELECT (customer_analytics.alter_segmentation('mag', as_of => '2026-01-08')).name;
SELECT ma_mode('mag') LIKE '%members in place' AS in_place, ma_exact('mag') AS mag;
SELECT ma_change(7);
SELECT (customer_analytics.refresh_segmentation('mag')).member_rows > 0 AS refreshed,
       ma_mode('mag') LIKE '%members in place' AS in_place, ma_exact('mag') AS mag;
-- not concurrently: REFRESH as asked
SELECT ma_change(8);
SELECT (customer_analytics.refresh_segmentation('mar', false)).member_rows > 0 AS refreshed,
       ma_mode('mar') LIKE '%members in place' AS in_place, ma_exact('mar') AS mar;
-- no scratch table left behind
SELECT count(*) AS scratch_tables FROM pg_class c
 WHERE c.relnamespace = pg_my_temp_schema() AND c.relname LIKE 'customer_analytics_seg%';

SELECT customer_analytics.drop_segmentation('mag');
SELECT customer_analytics.drop_segmentation('mar');
SELECT (customer_analytics.disable_rollup('ma')).source_schema;
DROP FUNCTION ma_exact(text);
DROP FUNCTION ma_mode(text);
DROP FUNCTION ma_change(int);
DROP SCHEMA ma CASCADE;
DROP SCHEMA ma_bi CASCADE;
