-- k-means through copies compiled for 2 .. 12 features (kmeans_lloyd.c's
-- KMEANS_DIM_DISPATCH: kmeans_plusplus_dim() and lloyd_dim() with dim a
-- constant) against the generic loops (customer_analytics.kmeans_specialize
-- = off): the same operations in the same order, so every model
-- (centroids, inertia, sizes, iterations) must be bit-identical, with
-- Hamerly's bounds and without, serial and on parallel workers.  Data where
-- the bounds matter: ties at equal distances, duplicated points, more k
-- than distinct points (empty clusters relocated), a constant feature; in
-- 2, 3, 4, 5, 7, 11 and 12 features (every remainder of the kernel's blocks
-- of four and its pair) and 13 (generic on both sides).  jsonb holds the
-- floats with 17 significant digits, so equal text means equal doubles.
\set VERBOSITY terse
-- 1,500 points in 13 features; the first d of them are the data in d
CREATE TABLE public.kdk_pts AS
SELECT i, ARRAY[(i % 7) * 2 + sin(i * 1.3) * (1 + i % 3),
                (i % 7 / 2) * 3 + cos(i * 0.41) * 2,
                sin(i * 0.013) * 4,
                (i % 7 % 2) * 5 + sin(i * 2.1),
                cos(i * 0.7) * (i % 4),
                (i % 5) + sin(i * 0.9),
                cos(i * 0.05) * 3,
                (i % 3) * 2.5 + cos(i * 1.1),
                sin(i * 0.23) * (i % 2),
                3,
                (i % 7) * cos(i * 0.003),
                round(sin(i * 0.31)::numeric, 1)::float8,
                (i % 11) - 5]::float8[] AS f
  FROM generate_series(1, 1500) i;
-- ties: an integer grid, three copies of each point (equal distances to
-- several centres, the lower index wins)
CREATE TABLE public.kdk_ties AS
SELECT ARRAY[x, y, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]::float8[] AS f
  FROM generate_series(-2, 2) x, generate_series(0, 5) y, generate_series(1, 3) dup;
-- four distinct points, ten copies each: k = 5 .. 7 leaves clusters empty
CREATE TABLE public.kdk_few AS
SELECT ARRAY[p % 2, p / 2, 1, 0.5, p, 0, 0, 2, 0, 0, p * 0.25, 0, 1]::float8[] AS f
  FROM generate_series(0, 3) p, generate_series(1, 10) dup;

-- a first fit loads the library (its settings), on by default
SELECT customer_analytics.kmeans_fit(f[1:2], 2, '{"seed": 0}') IS NOT NULL AS fitted FROM public.kdk_ties;
SHOW customer_analytics.kmeans_specialize;
CREATE FUNCTION pg_temp.fits(specialize boolean, bounds boolean, workers int)
RETURNS TABLE(data text, d int, k int, seed int, model jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_specialize', specialize::text, true);
    PERFORM set_config('customer_analytics.kmeans_bounds', bounds::text, true);
    PERFORM set_config('customer_analytics.kmeans_parallel_workers', workers::text, true);
    RETURN QUERY
    SELECT 'points', dd.d, g.k, s.seed,
           (SELECT customer_analytics.kmeans_fit(p.f[1:dd.d], g.k, jsonb_build_object('n_init', 3, 'seed', s.seed))
              FROM public.kdk_pts p)
      FROM unnest('{2,3,4,5,7,11,12,13}'::int[]) dd(d), unnest('{1,3,6,10}'::int[]) g(k),
           generate_series(0, 1) s(seed)
    UNION ALL
    SELECT 'ties', dd.d, g.k, 0,
           (SELECT customer_analytics.kmeans_fit(p.f[1:dd.d], g.k, jsonb_build_object('n_init', 3, 'seed', 0))
              FROM public.kdk_ties p)
      FROM unnest('{2,11,13}'::int[]) dd(d), generate_series(2, 8) g(k)
    UNION ALL
    SELECT 'few', dd.d, g.k, 0,
           (SELECT customer_analytics.kmeans_fit(p.f[1:dd.d], g.k, jsonb_build_object('n_init', 3, 'seed', 0))
              FROM public.kdk_few p)
      FROM unnest('{3,11}'::int[]) dd(d), generate_series(3, 7) g(k)
    UNION ALL
    SELECT 'points, tol 0', 11, 6, 0,
           (SELECT customer_analytics.kmeans_fit(p.f[1:11], 6, '{"n_init": 2, "seed": 0, "tol": 0}')
              FROM public.kdk_pts p);
END $$;
SET customer_analytics.kmeans_parallel_min_points = 0;
CREATE TEMP TABLE kdk_fits AS
SELECT v.specialize, v.bounds, v.workers, f.*
  FROM (VALUES (false, true, 0), (true, true, 0), (false, false, 0), (true, false, 0), (true, true, 2)) v(specialize, bounds, workers),
       LATERAL pg_temp.fits(v.specialize, v.bounds, v.workers) f;
-- every variant's models against the generic loops with the bounds, serial
SELECT o.specialize, o.bounds, o.workers, count(*) AS models,
       count(*) FILTER (WHERE o.model::text = g.model::text) AS identical
  FROM kdk_fits o JOIN kdk_fits g USING (data, d, k, seed)
 WHERE NOT g.specialize AND g.bounds AND g.workers = 0
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- the data exercise what they are meant to: with more k than the four
-- distinct points, k-means++ draws copies of the same point and Lloyd's
-- step leaves clusters empty (relocated; the sizes show what is left), and
-- the fits of the points iterate
SELECT data, d, k, model->'sizes' AS sizes, (model->>'iterations')::int AS iterations
  FROM kdk_fits WHERE specialize AND bounds AND workers = 0 AND data = 'few' ORDER BY d, k;
SELECT count(*) FILTER (WHERE (model->>'iterations')::int > 2) AS iterated
  FROM kdk_fits WHERE specialize AND bounds AND workers = 0 AND data = 'points';
RESET customer_analytics.kmeans_specialize;
RESET customer_analytics.kmeans_bounds;
RESET customer_analytics.kmeans_parallel_workers;

-- the elbow (one pool of restarts for k = 1 .. 10, then the silhouettes)
-- specialized and generic, serial and on parallel workers: equal rows, as
-- float8 text with extra_float_digits = 3
SET extra_float_digits = 3;
CREATE FUNCTION pg_temp.elbow(specialize boolean, workers int) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_specialize', specialize::text, true);
    PERFORM set_config('customer_analytics.kmeans_parallel_workers', workers::text, true);
    RETURN QUERY SELECT e::text FROM customer_analytics._kmeans_elbow_over(1, 10, '{"n_init": 4, "seed": 5}', 600,
                                                                           'SELECT f[1:11] AS features FROM public.kdk_pts') e;
END $$;
CREATE TEMP TABLE kdk_elbow AS
SELECT s, w, (SELECT array_agg(x) FROM pg_temp.elbow(s, w) x) AS rows
  FROM (VALUES (false, 0), (true, 0), (true, 2)) v(s, w);
SELECT count(*) AS elbows, count(DISTINCT rows) AS distinct_elbows,
       (SELECT cardinality(rows) FROM kdk_elbow LIMIT 1) AS k_rows
  FROM kdk_elbow;
RESET extra_float_digits;
RESET customer_analytics.kmeans_parallel_min_points;
DROP TABLE public.kdk_pts, public.kdk_ties, public.kdk_few;
