-- A segmentation's views hold the same rows whoever builds them (issue 25).
-- 1.6's model view reads k and options once, through _segmentation_model();
-- 1.5's passed (_segmentation_to_run(name)).k and .options to kmeans_fit,
-- two PL/pgSQL calls per customer.  Under 1.5: two segmentations over 300
-- customers of a generated source; their views' rows kept.  After ALTER
-- EXTENSION ... UPDATE: the update rebuilt their views (the model view reads
-- _segmentation_model()), the rows are those 1.5 built, and stay so through
-- refresh_segmentation(), a plain REFRESH and a fresh build of the same
-- definitions; each view's rows are pinned by a digest, so that any change
-- to a view's result fails here.  Needs nothing of 00_setup but public.err.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS customer_analytics CASCADE;
RESET client_min_messages;

-- 300 customers, 0..19 orders each in 2025 (some unconfirmed), 1..4
-- lines; every value from hashint8 of an id (no random())
CREATE SCHEMA vr;
CREATE TABLE vr.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE vr.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1));
CREATE TABLE vr.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2));
INSERT INTO vr.customers
SELECT lpad(c::text, 7, '0'), 'customer ' || c, (ARRAY['K1', 'K2', 'PS', 'T9'])[1 + abs(hashint8(c)) % 4],
       'addr ' || c, NULL, '002'
  FROM generate_series(1, 300) c;
INSERT INTO vr.sales_orders
SELECT 'SO', (c * 100 + o)::text, lpad(c::text, 7, '0'), 'K1',
       to_char(date '2025-01-01' + (abs(hashint8(c * 100 + o)) % 365)::int, 'YYYYMMDD'),
       CASE WHEN abs(hashint8(c * 100 + o + 7)) % 20 = 0 THEN 'N' ELSE 'Y' END
  FROM generate_series(1, 300) c, generate_series(1, (abs(hashint8(c + 1000)) % 20)::int) o;
INSERT INTO vr.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || (abs(hashint8(o.order_number::bigint * 10 + l)) % 40),
       1 + abs(hashint8(o.order_number::bigint * 10 + l + 3)) % 12,
       round((5 + abs(hashint8(o.order_number::bigint * 10 + l + 5)) % 50000 / 100.0)::numeric, 2)
  FROM vr.sales_orders o, generate_series(1, (1 + abs(hashint8(o.order_number::bigint)) % 4)::int) l;
SELECT count(*) AS customers, sum(n) AS orders FROM (SELECT count(*) AS n FROM vr.sales_orders GROUP BY customer_code) x;

-- Each view of a segmentation: its rows and a digest of them in key order
-- (the model without its segmentation column, which holds the name).
CREATE FUNCTION vr_rows(seg text)
RETURNS TABLE (view text, row_count bigint, digest text) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT ''model'', count(*), md5(string_agg(m.model::text, E''\n'')) FROM vr_bi.%1$I m
         UNION ALL
         SELECT ''members'', count(*), md5(string_agg(t::text, E''\n'' ORDER BY t.customer_code)) FROM vr_bi.%2$I t
         UNION ALL
         SELECT ''profiles'', count(*), md5(string_agg(t::text, E''\n'' ORDER BY t.cluster)) FROM vr_bi.%3$I t
         UNION ALL
         SELECT ''elbow'', count(*), md5(string_agg(t::text, E''\n'' ORDER BY t.k)) FROM vr_bi.%4$I t',
        seg || '_model', seg || '_members', seg || '_profiles', seg || '_elbow');
