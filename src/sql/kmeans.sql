-- kmeans.sql
--	Customer features and k-means: features, RFM segments, fit, predict, standardize, profiles, elbow, silhouette (customer_features.c, kmeans_*.c).

CREATE TYPE customer_analytics.customer_feature_stats AS (
	visits bigint,
	spend numeric,
	quantity numeric,
	skus bigint,
	first_order date,
	last_order date
);

COMMENT ON TYPE customer_analytics.customer_feature_stats IS 'what the customer_feature_stats aggregate returns: visits, exact spend and quantity, distinct SKUs, first and last order';

-- The combine function of aggregate customer_feature_stats.
CREATE FUNCTION customer_analytics._customer_feature_stats_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'customer_feature_stats_combine';

-- The deserialize function of aggregate customer_feature_stats.
CREATE FUNCTION customer_analytics._customer_feature_stats_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'customer_feature_stats_deserialize';

-- The final function of aggregate customer_feature_stats.
CREATE FUNCTION customer_analytics._customer_feature_stats_final(internal) RETURNS customer_analytics.customer_feature_stats
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'customer_feature_stats_final';

-- The serialize function of aggregate customer_feature_stats.
CREATE FUNCTION customer_analytics._customer_feature_stats_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'customer_feature_stats_serialize';

-- The transition function of aggregate customer_feature_stats.
CREATE FUNCTION customer_analytics._customer_feature_stats_sfunc(internal, date, numeric, numeric, text[]) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'customer_feature_stats_sfunc';

-- The elbow rows (k, inertia, silhouette, chosen k) of k-means over the
-- features a query returns.
CREATE FUNCTION customer_analytics._kmeans_elbow_over(k_from integer, k_to integer, options jsonb, silhouette_sample integer, features_sql text) RETURNS TABLE(k integer, inertia double precision, silhouette double precision, kneedle_pick boolean, silhouette_pick boolean)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
    -- the features in order once: each fit's and silhouette's canonical
    -- sort of the points then finds them sorted (src/point_buffer.c)
    RETURN QUERY EXECUTE format($q$
    WITH f AS MATERIALIZED (SELECT cf.features FROM (%s) cf ORDER BY cf.features),
    -- every k's kmeans_fit(f.features, k, $3) from one aggregate: the
    -- points read and standardized once, the restarts of all k one pool of
    -- tasks (one parallel context); MATERIALIZED, each fit is read once
    -- (inlined, the subquery ran for the filter, the inertia and both
    -- arguments of the silhouette)
    fits AS MATERIALIZED (
        SELECT ($1 + m.i - 1)::integer AS k, m.model
          FROM unnest((SELECT customer_analytics._kmeans_fits(f.features, $1, $2, $3) FROM f))
               WITH ORDINALITY AS m(model, i)),
    -- every k's silhouette(kmeans_standardize(model, f.features),
    -- kmeans_predict(model, f.features) [, $4, 0]), the same bits, from one
    -- pass over the features (the z-scores computed once: every model has
    -- the same mean and scale)
    sil AS MATERIALIZED (
        SELECT customer_analytics._kmeans_silhouettes(f.features,
                   (SELECT array_agg(fits.model ORDER BY fits.k) FROM fits), $4, 0) AS s
          FROM f),
    scored AS (
        SELECT fits.k, (fits.model->>'inertia')::float8 AS inertia,
               (SELECT sil.s[fits.k - $1 + 1] FROM sil) AS silhouette
          FROM fits WHERE fits.model IS NOT NULL)
    SELECT s.k, s.inertia, s.silhouette,
           s.k = customer_analytics.kneedle((SELECT array_agg(x.k ORDER BY x.k) FROM scored x),
                                           (SELECT array_agg(x.inertia ORDER BY x.k) FROM scored x)),
           s.k = (SELECT x.k FROM scored x WHERE x.silhouette IS NOT NULL ORDER BY x.silhouette DESC, x.k LIMIT 1)
      FROM scored s ORDER BY s.k$q$, features_sql) USING k_from, k_to, options, silhouette_sample;
END $_$;

-- The final function of aggregate kmeans_fit.
CREATE FUNCTION customer_analytics._kmeans_fit_final(internal) RETURNS jsonb
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_fit_final';

-- The final function of aggregate _kmeans_fits.
CREATE FUNCTION customer_analytics._kmeans_fits_final(internal) RETURNS jsonb[]
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_fits_final';

