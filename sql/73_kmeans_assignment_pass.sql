-- Lloyd's assignment pass with Hamerly's bounds (hamerly_pass(), and the
-- full scan nearest2() written as selects) against plain Lloyd
-- (customer_analytics.kmeans_bounds = off, which computes every distance
-- with kmeans_nearest()): the bounds only skip distances, so every model
-- (centroids, inertia, sizes, iterations) must be bit-identical.  In 11
-- features, as a segmentation's (the distance kernel's blocks of four, its
-- pair and its last odd feature), with ties: points at equal distances from
-- two centres (the lower index wins, the second-nearest distance equals the
-- nearest), duplicated points, a constant feature.  jsonb holds the floats
-- with 17 significant digits, so equal models mean equal doubles.
\set VERBOSITY terse
CREATE TABLE public.kap_pts AS
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
                (i % 7) * cos(i * 0.003)]::float8[] AS f
  FROM generate_series(1, 2500) i;
-- ties: on a grid of integers, three copies of each point; from the given
-- centres at -1 and +1 on the first feature, the points with 0 there are
-- at equal distances from both
CREATE TABLE public.kap_ties AS
SELECT ARRAY[x, y, 0, 0, 0, 0, 0, 0, 0, 0, 1]::float8[] AS f
  FROM generate_series(-2, 2) x, generate_series(0, 5) y, generate_series(1, 3) dup;

CREATE FUNCTION pg_temp.fits(bounds boolean) RETURNS TABLE(data text, k int, seed int, model jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_bounds', bounds::text, true);
    RETURN QUERY
    SELECT 'points', g.k, s.seed,
           (SELECT customer_analytics.kmeans_fit(p.f, g.k, jsonb_build_object('n_init', 3, 'seed', s.seed))
              FROM public.kap_pts p)
      FROM generate_series(1, 10) g(k), generate_series(0, 1) s(seed)
    UNION ALL
    SELECT 'ties', g.k, s.seed,
           (SELECT customer_analytics.kmeans_fit(p.f, g.k, jsonb_build_object('n_init', 3, 'seed', s.seed))
              FROM public.kap_ties p)
      FROM generate_series(2, 8) g(k), generate_series(0, 1) s(seed)
    UNION ALL
    SELECT 'ties, given centres', 2, 0,
           (SELECT customer_analytics.kmeans_fit(p.f, 2, '{"init": [[-1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1], [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1]]}')
              FROM public.kap_ties p)
    UNION ALL
    SELECT 'points, tol 0', 6, 0,
           (SELECT customer_analytics.kmeans_fit(p.f, 6, '{"n_init": 2, "seed": 0, "tol": 0}') FROM public.kap_pts p);
END $$;
CREATE TEMP TABLE kap_plain AS SELECT * FROM pg_temp.fits(false);
CREATE TEMP TABLE kap_bounds AS SELECT * FROM pg_temp.fits(true);
SHOW customer_analytics.kmeans_bounds;
SELECT count(*) AS models,
       count(*) FILTER (WHERE b.model = p.model AND b.model::text = p.model::text) AS identical,
       count(*) FILTER (WHERE (b.model->>'iterations')::int > 1) AS iterated
  FROM kap_plain p JOIN kap_bounds b USING (data, k, seed);
SELECT p.data, p.k, p.seed FROM kap_plain p JOIN kap_bounds b USING (data, k, seed)
 WHERE b.model::text IS DISTINCT FROM p.model::text;
-- the tie: from the given centres the 18 points with 0 on the first
-- feature go to the lower index, with the 36 at -2 and -1 (54 points), the
-- 36 at 1 and 2 to the other; the means then at -1 and 1.5 keep them so
SELECT model->'sizes' AS sizes FROM kap_bounds WHERE data = 'ties, given centres';

-- the bounds do decide assignments here (else the comparison proves
-- little): the fit says how many at DEBUG1
SET client_min_messages = debug1;
SELECT (customer_analytics.kmeans_fit(f, 7, '{"n_init": 2, "seed": 0}')->>'inertia')::float8 > 0 AS fitted
  FROM public.kap_pts;
RESET client_min_messages;

-- the elbow (one pool of restarts for k = 1 .. 10, then the silhouettes)
-- with the bounds, serial and on parallel workers, against plain Lloyd
SET customer_analytics.kmeans_parallel_min_points = 0;
CREATE FUNCTION pg_temp.elbow(bounds boolean, workers int) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_bounds', bounds::text, true);
    PERFORM set_config('customer_analytics.kmeans_parallel_workers', workers::text, true);
    RETURN QUERY SELECT e::text FROM customer_analytics._kmeans_elbow_over(1, 10, '{"n_init": 4, "seed": 5}', 800,
                                                                           'SELECT f AS features FROM public.kap_pts') e;
END $$;
CREATE TEMP TABLE kap_elbow AS
SELECT b, w, (SELECT array_agg(x) FROM pg_temp.elbow(b, w) x) AS rows
  FROM (VALUES (false, 0), (true, 0), (true, 2)) v(b, w);
SELECT count(*) AS elbows, count(DISTINCT rows) AS distinct_elbows,
       (SELECT cardinality(rows) FROM kap_elbow LIMIT 1) AS k_rows
  FROM kap_elbow;
RESET customer_analytics.kmeans_parallel_min_points;
DROP TABLE public.kap_pts, public.kap_ties;
