-- k-means with Hamerly's bounds (customer_analytics.kmeans_bounds, on by
-- default) against plain Lloyd (off): the bounds only skip distances, so
-- every model (centroids, inertia, sizes, iterations), every label and
-- every silhouette must be bit-identical.  jsonb holds the floats with 17
-- significant digits, so equal models mean equal doubles.
\set VERBOSITY terse
-- 4,000 points in 5 features: six blobs of different spreads, deterministic
CREATE TABLE kb_pts AS
SELECT i, ARRAY[(i % 6) * 3 + sin(i * 1.7) * (1 + i % 3),
                (i % 6 / 2) * 4 + cos(i * 0.37) * 2,
                sin(i * 0.011) * 5,
                (i % 6 % 2) * 6 + sin(i * 2.3),
                cos(i * 0.7) * (i % 4)]::float8[] AS f
  FROM generate_series(1, 4000) i;
-- ties: a grid whose points sit at equal distances from several centres,
-- duplicated points, and a constant feature
CREATE TABLE kb_grid AS
SELECT ARRAY[x, y, 7]::float8[] AS f
  FROM generate_series(0, 9) x, generate_series(0, 9) y, generate_series(1, 3) dup;

-- the models of both ways, for k = 1 .. 12 and three seeds, and with given
-- initial centres that leave clusters empty (relocation)
CREATE FUNCTION pg_temp.fits(bounds boolean) RETURNS TABLE(data text, k int, seed int, model jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_bounds', bounds::text, true);
    RETURN QUERY
    SELECT 'blobs', g.k, s.seed,
           (SELECT customer_analytics.kmeans_fit(p.f, g.k, jsonb_build_object('n_init', 3, 'seed', s.seed)) FROM kb_pts p)
      FROM generate_series(1, 12) g(k), generate_series(0, 2) s(seed)
    UNION ALL
    SELECT 'grid', g.k, s.seed,
           (SELECT customer_analytics.kmeans_fit(p.f, g.k, jsonb_build_object('n_init', 2, 'seed', s.seed)) FROM kb_grid p)
      FROM generate_series(1, 12) g(k), generate_series(0, 2) s(seed)
    UNION ALL
    SELECT 'grid, tol 0', 5, 0,
           (SELECT customer_analytics.kmeans_fit(p.f, 5, '{"n_init": 2, "seed": 0, "tol": 0}') FROM kb_grid p)
    UNION ALL
    SELECT 'blobs, init with empty clusters', 4, 0,
           (SELECT customer_analytics.kmeans_fit(p.f, 4, '{"init": [[50, 50, 50, 50, 50], [0, 0, 0, 0, 0], [50, 50, 50, 50, 51], [0.1, 0, 0, 0, 0]]}') FROM kb_pts p)
    UNION ALL
    SELECT 'blobs, max_iter 3', 8, 0,
           (SELECT customer_analytics.kmeans_fit(p.f, 8, '{"n_init": 2, "seed": 0, "max_iter": 3}') FROM kb_pts p);
END $$;
BEGIN;
CREATE TEMP TABLE kb_plain AS SELECT * FROM pg_temp.fits(false);
CREATE TEMP TABLE kb_bounds AS SELECT * FROM pg_temp.fits(true);
COMMIT;
SHOW customer_analytics.kmeans_bounds;
-- every model the same, compared as text too (no rounding on the way)
SELECT count(*) AS models,
       count(*) FILTER (WHERE b.model = p.model AND b.model::text = p.model::text) AS identical,
       count(*) FILTER (WHERE (b.model->>'iterations')::int > 1) AS iterated
  FROM kb_plain p JOIN kb_bounds b USING (data, k, seed);
SELECT p.data, p.k, p.seed FROM kb_plain p JOIN kb_bounds b USING (data, k, seed)
 WHERE b.model::text IS DISTINCT FROM p.model::text;
-- the relocation case did relocate: the given centres at 50 start empty
SELECT model->'sizes' AS sizes, model->'iterations' AS iterations
  FROM kb_bounds WHERE data = 'blobs, init with empty clusters';

-- the labels of every point, and the silhouettes, from both models
SELECT count(*) AS points,
       count(*) FILTER (WHERE customer_analytics.kmeans_predict(b.model, x.f)
                              = customer_analytics.kmeans_predict(p.model, x.f)) AS same_label
  FROM kb_plain p JOIN kb_bounds b USING (data, k, seed), kb_pts x
 WHERE p.data = 'blobs' AND p.seed = 0;
SELECT p.k, (SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(b.model, x.f),
                                                  customer_analytics.kmeans_predict(b.model, x.f), 1000, 0) FROM kb_pts x)
          = (SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(p.model, x.f),
                                                  customer_analytics.kmeans_predict(p.model, x.f), 1000, 0) FROM kb_pts x)
          AS same_silhouette
  FROM kb_plain p JOIN kb_bounds b USING (data, k, seed)
 WHERE p.data = 'blobs' AND p.seed = 1 AND p.k IN (2, 5, 9);

-- the bounds do skip distances (else the comparison above proves nothing):
-- the fit says how many assignments they decided at DEBUG1
SET client_min_messages = debug1;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 2, "seed": 0}')->>'inertia')::float8 > 0 AS fitted FROM kb_pts;
SET customer_analytics.kmeans_bounds = off;
SELECT (customer_analytics.kmeans_fit(f, 6, '{"n_init": 2, "seed": 0}')->>'inertia')::float8 > 0 AS fitted FROM kb_pts;
RESET client_min_messages;
RESET customer_analytics.kmeans_bounds;

-- in one transaction, the same points and parameters are fitted once (a
-- segmentation's elbow takes its model view's fit): no DEBUG line the
-- second time, the same model; other parameters or points are fitted
BEGIN;
CREATE TEMP TABLE kb_once AS
SELECT customer_analytics.kmeans_fit(f, 6, '{"n_init": 2, "seed": 0}') AS m FROM kb_pts;
SET LOCAL client_min_messages = debug1;
SELECT customer_analytics.kmeans_fit(f, 6, '{"n_init": 2, "seed": 0}') = (SELECT m FROM kb_once) AS same_model FROM kb_pts;
SELECT customer_analytics.kmeans_fit(f, 6, '{"n_init": 2, "seed": 1}') <> (SELECT m FROM kb_once) AS other_seed FROM kb_pts;
SELECT customer_analytics.kmeans_fit(f, 6, '{"n_init": 2, "seed": 0}') <> (SELECT m FROM kb_once) AS other_points
  FROM kb_pts WHERE i > 1;
COMMIT;

-- the elbow of both ways (k-means for each k, silhouettes, picks)
CREATE FUNCTION pg_temp.elbow(bounds boolean) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('customer_analytics.kmeans_bounds', bounds::text, true);
    RETURN QUERY SELECT e::text FROM customer_analytics._kmeans_elbow_over(1, 8, '{"n_init": 3, "seed": 0}', 500,
                                                                           'SELECT f AS features FROM public.kb_pts') e;
END $$;
SELECT (SELECT array_agg(x) FROM pg_temp.elbow(false) x) = (SELECT array_agg(x) FROM pg_temp.elbow(true) x) AS same_elbow;
DROP TABLE kb_pts, kb_grid;