-- The transition function of aggregate _kmeans_fits.
CREATE FUNCTION customer_analytics._kmeans_fits_sfunc(internal, double precision[], integer, integer, jsonb) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_fits_sfunc';

-- The final function of aggregate _kmeans_silhouettes.
CREATE FUNCTION customer_analytics._kmeans_silhouettes_final(internal) RETURNS double precision[]
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_silhouettes_final';

-- The transition function of aggregate _kmeans_silhouettes.
CREATE FUNCTION customer_analytics._kmeans_silhouettes_sfunc(internal, double precision[], jsonb[], integer, bigint) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_silhouettes_sfunc';

-- The transition function of aggregate kmeans_fit.
CREATE FUNCTION customer_analytics._kmeans_fit_sfunc(internal, double precision[], integer) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_fit_sfunc';

-- The transition function of aggregate kmeans_fit.
CREATE FUNCTION customer_analytics._kmeans_fit_sfunc(internal, double precision[], integer, jsonb) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_fit_sfunc';

-- A k-means model checked as kmeans_predict() and kmeans_standardize()
-- read it (kmeans_model_parse() in src/kmeans_model.c, the one check of a
-- model): 22023 naming the field at fault.
CREATE FUNCTION customer_analytics._kmeans_model_check(model jsonb) RETURNS void
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_model_check';

COMMENT ON FUNCTION customer_analytics._kmeans_model_check(model jsonb) IS 'internal: refuse a k-means model kmeans_predict() would refuse (22023 naming the field), whether or not any features are predicted';

-- The profiles and the elbow of a set of features (features_sql: SQL
-- text of a relation with a float8[] column `features`), shared by
-- kmeans_profiles()/kmeans_elbow() and a segmentation's views.
CREATE FUNCTION customer_analytics._kmeans_profiles_over(model jsonb, features_sql text) RETURNS TABLE(cluster integer, customers bigint, share numeric, visits double precision, total_spend double precision, ticket_size double precision, skus double precision, total_quantity double precision, recency_days double precision, tenure_days double precision, quantity_per_visit double precision, days_per_visit double precision, skus_per_visit double precision, diff double precision, ranks jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
    -- the model is checked as kmeans_predict() reads it, features or none
    PERFORM customer_analytics._kmeans_model_check(model);
    RETURN QUERY EXECUTE format($q$
    WITH m AS (
        SELECT customer_analytics.kmeans_predict($1, cf.features) AS cluster, cf.features AS f
          FROM (%s) cf),
    p AS (
        SELECT m.cluster, count(*) AS customers,
               avg(f[1]) AS visits, avg(f[2]) AS total_spend, avg(f[3]) AS ticket_size, avg(f[4]) AS skus,
               avg(f[5]) AS total_quantity, avg(f[6]) AS recency_days, avg(f[7]) AS tenure_days,
               avg(f[8]) AS quantity_per_visit, avg(f[9]) AS days_per_visit, avg(f[10]) AS skus_per_visit,
               avg(f[11]) AS diff
          FROM m GROUP BY m.cluster)
    SELECT p.cluster, p.customers,
           round(100.0 * p.customers / sum(p.customers) OVER (), 2),
           p.visits, p.total_spend, p.ticket_size, p.skus, p.total_quantity, p.recency_days, p.tenure_days,
           p.quantity_per_visit, p.days_per_visit, p.skus_per_visit, p.diff,
           jsonb_build_object(
               'visits', rank() OVER (ORDER BY p.visits DESC),
               'total_spend', rank() OVER (ORDER BY p.total_spend DESC),
               'ticket_size', rank() OVER (ORDER BY p.ticket_size DESC),
               'skus', rank() OVER (ORDER BY p.skus DESC),
               'total_quantity', rank() OVER (ORDER BY p.total_quantity DESC),
               'recency_days', rank() OVER (ORDER BY p.recency_days DESC),
               'tenure_days', rank() OVER (ORDER BY p.tenure_days DESC),
               'quantity_per_visit', rank() OVER (ORDER BY p.quantity_per_visit DESC),
               'days_per_visit', rank() OVER (ORDER BY p.days_per_visit DESC),
               'skus_per_visit', rank() OVER (ORDER BY p.skus_per_visit DESC),
               'diff', rank() OVER (ORDER BY p.diff DESC))
      FROM p ORDER BY p.cluster$q$, features_sql) USING model;
END $_$;

-- Shared by the clustering aggregates: their state is a buffer of points.
CREATE FUNCTION customer_analytics._point_buffer_combine(internal, internal) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'point_buffer_combine';

-- The deserialize function of aggregate point_buffer.
CREATE FUNCTION customer_analytics._point_buffer_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'point_buffer_deserialize';

-- The serialize function of aggregate point_buffer.
CREATE FUNCTION customer_analytics._point_buffer_serialize(internal) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'point_buffer_serialize';

-- The final function of aggregate silhouette.
CREATE FUNCTION customer_analytics._silhouette_final(internal) RETURNS double precision
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'silhouette_final';

-- The transition function of aggregate silhouette.
CREATE FUNCTION customer_analytics._silhouette_sfunc(internal, double precision[], integer) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'silhouette_sfunc';

-- The transition function of aggregate silhouette.
CREATE FUNCTION customer_analytics._silhouette_sfunc(internal, double precision[], integer, integer, bigint) RETURNS internal
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'silhouette_sfunc';

-- One row per customer with a confirmed order in feature_window, RFM-style:
-- visits, spend, basket, SKUs, dates, and the per-visit ratios.  Orders
-- follow the targeting rules.  as_of is the day recency and tenure are
-- counted to; it may not be before the window's last day (negative recency
-- means nothing).  STABLE, PARALLEL RESTRICTED and SECURITY INVOKER for the
-- same reasons as target_customers.
CREATE FUNCTION customer_analytics.customer_features(feature_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, as_of date DEFAULT '2026-01-07'::date, source_schema text DEFAULT NULL::text, OUT customer_code text, OUT visits bigint, OUT total_spend numeric, OUT ticket_size numeric, OUT skus bigint, OUT total_quantity numeric, OUT first_order date, OUT last_order date, OUT recency_days integer, OUT tenure_days integer, OUT span_days integer, OUT quantity_per_visit double precision, OUT days_per_visit double precision, OUT skus_per_visit double precision, OUT diff double precision, OUT is_repeat boolean, OUT features double precision[]) RETURNS SETOF record
    LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'customer_features';

