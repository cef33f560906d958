-- k-means as SQL values, on data sets small enough to check by hand.
-- Six points, two obvious groups:
--   A = (0,0) (0,1) (1,0), B = (10,10) (10,11) (11,10).
-- Each feature has mean 16/3 and population variance 151.33/6 = 25.2222,
-- so the z-scores divide by 5.0222.  Within each group the squared
-- deviations from the group mean (1/3,1/3) sum to 2/9 + 5/9 + 5/9 = 4/3 in
-- original units; in z units the inertia is 2 * (4/3) / 25.2222 = 0.1057269.
CREATE TABLE km_pts (id int, f float8[]);
INSERT INTO km_pts VALUES (1, '{0,0}'), (2, '{0,1}'), (3, '{1,0}'),
                          (4, '{10,10}'), (5, '{10,11}'), (6, '{11,10}');
CREATE TEMP TABLE km_model AS SELECT customer_analytics.kmeans_fit(f, 2) AS m FROM km_pts;
SELECT m->'k' AS k, m->'n' AS n, m->'features' AS features, round((m->>'inertia')::numeric, 10) AS inertia,
       m->'sizes' AS sizes, m->'converged' AS converged, m->>'init' AS init, m->'n_init' AS n_init,
       round((m->'mean'->>0)::numeric, 10) AS mean0, round((m->'scale'->>0)::numeric, 10) AS scale0
  FROM km_model;
-- centroids back in original units: the group means (1/3,1/3) and (31/3,31/3)
SELECT round((c->>0)::numeric, 10) AS x, round((c->>1)::numeric, 10) AS y
  FROM km_model, jsonb_array_elements(m->'centroids_original') c ORDER BY 1;
-- the points of a group share a label; the two groups differ
SELECT count(DISTINCT customer_analytics.kmeans_predict(m, f)) FILTER (WHERE id <= 3) AS labels_a,
       count(DISTINCT customer_analytics.kmeans_predict(m, f)) FILTER (WHERE id > 3) AS labels_b,
       count(DISTINCT customer_analytics.kmeans_predict(m, f)) AS labels
  FROM km_pts, km_model;
SELECT customer_analytics.kmeans_standardize(m, '{0,0}')::numeric(12,8)[] AS z FROM km_model;
-- k = 1: the centroid is the mean, inertia = n * features = 12 (each z-feature has variance 1)
SELECT round((customer_analytics.kmeans_fit(f, 1)->>'inertia')::numeric, 10) AS inertia_k1 FROM km_pts;
-- k = n: every point its own cluster, inertia 0
SELECT (customer_analytics.kmeans_fit(f, 6)->>'inertia')::float8 AS inertia_k6 FROM km_pts;

-- the same call gives the same model; a seed is part of it
SELECT count(DISTINCT customer_analytics_model) AS distinct_models FROM (
  SELECT (SELECT customer_analytics.kmeans_fit(f, 2, '{"seed": 7}') FROM km_pts) AS customer_analytics_model
    FROM generate_series(1, 3)) r;
-- explicit initial centres (z units) are used as given: one run
SELECT m->>'init' AS init, m->'n_init' AS n_init, m->'sizes' AS sizes
  FROM (SELECT customer_analytics.kmeans_fit(f, 2, '{"init": [[-1, -1], [1, 1]]}') AS m FROM km_pts) x;
-- a bad start that Lloyd must repair: both centres inside group A
SELECT m->'sizes' AS sizes, round((m->>'inertia')::numeric, 10) AS inertia
  FROM (SELECT customer_analytics.kmeans_fit(f, 2, '{"init": [[-1.06, -1.06], [-0.86, -1.06]]}') AS m FROM km_pts) x;

-- degenerate data
-- all points equal: every feature constant (scale 1), inertia 0
SELECT m->'scale' AS scale, m->'inertia' AS inertia, m->'sizes' AS sizes
  FROM (SELECT customer_analytics.kmeans_fit(ARRAY[3, 4]::float8[], 1) AS m FROM generate_series(1, 5)) x;
-- fewer distinct points than k: duplicate centres, a cluster may stay empty, inertia 0
SELECT m->'sizes' AS sizes, (m->>'inertia')::float8 AS inertia
  FROM (SELECT customer_analytics.kmeans_fit(ARRAY[g % 2, 0]::float8[], 3) AS m FROM generate_series(1, 6) g) x;
-- a zero-variance feature keeps scale 1 and does not disturb the others
SELECT m->'scale'->1 AS constant_feature_scale, m->'sizes' AS sizes
  FROM (SELECT customer_analytics.kmeans_fit(ARRAY[f[1], 5]::float8[], 2) AS m FROM km_pts) x;
-- no rows: no model; NULL vectors are skipped
SELECT customer_analytics.kmeans_fit(f, 2) IS NULL AS no_model FROM km_pts WHERE false;
SELECT m->'n' AS n FROM (SELECT customer_analytics.kmeans_fit(f, 2) AS m
                           FROM (SELECT f FROM km_pts UNION ALL SELECT NULL) s) x;

-- errors
\set VERBOSITY terse
SELECT customer_analytics.kmeans_fit(f, 0) FROM km_pts;
SELECT customer_analytics.kmeans_fit(f, NULL) FROM km_pts;
SELECT customer_analytics.kmeans_fit(f, 7) FROM km_pts;
SELECT customer_analytics.kmeans_fit(ARRAY[1, NULL]::float8[], 1);
SELECT customer_analytics.kmeans_fit(ARRAY['NaN']::float8[], 1);
SELECT customer_analytics.kmeans_fit(ARRAY['Infinity', 1]::float8[], 1);
SELECT customer_analytics.kmeans_fit(f, 1) FROM (VALUES ('{1,2}'::float8[]), ('{1,2,3}')) v(f);
SELECT customer_analytics.kmeans_fit('{}'::float8[], 1);
SELECT customer_analytics.kmeans_fit(f, g) FROM km_pts, generate_series(1, 2) g;
SELECT customer_analytics.kmeans_fit(f, 2, '{"restarts": 3}') FROM km_pts;
SELECT customer_analytics.kmeans_fit(f, 2, '{"n_init": 0}') FROM km_pts;
SELECT customer_analytics.kmeans_fit(f, 2, '{"init": [[0, 0]]}') FROM km_pts;
SELECT customer_analytics.kmeans_predict(m, '{1,2,3}') FROM km_model;
SELECT customer_analytics.kmeans_predict('{"k": 2}', '{1,2}');
SELECT customer_analytics.kmeans_predict('[1, 2]', '{1,2}');
\set VERBOSITY default

-- parallel aggregation gives the serial model exactly (points are put in a
-- canonical order before fitting)
CREATE TABLE km_many AS
  SELECT g AS id, ARRAY[(g % 7) * 3 + (g % 13) / 10.0, (g % 11) * 2 - (g % 5) / 3.0, g % 3]::float8[] AS f
    FROM generate_series(1, 30000) g;
ANALYZE km_many;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT customer_analytics.kmeans_fit(f, 4, '{"n_init": 2}') FROM km_many;
CREATE TEMP TABLE km_parallel AS SELECT customer_analytics.kmeans_fit(f, 4, '{"n_init": 2}') AS m FROM km_many;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT (SELECT m FROM km_parallel) = (SELECT customer_analytics.kmeans_fit(f, 4, '{"n_init": 2}') FROM km_many)
       AS parallel_equals_serial;
RESET ALL;
