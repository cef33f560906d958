-- ALTER EXTENSION ... UPDATE from 1.0: a campaign built under 1.0 keeps
-- its views and rows, refreshes under the new version, and becomes
-- incremental once its source has a rollup.  Under the 1.0 objects the
-- library folds orders itself (no targeting_stats or monthly_revenue_stats
-- aggregate yet); after the update it uses the aggregates, and the rows must
-- not change.
\set VERBOSITY terse
DROP SCHEMA IF EXISTS bi, seg CASCADE;
-- DROP EXTENSION takes the tables the extension made outside its script:
-- a rollup's (copies of order data), a campaign's per-customer state and a
-- segmentation's feature state
CREATE SCHEMA gone_bi;
SELECT rollup_rows FROM customer_analytics.enable_rollup('fx');
SELECT name FROM customer_analytics.create_campaign('gone', 'gone_bi', source_schema => 'fx');
SELECT target_rows FROM customer_analytics.refresh_campaign('gone');
SELECT name FROM customer_analytics.create_segmentation('gone_seg', 'gone_bi', k => 2, segment => 'all', k_to => 2,
                                                        silhouette_sample => 0, source_schema => 'fx');
SELECT customer_analytics._rollup_table(id) AS gone_rollup FROM customer_analytics.rollups WHERE source_schema = 'fx' \gset
SELECT to_regclass(:'gone_rollup') IS NOT NULL AS rollup_table, to_regclass('gone_bi.gone_state') IS NOT NULL AS state_table,
       to_regclass('gone_bi.gone_seg_features_state') IS NOT NULL AS feature_state_table;
-- refused while views depend on it: nothing is dropped
SELECT left(err('DROP EXTENSION customer_analytics'), 5) AS refused;
SELECT to_regclass(:'gone_rollup') IS NOT NULL AS rollup_table, to_regclass('gone_bi.gone_state') IS NOT NULL AS state_table;
SET client_min_messages = warning;
DROP EXTENSION customer_analytics CASCADE;
RESET client_min_messages;
SELECT to_regclass(:'gone_rollup') IS NULL AS rollup_dropped, to_regclass('gone_bi.gone_state') IS NULL AS state_dropped,
       to_regclass('gone_bi.gone_month_state') IS NULL AS month_state_dropped,
       to_regclass('gone_bi.gone_seg_features_state') IS NULL AS feature_state_dropped,
       to_regclass('gone_bi.gone_seg_sku_state') IS NULL AS sku_state_dropped;
DROP SCHEMA gone_bi CASCADE;
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS customer_analytics CASCADE;
RESET client_min_messages;
CREATE EXTENSION customer_analytics VERSION '1.0';
CREATE SCHEMA up_bi;
SELECT name, target_rows, monthly_rows
  FROM customer_analytics.create_campaign('up', 'up_bi', source_schema => 'fx');
CREATE TEMP TABLE before_update AS SELECT * FROM up_bi.up_targets;
CREATE TEMP TABLE before_update_monthly AS SELECT * FROM up_bi.up_monthly;

ALTER EXTENSION customer_analytics UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'customer_analytics';
-- the views built under 1.0 are what 1.5 builds (sql/38_upgrade_leftovers.sql
-- compares them with a fresh build): the sheet built again, with its months
-- checked; the long form and the plain views added
SELECT relname, relkind FROM pg_class WHERE relnamespace = 'up_bi'::regnamespace AND relkind IN ('m', 'v') ORDER BY 1;
SELECT customer_analytics._view_reads('up_bi.up_monthly',
           'customer_analytics._campaign_sheet_revenue(text, date[])') AS sheet_checks_its_months;
SELECT target_rows, monthly_rows FROM customer_analytics.refresh_campaign('up');
REFRESH MATERIALIZED VIEW up_bi.up_targets;
SELECT count(*) AS changed_rows FROM (
    (SELECT * FROM before_update EXCEPT SELECT * FROM up_bi.up_targets)
    UNION ALL (SELECT * FROM up_bi.up_targets EXCEPT SELECT * FROM before_update)) d;