COMMENT ON FUNCTION customer_analytics.customer_features(feature_window daterange, as_of date, source_schema text, OUT customer_code text, OUT visits bigint, OUT total_spend numeric, OUT ticket_size numeric, OUT skus bigint, OUT total_quantity numeric, OUT first_order date, OUT last_order date, OUT recency_days integer, OUT tenure_days integer, OUT span_days integer, OUT quantity_per_visit double precision, OUT days_per_visit double precision, OUT skus_per_visit double precision, OUT diff double precision, OUT is_repeat boolean, OUT features double precision[]) IS 'Customer single view over feature_window, one row per customer with a confirmed order: visits (orders), total_spend, ticket_size = total_spend / visits, skus (distinct product codes), total_quantity, first/last order, recency_days = as_of - last_order, tenure_days = as_of - first_order, span_days = last_order - first_order, quantity_per_visit, days_per_visit (span_days / visits), skus_per_visit, diff = quantity_per_visit - skus_per_visit, is_repeat = visits >= 2; features = float8[] of visits, total_spend, ticket_size, skus, total_quantity, recency_days, tenure_days, quantity_per_visit, days_per_visit, skus_per_visit, diff (in this order)';

-- The elbow table: for each k, inertia and silhouette of the k-means fit of
-- the customers' features, and which k kneedle and the silhouette maximum
-- pick.  Silhouettes use a repeatable sample of silhouette_sample points
-- (0 = exact).
CREATE FUNCTION customer_analytics.kmeans_elbow(k_from integer DEFAULT 1, k_to integer DEFAULT 10, segment text DEFAULT 'repeat'::text, feature_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, as_of date DEFAULT '2026-01-07'::date, options jsonb DEFAULT '{"seed": 0, "n_init": 10}'::jsonb, silhouette_sample integer DEFAULT 2000, source_schema text DEFAULT NULL::text) RETURNS TABLE(k integer, inertia double precision, silhouette double precision, kneedle_pick boolean, silhouette_pick boolean)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF k_from IS NULL OR k_to IS NULL OR k_from < 1 OR k_to < k_from OR k_to > 50 THEN
        RAISE EXCEPTION 'need 1 <= k_from <= k_to <= 50, not k_from = %, k_to = %', k_from, k_to
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The notebook looks at k = 1 .. 10.';
    END IF;
    IF silhouette_sample IS NULL OR silhouette_sample < 0 THEN
        RAISE EXCEPTION 'silhouette_sample must be 0 (exact) or a sample size'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The default 2000 is repeatable (seed 0).';
    END IF;
    RETURN QUERY SELECT * FROM customer_analytics._kmeans_elbow_over(k_from, k_to, options, silhouette_sample,
        customer_analytics._segment_features_sql(segment, feature_window, as_of, source_schema));
