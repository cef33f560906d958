-- k-means with its restarts on parallel workers
-- (customer_analytics.kmeans_parallel_workers) against the serial loop: each
-- restart's random draws are fixed by its index and the best run is chosen
-- in index order, so every model (centroids, inertia, sizes, iterations),
-- every label and every silhouette must be bit-identical whatever the number
-- of workers.  jsonb holds the floats with 17 significant digits, so equal
-- models mean equal doubles.  Run as a role without any privilege but
-- SELECT on the points.
\set VERBOSITY terse
-- 3,000 points in 5 features: six blobs of different spreads, deterministic
CREATE TABLE public.kp_pts AS
SELECT i, ARRAY[(i % 6) * 3 + sin(i * 1.7) * (1 + i % 3),
                (i % 6 / 2) * 4 + cos(i * 0.37) * 2,
                sin(i * 0.011) * 5,
                (i % 6 % 2) * 6 + sin(i * 2.3),
                cos(i * 0.7) * (i % 4)]::float8[] AS f
  FROM generate_series(1, 3000) i;
-- ties: a grid whose points sit at equal distances from several centres,
-- duplicated points, and a constant feature
CREATE TABLE public.kp_grid AS
SELECT ARRAY[x, y, 7]::float8[] AS f
  FROM generate_series(0, 9) x, generate_series(0, 9) y, generate_series(1, 3) dup;
CREATE ROLE ca_kpar_user;
GRANT SELECT ON public.kp_pts, public.kp_grid TO ca_kpar_user;
SET ROLE ca_kpar_user;

-- parallel however small the data, and the workers run every restart (the
-- leader none): a restart computed differently by a worker shows below
SET customer_analytics.kmeans_parallel_min_points = 0;
SET parallel_leader_participation = off;

-- the models for k = 1 .. 10, n_init 2, 5 and 10, two seeds, with workers
-- processes (0: the serial loop).  Each call is its own transaction: a
-- transaction fits the same points and parameters once (kmeans_model.c).
CREATE FUNCTION pg_temp.fits(workers int) RETURNS TABLE(data text, k int, n_init int, seed int, model jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_parallel_workers', workers::text, true);
    RETURN QUERY
    SELECT 'blobs', g.k, r.n_init, s.seed,
           (SELECT customer_analytics.kmeans_fit(p.f, g.k, jsonb_build_object('n_init', r.n_init, 'seed', s.seed))
              FROM public.kp_pts p)
      FROM generate_series(1, 10) g(k), unnest(ARRAY[2, 5, 10]) r(n_init), generate_series(0, 1) s(seed)
    UNION ALL
    SELECT 'grid', g.k, 4, s.seed,
           (SELECT customer_analytics.kmeans_fit(p.f, g.k, jsonb_build_object('n_init', 4, 'seed', s.seed))
              FROM public.kp_grid p)
      FROM generate_series(1, 10) g(k), generate_series(0, 1) s(seed)
    UNION ALL
    SELECT 'blobs, max_iter 3', 8, 6, 0,
           (SELECT customer_analytics.kmeans_fit(p.f, 8, '{"n_init": 6, "seed": 0, "max_iter": 3}') FROM public.kp_pts p)
    UNION ALL
    SELECT 'blobs, bounds off', 7, 5, 3,
           (SELECT customer_analytics.kmeans_fit(p.f, 7, '{"n_init": 5, "seed": 3}')
              FROM public.kp_pts p, set_config('customer_analytics.kmeans_bounds', 'off', true));
END $$;
CREATE TEMP TABLE kp_serial AS SELECT * FROM pg_temp.fits(0);
CREATE TEMP TABLE kp_parallel AS SELECT * FROM pg_temp.fits(2);
CREATE TEMP TABLE kp_parallel1 AS SELECT * FROM pg_temp.fits(1);
-- every model the same, compared as text too (no rounding on the way)
SELECT count(*) AS models,
       count(*) FILTER (WHERE p.model = s.model AND p.model::text = s.model::text) AS identical_2_workers,
       count(*) FILTER (WHERE p1.model::text = s.model::text) AS identical_1_worker,
       count(*) FILTER (WHERE (s.model->>'iterations')::int > 1) AS iterated
  FROM kp_serial s JOIN kp_parallel p USING (data, k, n_init, seed) JOIN kp_parallel1 p1 USING (data, k, n_init, seed);
SELECT s.data, s.k, s.n_init, s.seed FROM kp_serial s JOIN kp_parallel p USING (data, k, n_init, seed)
 WHERE p.model::text IS DISTINCT FROM s.model::text;
-- the later restarts matter (else the choice of the best run proves
-- nothing): restart 0 is the same for n_init 2 and 10, and for some k a
-- later one of the 10 is better
SELECT count(*) AS fits, count(*) FILTER (WHERE (s10.model->>'inertia')::float8 < (s2.model->>'inertia')::float8) AS later_restart_better
  FROM kp_serial s2 JOIN kp_serial s10 USING (data, k, seed)
 WHERE s2.data = 'blobs' AND s2.n_init = 2 AND s10.n_init = 10;

-- the labels of every point and the silhouettes, from both models
SELECT count(*) AS points,
       count(*) FILTER (WHERE customer_analytics.kmeans_predict(p.model, x.f)
                              = customer_analytics.kmeans_predict(s.model, x.f)) AS same_label
  FROM kp_serial s JOIN kp_parallel p USING (data, k, n_init, seed), public.kp_pts x
 WHERE s.data = 'blobs' AND s.seed = 0 AND s.n_init = 10;
SELECT s.k, (SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(p.model, x.f),
                                                  customer_analytics.kmeans_predict(p.model, x.f), 1000, 0) FROM public.kp_pts x)
          = (SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(s.model, x.f),
                                                  customer_analytics.kmeans_predict(s.model, x.f), 1000, 0) FROM public.kp_pts x)
          AS same_silhouette
  FROM kp_serial s JOIN kp_parallel p USING (data, k, n_init, seed)
 WHERE s.data = 'blobs' AND s.seed = 1 AND s.n_init = 5 AND s.k IN (2, 5, 9);

