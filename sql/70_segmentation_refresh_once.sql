-- The segmentation refresh's last shared costs (issue 25).
-- 1. The elbow's silhouettes on the fits' parallel workers
--    (_kmeans_silhouettes: one task per model, when the models share their
--    scaling): every score the same double (float8send) as the serial loop's,
--    sampled and exact, with ties, duplicated points and undefined scores.
-- 2. refresh_segmentation() reads the features from its feature state once
--    (a scratch table that segmentation_features() returns to the four
--    views), not once per view: the state's reader runs once, and the four
--    views still equal a fresh computation of their queries.
-- 3. The elbow's view refreshed before the model's (its fits include the
--    model's k, which the model then takes from the fit cache): the order
--    of the recorded phases.
\set VERBOSITY terse

-- 1. 3,000 points in 5 features (six blobs), a grid with ties and each
-- point three times (and a constant feature), 12 points for k up to 12
CREATE TABLE public.so_pts AS
SELECT ARRAY[(i % 6) * 3 + sin(i * 1.7) * (1 + i % 3),
             (i % 6 / 2) * 4 + cos(i * 0.37) * 2,
             sin(i * 0.011) * 5,
             (i % 6 % 2) * 6 + sin(i * 2.3),
             cos(i * 0.7) * (i % 4)]::float8[] AS features
  FROM generate_series(1, 3000) i;
CREATE TABLE public.so_grid AS
SELECT ARRAY[x, y, 7]::float8[] AS features
  FROM generate_series(0, 9) x, generate_series(0, 9) y, generate_series(1, 3) dup;
CREATE TABLE public.so_few AS
SELECT ARRAY[i % 4, i / 4]::float8[] AS features FROM generate_series(0, 11) i;

-- parallel however small the data, and the workers compute every score
-- (the leader none): a score computed differently by a worker shows below
SET customer_analytics.kmeans_parallel_min_points = 0;
SET parallel_leader_participation = off;

-- the elbow's rows with workers processes (0: the serial loop)
CREATE FUNCTION pg_temp.elbow(workers int, tbl text, k_to int, options jsonb, sample int)
RETURNS TABLE(k int, inertia float8, silhouette float8) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_parallel_workers', workers::text, true);
    RETURN QUERY EXECUTE format('SELECT e.k, e.inertia, e.silhouette'
                                '  FROM customer_analytics._kmeans_elbow_over(1, $1, $2, $3, %L) e',
                                'SELECT features FROM ' || tbl) USING k_to, options, sample;
END $$;
CREATE TEMP TABLE so_cases(tbl text, k_to int, options jsonb, sample int);
INSERT INTO so_cases VALUES ('public.so_pts', 10, '{"seed": 0, "n_init": 4}', 2000),
                            ('public.so_pts', 8, '{"seed": 1, "n_init": 3}', 500),
                            ('public.so_pts', 6, '{"seed": 0, "n_init": 2}', 0),
                            ('public.so_grid', 10, '{"seed": 0, "n_init": 4}', 2000),
                            ('public.so_grid', 10, '{"seed": 2, "n_init": 4}', 50),
                            ('public.so_grid', 10, '{"seed": 0, "n_init": 3}', 0),
                            ('public.so_few', 12, '{"seed": 0, "n_init": 2}', 5),
                            ('public.so_few', 12, '{"seed": 0, "n_init": 2}', 0);
CREATE TEMP TABLE so_serial AS
SELECT c.tbl, c.sample, c.options, e.* FROM so_cases c, pg_temp.elbow(0, c.tbl, c.k_to, c.options, c.sample) e;
CREATE TEMP TABLE so_parallel AS
SELECT c.tbl, c.sample, c.options, e.* FROM so_cases c, pg_temp.elbow(2, c.tbl, c.k_to, c.options, c.sample) e;
-- per case: the k compared, those with a score, and those whose scores or
-- inertias differ in any bit (0 expected)
SELECT s.tbl, s.sample, s.options, count(*) AS ks, count(s.silhouette) AS scored,
       count(*) FILTER (WHERE float8send(s.silhouette) IS DISTINCT FROM float8send(p.silhouette)
                           OR float8send(s.inertia) IS DISTINCT FROM float8send(p.inertia)) AS differ
  FROM so_serial s FULL JOIN so_parallel p USING (tbl, sample, options, k)
 GROUP BY 1, 2, 3 ORDER BY 1, 2 DESC, 3::text;

-- the workers did compute the scores (else the comparison proves nothing):
-- the aggregate says so at DEBUG1 (the models fitted first, their DEBUG
-- lines not shown)
CREATE TEMP TABLE so_models AS
SELECT customer_analytics._kmeans_fits(features, 1, 6, '{"n_init": 2, "seed": 0}') AS models FROM public.so_pts;
SET customer_analytics.kmeans_parallel_workers = 2;
SET client_min_messages = debug1;
SELECT cardinality(customer_analytics._kmeans_silhouettes(p.features, (SELECT models FROM so_models), 2000, 0)) AS scores
  FROM public.so_pts p;
-- with the leader taking scores too
RESET parallel_leader_participation;
SELECT cardinality(customer_analytics._kmeans_silhouettes(p.features, (SELECT models FROM so_models), 2000, 0)) AS scores
  FROM public.so_pts p;
-- serial (no DEBUG line): fewer points than the minimum, 0 workers, one
-- model, models of different scalings (fitted on other points)
SET customer_analytics.kmeans_parallel_min_points = 3001;
SELECT cardinality(customer_analytics._kmeans_silhouettes(p.features, (SELECT models FROM so_models), 2000, 0)) AS scores
  FROM public.so_pts p;
SET customer_analytics.kmeans_parallel_min_points = 0;
SET customer_analytics.kmeans_parallel_workers = 0;
SELECT cardinality(customer_analytics._kmeans_silhouettes(p.features, (SELECT models FROM so_models), 2000, 0)) AS scores
  FROM public.so_pts p;
SET customer_analytics.kmeans_parallel_workers = 2;
SELECT cardinality(customer_analytics._kmeans_silhouettes(p.features, (SELECT models[2:2] FROM so_models), 2000, 0)) AS scores
  FROM public.so_pts p;
RESET client_min_messages;
CREATE TEMP TABLE so_mixed AS
SELECT ARRAY[(SELECT models[3] FROM so_models),
             (SELECT customer_analytics.kmeans_fit(features, 3, '{"n_init": 2, "seed": 0}') FROM public.so_pts WHERE features[3] > 0)] AS models;
SET client_min_messages = debug1;
SELECT cardinality(customer_analytics._kmeans_silhouettes(p.features, (SELECT models FROM so_mixed), 2000, 0)) AS scores
  FROM public.so_pts p;
RESET client_min_messages;
CREATE TEMP TABLE so_mixed_scores AS
SELECT customer_analytics._kmeans_silhouettes(p.features, (SELECT models FROM so_mixed), 2000, 0) AS s
  FROM public.so_pts p;
-- and those scores are silhouette()'s, model by model
SELECT count(*) AS models,
       count(*) FILTER (WHERE float8send(x.s[m.i]) = float8send(
           (SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(m.model, p.features),
                                                 customer_analytics.kmeans_predict(m.model, p.features), 2000, 0)
              FROM public.so_pts p))) AS same_as_silhouette
  FROM so_mixed_scores x, unnest((SELECT models FROM so_mixed)) WITH ORDINALITY m(model, i);