END $$;

COMMENT ON FUNCTION customer_analytics.kmeans_elbow(k_from integer, k_to integer, segment text, feature_window daterange, as_of date, options jsonb, silhouette_sample integer, source_schema text) IS 'inertia and silhouette for k = k_from .. k_to over customer_features(), with the k kneedle and the silhouette maximum pick';

-- Cluster (0-based) of the nearest centroid, after the model's
-- standardization.
CREATE FUNCTION customer_analytics.kmeans_predict(model jsonb, features double precision[]) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_predict';

COMMENT ON FUNCTION customer_analytics.kmeans_predict(model jsonb, features double precision[]) IS 'cluster (0-based) of the nearest centroid, after the model''s standardization';

-- Cluster profiles: per cluster of a model, the customers, their share, the
-- mean of every feature and each mean's rank across clusters (1 = highest),
-- as the notebook's profile tables.
CREATE FUNCTION customer_analytics.kmeans_profiles(model jsonb, segment text DEFAULT 'repeat'::text, feature_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, as_of date DEFAULT '2026-01-07'::date, source_schema text DEFAULT NULL::text) RETURNS TABLE(cluster integer, customers bigint, share numeric, visits double precision, total_spend double precision, ticket_size double precision, skus double precision, total_quantity double precision, recency_days double precision, tenure_days double precision, quantity_per_visit double precision, days_per_visit double precision, skus_per_visit double precision, diff double precision, ranks jsonb)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT * FROM customer_analytics._kmeans_profiles_over(model,
        customer_analytics._segment_features_sql(segment, feature_window, as_of, source_schema))
$$;

COMMENT ON FUNCTION customer_analytics.kmeans_profiles(model jsonb, segment text, feature_window daterange, as_of date, source_schema text) IS 'per cluster of a kmeans_fit model: customers, share %, mean of each feature, and each mean''s rank across clusters (1 = highest)';

-- The features as z-scores with the model's mean and scale (the space the
-- centroids live in).
CREATE FUNCTION customer_analytics.kmeans_standardize(model jsonb, features double precision[]) RETURNS double precision[]
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'kmeans_standardize';

COMMENT ON FUNCTION customer_analytics.kmeans_standardize(model jsonb, features double precision[]) IS 'the features as z-scores with the model''s mean and scale (the space the centroids live in)';

-- Kneedle (Satopaa et al. 2011) on a decreasing, convex curve such as
-- inertia over k: normalize both axes to [0, 1] and take the k where the
-- normalized curve lies farthest below the straight line from first to last
-- point.  NULL with fewer than three points or a flat curve.
CREATE FUNCTION customer_analytics.kneedle(k integer[], inertia double precision[]) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    WITH p AS (SELECT u.k, u.y FROM unnest(k, inertia) AS u(k, y) WHERE u.k IS NOT NULL AND u.y IS NOT NULL),
    n AS (SELECT p.k,
                 (p.k - min(p.k) OVER ())::float8 / NULLIF(max(p.k) OVER () - min(p.k) OVER (), 0) AS x,
                 (p.y - min(p.y) OVER ()) / NULLIF(max(p.y) OVER () - min(p.y) OVER (), 0) AS y,
                 count(*) OVER () AS points
            FROM p)
    SELECT n.k FROM n
     WHERE n.points >= 3 AND n.x IS NOT NULL AND n.y IS NOT NULL
     ORDER BY (1 - n.y) - n.x DESC, n.k
     LIMIT 1
$$;

COMMENT ON FUNCTION customer_analytics.kneedle(k integer[], inertia double precision[]) IS 'the knee of a decreasing convex curve (kneedle): the k where inertia stops falling fast';

