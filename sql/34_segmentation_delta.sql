-- Segmentation refresh from per-customer feature state (1.5, issue 15).
-- refresh_segmentation() computes the features once per refresh, into
-- segment_features_<name> and segment_skus_<name> (customer_analytics_state), adjusted from the rollup's
-- order changes when it can, and the four views read them.  After every
-- kind of write the state must equal a recompute from the source tables,
-- the features derived from it must equal customer_features() (as row
-- text: scale included), and the views what a fresh computation gives.
\set VERBOSITY terse

CREATE SCHEMA sd;
CREATE TABLE sd.customers (LIKE fx.customers);
CREATE TABLE sd.sales_orders (LIKE fx.sales_orders);
CREATE TABLE sd.sales_order_lines (LIKE fx.sales_order_lines);
-- the property test's random() runs once per row scanned: autovacuum moving
-- rows or changing plans between runs would change the data it writes
ALTER TABLE sd.customers SET (autovacuum_enabled = off);
ALTER TABLE sd.sales_orders SET (autovacuum_enabled = off);
ALTER TABLE sd.sales_order_lines SET (autovacuum_enabled = off);
-- 40 customers; customer c has 3 + c % 4 orders from 2025-06 to 2026-01
-- (the feature window is 2025-07-01 .. 2025-12-31), two or three lines
-- each, product codes and quantities varying
INSERT INTO sd.customers
SELECT lpad(c::text, 4, '0'), 'Customer ' || c, 'K1', 'addr', NULL, '001' FROM generate_series(1, 40) c;
INSERT INTO sd.sales_orders
SELECT 'SO', (c * 100 + k)::text, lpad(c::text, 4, '0'), 'K1',
       to_char(date '2025-06-10' + ((k * 41 + c * 13) % 220), 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 40) c, generate_series(0, 2 + c % 4) k;
INSERT INTO sd.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || ((o.order_number::int * l) % 9),
       round((1 + (o.order_number::int * 31 % 70) / 10.0)::numeric, 2),
       round((40 + (o.order_number::int * 7919 % 900) + l * 0.25)::numeric, 2)
  FROM sd.sales_orders o, generate_series(1, 2 + o.order_number::int % 2) l;

SELECT rollup_rows FROM customer_analytics.enable_rollup('sd');
CREATE SCHEMA sd_bi;
SELECT name, member_rows FROM customer_analytics.create_segmentation('sdg', 'sd_bi', k => 3, segment => 'all',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 4, silhouette_sample => 0,
    source_schema => 'sd');
-- the four views read the features through segmentation_features() (the
-- model, profiles and elbow inside _segmentation_model(), _profiles() and
-- _elbow()); the state tables carry the segmentation's marker
SELECT c.relname, obj_description(c.oid, 'pg_class') AS marker
  FROM pg_class c WHERE c.relnamespace = 'customer_analytics_state'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'segment%sdg' ORDER BY 1;
SELECT count(*) FILTER (WHERE definition LIKE '%_segmentation_model(%' OR definition LIKE '%_segmentation_profiles(%'
                        OR definition LIKE '%_segmentation_elbow(%' OR definition LIKE '%segmentation_features(%')
         AS views_reading_the_features,
       count(*) FILTER (WHERE definition LIKE '%customer_features(%') AS views_computing_them
  FROM pg_matviews WHERE schemaname = 'sd_bi';

-- The state and the views against a recompute (use_rollup off: the source
-- tables).  The state is recomputed here in plain SQL from the tables.
CREATE FUNCTION sd_exact(seg text DEFAULT 'sdg') RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation_resolved(
        (SELECT x FROM customer_analytics.segmentations x WHERE x.name = seg));
    st regclass := to_regclass(format('customer_analytics_state.%I', 'segment_features_' || seg));
    rs customer_analytics.segmentation_refresh_state;
    f bigint; m bigint; mo bigint; p bigint; e bigint; sdiff bigint;
