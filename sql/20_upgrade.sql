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
SELECT to_regclass(:'gone_rollup') IS NOT NULL AS rollup_table, to_regclass('customer_analytics_state.campaign_state_gone') IS NOT NULL AS state_table,
       to_regclass('customer_analytics_state.segment_features_gone_seg') IS NOT NULL AS feature_state_table;
-- refused while views depend on it: nothing is dropped
SELECT left(err('DROP EXTENSION customer_analytics'), 5) AS refused;
SELECT to_regclass(:'gone_rollup') IS NOT NULL AS rollup_table, to_regclass('customer_analytics_state.campaign_state_gone') IS NOT NULL AS state_table;
SET client_min_messages = warning;
DROP EXTENSION customer_analytics CASCADE;
RESET client_min_messages;
SELECT to_regclass(:'gone_rollup') IS NULL AS rollup_dropped, to_regclass('customer_analytics_state.campaign_state_gone') IS NULL AS state_dropped,
       to_regclass('customer_analytics_state.campaign_months_gone') IS NULL AS month_state_dropped,
       to_regclass('customer_analytics_state.segment_features_gone_seg') IS NULL AS feature_state_dropped,
       to_regclass('customer_analytics_state.segment_skus_gone_seg') IS NULL AS sku_state_dropped,
       to_regnamespace('customer_analytics_state') IS NULL AS state_schema_dropped;
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

-- 1.5 -> 1.6 with a non-superuser's live definitions (issue 24, item 6):
-- the state tables 1.5 kept beside the views move to the schema
-- customer_analytics_state, renamed, with their owner and rows; the owner
-- gets USAGE and CREATE there (not as the schema's initial privileges,
-- which pg_dump would leave out); the refreshes after the update follow
-- the order changes from the moved state
SET client_min_messages = warning;
DROP EXTENSION customer_analytics CASCADE;
CREATE EXTENSION customer_analytics VERSION '1.5';
CREATE ROLE ca_up_analyst;
GRANT USAGE ON SCHEMA fx TO ca_up_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_up_analyst;
CREATE SCHEMA up15_bi AUTHORIZATION ca_up_analyst;
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('fx', readers => '{ca_up_analyst}');
SET ROLE ca_up_analyst;
SELECT name FROM customer_analytics.create_campaign('up15', 'up15_bi', source_schema => 'fx');
SELECT target_rows FROM customer_analytics.refresh_campaign('up15');
SELECT name FROM customer_analytics.create_segmentation('up15s', 'up15_bi', k => 2, segment => 'all', k_to => 2,
                                                        silhouette_sample => 0, source_schema => 'fx');
SELECT member_rows FROM customer_analytics.refresh_segmentation('up15s');
RESET ROLE;
-- under 1.5: the state beside the views
SELECT relname FROM pg_class WHERE relnamespace = 'up15_bi'::regnamespace AND relkind = 'r' ORDER BY 1;
CREATE TEMP TABLE up15_kept AS
SELECT 'state' AS t, x::text AS r FROM up15_bi.up15_state x UNION ALL SELECT 'months', x::text FROM up15_bi.up15_month_state x
UNION ALL SELECT 'features', x::text FROM up15_bi.up15s_features_state x UNION ALL SELECT 'skus', x::text FROM up15_bi.up15s_sku_state x;
ALTER EXTENSION customer_analytics UPDATE;
RESET client_min_messages;
SELECT relname, relkind FROM pg_class WHERE relnamespace = 'up15_bi'::regnamespace AND relkind NOT IN ('v', 'm', 'i');
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, COALESCE(cardinality(c.relacl), 0) AS grants,
       (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i WHERE i.indrelid = c.oid) AS key
  FROM pg_class c WHERE c.relnamespace = 'customer_analytics_state'::regnamespace AND c.relkind = 'r' ORDER BY 1;