-- RFM: quintile scores and named segments.  R = 5 for the most recent fifth
-- of customers, F and M = 5 for the most visits / spend; ties are broken by
-- customer_code so scores are repeatable.  Segments, first match wins:
--   Champions          R >= 4, F >= 4, M >= 4
--   Loyal              R >= 3, F >= 4
--   Cannot Lose Them   R <= 2, F >= 4, M >= 4
--   At Risk            R <= 2, F >= 3
--   Potential Loyalist R >= 4, F 2..3
--   New Customer       R >= 4, F = 1
--   Need Attention     R = 3,  F <= 3
--   Hibernating        R <= 2, F <= 2
CREATE FUNCTION customer_analytics.rfm_segments(feature_window daterange DEFAULT '[2025-01-01,2026-01-01)'::daterange, as_of date DEFAULT '2026-01-07'::date, source_schema text DEFAULT NULL::text) RETURNS TABLE(customer_code text, recency_days integer, visits bigint, total_spend numeric, r integer, f integer, m integer, rfm text, segment text)
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    WITH s AS (
        SELECT cf.customer_code, cf.recency_days, cf.visits, cf.total_spend,
               ntile(5) OVER (ORDER BY cf.recency_days DESC, cf.customer_code) AS r,
               ntile(5) OVER (ORDER BY cf.visits, cf.customer_code) AS f,
               ntile(5) OVER (ORDER BY cf.total_spend, cf.customer_code) AS m
          FROM customer_analytics.customer_features(feature_window, as_of, source_schema) cf)
    SELECT s.customer_code, s.recency_days, s.visits, s.total_spend, s.r, s.f, s.m,
           s.r::text || s.f::text || s.m::text,
           CASE WHEN s.r >= 4 AND s.f >= 4 AND s.m >= 4 THEN 'Champions'
                WHEN s.r >= 3 AND s.f >= 4 THEN 'Loyal'
                WHEN s.r <= 2 AND s.f >= 4 AND s.m >= 4 THEN 'Cannot Lose Them'
                WHEN s.r <= 2 AND s.f >= 3 THEN 'At Risk'
                WHEN s.r >= 4 AND s.f BETWEEN 2 AND 3 THEN 'Potential Loyalist'
                WHEN s.r >= 4 AND s.f = 1 THEN 'New Customer'
                WHEN s.r = 3 THEN 'Need Attention'
                ELSE 'Hibernating' END
      FROM s ORDER BY s.customer_code
$$;

COMMENT ON FUNCTION customer_analytics.rfm_segments(feature_window daterange, as_of date, source_schema text) IS 'RFM quintile scores (1-5) per customer and a named segment: Champions, Loyal, Cannot Lose Them, At Risk, Potential Loyalist, New Customer, Need Attention, Hibernating';