BEGIN
    SELECT * INTO rs FROM customer_analytics.segmentation_refresh_state y WHERE y.segmentation = seg;
    PERFORM set_config('customer_analytics.use_rollup', 'off', true);
    CREATE TEMP TABLE sd_cf ON COMMIT DROP AS
        SELECT * FROM customer_analytics.customer_features(s.feature_window, s.as_of, 'sd') cf
         WHERE customer_analytics._segment_filter(s.segment, cf.is_repeat);
    CREATE TEMP TABLE sd_model ON COMMIT DROP AS
        SELECT customer_analytics.kmeans_fit(features, s.k, s.options) AS model FROM sd_cf;
    -- the features the state gives (n/a: no state kept beside the views)
    IF rs.state_table = st THEN
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM customer_analytics._customer_features_from_state(%L, %L, %L) x'
                   ' WHERE customer_analytics._segment_filter(%L, x.is_repeat)'
                   ' EXCEPT ALL SELECT x::text FROM sd_cf x)'
                   ' UNION ALL (SELECT x::text FROM sd_cf x EXCEPT ALL'
                   ' SELECT x::text FROM customer_analytics._customer_features_from_state(%L, %L, %L) x'
                   ' WHERE customer_analytics._segment_filter(%L, x.is_repeat))) d',
                   st, s.feature_window, s.as_of, s.segment, st, s.feature_window, s.as_of, s.segment) INTO f;
    END IF;
    -- the state itself, from the tables (n/a: not kept from the order
    -- changes, its order counts are unknown)
    IF rs.snapshot IS NOT NULL THEN
    EXECUTE format($q$
        WITH o AS (SELECT h.customer_code::text AS customer_code, to_date(h.order_date, 'YYYYMMDD') AS d,
                          (SELECT sum(l.pretax_subtotal)::numeric FROM sd.sales_order_lines l
                            WHERE l.order_type = h.order_type AND l.order_number = h.order_number) AS total,
                          (SELECT sum(l.quantity)::numeric FROM sd.sales_order_lines l
                            WHERE l.order_type = h.order_type AND l.order_number = h.order_number) AS quantity
                     FROM sd.sales_orders h
                    WHERE h.confirmed_code = 'Y' AND h.customer_code IS NOT NULL
                      AND to_date(h.order_date, 'YYYYMMDD') <@ %1$L::daterange),
        want AS (SELECT ROW(o.customer_code, count(*), sum(o.total), count(o.total), sum(o.quantity), count(o.quantity),
                            (SELECT count(DISTINCT l.product_code) FROM sd.sales_orders h JOIN sd.sales_order_lines l
                                 USING (order_type, order_number)
                              WHERE h.customer_code = o.customer_code AND h.confirmed_code = 'Y'
                                AND to_date(h.order_date, 'YYYYMMDD') <@ %1$L::daterange),
                            min(o.d), max(o.d))::text AS r
                   FROM o GROUP BY o.customer_code)
        SELECT count(*) FROM ((SELECT x::text FROM %2$s x EXCEPT ALL SELECT r FROM want)
                              UNION ALL (SELECT r FROM want EXCEPT ALL SELECT x::text FROM %2$s x)) d$q$,
        s.feature_window, st) INTO sdiff;
    END IF;
    -- the views: members, model, profiles and elbow as computed afresh
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM sd_bi.%1$I x EXCEPT ALL SELECT y::text FROM %2$s y)'
                   ' UNION ALL (SELECT y::text FROM %2$s y EXCEPT ALL SELECT x::text FROM sd_bi.%1$I x)) d',
                   seg || '_members',
                   '(SELECT f.customer_code, customer_analytics.kmeans_predict((SELECT model FROM sd_model), f.features) AS cluster,'
                   ' f.visits, f.total_spend, f.ticket_size, f.skus, f.total_quantity, f.first_order, f.last_order,'
                   ' f.recency_days, f.tenure_days, f.span_days, f.quantity_per_visit, f.days_per_visit,'
                   ' f.skus_per_visit, f.diff, f.features FROM sd_cf f)') INTO m;
    EXECUTE format('SELECT count(*) FROM sd_bi.%I x WHERE x.model IS DISTINCT FROM (SELECT model FROM sd_model)',
                   seg || '_model') INTO mo;
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM sd_bi.%1$I x EXCEPT ALL'
                   ' SELECT y::text FROM customer_analytics.kmeans_profiles((SELECT model FROM sd_model), %2$L, %3$L, %4$L, ''sd'') y)'
                   ' UNION ALL (SELECT y::text FROM customer_analytics.kmeans_profiles((SELECT model FROM sd_model), %2$L, %3$L, %4$L, ''sd'') y'
                   ' EXCEPT ALL SELECT x::text FROM sd_bi.%1$I x)) d',
                   seg || '_profiles', s.segment, s.feature_window, s.as_of) INTO p;
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM sd_bi.%1$I x EXCEPT ALL'
                   ' SELECT y::text FROM customer_analytics.kmeans_elbow(%2$s, %3$s, %4$L, %5$L, %6$L, %7$L, %8$s, ''sd'') y)'
                   ' UNION ALL (SELECT y::text FROM customer_analytics.kmeans_elbow(%2$s, %3$s, %4$L, %5$L, %6$L, %7$L, %8$s, ''sd'') y'
                   ' EXCEPT ALL SELECT x::text FROM sd_bi.%1$I x)) d',
                   seg || '_elbow', s.k_from, s.k_to, s.segment, s.feature_window, s.as_of, s.options,
                   s.silhouette_sample) INTO e;
    PERFORM set_config('customer_analytics.use_rollup', 'on', true);
    DROP TABLE sd_cf, sd_model;
    RETURN format('%s members; rows differing: features %s, state %s, members %s, model %s, profiles %s, elbow %s',
                  (SELECT member_rows FROM customer_analytics.segmentations x WHERE x.name = seg),
                  COALESCE(f::text, 'n/a'), COALESCE(sdiff::text, 'n/a'), m, mo, p, e);