-- the elbow (k-means for each k, silhouettes, picks) serial and parallel
CREATE FUNCTION pg_temp.elbow(workers int) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_parallel_workers', workers::text, true);
    RETURN QUERY SELECT e::text FROM customer_analytics._kmeans_elbow_over(1, 8, '{"n_init": 10, "seed": 0}', 500,
                                                                           'SELECT f AS features FROM public.kp_pts') e;
END $$;
CREATE TEMP TABLE kp_elbow_serial AS SELECT array_agg(x) AS rows FROM pg_temp.elbow(0) x;
SELECT (SELECT array_agg(x) FROM pg_temp.elbow(2) x) = (SELECT rows FROM kp_elbow_serial) AS same_elbow;

-- the elbow's fits of every k from one aggregate (_kmeans_fits: the points
-- standardized once, the restarts of all k one pool of tasks on one
-- parallel context) are kmeans_fit()'s for each k, bit for bit, serial and
-- with workers: k = 1 .. 10, n_init 5 and 10, two seeds, and the grid's
-- ties and duplicated points
CREATE FUNCTION pg_temp.pooled(workers int) RETURNS TABLE(data text, k int, n_init int, seed int, model jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_parallel_workers', workers::text, true);
    RETURN QUERY
    SELECT 'blobs', m.i::int, r.n_init, s.seed, m.model
      FROM unnest(ARRAY[5, 10]) r(n_init), generate_series(0, 1) s(seed),
           LATERAL unnest((SELECT customer_analytics._kmeans_fits(p.f, 1, 10, jsonb_build_object('n_init', r.n_init, 'seed', s.seed))
                             FROM public.kp_pts p)) WITH ORDINALITY m(model, i)
    UNION ALL
    SELECT 'grid', m.i::int, 4, s.seed, m.model
      FROM generate_series(0, 1) s(seed),
           LATERAL unnest((SELECT customer_analytics._kmeans_fits(p.f, 1, 10, jsonb_build_object('n_init', 4, 'seed', s.seed))
                             FROM public.kp_grid p)) WITH ORDINALITY m(model, i);
END $$;
CREATE TEMP TABLE kp_pooled_serial AS SELECT * FROM pg_temp.pooled(0);
CREATE TEMP TABLE kp_pooled_parallel AS SELECT * FROM pg_temp.pooled(2);
SELECT count(*) AS models,
       count(*) FILTER (WHERE a.model::text = s.model::text) AS identical_pooled_serial,
       count(*) FILTER (WHERE b.model::text = s.model::text) AS identical_pooled_2_workers
  FROM kp_serial s JOIN kp_pooled_serial a USING (data, k, n_init, seed) JOIN kp_pooled_parallel b USING (data, k, n_init, seed);
-- in one transaction a fit already made (the model view's k) is taken from
-- the cache, the others fitted together: DEBUG lines for k = 2, 3 and 5
-- only, then one pool of their 9 restarts on the workers; the models equal
-- kmeans_fit()'s
BEGIN;
SET LOCAL customer_analytics.kmeans_parallel_workers = 2;
CREATE TEMP TABLE kp_k4 AS SELECT customer_analytics.kmeans_fit(f, 4, '{"n_init": 3, "seed": 0}') AS model FROM public.kp_pts;
SET LOCAL client_min_messages = debug1;
SELECT array_length(customer_analytics._kmeans_fits(f, 2, 5, '{"n_init": 3, "seed": 0}'), 1) AS models FROM public.kp_pts;
RESET client_min_messages;
COMMIT;
CREATE TEMP TABLE kp_pool AS
SELECT customer_analytics._kmeans_fits(f, 2, 5, '{"n_init": 3, "seed": 0}') AS models FROM public.kp_pts;
SELECT p.models[1]::text = (SELECT customer_analytics.kmeans_fit(f, 2, '{"n_init": 3, "seed": 0}') FROM public.kp_pts)::text
       AND p.models[3]::text = (SELECT model FROM kp_k4)::text
       AND p.models[4]::text = (SELECT customer_analytics.kmeans_fit(f, 5, '{"n_init": 3, "seed": 0}') FROM public.kp_pts)::text
       AS same_as_kmeans_fit
  FROM kp_pool p;
-- no rows: no models; more clusters than points: kmeans_fit's error; a bad
-- k or option: kmeans_fit's errors
SELECT customer_analytics._kmeans_fits(f, 1, 3, NULL) IS NULL AS no_models FROM public.kp_pts WHERE false;
SELECT customer_analytics._kmeans_fits(f, 2, 4, NULL) FROM (SELECT f FROM public.kp_grid LIMIT 3) x;
SELECT customer_analytics._kmeans_fits(f, 0, 4, NULL) FROM public.kp_grid;
SELECT customer_analytics._kmeans_fits(f, 1, 4, '{"n_init": 0}') FROM public.kp_grid;
SELECT cardinality(customer_analytics._kmeans_fits(f, 3, 2, NULL)) AS empty_range FROM public.kp_grid;

-- the workers did run the restarts (else the comparisons prove nothing):
-- the fit says so at DEBUG1
SET client_min_messages = debug1;
SET customer_analytics.kmeans_parallel_workers = 2;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 0}')->>'inertia')::float8 > 0 AS fitted FROM public.kp_pts;
-- with the leader taking restarts too
RESET parallel_leader_participation;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 1}')->>'inertia')::float8 > 0 AS fitted FROM public.kp_pts;
-- serial: below the minimum number of points, with 0 workers, for one run
-- (given initial centres), for k = 1, and inside a parallel query (the aggregate in a
-- parallel worker cannot start workers of its own)
SET customer_analytics.kmeans_parallel_min_points = 3001;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 2}')->>'inertia')::float8 > 0 AS fitted FROM public.kp_pts;
SET customer_analytics.kmeans_parallel_min_points = 0;
SET customer_analytics.kmeans_parallel_workers = 0;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 3}')->>'inertia')::float8 > 0 AS fitted FROM public.kp_pts;
RESET customer_analytics.kmeans_parallel_workers;
SELECT (customer_analytics.kmeans_fit(f, 2, '{"init": [[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]}')->>'inertia')::float8 > 0 AS fitted
  FROM public.kp_pts;
