-- Rolling segmentations (issue 13, item 2): a segmentation's feature window
-- and as_of relative to the refresh date, in the campaigns' spec language.
-- "Today" is pinned with customer_analytics.as_of_date, so this suite never
-- depends on the real date.
SET client_min_messages = warning;
CREATE SCHEMA rs;
SET customer_analytics.as_of_date = '2025-12-15';

-- features over the last 3 full months, recency from the refresh date
SELECT name, segment, k, member_rows FROM customer_analytics.create_segmentation('rseg', 'rs', k => 2, segment => 'all',
    k_to => 3, silhouette_sample => 0, source_schema => 'fx',
    rolling => '{"as_of": "today", "feature_window": {"from": "month_start -3 months", "to": "month_start -1 day"}}');
-- a segmentation with fixed dates, unchanged
SELECT name, member_rows FROM customer_analytics.create_segmentation('fseg', 'rs', k => 2, segment => 'all',
    k_to => 3, silhouette_sample => 0, source_schema => 'fx');

-- resolved now: 2025-09-01..2025-11-30 as of 2025-12-15; the fixed one as stored
SELECT name, feature_window, as_of, rolling FROM customer_analytics.list_segmentations() WHERE view_schema = 'rs';
SELECT name, feature_window, as_of FROM customer_analytics.segmentations WHERE view_schema = 'rs' ORDER BY 1;

-- the members are customer_features() over the resolved window and as_of
CREATE TEMP VIEW rseg_expected AS
SELECT customer_code, visits, total_spend, ticket_size, skus, total_quantity, first_order, last_order,
       recency_days, tenure_days, span_days, quantity_per_visit, days_per_visit, skus_per_visit, diff, features
  FROM customer_analytics.customer_features(
           (SELECT feature_window FROM customer_analytics.list_segmentations() WHERE name = 'rseg'),
           as_of => (SELECT as_of FROM customer_analytics.list_segmentations() WHERE name = 'rseg'),
           source_schema => 'fx');
CREATE TEMP VIEW rseg_members AS
SELECT customer_code, visits, total_spend, ticket_size, skus, total_quantity, first_order, last_order,
       recency_days, tenure_days, span_days, quantity_per_visit, days_per_visit, skus_per_visit, diff, features
  FROM rs.rseg_members;
SELECT (SELECT count(*) FROM (SELECT * FROM rs.rseg_members m JOIN rseg_expected e USING (customer_code)) j) AS joined,
       (SELECT count(*) FROM (SELECT * FROM rseg_members EXCEPT ALL SELECT * FROM rseg_expected) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM rseg_expected EXCEPT ALL SELECT * FROM rseg_members) b) AS missing;
SELECT customer_code, visits, first_order, last_order, recency_days FROM rs.rseg_members ORDER BY 1;
-- the model is kmeans_fit over them, with the stored k and options
SELECT (SELECT model FROM rs.rseg_model)
     = (SELECT customer_analytics.kmeans_fit(features, 2, '{"n_init": 10, "seed": 0}') FROM rseg_expected) AS same_model;
SELECT sum(customers) AS profiled FROM rs.rseg_profiles;
SELECT k, inertia IS NOT NULL AS has_inertia FROM rs.rseg_elbow ORDER BY k;
SELECT obj_description('rs.rseg_model'::regclass, 'pg_class') LIKE '%Rolling: {"as_of": "today"%' AS model_comment_names_spec;

-- a month later: the window moves to 2025-10-01..2025-12-31 as of 2026-01-20
SET customer_analytics.as_of_date = '2026-01-20';
SELECT name, feature_window, as_of FROM customer_analytics.list_segmentations() WHERE view_schema = 'rs';
-- the views keep the last refresh until the next one
SELECT count(*) AS members_before_refresh, max(last_order) FROM rs.rseg_members;
SELECT name, member_rows FROM customer_analytics.refresh_segmentation('rseg');
SELECT (SELECT count(*) FROM (SELECT * FROM rseg_members EXCEPT ALL SELECT * FROM rseg_expected) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM rseg_expected EXCEPT ALL SELECT * FROM rseg_members) b) AS missing;
SELECT customer_code, visits, first_order, last_order, recency_days FROM rs.rseg_members ORDER BY 1;
SELECT (SELECT model FROM rs.rseg_model)
     = (SELECT customer_analytics.kmeans_fit(features, 2, '{"n_init": 10, "seed": 0}') FROM rseg_expected) AS same_model;