END $$;

-- the refresh's mode, as the refresh status records it
CREATE FUNCTION sd_refresh(seg text DEFAULT 'sdg') RETURNS text
LANGUAGE sql AS $$
    SELECT customer_analytics.refresh_segmentation(seg) IS NOT NULL;
    SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'segmentation' AND name = seg ORDER BY id DESC LIMIT 1;
$$;

SET client_min_messages = warning;
SELECT sd_exact();
-- the build kept a state: the first refresh has nothing to apply, and no
-- view to refresh (the same features and as_of: the views would come out
-- the same)
SELECT sd_refresh();
SELECT sd_exact();
SELECT phases::text LIKE '%refreshing%' AS views_refreshed
  FROM customer_analytics.refresh_history WHERE name = 'sdg' ORDER BY id DESC LIMIT 1;
SELECT snapshot IS NOT NULL AS has_snapshot, state_table = 'customer_analytics_state.segment_features_sdg'::regclass AS state_table,
       sku_table = 'customer_analytics_state.segment_skus_sdg'::regclass AS sku_table
  FROM customer_analytics.segmentation_refresh_state WHERE segmentation = 'sdg';

-- amounts change on several orders
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 333.33 WHERE order_number::int % 7 = 0;
SELECT sd_refresh();
SELECT sd_exact();
-- a new order (header and lines in one transaction), with a new product
BEGIN;
INSERT INTO sd.sales_orders VALUES ('SO', '9001', '0004', 'K1', '20251105', 'Y');
INSERT INTO sd.sales_order_lines VALUES ('SO', '9001', 1, 'NEW1', 2, 120.50), ('SO', '9001', 2, 'P1', 1.5, 80.05);
COMMIT;
SELECT sd_refresh();
SELECT sd_exact();
SELECT customer_code, visits, skus, last_order FROM sd_bi.sdg_members WHERE customer_code = '0004';
-- a customer's first and last orders in the window deleted: looked up again
SELECT customer_code, first_order, last_order, visits FROM sd_bi.sdg_members WHERE customer_code = '0010';
DELETE FROM sd.sales_orders WHERE order_number = (
    SELECT order_number FROM sd.sales_orders WHERE customer_code = '0010' AND order_date BETWEEN '20250701' AND '20251231'
     ORDER BY order_date DESC LIMIT 1);
DELETE FROM sd.sales_orders WHERE order_number = (
    SELECT order_number FROM sd.sales_orders WHERE customer_code = '0010' AND order_date BETWEEN '20250701' AND '20251231'
     ORDER BY order_date LIMIT 1);
