-- The elbow's silhouettes from one aggregate (_kmeans_silhouettes: one
-- pass over the features, the z-scores computed once for every k) against
-- silhouette(kmeans_standardize(model, f), kmeans_predict(model, f)
-- [, sample, 0]) called per k over the same models, as the elbow computed
-- them before: every score must be the same double (float8send: the same
-- bits), sampled and exact, with ties and duplicated points.
\set VERBOSITY terse
-- 3,000 points in 5 features: six blobs of different spreads, deterministic
CREATE TABLE public.es_pts AS
SELECT ARRAY[(i % 6) * 3 + sin(i * 1.7) * (1 + i % 3),
             (i % 6 / 2) * 4 + cos(i * 0.37) * 2,
             sin(i * 0.011) * 5,
             (i % 6 % 2) * 6 + sin(i * 2.3),
             cos(i * 0.7) * (i % 4)]::float8[] AS features
  FROM generate_series(1, 3000) i;
-- ties: a grid whose points sit at equal distances from several centres,
-- each point three times, and a constant feature
CREATE TABLE public.es_grid AS
SELECT ARRAY[x, y, 7]::float8[] AS features
  FROM generate_series(0, 9) x, generate_series(0, 9) y, generate_series(1, 3) dup;
-- 12 points: k = 1 .. 12 asks for more clusters than some fits can have
CREATE TABLE public.es_few AS
SELECT ARRAY[i % 4, i / 4]::float8[] AS features FROM generate_series(0, 11) i;

-- the elbow's (k, silhouette) beside silhouette() per k over the same
-- models (_kmeans_fits returns the elbow's fits, bit for bit)
CREATE FUNCTION pg_temp.compare(tbl text, k_from int, k_to int, options jsonb, sample int)
RETURNS TABLE(k int, elbow float8, per_k float8) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
    WITH f AS MATERIALIZED (SELECT t.features FROM %1$s t ORDER BY t.features),
    fits AS MATERIALIZED (
        SELECT ($1 + m.i - 1)::int AS k, m.model
          FROM unnest((SELECT customer_analytics._kmeans_fits(f.features, $1, $2, $3) FROM f))
               WITH ORDINALITY AS m(model, i)),
    ref AS (
        SELECT fits.k,
               (SELECT CASE WHEN $4 = 0
                            THEN customer_analytics.silhouette(customer_analytics.kmeans_standardize(fits.model, f.features),
                                                               customer_analytics.kmeans_predict(fits.model, f.features))
                            ELSE customer_analytics.silhouette(customer_analytics.kmeans_standardize(fits.model, f.features),
                                                               customer_analytics.kmeans_predict(fits.model, f.features),
                                                               $4, 0) END
                  FROM f) AS s
          FROM fits WHERE fits.model IS NOT NULL)
    SELECT e.k, e.silhouette, ref.s
      FROM customer_analytics._kmeans_elbow_over($1, $2, $3, $4, 'SELECT features FROM %1$s') e
      FULL JOIN ref ON ref.k = e.k ORDER BY 1$q$, tbl) USING k_from, k_to, options, sample;
END $$;

-- per case: the k compared, those with a score, and those whose two
-- scores differ in any bit (0 expected)
SELECT c.tbl, c.sample, c.options, count(*) AS ks, count(r.elbow) AS scored,
       count(*) FILTER (WHERE r.elbow IS DISTINCT FROM r.per_k
                           OR float8send(r.elbow) IS DISTINCT FROM float8send(r.per_k)) AS differ
  FROM (VALUES ('public.es_pts', 2000, '{"seed": 0, "n_init": 4}'::jsonb),
               ('public.es_pts', 500, '{"seed": 1, "n_init": 3}'),
               ('public.es_pts', 0, '{"seed": 0, "n_init": 2}'),
               ('public.es_grid', 2000, '{"seed": 0, "n_init": 4}'),
               ('public.es_grid', 50, '{"seed": 2, "n_init": 4}'),
               ('public.es_grid', 0, '{"seed": 0, "n_init": 4}'),
               ('public.es_few', 0, '{"seed": 0, "n_init": 2}'),
               ('public.es_few', 5, '{"seed": 0, "n_init": 2}')) c(tbl, sample, options),
       LATERAL pg_temp.compare(c.tbl, 1, CASE WHEN c.tbl = 'public.es_few' THEN 12 ELSE 10 END, c.options, c.sample) r
 GROUP BY c.tbl, c.sample, c.options ORDER BY c.tbl, c.sample DESC, c.options::text;

-- the scores themselves for one case (k = 1: undefined, NULL)
SELECT k, round(elbow::numeric, 12) AS silhouette
  FROM pg_temp.compare('public.es_grid', 1, 10, '{"seed": 0, "n_init": 4}', 0) ORDER BY k;

-- the aggregate directly: a NULL model gives a NULL score, no rows NULL
SELECT array_length(s, 1) AS models, s[1] IS NULL AS null_model_null_score,
       float8send(s[2]) = float8send((SELECT customer_analytics.silhouette(
           customer_analytics.kmeans_standardize(m.model, t.features),
           customer_analytics.kmeans_predict(m.model, t.features)) FROM public.es_few t)) AS same_bits
  FROM (SELECT customer_analytics.kmeans_fit(features, 3) AS model FROM public.es_few) m,
       LATERAL (SELECT customer_analytics._kmeans_silhouettes(t.features, ARRAY[NULL, m.model], 0, 0) AS s
                  FROM public.es_few t) x;
SELECT customer_analytics._kmeans_silhouettes(features, ARRAY['{}']::jsonb[], 0, 0) IS NULL AS no_rows
  FROM public.es_few WHERE false;

-- the same errors as silhouette() and kmeans_predict()
SELECT customer_analytics._kmeans_elbow_over(1, 3, '{"seed": 0}', 1, 'SELECT features FROM public.es_few');
SELECT customer_analytics._kmeans_silhouettes(f, ARRAY[m.model], 0, 0)
  FROM (SELECT customer_analytics.kmeans_fit(features, 2) AS model FROM public.es_few) m,
       (VALUES ('{1,2,3}'::float8[])) v(f);
SELECT customer_analytics._kmeans_silhouettes(t.features, ARRAY[m.model], NULL, 0)
  FROM (SELECT customer_analytics.kmeans_fit(features, 2) AS model FROM public.es_few) m, public.es_few t;

DROP TABLE public.es_pts, public.es_grid, public.es_few;