-- the sheet too (its revenue now comes from the monthly_revenue_stats aggregate)
SELECT count(*) AS changed_monthly_rows, (SELECT count(*) FROM up_bi.up_monthly) AS monthly_rows FROM (
    (SELECT * FROM before_update_monthly EXCEPT SELECT * FROM up_bi.up_monthly)
    UNION ALL (SELECT * FROM up_bi.up_monthly EXCEPT SELECT * FROM before_update_monthly)) d;
-- the new argument is there
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'fx', customers => '{0001001}');
SELECT rollup_rows FROM customer_analytics.enable_rollup('fx');
SELECT target_rows FROM customer_analytics.refresh_campaign('up');
SELECT target_rows FROM customer_analytics.refresh_campaign('up');
SELECT customer_analytics.drop_campaign('up');
SELECT customer_analytics.drop_rollup('fx');

-- From 1.4 with a rollup and an incremental campaign: the update to 1.5
-- disables the rollup (its keys table is created by rebuild_rollup, not by
-- the extension's script), the functions read the tables meanwhile, the
-- campaign keeps its rows; after rebuild_rollup the rollup is current,
-- exact and read again, with the 1.5 triggers, and the first refresh is a
-- full one (a new generation).
DROP EXTENSION customer_analytics;
CREATE EXTENSION customer_analytics VERSION '1.4';
SELECT rollup_rows FROM customer_analytics.enable_rollup('fx');
SELECT name FROM customer_analytics.create_campaign('up14', 'up_bi', source_schema => 'fx');
SELECT target_rows FROM customer_analytics.refresh_campaign('up14');
SELECT name, member_rows FROM customer_analytics.create_segmentation('up14s', 'up_bi', k => 2, segment => 'all', k_to => 2,
                                                                     silhouette_sample => 0, source_schema => 'fx');
ALTER EXTENSION customer_analytics UPDATE;
SELECT state, usable_here, reason FROM customer_analytics.list_rollups();
SELECT count(*) AS changed_rows FROM (
    (SELECT * FROM before_update EXCEPT SELECT * FROM up_bi.up14_targets)
    UNION ALL (SELECT * FROM up_bi.up14_targets EXCEPT SELECT * FROM before_update)) d;
SELECT state FROM customer_analytics.rebuild_rollup('fx');
SELECT state, usable_here FROM customer_analytics.list_rollups();
SELECT count(*) AS rollup_differences FROM customer_analytics.check_rollup('fx');
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'fx.sales_order_lines'::regclass ORDER BY tgname;
SELECT target_rows FROM customer_analytics.refresh_campaign('up14');
-- a segmentation built under 1.4 (its views compute the features) gets
-- the feature state, from the order changes once the rebuilt rollup's
-- dirty table has their quantities and product codes
SELECT member_rows FROM customer_analytics.refresh_segmentation('up14s');
UPDATE fx.sales_order_lines SET quantity = quantity + 1, product_code = 'UPD' WHERE order_number = '1001';
SELECT member_rows FROM customer_analytics.refresh_segmentation('up14s');
SELECT mode FROM customer_analytics.refresh_history WHERE name = 'up14s' ORDER BY id DESC LIMIT 2;
SELECT count(*) AS members_differing FROM (
    (SELECT customer_code, visits, total_spend, skus, total_quantity FROM up_bi.up14s_members
     EXCEPT ALL SELECT customer_code, visits, total_spend, skus, total_quantity
                  FROM customer_analytics.customer_features(source_schema => 'fx'))
    UNION ALL
    (SELECT customer_code, visits, total_spend, skus, total_quantity
       FROM customer_analytics.customer_features(source_schema => 'fx')
     EXCEPT ALL SELECT customer_code, visits, total_spend, skus, total_quantity FROM up_bi.up14s_members)) d;
UPDATE fx.sales_order_lines SET quantity = quantity - 1, product_code = 'P' || line_no WHERE order_number = '1001';
SELECT customer_analytics.drop_segmentation('up14s');
SELECT customer_analytics.drop_campaign('up14');
SELECT customer_analytics.drop_rollup('fx');
DROP SCHEMA up_bi;