SELECT sd_refresh();
SELECT sd_exact();
SELECT customer_code, first_order, last_order, visits FROM sd_bi.sdg_members WHERE customer_code = '0010';
-- dates moved out of the window, and into it
UPDATE sd.sales_orders SET order_date = '20240101' WHERE order_number IN ('1301', '1402');
UPDATE sd.sales_orders SET order_date = '20251201' WHERE order_date < '20250701' AND customer_code IN ('0007', '0008');
SELECT sd_refresh();
SELECT sd_exact();
-- confirmation withdrawn, and given again
UPDATE sd.sales_orders SET confirmed_code = 'N' WHERE customer_code = '0014';
SELECT sd_refresh();
SELECT sd_exact();
SELECT count(*) AS members_0014 FROM sd_bi.sdg_members WHERE customer_code = '0014';
UPDATE sd.sales_orders SET confirmed_code = 'Y' WHERE customer_code = '0014' AND order_number::int % 2 = 0;
SELECT sd_refresh();
SELECT sd_exact();
-- orders moved to another customer (and one to a customer not in the ERP)
UPDATE sd.sales_orders SET customer_code = '0017' WHERE customer_code = '0016' AND order_number::int % 2 = 1;
UPDATE sd.sales_orders SET customer_code = '9999' WHERE order_number = '1900';
SELECT sd_refresh();
SELECT sd_exact();
-- products of lines changed: distinct SKUs gained and lost
SELECT customer_code, skus FROM sd_bi.sdg_members WHERE customer_code IN ('0020', '0021') ORDER BY 1;
UPDATE sd.sales_order_lines SET product_code = 'P1' WHERE order_number LIKE '20__';
UPDATE sd.sales_order_lines SET product_code = 'X' || line_no WHERE order_number LIKE '21__';
SELECT sd_refresh();
SELECT sd_exact();
SELECT customer_code, skus FROM sd_bi.sdg_members WHERE customer_code IN ('0020', '0021') ORDER BY 1;
-- quantities and amounts NULL: a sum over no value is NULL again (0 in the
-- features), with the scale a recompute gives
UPDATE sd.sales_order_lines SET quantity = NULL, pretax_subtotal = NULL WHERE order_number LIKE '22__';
UPDATE sd.sales_order_lines SET quantity = NULL WHERE order_number LIKE '23__' AND line_no = 1;
SELECT sd_refresh();
SELECT sd_exact();
SELECT customer_code, total_spend, total_quantity FROM sd_bi.sdg_members WHERE customer_code IN ('0022', '0023') ORDER BY 1;
UPDATE sd.sales_order_lines SET quantity = 2, pretax_subtotal = 10.5 WHERE order_number = (
    SELECT min(order_number) FROM sd.sales_orders WHERE customer_code = '0022' AND order_date BETWEEN '20250701' AND '20251231');
SELECT sd_refresh();
SELECT sd_exact();
SELECT customer_code, total_spend, total_quantity FROM sd_bi.sdg_members WHERE customer_code = '0022';
-- an order inserted and deleted in one transaction: nothing to apply
BEGIN;
INSERT INTO sd.sales_orders VALUES ('SO', '9002', '0005', 'K1', '20251105', 'Y');
INSERT INTO sd.sales_order_lines VALUES ('SO', '9002', 1, 'P1', 1, 50);
DELETE FROM sd.sales_order_lines WHERE order_number = '9002';
DELETE FROM sd.sales_orders WHERE order_number = '9002';
COMMIT;
SELECT sd_refresh();
SELECT sd_exact();
-- every order of a customer gone: its state rows go too
DELETE FROM sd.sales_orders WHERE customer_code = '0025';
SELECT sd_refresh();
SELECT sd_exact();
SELECT (SELECT count(*) FROM customer_analytics_state.segment_features_sdg WHERE customer_code = '0025') AS state_rows_0025,
       (SELECT count(*) FROM customer_analytics_state.segment_skus_sdg WHERE customer_code = '0025') AS sku_rows_0025;

-- a new as_of alone is applied from the state: recency and tenure move
SELECT customer_code, recency_days, tenure_days FROM sd_bi.sdg_members WHERE customer_code = '0001';
SELECT name FROM customer_analytics.alter_segmentation('sdg', as_of => '2026-02-01');
SELECT mode FROM customer_analytics.refresh_history WHERE name = 'sdg' ORDER BY id DESC LIMIT 1;
SELECT sd_exact();
SELECT customer_code, recency_days, tenure_days FROM sd_bi.sdg_members WHERE customer_code = '0001';
-- a plain REFRESH of a view outside refresh_segmentation() computes the
-- features from the orders (the state is read only by the refresh that
-- made it current)
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number::int % 11 = 0;
REFRESH MATERIALIZED VIEW sd_bi.sdg_model;
REFRESH MATERIALIZED VIEW CONCURRENTLY sd_bi.sdg_members;
REFRESH MATERIALIZED VIEW sd_bi.sdg_profiles;
REFRESH MATERIALIZED VIEW sd_bi.sdg_elbow;
SELECT regexp_replace(sd_exact(), 'features \d+, state \d+, ', '') AS views_after_plain_refresh;
SELECT sd_refresh();
SELECT sd_exact();