END $$;
-- How many times refreshing a segmentation's model view calls
-- _segmentation_to_run() (in the refresh's transaction).
CREATE FUNCTION vr_catalog_calls(seg text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    before bigint := COALESCE(pg_stat_get_xact_function_calls(
                         'customer_analytics._segmentation_to_run(text)'::regprocedure), 0);
BEGIN
    EXECUTE format('REFRESH MATERIALIZED VIEW vr_bi.%I', seg || '_model');
    RETURN COALESCE(pg_stat_get_xact_function_calls('customer_analytics._segmentation_to_run(text)'::regprocedure), 0)
           - before;
END $$;

CREATE EXTENSION customer_analytics VERSION '1.5';
CREATE SCHEMA vr_bi;
SELECT rollup_rows FROM customer_analytics.enable_rollup('vr');
SELECT name, member_rows FROM customer_analytics.create_segmentation('vr_all', 'vr_bi', k => 3, segment => 'all', k_to => 6,
                                                                    silhouette_sample => 0, source_schema => 'vr');
SELECT name, member_rows FROM customer_analytics.create_segmentation('vr_rep', 'vr_bi', source_schema => 'vr',
                                                                    options => '{"seed": 7, "n_init": 4}',
                                                                    silhouette_sample => 100);
CREATE TEMP TABLE built_by_15 AS
SELECT 'vr_all' AS seg, * FROM vr_rows('vr_all') UNION ALL SELECT 'vr_rep', * FROM vr_rows('vr_rep');
-- 1.5's model view calls the catalog function twice per customer (and
-- segmentation_features once)
SET track_functions = 'all';
BEGIN;
SELECT vr_catalog_calls('vr_all') AS calls_under_15, (SELECT member_rows FROM customer_analytics.segmentations
                                                      WHERE name = 'vr_all') AS customers;
ROLLBACK;

SET client_min_messages = warning;
ALTER EXTENSION customer_analytics UPDATE;
RESET client_min_messages;
-- the update built the views again: the model view reads _segmentation_model()
SELECT s.name, customer_analytics._view_reads(format('vr_bi.%I', s.name || '_model')::regclass,
                                              'customer_analytics._segmentation_model(text)'::regprocedure) AS reads_model,
       customer_analytics._view_reads(format('vr_bi.%I', s.name || '_model')::regclass,
                                      'customer_analytics._segmentation_to_run(text)'::regprocedure) AS reads_catalog,
       h.mode
  FROM customer_analytics.segmentations s,
       LATERAL (SELECT x.mode FROM customer_analytics.refresh_history x
                 WHERE x.kind = 'segmentation' AND x.name = s.name ORDER BY x.id DESC LIMIT 1) h
 ORDER BY 1;
-- now twice per refresh of the model view, whatever the number of customers
BEGIN;
SELECT vr_catalog_calls('vr_all') AS calls_under_16;
ROLLBACK;
RESET track_functions;

-- the same rows as 1.5 built: after the update, after refresh_segmentation()
-- (with and without CONCURRENTLY), after a plain REFRESH of the four views
CREATE FUNCTION vr_differences() RETURNS TABLE (seg text, view text) LANGUAGE sql AS $$
    SELECT b.seg, b.view FROM built_by_15 b
     WHERE NOT EXISTS (SELECT 1 FROM vr_rows(b.seg) r
                        WHERE r.view = b.view AND r.row_count = b.row_count AND r.digest = b.digest)
     ORDER BY 1, 2
$$;
SELECT * FROM vr_differences();
SELECT member_rows FROM customer_analytics.refresh_segmentation('vr_all');
SELECT member_rows FROM customer_analytics.refresh_segmentation('vr_rep', false);
SELECT * FROM vr_differences();
REFRESH MATERIALIZED VIEW vr_bi.vr_all_model;
REFRESH MATERIALIZED VIEW vr_bi.vr_all_members;
REFRESH MATERIALIZED VIEW vr_bi.vr_all_profiles;
REFRESH MATERIALIZED VIEW vr_bi.vr_all_elbow;
REFRESH MATERIALIZED VIEW CONCURRENTLY vr_bi.vr_rep_model;
REFRESH MATERIALIZED VIEW CONCURRENTLY vr_bi.vr_rep_members;
REFRESH MATERIALIZED VIEW CONCURRENTLY vr_bi.vr_rep_profiles;
REFRESH MATERIALIZED VIEW CONCURRENTLY vr_bi.vr_rep_elbow;
SELECT * FROM vr_differences();
-- after a change of the orders, refresh_segmentation() (from the feature
-- state) and a plain REFRESH agree
UPDATE vr.sales_order_lines SET quantity = quantity + 1 WHERE order_number::bigint % 7 = 0;
SELECT member_rows FROM customer_analytics.refresh_segmentation('vr_all');
CREATE TEMP TABLE after_change AS SELECT * FROM vr_rows('vr_all');
REFRESH MATERIALIZED VIEW vr_bi.vr_all_model;
REFRESH MATERIALIZED VIEW vr_bi.vr_all_members;
REFRESH MATERIALIZED VIEW vr_bi.vr_all_profiles;
REFRESH MATERIALIZED VIEW vr_bi.vr_all_elbow;
SELECT a.view, a.row_count, a.digest = r.digest AS same_rows, a.digest <> b.digest AS changed
  FROM after_change a JOIN vr_rows('vr_all') r USING (view)
  JOIN built_by_15 b ON b.seg = 'vr_all' AND b.view = a.view ORDER BY 1;
UPDATE vr.sales_order_lines SET quantity = quantity - 1 WHERE order_number::bigint % 7 = 0;
SELECT member_rows FROM customer_analytics.refresh_segmentation('vr_all');
SELECT * FROM vr_differences();

-- a fresh 1.6 build of the same definitions holds the same rows
SELECT customer_analytics.drop_segmentation('vr_all');
SELECT customer_analytics.drop_segmentation('vr_rep');
SELECT name FROM customer_analytics.create_segmentation('vr_all', 'vr_bi', k => 3, segment => 'all', k_to => 6,
                                                       silhouette_sample => 0, source_schema => 'vr');
SELECT name FROM customer_analytics.create_segmentation('vr_rep', 'vr_bi', source_schema => 'vr',
                                                       options => '{"seed": 7, "n_init": 4}', silhouette_sample => 100);
SELECT * FROM vr_differences();

-- the rows themselves, pinned: a digest that changes is a view whose
-- result changed (every model, label, mean, inertia and silhouette)
SELECT seg, view, row_count, digest FROM built_by_15 ORDER BY 1, 2;
-- and readable: the models' inertia and sizes, the elbows' picks
SELECT s.name, round((m.model->>'inertia')::numeric, 6) AS inertia, m.model->'sizes' AS sizes
  FROM customer_analytics.segmentations s, LATERAL (SELECT customer_analytics._segmentation_model(s.name) AS model) m
 ORDER BY 1;
SELECT k, round(inertia::numeric, 6) AS inertia, round(silhouette::numeric, 6) AS silhouette, kneedle_pick, silhouette_pick
  FROM vr_bi.vr_all_elbow ORDER BY k;

-- The canonical sort's shortcut (rows already in order of their features:
-- one pass, then a counting sort by label) gives what the full sort gives:
-- each aggregate over the same 400 rows in order, in reverse and shuffled,
-- with duplicate rows, labels dense (0..3) or sparse and negative (the full
-- sort), exact and sampled silhouettes; one distinct result each.
CREATE TEMP TABLE sp AS
SELECT i, ARRAY[(i % 7)::float8, ((i * 13) % 5)::float8 / 3, (i % 11)::float8] AS x,
       i % 4 AS dense, (i % 4) * 100000 - 150000 AS sparse
  FROM generate_series(1, 400) i;