-- errors as the serial loop's: an exact score over too many points
SELECT customer_analytics._kmeans_silhouettes(p.features, (SELECT models FROM so_models), 0, 0) IS NOT NULL AS scored
  FROM public.so_pts p, generate_series(1, 34) g;
RESET customer_analytics.kmeans_parallel_workers;
RESET customer_analytics.kmeans_parallel_min_points;
DROP TABLE public.so_pts, public.so_grid, public.so_few;

-- 2. A segmentation with a feature state: 300 customers, customer c with
-- c % 5 orders
CREATE SCHEMA so;
CREATE TABLE so.customers (LIKE fx.customers);
CREATE TABLE so.sales_orders (LIKE fx.sales_orders);
CREATE TABLE so.sales_order_lines (LIKE fx.sales_order_lines);
INSERT INTO so.customers
SELECT lpad(c::text, 4, '0'), 'Customer ' || c, 'K1', 'addr', NULL, '001' FROM generate_series(1, 300) c;
INSERT INTO so.sales_orders
SELECT 'SO', (c * 100 + k)::text, lpad(c::text, 4, '0'), 'K1',
       to_char(date '2025-06-10' + ((k * 41 + c * 13) % 220), 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 300) c, generate_series(1, c % 5) k;
INSERT INTO so.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || ((o.order_number::int * l) % 9),
       round((1 + (o.order_number::int * 31 % 70) / 10.0)::numeric, 2),
       round((40 + (o.order_number::int * 7919 % 900) + l * 0.25)::numeric, 2)
  FROM so.sales_orders o, generate_series(1, 1 + o.order_number::int % 3) l;
SET client_min_messages = warning;
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('so');
CREATE SCHEMA so_bi;
SELECT name, member_rows FROM customer_analytics.create_segmentation('sos', 'so_bi', k => 3, segment => 'repeat',
    feature_window => '[2025-07-01,2025-12-31]', as_of => '2026-01-07', k_to => 4, silhouette_sample => 0,
    source_schema => 'so');