-- SSPACE: a state with some sixty product codes (hash set and strings);
-- the demo data's customers average about a hundred
CREATE AGGREGATE customer_analytics.customer_feature_stats(order_date date, order_total numeric, quantity numeric, product_codes text[]) (
    SFUNC = customer_analytics._customer_feature_stats_sfunc,
    STYPE = internal,
    SSPACE = 4096,
    FINALFUNC = customer_analytics._customer_feature_stats_final,
    COMBINEFUNC = customer_analytics._customer_feature_stats_combine,
    SERIALFUNC = customer_analytics._customer_feature_stats_serialize,
    DESERIALFUNC = customer_analytics._customer_feature_stats_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.customer_feature_stats(order_date date, order_total numeric, quantity numeric, product_codes text[]) IS 'per-customer visits, spend, quantity, distinct SKUs and first/last order (one row per order, product codes may repeat); what customer_features() derives its columns from';

-- kmeans_fit(features, k [, options]): standardize (z-scores, population
-- std), then k-means++ with n_init restarts and Lloyd iterations as
-- scikit-learn 1.2 does.  options: {"n_init": 10, "max_iter": 300,
-- "tol": 1e-4, "seed": 0, "init": [[...], ...]} (init in z-score units).
-- The points are put into a canonical order before fitting, so the model
-- does not depend on the plan (serial or parallel).
CREATE AGGREGATE customer_analytics.kmeans_fit(features double precision[], k integer) (
    SFUNC = customer_analytics._kmeans_fit_sfunc,
    STYPE = internal,
    FINALFUNC = customer_analytics._kmeans_fit_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = customer_analytics._point_buffer_combine,
    SERIALFUNC = customer_analytics._point_buffer_serialize,
    DESERIALFUNC = customer_analytics._point_buffer_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.kmeans_fit(features double precision[], k integer) IS 'k-means model (jsonb) of the feature vectors: standardization, centroids, inertia, iterations, sizes; k-means++ with 10 restarts, seed 0';

-- kmeans_fit(features, k [, options]): standardize (z-scores, population
-- std), then k-means++ with n_init restarts and Lloyd iterations as
-- scikit-learn 1.2 does.  options: {"n_init": 10, "max_iter": 300,
-- "tol": 1e-4, "seed": 0, "init": [[...], ...]} (init in z-score units).
-- The points are put into a canonical order before fitting, so the model
-- does not depend on the plan (serial or parallel).
CREATE AGGREGATE customer_analytics.kmeans_fit(features double precision[], k integer, options jsonb) (
    SFUNC = customer_analytics._kmeans_fit_sfunc,
    STYPE = internal,
    FINALFUNC = customer_analytics._kmeans_fit_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = customer_analytics._point_buffer_combine,
    SERIALFUNC = customer_analytics._point_buffer_serialize,
    DESERIALFUNC = customer_analytics._point_buffer_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.kmeans_fit(features double precision[], k integer, options jsonb) IS 'k-means model (jsonb) with options n_init, max_iter, tol, seed, init (initial centroids in z-score units)';

-- Internal: kmeans_fit(features, k, options) for k = k_from .. k_to, as an
-- array of models (the elbow's fits): the points sorted and standardized
-- once, the restarts of every k one pool of tasks; each model is
-- kmeans_fit()'s, bit for bit (src/kmeans_model.c).
CREATE AGGREGATE customer_analytics._kmeans_fits(features double precision[], k_from integer, k_to integer, options jsonb) (
    SFUNC = customer_analytics._kmeans_fits_sfunc,
    STYPE = internal,
    FINALFUNC = customer_analytics._kmeans_fits_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = customer_analytics._point_buffer_combine,
    SERIALFUNC = customer_analytics._point_buffer_serialize,
    DESERIALFUNC = customer_analytics._point_buffer_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics._kmeans_fits(features double precision[], k_from integer, k_to integer, options jsonb) IS 'internal: kmeans_fit(features, k, options) for k = k_from .. k_to as an array of models, fitted together (the elbow''s fits)';

-- _kmeans_silhouettes(features, models, sample_size, seed): every model's
-- silhouette over the same features, as the elbow asks for them.
CREATE AGGREGATE customer_analytics._kmeans_silhouettes(features double precision[], models jsonb[], sample_size integer, seed bigint) (
    SFUNC = customer_analytics._kmeans_silhouettes_sfunc,
    STYPE = internal,
    FINALFUNC = customer_analytics._kmeans_silhouettes_final,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics._kmeans_silhouettes(features double precision[], models jsonb[], sample_size integer, seed bigint) IS 'internal: for each model, silhouette(kmeans_standardize(model, features), kmeans_predict(model, features)[, sample_size, seed]) bit for bit (sample_size 0: exact), in one pass over the features (the elbow''s silhouettes)';

-- silhouette(features, cluster [, sample_size, seed]): scikit-learn's
-- silhouette_score (Euclidean, exact); NULL when fewer than 2 or more than
-- n - 1 clusters.
CREATE AGGREGATE customer_analytics.silhouette(features double precision[], cluster integer) (
    SFUNC = customer_analytics._silhouette_sfunc,
    STYPE = internal,
    FINALFUNC = customer_analytics._silhouette_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = customer_analytics._point_buffer_combine,
    SERIALFUNC = customer_analytics._point_buffer_serialize,
    DESERIALFUNC = customer_analytics._point_buffer_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.silhouette(features double precision[], cluster integer) IS 'mean silhouette coefficient (scikit-learn''s silhouette_score, Euclidean, exact)';

-- silhouette(features, cluster [, sample_size, seed]): scikit-learn's
-- silhouette_score (Euclidean, exact); NULL when fewer than 2 or more than
-- n - 1 clusters.
CREATE AGGREGATE customer_analytics.silhouette(features double precision[], cluster integer, sample_size integer, seed bigint) (
    SFUNC = customer_analytics._silhouette_sfunc,
    STYPE = internal,
    FINALFUNC = customer_analytics._silhouette_final,
    FINALFUNC_MODIFY = READ_WRITE,
    COMBINEFUNC = customer_analytics._point_buffer_combine,
    SERIALFUNC = customer_analytics._point_buffer_serialize,
    DESERIALFUNC = customer_analytics._point_buffer_deserialize,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.silhouette(features double precision[], cluster integer, sample_size integer, seed bigint) IS 'mean silhouette coefficient on a repeatable random sample of sample_size points';