-- what the deltas cannot follow falls back, and the status says why
-- (a changed window)
SELECT name FROM customer_analytics.alter_segmentation('sdg', feature_window => '[2025-08-01,2025-12-31]');
SELECT mode FROM customer_analytics.refresh_history WHERE name = 'sdg' ORDER BY id DESC LIMIT 1;
SELECT sd_exact();
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 2 WHERE order_number::int % 13 = 0;
SELECT sd_refresh();
SELECT sd_exact();
-- (a write and a refresh in one transaction; the next builds the state again)
BEGIN;
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number::int % 17 = 0;
SELECT sd_refresh();
SELECT sd_exact();
COMMIT;
SELECT snapshot IS NULL AS no_snapshot FROM customer_analytics.segmentation_refresh_state WHERE segmentation = 'sdg';
SELECT sd_refresh();
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number::int % 19 = 0;
SELECT sd_refresh();
SELECT sd_exact();
-- (a TRUNCATE, a rebuilt rollup, no rollup)
TRUNCATE sd.sales_order_lines;
SELECT sd_refresh();
SELECT sd_exact();
INSERT INTO sd.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || ((o.order_number::int * l) % 9),
       round((1 + (o.order_number::int * 31 % 70) / 10.0)::numeric, 2),
       round((40 + (o.order_number::int * 7919 % 900) + l * 0.25)::numeric, 2)
  FROM sd.sales_orders o, generate_series(1, 2 + o.order_number::int % 2) l;
SELECT sd_refresh();
SELECT sd_exact();
SELECT state FROM customer_analytics.rebuild_rollup('sd');
SELECT sd_refresh();
SELECT sd_refresh();
SELECT customer_analytics.drop_rollup('sd');
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number::int % 3 = 0;
SELECT sd_refresh();
SELECT sd_exact();
SELECT rollup_rows FROM customer_analytics.enable_rollup('sd');
SELECT sd_refresh();
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal - 1 WHERE order_number::int % 3 = 0;
SELECT sd_refresh();
SELECT sd_exact();

-- a rolling window: a new as_of inside the same window is a delta, a
-- window that moves is a full recompute
SET customer_analytics.as_of_date = '2026-01-07';
SELECT name FROM customer_analytics.alter_segmentation('sdg', rolling =>
    '{"as_of": "today", "feature_window": {"from": "month_start -6 months", "to": "month_start -1 day"}}');
SELECT mode FROM customer_analytics.refresh_history WHERE name = 'sdg' ORDER BY id DESC LIMIT 1;
SET customer_analytics.as_of_date = '2026-01-20';
SELECT sd_refresh();
SELECT sd_exact();
SET customer_analytics.as_of_date = '2026-02-03';
SELECT sd_refresh();
SELECT sd_exact();
UPDATE sd.sales_orders SET order_date = '20260115' WHERE order_number = '1101';
SELECT sd_refresh();
SELECT sd_exact();
RESET customer_analytics.as_of_date;
SELECT name FROM customer_analytics.alter_segmentation('sdg', rolling => 'null', feature_window => '[2025-07-01,2025-12-31]',
                                                        as_of => '2026-01-07');

-- line amounts without a fixed scale: the state is computed in full each time
ALTER TABLE sd.sales_order_lines ALTER COLUMN quantity TYPE numeric;
SELECT state FROM customer_analytics.rebuild_rollup('sd');
SELECT sd_refresh();
UPDATE sd.sales_order_lines SET quantity = quantity * 1.5 WHERE order_number::int % 7 = 3;
SELECT sd_refresh();
SELECT sd_exact();
ALTER TABLE sd.sales_order_lines ALTER COLUMN quantity TYPE numeric(12,3);
SELECT state FROM customer_analytics.rebuild_rollup('sd');
SELECT sd_refresh();
SELECT sd_refresh();

-- a relation already named like the state: a warning, and the features
-- computed once per refresh in a temporary table (no state kept, no
-- snapshot); the views still right, the relation left alone
CREATE TABLE customer_analytics_state.segment_features_sdx (note text);
SET client_min_messages = notice;
SELECT name, member_rows FROM customer_analytics.create_segmentation('sdx', 'sd_bi', k => 2, segment => 'repeat',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 3, silhouette_sample => 0,
    source_schema => 'sd');