-- each view against a fresh computation of its own query (outside
-- refresh_segmentation() segmentation_features() computes the features
-- from the source tables): rows differing either way, and row counts
CREATE FUNCTION pg_temp.so_exact(seg text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v text;
    def text;
    only_view bigint;
    only_fresh bigint;
    problems text := '';
BEGIN
    FOREACH v IN ARRAY customer_analytics._segmentation_views(seg) LOOP
        def := rtrim(pg_get_viewdef(format('so_bi.%I', v)::regclass), '; ');
        EXECUTE format('SELECT count(*) FROM (SELECT * FROM so_bi.%I EXCEPT ALL (%s)) d', v, def) INTO only_view;
        EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL SELECT * FROM so_bi.%I) d', def, v) INTO only_fresh;
        IF only_view + only_fresh > 0 THEN
            problems := problems || format(' %s: %s/%s rows differ;', v, only_view, only_fresh);
        END IF;
    END LOOP;
    RETURN CASE WHEN problems = '' THEN 'exact' ELSE problems END;
END $$;

-- a refresh after changed orders (a delta of the state): the state's
-- reader runs once in the refresh's transaction (it ran once per view: 4),
-- the scratch table is gone after it, and the views are exact
UPDATE so.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number::int % 7 = 0;
-- (the counts of earlier transactions flushed first: pending ones would add up)
SELECT pg_stat_force_next_flush();
BEGIN;
SET LOCAL track_functions = 'all';
SELECT (customer_analytics.refresh_segmentation('sos')).member_rows;
SELECT pg_stat_get_xact_function_calls('customer_analytics._customer_features_from_state(regclass,daterange,date)'::regprocedure)
       AS state_reads,
       to_regclass('pg_temp.customer_analytics_seg_features') IS NULL AS scratch_dropped;
COMMIT;
SELECT mode ~ '^delta' AS delta FROM customer_analytics.refresh_history
 WHERE kind = 'segmentation' AND name = 'sos' ORDER BY id DESC LIMIT 1;
SELECT pg_temp.so_exact('sos') AS views;
-- the elbow's view is refreshed before the model's: the elbow's fits
-- (k = 1 .. 10 in one pool of restarts) include the model's k, which the
-- model view's kmeans_fit() then takes from the transaction's fit cache
-- instead of fitting it alone (the views exact above)
CREATE FUNCTION pg_temp.so_phases() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(COALESCE(substring(p.phase ->> 'phase' FROM '^refreshing so_bi\.sos_([a-z]+)'), p.phase ->> 'phase'),
                      ' | ' ORDER BY p.n)
      FROM (SELECT h.phases FROM customer_analytics.refresh_history h
             WHERE h.kind = 'segmentation' AND h.name = 'sos' ORDER BY h.id DESC LIMIT 1) h,
           jsonb_array_elements(h.phases) WITH ORDINALITY p(phase, n)
$$;
SELECT pg_temp.so_phases() AS phases;

-- a scratch table of that name made beforehand, with the marker and other
-- rows, is not read: the refresh drops it before reading the state (and
-- outside a refresh segmentation_features() never reads it)
CREATE TEMP TABLE customer_analytics_seg_features AS
SELECT * FROM customer_analytics.segmentation_features('sos') LIMIT 0;
INSERT INTO customer_analytics_seg_features (customer_code, visits, is_repeat, features)
VALUES ('9999', 7, true, ARRAY[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
DO $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation_resolved(customer_analytics._segmentation('sos'));
BEGIN
    EXECUTE format('COMMENT ON TABLE pg_temp.customer_analytics_seg_features IS %L',
                   format('customer_analytics: features of segmentation %s (%s, as of %s, segment %s)',
                          s.name, s.feature_window, s.as_of, s.segment));
END $$;
SELECT count(*) FILTER (WHERE customer_code = '9999') AS spoofed FROM customer_analytics.segmentation_features('sos');
UPDATE so.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number::int % 11 = 0;
SELECT (customer_analytics.refresh_segmentation('sos')).member_rows;
SELECT count(*) AS spoofed_members FROM so_bi.sos_members WHERE customer_code = '9999';
SELECT pg_temp.so_exact('sos') AS views;
DROP TABLE IF EXISTS pg_temp.customer_analytics_seg_features;

-- a refresh without CONCURRENTLY (every view REFRESHed) reads it once too
UPDATE so.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number::int % 13 = 0;
-- (the counts of earlier transactions flushed first: pending ones would add up)
SELECT pg_stat_force_next_flush();
BEGIN;
SET LOCAL track_functions = 'all';
SELECT (customer_analytics.refresh_segmentation('sos', concurrently => false)).member_rows;
SELECT pg_stat_get_xact_function_calls('customer_analytics._customer_features_from_state(regclass,daterange,date)'::regprocedure)
       AS state_reads;
COMMIT;
SELECT pg_temp.so_exact('sos') AS views;
SELECT pg_temp.so_phases() AS phases;
RESET client_min_messages;

SELECT customer_analytics.drop_segmentation('sos');
SELECT customer_analytics.drop_rollup('so');
DROP SCHEMA so_bi CASCADE;
DROP SCHEMA so CASCADE;