SELECT count(*) AS rows_differing FROM (
    (SELECT * FROM up15_kept EXCEPT ALL (
        SELECT 'state', ROW(x.customer_code, x.orders, x.total, x.last_order, x.spend_orders, x.spend, x.low_tickets, x.base_orders, x.base, x.recent_orders, x.recent)::text FROM customer_analytics_state.campaign_state_up15 x
        UNION ALL SELECT 'months', x::text FROM customer_analytics_state.campaign_months_up15 x
        UNION ALL SELECT 'features', x::text FROM customer_analytics_state.segment_features_up15s x
        UNION ALL SELECT 'skus', x::text FROM customer_analytics_state.segment_skus_up15s x))
    UNION ALL
    ((SELECT 'state', ROW(x.customer_code, x.orders, x.total, x.last_order, x.spend_orders, x.spend, x.low_tickets, x.base_orders, x.base, x.recent_orders, x.recent)::text FROM customer_analytics_state.campaign_state_up15 x
      UNION ALL SELECT 'months', x::text FROM customer_analytics_state.campaign_months_up15 x
      UNION ALL SELECT 'features', x::text FROM customer_analytics_state.segment_features_up15s x
      UNION ALL SELECT 'skus', x::text FROM customer_analytics_state.segment_skus_up15s x) EXCEPT ALL SELECT * FROM up15_kept)) d;
SELECT state_table::regclass, month_state_table::regclass FROM customer_analytics.campaign_refresh_state WHERE campaign = 'up15';
-- the rows kept so far get 1.6's columns of the route customers NULL (read
-- again from the customers on the customer's next change), and the table
-- its fillfactor
SELECT count(*) AS state_rows, count(*) FILTER (WHERE x.route_customer IS NULL AND x.trade_name IS NULL AND x.delivery_route IS NULL
                                                AND x.shipping_address IS NULL AND x.csm IS NULL) AS attributes_unknown,
       (SELECT c.reloptions FROM pg_class c WHERE c.oid = 'customer_analytics_state.campaign_state_up15'::regclass) AS options
  FROM customer_analytics_state.campaign_state_up15 x;
SELECT state_table::regclass, sku_table::regclass FROM customer_analytics.segmentation_refresh_state WHERE segmentation = 'up15s';
SELECT has_schema_privilege('ca_up_analyst', 'customer_analytics_state', 'USAGE, CREATE') AS owner_may_keep_state,
       (SELECT count(*) FROM pg_init_privs i WHERE i.objoid = 'customer_analytics_state'::regnamespace
                                               AND i.classoid = 'pg_namespace'::regclass) AS initial_privileges,
       (SELECT d.deptype FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
           AND d.objid = 'customer_analytics_state'::regnamespace AND d.refclassid = 'pg_extension'::regclass) AS member;
UPDATE fx.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number = '1001';
SET ROLE ca_up_analyst;
SELECT target_rows FROM customer_analytics.refresh_campaign('up15');
SELECT member_rows FROM customer_analytics.refresh_segmentation('up15s');
RESET ROLE;
UPDATE fx.sales_order_lines SET pretax_subtotal = pretax_subtotal - 1 WHERE order_number = '1001';
SELECT name, split_part(mode, ' ', 1) AS mode FROM customer_analytics.refresh_history
 WHERE id IN (SELECT max(id) FROM customer_analytics.refresh_history WHERE name IN ('up15', 'up15s') GROUP BY name) ORDER BY 1;
SET ROLE ca_up_analyst;
SELECT customer_analytics.drop_campaign('up15');
SELECT customer_analytics.drop_segmentation('up15s');
RESET ROLE;
SELECT count(*) AS state_tables_left FROM pg_class WHERE relnamespace = 'customer_analytics_state'::regnamespace;
SELECT customer_analytics.drop_rollup('fx');
DROP SCHEMA up15_bi;
DROP OWNED BY ca_up_analyst;
DROP ROLE ca_up_analyst;
