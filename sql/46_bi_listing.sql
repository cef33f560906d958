-- What BI tools list (issue 24, item 6).
\set VERBOSITY terse
SET client_min_messages = warning;

-- every public function (no leading underscore) has a comment: a BI tool's
-- or an IDE's function listing shows it as the description
SELECT p.oid::regprocedure AS public_function_without_comment
  FROM pg_proc p
 WHERE p.pronamespace = 'customer_analytics'::regnamespace
   AND p.proname !~ '^_'
   AND obj_description(p.oid, 'pg_proc') IS NULL
 ORDER BY 1::text;
SELECT count(*) > 40 AS public_functions_checked
  FROM pg_proc p WHERE p.pronamespace = 'customer_analytics'::regnamespace AND p.proname !~ '^_';

-- a campaign with a rollup keeps per-customer state tables, in the
-- extension's schema customer_analytics_state (not beside its views); one
-- customer has a Chinese trade name
CREATE SCHEMA bl;
CREATE TABLE bl.customers AS SELECT * FROM fx.customers;
CREATE TABLE bl.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE TABLE bl.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
UPDATE bl.customers SET trade_name = '龍門小吃' WHERE customer_code = '0001006';
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('bl');
CREATE SCHEMA bl_bi;
CREATE ROLE ca_bl_reader;
SELECT name, target_rows FROM customer_analytics.create_campaign('bl46', 'bl_bi', source_schema => 'bl',
    readers => '{ca_bl_reader}');
-- the first refresh from the rollup builds the state tables
SELECT count(*) FROM customer_analytics.refresh_campaign('bl46');

SET ROLE ca_bl_reader;
-- information_schema.tables (ODBC's SQLTables, tools reading it) shows a
-- reader only what it has a privilege on: the plain views
SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'bl_bi' ORDER BY 1;
-- pgjdbc's getTables(..., {"TABLE","VIEW"}) reads pg_class without a
-- privilege filter: the view schema holds the views only, each readable
-- (docs/campaigns.md, "What a reader's tool lists")
SELECT c.relname, CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW' END AS table_type,
       has_table_privilege(c.oid, 'SELECT') AS readable
  FROM pg_class c WHERE c.relnamespace = 'bl_bi'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1;
-- the state is out of its way, and out of its reach
SELECT err($$SELECT count(*) FROM customer_analytics_state.campaign_state_bl46$$);

-- the plain views carry no non-ASCII text of their own, but pass the
-- source's text through: a WIN1252 client reads the codes and the money,
-- and fails on a Chinese trade name (22P05), as it does on any view or table
SET client_encoding = 'WIN1252';
SELECT customer_code, target_reason_code, total_spend FROM bl_bi.bl46_targets_v ORDER BY 1;
SELECT customer_code, trade_name FROM bl_bi.bl46_targets_v ORDER BY 1;
SELECT customer_code, trade_name FROM bl_bi.bl46_monthly_v ORDER BY 1;
RESET client_encoding;
SELECT customer_code, trade_name FROM bl_bi.bl46_targets_v ORDER BY 1;
RESET ROLE;

SELECT customer_analytics.drop_campaign('bl46');
SELECT customer_analytics.drop_rollup('bl');
SELECT relname FROM pg_class WHERE relnamespace = 'bl_bi'::regnamespace;
DROP SCHEMA bl_bi;
DROP SCHEMA bl CASCADE;
DROP ROLE ca_bl_reader;