SET client_min_messages = warning;
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number = '1001';
SELECT sd_refresh('sdx');
SELECT sd_exact('sdx');
SELECT sku_table IS NULL AS no_sku_table, snapshot IS NULL AS no_snapshot,
       state_table <> 'customer_analytics_state.segment_features_sdx'::regclass AS not_the_relation
  FROM customer_analytics.segmentation_refresh_state WHERE segmentation = 'sdx';
SELECT customer_analytics.drop_segmentation('sdx');
SELECT count(*) AS note_table_kept FROM customer_analytics_state.segment_features_sdx;
DROP TABLE customer_analytics_state.segment_features_sdx;

-- errors of the state reader
SELECT err($$SELECT count(*) FROM customer_analytics._customer_features_from_state(NULL, '[2025-07-01,2025-12-31]', '2026-01-07')$$);
SELECT err($$SELECT count(*) FROM customer_analytics._customer_features_from_state(0, '[2025-07-01,2025-12-31]', '2026-01-07')$$);
SELECT err($$SELECT count(*) FROM customer_analytics._customer_features_from_state('customer_analytics_state.segment_features_sdg', '[2025-07-01,2025-12-31]', '2025-06-01')$$);
SELECT err($$SELECT customer_analytics.refresh_segmentation('sdg', NULL)$$);

-- Random write batches, each committed, then a refresh, checked against a
-- recompute every time (a fixed seed: the same batches each run).
-- A pseudo-random number in [0, 1) for a row, from its key and one draw per
-- statement (salt): the rows get the same values whatever order a scan
-- visits them in (vacuum and pruning move rows between runs).
CREATE FUNCTION pg_temp.row_rand(key text, salt float8) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$ SELECT (abs(hashtext(key || ':' || salt::text)) % 1000003)::float8 / 1000003 $$;
CREATE PROCEDURE sd_property(rounds int)
LANGUAGE plpgsql AS $$
DECLARE
    result text;
    wrong int := 0;
    deltas int := 0;
    kind int;
BEGIN
    PERFORM setseed(0.34);
    FOR i IN 1 .. rounds LOOP
        FOR j IN 1 .. 1 + floor(random() * 4)::int LOOP
            kind := floor(random() * 8)::int;
            IF kind = 0 THEN
                UPDATE sd.sales_order_lines SET pretax_subtotal = round((pg_temp.row_rand(order_number || ':' || line_no, (SELECT random())) * 2000)::numeric, 2)
                 WHERE order_number::int % 23 = (SELECT floor(random() * 23)::int);
            ELSIF kind = 1 THEN
                INSERT INTO sd.sales_orders VALUES ('SO', (20000 + i * 10 + j)::text,
                    lpad((1 + floor(random() * 42))::int::text, 4, '0'), 'K1',
                    to_char(date '2025-06-01' + floor(random() * 230)::int, 'YYYYMMDD'), 'Y');
                INSERT INTO sd.sales_order_lines VALUES ('SO', (20000 + i * 10 + j)::text, 1,
                    'R' || floor(random() * 12)::int, round((random() * 5)::numeric, 2), round((random() * 1500)::numeric, 2));
            ELSIF kind = 2 THEN
                DELETE FROM sd.sales_orders WHERE order_number = (
                    SELECT order_number FROM sd.sales_orders ORDER BY order_number OFFSET floor(random() * 50)::int LIMIT 1);
            ELSIF kind = 3 THEN
                UPDATE sd.sales_orders SET order_date = to_char(date '2025-06-01' + floor(pg_temp.row_rand(order_number, (SELECT random())) * 230)::int, 'YYYYMMDD')
                 WHERE order_number::int % 31 = (SELECT floor(random() * 31)::int);
            ELSIF kind = 4 THEN
                UPDATE sd.sales_orders SET confirmed_code = CASE confirmed_code WHEN 'Y' THEN 'N' ELSE 'Y' END
                 WHERE order_number::int % 29 = (SELECT floor(random() * 29)::int);
            ELSIF kind = 5 THEN
                UPDATE sd.sales_orders SET customer_code = lpad((1 + floor(pg_temp.row_rand(order_number, (SELECT random())) * 42))::int::text, 4, '0')
                 WHERE order_number::int % 37 = (SELECT floor(random() * 37)::int);
            ELSIF kind = 6 THEN
                UPDATE sd.sales_order_lines SET product_code = 'R' || floor(pg_temp.row_rand(order_number || ':' || line_no, (SELECT random())) * 12)::int,
                                                quantity = CASE WHEN pg_temp.row_rand(order_number || ':' || line_no || ':q', (SELECT random())) < 0.2 THEN NULL
                                                                ELSE round((pg_temp.row_rand(order_number || ':' || line_no || ':n', (SELECT random())) * 5)::numeric, 2) END
                 WHERE order_number::int % 19 = (SELECT floor(random() * 19)::int);
            ELSE
                DELETE FROM sd.sales_order_lines WHERE order_number::int % 41 = (SELECT floor(random() * 41)::int) AND line_no = 2;
            END IF;
        END LOOP;
        COMMIT;
        IF sd_refresh() LIKE 'delta%' THEN
            deltas := deltas + 1;
        END IF;
        COMMIT;
        result := sd_exact();
        IF result !~ 'features 0, state 0, members 0, model 0, profiles 0, elbow 0$' THEN
            wrong := wrong + 1;
            RAISE WARNING 'round %: %', i, result;
        END IF;
        COMMIT;
    END LOOP;
    RAISE WARNING '% rounds: % refreshed from their deltas, % not exact', rounds, deltas, wrong;