SELECT sum(customers) AS profiled FROM rs.rseg_profiles;
-- a plain REFRESH reads the resolved definition too
SET customer_analytics.as_of_date = '2025-12-15';
REFRESH MATERIALIZED VIEW rs.rseg_model;
REFRESH MATERIALIZED VIEW rs.rseg_members;
SELECT count(*) AS members, max(last_order) FROM rs.rseg_members;
SELECT (SELECT count(*) FROM (SELECT * FROM rseg_members EXCEPT ALL SELECT * FROM rseg_expected) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM rseg_expected EXCEPT ALL SELECT * FROM rseg_members) b) AS missing;

-- the fixed segmentation does not move with the date
SELECT name, feature_window, as_of, rolling FROM customer_analytics.list_segmentations() WHERE name = 'fseg';
SELECT (SELECT count(*) FROM (SELECT customer_code, features FROM rs.fseg_members EXCEPT ALL
          SELECT customer_code, features FROM customer_analytics.customer_features(source_schema => 'fx')) a) AS extra,
       (SELECT count(*) FROM (SELECT customer_code, features FROM customer_analytics.customer_features(source_schema => 'fx')
          EXCEPT ALL SELECT customer_code, features FROM rs.fseg_members) b) AS missing;

-- alter_segmentation: a pinned as_of, then back to the fixed dates
SELECT name, member_rows FROM customer_analytics.alter_segmentation('rseg',
    rolling => '{"as_of": "2026-01-07", "feature_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
SELECT name, feature_window, as_of FROM customer_analytics.list_segmentations() WHERE name = 'rseg';
SELECT (SELECT count(*) FROM (SELECT * FROM rseg_members EXCEPT ALL SELECT * FROM rseg_expected) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM rseg_expected EXCEPT ALL SELECT * FROM rseg_members) b) AS missing;
SELECT name, member_rows FROM customer_analytics.alter_segmentation('rseg', rolling => 'null');
SELECT name, feature_window, as_of, rolling FROM customer_analytics.list_segmentations() WHERE name = 'rseg';
SELECT (SELECT count(*) FROM (SELECT * FROM rseg_members EXCEPT ALL SELECT * FROM rseg_expected) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM rseg_expected EXCEPT ALL SELECT * FROM rseg_members) b) AS missing;
SELECT name, member_rows FROM customer_analytics.alter_segmentation('rseg', rolling => 'null');

-- bad specs: 22023 with a HINT, nothing stored
SELECT public.err($$SELECT customer_analytics.create_segmentation('bad', 'rs', source_schema => 'fx', rolling => '[]')$$);
SELECT public.err($$SELECT customer_analytics.create_segmentation('bad', 'rs', source_schema => 'fx', rolling => '{"as_of": "today"}')$$);
SELECT public.err($$SELECT customer_analytics.create_segmentation('bad', 'rs', source_schema => 'fx', rolling => '{"spend_window": {"from": "as_of", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_segmentation('bad', 'rs', source_schema => 'fx', rolling => '{"as_of": "yesterday", "feature_window": {"from": "as_of", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_segmentation('bad', 'rs', source_schema => 'fx', rolling => '{"feature_window": "last 12 months"}')$$);
SELECT public.err($$SELECT customer_analytics.create_segmentation('bad', 'rs', source_schema => 'fx', rolling => '{"feature_window": {"from": "now -1 day", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_segmentation('bad', 'rs', source_schema => 'fx', rolling => '{"feature_window": {"from": "as_of", "to": "as_of -1 day"}}')$$);
SELECT public.err($$SELECT customer_analytics.alter_segmentation('rseg', rolling => '{"feature_window": {"from": "month_start", "to": "as_of -1 month"}}')$$);
SELECT count(*) AS stored_bad FROM customer_analytics.segmentations WHERE name = 'bad';
SELECT rolling FROM customer_analytics.segmentations WHERE name = 'rseg';

DROP VIEW rseg_members, rseg_expected;
SELECT customer_analytics.drop_segmentation('rseg');
SELECT customer_analytics.drop_segmentation('fseg');
RESET customer_analytics.as_of_date;
DROP SCHEMA rs CASCADE;
SET client_min_messages = notice;
