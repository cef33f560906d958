-- silhouette(): scikit-learn's silhouette_score, checked by hand.
-- Four points on a line, clusters {0, 1} and {10, 11}:
--   s(0)  = (10.5 - 1) / 10.5     s(1)  = (9.5 - 1) / 9.5
--   s(10) = (9.5 - 1) / 9.5       s(11) = (10.5 - 1) / 10.5
--   mean  = (9.5/10.5 + 8.5/9.5) / 2 = 0.899749373433584
SELECT round(customer_analytics.silhouette(ARRAY[x]::float8[], c)::numeric, 12) AS score
  FROM (VALUES (0, 0), (1, 0), (10, 1), (11, 1)) v(x, c);
-- a point alone in its cluster scores 0:  (99/100 + 98/99 + 0) / 3 = 0.659966329966
SELECT round(customer_analytics.silhouette(ARRAY[x]::float8[], c)::numeric, 12) AS score
  FROM (VALUES (0, 0), (1, 0), (100, 1)) v(x, c);
-- cluster numbers need not be dense or ordered
SELECT round(customer_analytics.silhouette(ARRAY[x]::float8[], c)::numeric, 12) AS score
  FROM (VALUES (0, 42), (1, 42), (10, -7), (11, -7)) v(x, c);

-- in more dimensions, against the definition written in plain SQL
-- (Euclidean distances, not squared)
CREATE TABLE sil_pts AS
  SELECT g AS id, ARRAY[(g * 37 % 17)::float8, (g * 11 % 7)::float8, (g % 5) * 1.5] AS f, g % 3 AS c
    FROM generate_series(1, 60) g;
WITH d AS (
  SELECT p.id, p.c,
         avg(sqrt((p.f[1]-q.f[1])^2 + (p.f[2]-q.f[2])^2 + (p.f[3]-q.f[3])^2)) FILTER (WHERE q.c = p.c AND q.id <> p.id) AS a,
         (SELECT min(m) FROM (SELECT avg(sqrt((p.f[1]-r.f[1])^2 + (p.f[2]-r.f[2])^2 + (p.f[3]-r.f[3])^2)) AS m
                                FROM sil_pts r WHERE r.c <> p.c GROUP BY r.c) o) AS b
    FROM sil_pts p, sil_pts q GROUP BY p.id, p.c, p.f)
SELECT abs((SELECT customer_analytics.silhouette(f, c) FROM sil_pts)
           - avg((b - a) / greatest(a, b))) < 1e-12 AS equals_definition
  FROM d;

-- undefined with one cluster, or as many clusters as points: NULL
SELECT customer_analytics.silhouette(ARRAY[x]::float8[], 0) IS NULL AS one_cluster
  FROM generate_series(1, 5) x;
SELECT customer_analytics.silhouette(ARRAY[x]::float8[], x) IS NULL AS n_clusters
  FROM generate_series(1, 5) x;
SELECT customer_analytics.silhouette(f, c) IS NULL AS no_rows FROM sil_pts WHERE false;

-- sampling: a sample as large as the data is the exact score; a smaller one
-- is repeatable for a seed
SELECT (SELECT customer_analytics.silhouette(f, c, 1000, 1) FROM sil_pts)
     = (SELECT customer_analytics.silhouette(f, c) FROM sil_pts) AS full_sample_is_exact;
SELECT count(DISTINCT s) AS distinct_scores
  FROM (SELECT (SELECT customer_analytics.silhouette(f, c, 20, 5) FROM sil_pts) AS s FROM generate_series(1, 3)) r;

-- parallel equals serial
CREATE TABLE sil_many AS
  SELECT g AS id, ARRAY[(g * 37 % 101)::float8, (g * 13 % 29)::float8] AS f, g % 4 AS c
    FROM generate_series(1, 3000) g;
ANALYZE sil_many;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT customer_analytics.silhouette(f, c) FROM sil_many;
CREATE TEMP TABLE sil_parallel AS SELECT customer_analytics.silhouette(f, c) AS s FROM sil_many;
SET max_parallel_workers_per_gather = 0;
SELECT (SELECT s FROM sil_parallel) = (SELECT customer_analytics.silhouette(f, c) FROM sil_many) AS parallel_equals_serial;
RESET ALL;

\set VERBOSITY terse
SELECT customer_analytics.silhouette(f, c, 1, 0) FROM sil_pts;
SELECT customer_analytics.silhouette(f, c, NULL, 0) FROM sil_pts;
SELECT customer_analytics.silhouette(f, c) FROM (VALUES ('{1,2}'::float8[], 0), ('{1}', 1)) v(f, c);
SELECT customer_analytics.silhouette(ARRAY['NaN']::float8[], 0);