END $$;
CALL sd_property(20);

-- A non-superuser's segmentation (an analyst with SELECT on the ERP tables
-- and on the rollup): its state tables its own and granted to no one,
-- refreshed from the order changes as its owner.  A superuser's refresh of
-- it runs as its owner too (issue 21): from the order changes, like the
-- owner's own, leaving the owner's next refresh nothing to apply.
SELECT customer_analytics._rollup_table(id) AS sd_rollup, customer_analytics._rollup_dirty_table(id) AS sd_dirty
  FROM customer_analytics.rollups WHERE source_schema = 'sd' \gset
CREATE ROLE ca_sd_owner;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_sd_owner;  -- the state of its definitions
GRANT USAGE ON SCHEMA sd TO ca_sd_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA sd TO ca_sd_owner;
GRANT SELECT ON :sd_rollup, :sd_dirty TO ca_sd_owner;
GRANT CREATE, USAGE ON SCHEMA sd_bi TO ca_sd_owner;
SET ROLE ca_sd_owner;
SELECT name, member_rows FROM customer_analytics.create_segmentation('sdo', 'sd_bi', k => 3, segment => 'repeat',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 3, silhouette_sample => 0,
    source_schema => 'sd');
RESET ROLE;
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 3 WHERE order_number::int % 7 = 1;
SET ROLE ca_sd_owner;
SELECT sd_refresh('sdo');
SELECT sd_exact('sdo');
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, has_table_privilege('public', c.oid, 'SELECT') AS public_reads
  FROM pg_class c WHERE c.relnamespace = 'customer_analytics_state'::regnamespace AND c.relname LIKE 'segment%sdo' ORDER BY 1;
RESET ROLE;
UPDATE sd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 3 WHERE order_number::int % 7 = 2;
SELECT sd_refresh('sdo');
SET ROLE ca_sd_owner;
-- (the views and the state are right)
SELECT regexp_replace(sd_exact('sdo'), 'features \d+, state \d+, ', '') AS views_after_another_roles_refresh;
SELECT sd_refresh('sdo');
SELECT sd_exact('sdo');
SELECT customer_analytics.drop_segmentation('sdo');
RESET ROLE;
REVOKE ALL ON :sd_rollup, :sd_dirty FROM ca_sd_owner;
REVOKE ALL ON ALL TABLES IN SCHEMA sd FROM ca_sd_owner;
REVOKE ALL ON SCHEMA sd, sd_bi FROM ca_sd_owner;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_sd_owner;
DROP ROLE ca_sd_owner;

-- dropping the segmentation drops its state
SELECT count(*) AS state_relations FROM customer_analytics.segmentations s,
       customer_analytics._segmentation_state_relations(s) WHERE s.name = 'sdg';
SELECT customer_analytics.drop_segmentation('sdg');
SELECT to_regclass('customer_analytics_state.segment_features_sdg') IS NULL AS state_dropped, to_regclass('customer_analytics_state.segment_skus_sdg') IS NULL AS skus_dropped;
RESET client_min_messages;
SELECT customer_analytics.drop_rollup('sd');
DROP SCHEMA sd_bi CASCADE;
DROP SCHEMA sd CASCADE;