SELECT count(DISTINCT fit) AS fits, count(DISTINCT dense_exact) AS dense_exact, count(DISTINCT dense_sample) AS dense_sample,
       count(DISTINCT sparse_exact) AS sparse_exact, count(DISTINCT sparse_sample) AS sparse_sample, count(*) AS orders
  FROM (SELECT customer_analytics.kmeans_fit(x, 3, '{"seed": 1, "n_init": 3}' ORDER BY x)::text AS fit,
               customer_analytics.silhouette(x, dense ORDER BY x) AS dense_exact,
               customer_analytics.silhouette(x, dense, 50, 3 ORDER BY x) AS dense_sample,
               customer_analytics.silhouette(x, sparse ORDER BY x) AS sparse_exact,
               customer_analytics.silhouette(x, sparse, 50, 3 ORDER BY x) AS sparse_sample FROM sp
        UNION ALL
        SELECT customer_analytics.kmeans_fit(x, 3, '{"seed": 1, "n_init": 3}' ORDER BY x DESC)::text,
               customer_analytics.silhouette(x, dense ORDER BY x DESC),
               customer_analytics.silhouette(x, dense, 50, 3 ORDER BY x DESC),
               customer_analytics.silhouette(x, sparse ORDER BY x DESC),
               customer_analytics.silhouette(x, sparse, 50, 3 ORDER BY x DESC) FROM sp
        UNION ALL
        SELECT customer_analytics.kmeans_fit(x, 3, '{"seed": 1, "n_init": 3}' ORDER BY md5(i::text))::text,
               customer_analytics.silhouette(x, dense ORDER BY md5(i::text)),
               customer_analytics.silhouette(x, dense, 50, 3 ORDER BY md5(i::text)),
               customer_analytics.silhouette(x, sparse ORDER BY md5(i::text)),
               customer_analytics.silhouette(x, sparse, 50, 3 ORDER BY md5(i::text)) FROM sp) r;
DROP TABLE sp;

-- clean up: a fresh extension for whatever runs next
SELECT customer_analytics.drop_segmentation('vr_all');
SELECT customer_analytics.drop_segmentation('vr_rep');
DROP FUNCTION vr_differences();
DROP FUNCTION vr_rows(text);
DROP FUNCTION vr_catalog_calls(text);
SELECT customer_analytics.drop_rollup('vr');
DROP SCHEMA vr_bi;
DROP SCHEMA vr CASCADE;
SET client_min_messages = warning;
DROP EXTENSION customer_analytics;
RESET client_min_messages;
CREATE EXTENSION customer_analytics;
