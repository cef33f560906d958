-- Segmentations built as materialized views, sharing the campaign machinery.
CREATE SCHEMA seg;
CREATE ROLE ca_seg_reader;
SET client_min_messages = warning;
SELECT name, view_schema, source_schema, segment, k, member_rows
  FROM customer_analytics.create_segmentation('fx2', 'seg', k => 2, segment => 'all', k_to => 4,
                                              silhouette_sample => 0, readers => '{ca_seg_reader}',
                                              source_schema => 'fx');
SELECT name, views, segment, k, schedule, member_rows FROM customer_analytics.list_segmentations();
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'customer_analytics';

-- four views with unique indexes (REFRESH ... CONCURRENTLY), comments and grants
SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'seg' ORDER BY 1;
SELECT c.relname, count(*) AS columns, count(col_description(c.oid, a.attnum)) AS commented,
       obj_description(c.oid, 'pg_class') IS NOT NULL AS view_commented,
       has_table_privilege('ca_seg_reader', c.oid, 'SELECT') AS reader_can_select
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'seg'::regnamespace AND c.relkind = 'm' GROUP BY c.oid, c.relname ORDER BY 1;

-- the members are the segmentation's customers, labelled by the model view
SELECT count(*) AS members,
       count(*) FILTER (WHERE cluster = customer_analytics.kmeans_predict((SELECT model FROM seg.fx2_model), features)) AS labelled_by_model
  FROM seg.fx2_members;
SELECT (SELECT count(*) FROM customer_analytics.customer_features(source_schema => 'fx')) AS customers_with_orders;
-- the model is kmeans_fit over segmentation_features with the stored k and options
SELECT (SELECT model FROM seg.fx2_model)
     = (SELECT customer_analytics.kmeans_fit(features, 2, '{"n_init": 10, "seed": 0}')
          FROM customer_analytics.segmentation_features('fx2')) AS same_model;
-- profiles agree with the members
SELECT p.cluster, p.customers = m.n AS count_agrees, abs(p.total_spend - m.spend) < 1e-9 AS mean_agrees
  FROM seg.fx2_profiles p
  JOIN (SELECT cluster, count(*) AS n, avg(total_spend::float8) AS spend FROM seg.fx2_members GROUP BY cluster) m
 USING (cluster) ORDER BY 1;
-- the elbow view is kmeans_elbow() with the stored parameters
SELECT count(*) AS differences FROM (
  (SELECT * FROM seg.fx2_elbow
   EXCEPT SELECT * FROM customer_analytics.kmeans_elbow(1, 4, 'all', '[2025-01-01,2025-12-31]', '2026-01-07',
                                                        '{"n_init": 10, "seed": 0}', 0, 'fx'))) d;
SELECT count(*) AS elbow_rows FROM seg.fx2_elbow;

-- refresh (CONCURRENTLY by default) picks up new data; a plain REFRESH works too
INSERT INTO fx.sales_orders VALUES ('SO', '3001', '0001015', 'K1', '20251201', 'Y');
INSERT INTO fx.sales_order_lines VALUES ('SO', '3001', 1, 'P1', 2, 500);
SELECT member_rows FROM customer_analytics.refresh_segmentation('fx2');
SELECT count(*) AS members_after FROM seg.fx2_members;
DELETE FROM fx.sales_order_lines WHERE order_number = '3001';
DELETE FROM fx.sales_orders WHERE order_number = '3001';
REFRESH MATERIALIZED VIEW CONCURRENTLY seg.fx2_model;
REFRESH MATERIALIZED VIEW CONCURRENTLY seg.fx2_members;
SELECT count(*) AS members_after_plain_refresh FROM seg.fx2_members;
SELECT member_rows FROM customer_analytics.refresh_segmentation('fx2', concurrently => false);

-- scheduling uses the same pg_cron machinery as campaigns
CREATE EXTENSION pg_cron;
SELECT customer_analytics.schedule_segmentation_refresh('fx2', '0 7 * * *') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job;
SELECT name, schedule FROM customer_analytics.list_segmentations();

-- errors; nothing half-built
\pset tuples_only on
\set VERBOSITY terse
SELECT customer_analytics.create_segmentation('Fx2', 'seg', source_schema => 'fx');
SELECT customer_analytics.create_segmentation('fx2', 'seg', source_schema => 'fx');
SELECT customer_analytics.create_segmentation('s3', 'seg', segment => 'vip', source_schema => 'fx');
SELECT customer_analytics.create_segmentation('s3', 'seg', k => 0, source_schema => 'fx');
SELECT customer_analytics.create_segmentation('s3', 'seg', options => '[1]', source_schema => 'fx');
SELECT customer_analytics.create_segmentation('s3', 'nowhere', source_schema => 'fx');
SELECT customer_analytics.create_segmentation('s3', 'seg', k => 40, source_schema => 'fx');
SELECT customer_analytics.refresh_segmentation('nope');
SELECT customer_analytics.unschedule_segmentation_refresh('nope');
\set VERBOSITY default
\pset tuples_only off
SELECT name FROM customer_analytics.segmentations ORDER BY 1;
SELECT count(*) AS relations_in_seg FROM pg_class WHERE relnamespace = 'seg'::regnamespace;

-- drop: views, schedule and catalog row
SELECT customer_analytics.drop_segmentation('fx2');
SELECT count(*) AS jobs FROM cron.job;
SELECT count(*) AS relations_in_seg FROM pg_class WHERE relnamespace = 'seg'::regnamespace;
DROP EXTENSION pg_cron;
REVOKE USAGE ON SCHEMA seg FROM ca_seg_reader;
DROP ROLE ca_seg_reader;
DROP SCHEMA seg;
