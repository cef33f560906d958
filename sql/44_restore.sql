-- A restore (issue 24, item 1): pg_restore refreshes every materialized
-- view as its owner with row_security off, and the catalogs have row-level
-- security.  Needs 00_setup (fixture schema fx).
--
-- A non-superuser's campaign and segmentation refresh that way; a view left
-- unpopulated is refreshed by the default (CONCURRENTLY) refresh, without
-- CONCURRENTLY, and the history says so; a rollup whose triggers are
-- recreated by a dump's script is disabled with a reason that says so and
-- what to run.
\set VERBOSITY terse
SET client_min_messages = warning;
\pset tuples_only on
\pset format unaligned
CREATE ROLE ca_restore_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_restore_analyst;  -- the state of its definitions
GRANT USAGE ON SCHEMA fx TO ca_restore_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_restore_analyst;
CREATE SCHEMA restore_bi;
GRANT USAGE, CREATE ON SCHEMA restore_bi TO ca_restore_analyst;
SET ROLE ca_restore_analyst;
SELECT name, owner, target_rows > 0 FROM customer_analytics.create_campaign('rs1', 'restore_bi', source_schema => 'fx');
SELECT name, owner, member_rows > 0 FROM customer_analytics.create_segmentation('rsseg', 'restore_bi', k => 2, k_to => 3,
       segment => 'all', silhouette_sample => 0, source_schema => 'fx');
RESET ROLE;

-- what pg_restore runs (a superuser's session; REFRESH becomes the owner)
CREATE TEMP TABLE before_restore AS
SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t.customer_code)) FROM restore_bi.rs1_targets t) AS targets,
       (SELECT md5(string_agg(m::text, ',' ORDER BY m.customer_code)) FROM restore_bi.rsseg_members m) AS members;
SET row_security = off;
SET check_function_bodies = false;
REFRESH MATERIALIZED VIEW restore_bi.rs1_targets;
REFRESH MATERIALIZED VIEW restore_bi.rs1_monthly;
REFRESH MATERIALIZED VIEW restore_bi.rs1_monthly_long;
REFRESH MATERIALIZED VIEW restore_bi.rsseg_elbow;
REFRESH MATERIALIZED VIEW restore_bi.rsseg_model;
REFRESH MATERIALIZED VIEW restore_bi.rsseg_members;
REFRESH MATERIALIZED VIEW restore_bi.rsseg_profiles;
RESET row_security;
RESET check_function_bodies;
SELECT relname, relispopulated FROM pg_class WHERE relnamespace = 'restore_bi'::regnamespace AND relkind = 'm' ORDER BY 1;
SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY t.customer_code)) FROM restore_bi.rs1_targets t) = targets AS same_targets,
       (SELECT md5(string_agg(m::text, ',' ORDER BY m.customer_code)) FROM restore_bi.rsseg_members m) = members AS same_members
  FROM before_restore;

-- views left unpopulated: the default refreshes fall back, and say so
SET ROLE ca_restore_analyst;
REFRESH MATERIALIZED VIEW restore_bi.rs1_targets WITH NO DATA;
REFRESH MATERIALIZED VIEW restore_bi.rs1_monthly WITH NO DATA;
SELECT target_rows > 0 FROM customer_analytics.refresh_campaign('rs1');
REFRESH MATERIALIZED VIEW restore_bi.rsseg_model WITH NO DATA;
SELECT member_rows > 0 FROM customer_analytics.refresh_segmentation('rsseg');
-- asked for without CONCURRENTLY: the mode only lists the views
REFRESH MATERIALIZED VIEW restore_bi.rs1_monthly_long WITH NO DATA;
SELECT target_rows > 0 FROM customer_analytics.refresh_campaign('rs1', concurrently => false);
-- populated again: CONCURRENTLY as usual
SELECT target_rows > 0 FROM customer_analytics.refresh_campaign('rs1');
RESET ROLE;
SELECT relname, relispopulated FROM pg_class WHERE relnamespace = 'restore_bi'::regnamespace AND relkind = 'm' ORDER BY 1;
SELECT kind, name, mode FROM customer_analytics.refresh_history WHERE name IN ('rs1', 'rsseg') AND mode <> 'build' ORDER BY id;

-- a rollup whose triggers a dump's script recreates (check_function_bodies
-- off, as pg_dump's scripts and pg_restore set it): CREATE TRIGGER, then
-- ALTER TABLE ... ENABLE ALWAYS TRIGGER, one at a time
CREATE SCHEMA rs;
CREATE TABLE rs.customers (LIKE fx.customers INCLUDING ALL);
CREATE TABLE rs.sales_orders (LIKE fx.sales_orders INCLUDING ALL);
CREATE TABLE rs.sales_order_lines (LIKE fx.sales_order_lines INCLUDING ALL);
INSERT INTO rs.customers SELECT * FROM fx.customers;
INSERT INTO rs.sales_orders SELECT * FROM fx.sales_orders;
INSERT INTO rs.sales_order_lines SELECT * FROM fx.sales_order_lines;
SELECT state FROM customer_analytics.enable_rollup('rs');
-- the restored tables' triggers, as the script recreates them: the first
-- is enabled while the next is still missing
DROP TRIGGER customer_analytics_rollup_insert ON rs.customers;
DROP TRIGGER customer_analytics_rollup_update ON rs.customers;
SET check_function_bodies = false;
DO $$
BEGIN
    EXECUTE format('CREATE TRIGGER customer_analytics_rollup_insert AFTER INSERT ON rs.customers '
                   'REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customer_analytics._rollup_sync(%L)',
                   (SELECT id FROM customer_analytics.rollups WHERE source_schema = 'rs'));
END $$;
ALTER TABLE rs.customers ENABLE ALWAYS TRIGGER customer_analytics_rollup_insert;
RESET check_function_bodies;
SELECT state, usable_here, reason FROM customer_analytics.list_rollups() WHERE source_schema = 'rs';
SELECT state, disabled_reason IS NULL FROM customer_analytics.rebuild_rollup('rs');
SELECT state, usable_here, reason FROM customer_analytics.list_rollups() WHERE source_schema = 'rs';
-- outside a dump's script, a missing trigger is just that
DROP TRIGGER customer_analytics_rollup_update ON rs.customers;
ALTER TABLE rs.customers ENABLE ALWAYS TRIGGER customer_analytics_rollup_insert;
SELECT state, usable_here, reason FROM customer_analytics.list_rollups() WHERE source_schema = 'rs';
SELECT state, disabled_reason IS NULL FROM customer_analytics.rebuild_rollup('rs');
-- disable_rollup() says so
SELECT state, disabled_reason FROM customer_analytics.disable_rollup('rs');

SELECT customer_analytics.drop_rollup('rs');
DROP SCHEMA rs CASCADE;
SET ROLE ca_restore_analyst;
SELECT customer_analytics.drop_campaign('rs1');
SELECT customer_analytics.drop_segmentation('rsseg');
RESET ROLE;
DROP SCHEMA restore_bi;
DROP OWNED BY ca_restore_analyst;
DROP ROLE ca_restore_analyst;
