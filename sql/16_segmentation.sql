-- Choosing k, cluster profiles and RFM on the fixture (see 00_setup).
-- kneedle by hand: inertia 100, 40, 20, 15, 12 for k = 1..5.  Normalized,
-- x = 0, .25, .5, .75, 1 and 1 - y = 0, .682, .909, .966, 1; the gap
-- (1 - y) - x is largest (.432) at k = 2.
SELECT customer_analytics.kneedle('{1,2,3,4,5}', '{100,40,20,15,12}') AS knee;
-- a sharper bend later: 100, 90, 80, 20, 18, 17 -> k = 4
SELECT customer_analytics.kneedle('{1,2,3,4,5,6}', '{100,90,80,20,18,17}') AS knee;
-- too few points, or a flat curve: no knee
SELECT customer_analytics.kneedle('{1,2}', '{10,5}') IS NULL AS two_points,
       customer_analytics.kneedle('{1,2,3}', '{5,5,5}') IS NULL AS flat;

-- the elbow table over the fixture's customers (all of them: 15 with orders
-- in 2025).  k = 1 is the total variance: 15 customers times the number of
-- features that vary (each contributes variance 1 after standardization).
SELECT k, round(inertia::numeric, 6) AS inertia, silhouette IS NULL AS no_silhouette, kneedle_pick, silhouette_pick
  FROM customer_analytics.kmeans_elbow(1, 4, 'all', source_schema => 'fx', silhouette_sample => 0)
 WHERE k = 1;
SELECT count(*) * count(DISTINCT j) FILTER (WHERE sd > 0) / count(*) AS n_times_varying_features
  FROM (SELECT j, stddev_pop(f[j]) OVER (PARTITION BY j) AS sd
          FROM customer_analytics.customer_features(source_schema => 'fx') cf, generate_series(1, 11) j,
               LATERAL (SELECT cf.features AS f) x) s;
-- every k has an inertia, falling with k; exactly one k is picked by each method
SELECT count(*) AS ks, bool_and(inertia IS NOT NULL) AS inertias,
       count(*) FILTER (WHERE kneedle_pick) AS kneedle_picks, count(*) FILTER (WHERE silhouette_pick) AS silhouette_picks
  FROM customer_analytics.kmeans_elbow(1, 5, 'all', source_schema => 'fx', silhouette_sample => 0);
SELECT bool_and(inertia <= prev) AS falling FROM (
  SELECT inertia, lag(inertia) OVER (ORDER BY k) AS prev
    FROM customer_analytics.kmeans_elbow(1, 5, 'all', source_schema => 'fx')) e WHERE prev IS NOT NULL;
-- the silhouette column is silhouette() of that k's own fit
SELECT abs(e.silhouette - (
         SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(m, features),
                                              customer_analytics.kmeans_predict(m, features))
           FROM customer_analytics.customer_features(source_schema => 'fx'),
                (SELECT customer_analytics.kmeans_fit(features, 3, '{"n_init": 10, "seed": 0}') AS m
                   FROM customer_analytics.customer_features(source_schema => 'fx')) x)) < 1e-12 AS same_silhouette
  FROM customer_analytics.kmeans_elbow(1, 5, 'all', source_schema => 'fx', silhouette_sample => 0) e WHERE e.k = 3;

-- repeat and one-visit customers are segmented separately
SELECT count(*) FILTER (WHERE is_repeat) AS repeat, count(*) FILTER (WHERE NOT is_repeat) AS one_visit
  FROM customer_analytics.customer_features(source_schema => 'fx');
SELECT k, round(inertia::numeric, 6) AS inertia FROM customer_analytics.kmeans_elbow(1, 1, 'one_visit', source_schema => 'fx');

-- profiles: counts add up, shares add to 100 (give or take rounding), means are the members' means
CREATE TEMP TABLE seg_model AS
  SELECT customer_analytics.kmeans_fit(features, 3, '{"seed": 1}') AS m
    FROM customer_analytics.customer_features(source_schema => 'fx');
CREATE TEMP TABLE seg_profiles AS
  SELECT * FROM customer_analytics.kmeans_profiles((SELECT m FROM seg_model), 'all', source_schema => 'fx');
SELECT sum(customers) AS customers, sum(share) AS share_total, count(*) AS clusters FROM seg_profiles;
SELECT count(*) AS clusters_checked,
       count(*) FILTER (WHERE abs(p.total_spend - s.spend) < 1e-9 AND abs(p.visits - s.visits) < 1e-9
                          AND p.customers = s.n) AS agree
  FROM seg_profiles p
  JOIN (SELECT customer_analytics.kmeans_predict((SELECT m FROM seg_model), features) AS cluster,
               avg(total_spend::float8) AS spend, avg(visits::float8) AS visits, count(*) AS n
          FROM customer_analytics.customer_features(source_schema => 'fx') GROUP BY 1) s USING (cluster);
-- ranks: 1 = highest mean, per feature
SELECT count(*) AS clusters,
       bool_and((ranks->>'total_spend')::int = (SELECT count(*) FROM seg_profiles q WHERE q.total_spend > p.total_spend) + 1)
         AS spend_ranks_right
  FROM seg_profiles p;

-- RFM.  15 customers, so each fifth holds 3.  By hand, R sorts recency_days
-- descending, ties by code: R=1 0001007 (312), 0001016 (98), 0001008 (95);
-- R=2 0001005, 0001006 (67), 0001010 (65); R=3 0001011, 0001012, 0012 (65);
-- R=4 12 (64), 0001003 (63), 0001001 (58); R=5 0001002 (58), 0001004 (37),
-- 0001009 (7).  Segments then follow the documented rules, e.g. 0001003
-- R4 F5 M5 Champions, 0001008 R1 F5 M4 Cannot Lose Them, 0001010 R2 F4 M3
-- At Risk, 0001011 R3 F4 Loyal, 0001009 R5 F1 New Customer.
SELECT r, count(*) FROM customer_analytics.rfm_segments(source_schema => 'fx') GROUP BY r ORDER BY r;
SELECT customer_code, recency_days, visits, total_spend, r, f, m, rfm, segment
  FROM customer_analytics.rfm_segments(source_schema => 'fx') ORDER BY customer_code;

-- errors
\set VERBOSITY terse
SELECT * FROM customer_analytics.kmeans_elbow(3, 2, source_schema => 'fx');
SELECT * FROM customer_analytics.kmeans_elbow(0, 2, source_schema => 'fx');
SELECT * FROM customer_analytics.kmeans_elbow(1, 2, 'loyal', source_schema => 'fx');
SELECT * FROM customer_analytics.kmeans_elbow(1, 2, silhouette_sample => -1, source_schema => 'fx');
SELECT * FROM customer_analytics.kmeans_profiles('{"k": 2}', source_schema => 'fx');
SELECT * FROM customer_analytics.rfm_segments(source_schema => 'nowhere');