SET customer_analytics.kmeans_parallel_workers = 2;
SELECT (customer_analytics.kmeans_fit(f, 1, '{"n_init": 4, "seed": 0}')->>'inertia')::float8 > 0 AS fitted_k1 FROM public.kp_pts;
SET customer_analytics.kmeans_parallel_workers = 2;
SET force_parallel_mode = on;
RESET client_min_messages;
EXPLAIN (COSTS OFF) SELECT customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 4}') FROM public.kp_pts;
SET client_min_messages = debug1;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 4}')->>'inertia')::float8 > 0 AS fitted FROM public.kp_pts;
RESET force_parallel_mode;
RESET client_min_messages;
-- a fit inside a parallel worker is the same as the leader's
SET force_parallel_mode = on;
CREATE TEMP TABLE kp_in_worker AS
SELECT customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 4}') AS model FROM public.kp_pts;
RESET force_parallel_mode;
SELECT (SELECT model FROM kp_in_worker)::text
       = (SELECT customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 4}') FROM public.kp_pts)::text AS same_in_worker;

-- a fit cancelled while its workers run leaves the session clean: the
-- next fit starts its workers again
SET customer_analytics.kmeans_parallel_workers = 2;
SET statement_timeout = '30ms';
SELECT customer_analytics.kmeans_fit(f, 10, '{"n_init": 500, "seed": 0}') FROM public.kp_pts;
RESET statement_timeout;
SET client_min_messages = debug1;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 4, "seed": 5}')->>'inertia')::float8 > 0 AS fitted FROM public.kp_pts;
RESET client_min_messages;
RESET customer_analytics.kmeans_parallel_workers;

-- the settings' bounds
SET customer_analytics.kmeans_parallel_workers = -2;
SET customer_analytics.kmeans_parallel_min_points = -1;
RESET customer_analytics.kmeans_parallel_workers;
RESET customer_analytics.kmeans_parallel_min_points;
SHOW customer_analytics.kmeans_parallel_workers;
SHOW customer_analytics.kmeans_parallel_min_points;

RESET ROLE;
DROP TABLE public.kp_pts, public.kp_grid;
DROP OWNED BY ca_kpar_user;
DROP ROLE ca_kpar_user;
