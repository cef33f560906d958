-- The role table of docs/operations.md ("Roles and grants") and the README,
-- followed literally, grant by grant, as the non-superusers it names (issue
-- 24, item 3): each documented action works once its grants are there, and
-- each missing grant gives the documented error.  Then the uninstall of
-- docs/operations.md ("Uninstalling"), step by step, in a database of its
-- own (issue 24, item 5).  Needs 00_setup (source schema fx, public.err).
\set VERBOSITY terse
SET client_min_messages = warning;
\pset tuples_only on
\pset format unaligned
CREATE ROLE ca_dg_analyst;
CREATE ROLE ca_dg_metabase;
CREATE ROLE ca_dg_tableau;
-- the DBA makes the view schema; the analyst has no grant yet
CREATE SCHEMA dg_bi;

------------------------------------------------------------------------------
-- 1. analyst: USAGE on the source schema and SELECT on its tables; USAGE
--    and CREATE on a view schema and on customer_analytics_state.  Before
--    anything is stored, each missing grant is named.
------------------------------------------------------------------------------
SET ROLE ca_dg_analyst;
SELECT 'no grant: ' || err($$SELECT customer_analytics.create_campaign('dg', 'dg_bi', source_schema => 'fx')$$);
RESET ROLE;
-- CREATE alone (what the role table used to say) is not enough
GRANT CREATE ON SCHEMA dg_bi TO ca_dg_analyst;
SET ROLE ca_dg_analyst;
SELECT 'CREATE only: ' || err($$SELECT customer_analytics.create_campaign('dg', 'dg_bi', source_schema => 'fx')$$);
SELECT 'CREATE only: ' || err($$SELECT customer_analytics.create_segmentation('dgs', 'dg_bi', source_schema => 'fx')$$);
RESET ROLE;
GRANT USAGE, CREATE ON SCHEMA dg_bi TO ca_dg_analyst;
-- the definitions' state lives in the extension's schema customer_analytics_state
SET ROLE ca_dg_analyst;
SELECT 'no state schema grant: ' || err($$SELECT customer_analytics.create_campaign('dg', 'dg_bi', source_schema => 'fx')$$);
SELECT 'no state schema grant: ' || err($$SELECT customer_analytics.create_segmentation('dgs', 'dg_bi', source_schema => 'fx')$$);
RESET ROLE;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_dg_analyst;
SET ROLE ca_dg_analyst;
SELECT 'no source grant: ' || err($$SELECT customer_analytics.create_campaign('dg', 'dg_bi', source_schema => 'fx')$$);
RESET ROLE;
GRANT USAGE ON SCHEMA fx TO ca_dg_analyst;
SET ROLE ca_dg_analyst;
SELECT 'no SELECT on the tables: ' || err($$SELECT customer_analytics.create_campaign('dg', 'dg_bi', source_schema => 'fx')$$);
RESET ROLE;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_dg_analyst;
-- nothing was stored by the refused calls
SELECT 'stored after the refusals: ' || (SELECT count(*) FROM customer_analytics.campaigns WHERE name = 'dg')
       + (SELECT count(*) FROM customer_analytics.segmentations WHERE name = 'dgs');

-- with the documented grants, every documented action of the analyst works
SET ROLE ca_dg_analyst;
SELECT 'analyst creates: ' || name || ' ' || owner || ' ' || target_rows
  FROM customer_analytics.create_campaign('dg', 'dg_bi', source_schema => 'fx');
SELECT 'analyst creates: ' || name || ' ' || owner || ' ' || member_rows
  FROM customer_analytics.create_segmentation('dgs', 'dg_bi', k => 2, k_to => 2, segment => 'all',
                                              silhouette_sample => 0, source_schema => 'fx');
SELECT 'analyst refreshes: ' || target_rows FROM customer_analytics.refresh_campaign('dg');
SELECT 'analyst refreshes: ' || member_rows FROM customer_analytics.refresh_segmentation('dgs');
SELECT 'analyst alters: ' || min_spend FROM customer_analytics.alter_campaign('dg', min_spend => 1500);
SELECT 'analyst lists: ' || string_agg(name, ', ') FROM customer_analytics.list_campaigns();
SELECT 'analyst reads: ' || count(*) FROM dg_bi.dg_monthly_v;
RESET ROLE;

------------------------------------------------------------------------------
-- 2. BI reader: readers => gives SELECT on the views; USAGE on a view
--    schema the analyst does not own comes from the schema's owner.
------------------------------------------------------------------------------
SET ROLE ca_dg_analyst;
SELECT 'reader without USAGE: ' || err($$SELECT customer_analytics.alter_campaign('dg', readers => '{ca_dg_metabase}')$$);
SELECT 'reader without USAGE: ' || err($$SELECT customer_analytics.create_campaign('dg2', 'dg_bi', source_schema => 'fx',
                                                                                   readers => '{ca_dg_metabase}')$$);
SELECT 'readers kept: ' || readers::text FROM customer_analytics.campaigns WHERE name = 'dg';
RESET ROLE;
SELECT 'stored after the refusals: ' || count(*) FROM customer_analytics.campaigns WHERE name = 'dg2';
-- the schema's owner runs the hint's GRANT
GRANT USAGE ON SCHEMA dg_bi TO ca_dg_metabase;
SET ROLE ca_dg_analyst;
SELECT 'analyst names a reader: ' || readers::text FROM customer_analytics.alter_campaign('dg', readers => '{ca_dg_metabase}');
-- new month columns rebuild the sheet: its grants come back, no warning
SELECT 'sheet rebuilt: ' || monthly_rows
  FROM customer_analytics.alter_campaign('dg', revenue_window => '[2025-08-01,2026-01-08)');
RESET ROLE;
SET ROLE ca_dg_metabase;
SELECT 'reader reads: ' || count(*) FROM dg_bi.dg_targets;
SELECT 'reader reads: ' || count(*) FROM dg_bi.dg_monthly;
SELECT 'reader reads: ' || count(*) FROM dg_bi.dg_monthly_v;
SELECT 'reader lists: ' || string_agg(name, ', ') FROM customer_analytics.list_campaigns();
SELECT 'reader does not refresh: ' || err($$SELECT customer_analytics.refresh_campaign('dg')$$);
-- not named in the segmentation's readers
SELECT 'reader not named: ' || err($$SELECT count(*) FROM dg_bi.dgs_members$$);
RESET ROLE;

-- the owner's grants are checked whoever asks: a superuser's alter of the
-- analyst's campaign, after the analyst lost CREATE on the view schema
REVOKE CREATE ON SCHEMA dg_bi FROM ca_dg_analyst;
SELECT 'owner without CREATE: ' || err($$SELECT customer_analytics.alter_campaign('dg', min_spend => 2000)$$);
GRANT CREATE ON SCHEMA dg_bi TO ca_dg_analyst;

-- a view schema of the analyst's own: readers => gives the reader USAGE too
CREATE SCHEMA dg_own AUTHORIZATION ca_dg_analyst;
SET ROLE ca_dg_analyst;
SELECT 'own schema: ' || name || ' ' || readers::text
  FROM customer_analytics.create_campaign('dg3', 'dg_own', source_schema => 'fx', readers => '{ca_dg_tableau}');
RESET ROLE;
SET ROLE ca_dg_tableau;
SELECT 'reader reads: ' || count(*) FROM dg_own.dg3_monthly;
RESET ROLE;

-- clean up
SET ROLE ca_dg_analyst;
SELECT customer_analytics.drop_campaign('dg');
SELECT customer_analytics.drop_campaign('dg3');
SELECT customer_analytics.drop_segmentation('dgs');
RESET ROLE;
DROP SCHEMA dg_bi, dg_own;
DROP OWNED BY ca_dg_analyst, ca_dg_metabase, ca_dg_tableau;
DROP ROLE ca_dg_analyst;
DROP ROLE ca_dg_metabase;
DROP ROLE ca_dg_tableau;

------------------------------------------------------------------------------
-- 3. Uninstalling, in a database of its own: what DROP EXTENSION takes,
--    what it refuses, what stays, and what to run afterwards.
------------------------------------------------------------------------------
DROP DATABASE IF EXISTS ca_uninstall;
CREATE DATABASE ca_uninstall;
\c ca_uninstall
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned
SET client_min_messages = notice;
CREATE EXTENSION customer_analytics;
-- what the DBA set for the extension
ALTER DATABASE ca_uninstall SET customer_analytics.refresh_history_keep = 500;
CREATE SCHEMA src;
CREATE TABLE src.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE src.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1));
CREATE TABLE src.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2));
INSERT INTO src.customers VALUES ('0001', 'one', 'K1', 'addr', NULL, '002');
INSERT INTO src.sales_orders VALUES ('SO', '1', '0001', 'K1', '20251201', 'Y');
INSERT INTO src.sales_order_lines VALUES ('SO', '1', 1, 'P1', 1, 5000);
CREATE SCHEMA ubi;
SET client_min_messages = warning;
SELECT 'campaign: ' || target_rows FROM customer_analytics.create_campaign('u1', 'ubi', source_schema => 'src');
SELECT 'rollup: ' || rollup_rows FROM customer_analytics.enable_rollup('src');
SET client_min_messages = notice;
-- pg_cron runs in another database of this cluster: a stand-in for its job
-- table and cron.unschedule(), holding the campaign's refresh job as
-- schedule_campaign_refresh() names it
CREATE SCHEMA cron;
CREATE TABLE cron.job (jobid bigserial PRIMARY KEY, jobname text, command text);
CREATE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean LANGUAGE sql
    AS $$ DELETE FROM cron.job WHERE jobid = job_id RETURNING true $$;
INSERT INTO cron.job (jobname, command)
VALUES ('customer_analytics refresh campaign u1', $$CALL customer_analytics.run_scheduled_refresh('campaign', 'u1')$$);
-- the user's own view on the sheet
CREATE VIEW ubi.my_sheet AS SELECT customer_code FROM ubi.u1_monthly;

-- without CASCADE: refused before anything is done, naming what depends
-- on the extension; no job removed, and no notice that says otherwise
\set VERBOSITY default
DROP EXTENSION customer_analytics;
\set VERBOSITY terse
SELECT 'jobs kept: ' || count(*) FROM cron.job;
-- the clean way: drop_campaign() stops at the user's view on the sheet (the
-- user rebuilds it elsewhere or drops it), drop_rollup() takes the triggers
SELECT customer_analytics.drop_campaign('u1');
DROP VIEW ubi.my_sheet;
SELECT customer_analytics.drop_campaign('u1');
SELECT customer_analytics.drop_rollup('src');
-- any object of a user's that uses the extension is named too
CREATE TABLE public.keep (c customer_analytics.campaigns);
DROP EXTENSION customer_analytics;
SELECT 'jobs kept: ' || count(*) FROM cron.job;
DROP TABLE public.keep;
-- rolled back, or in a savepoint rolled back: no notice, the job is kept
BEGIN;
DROP EXTENSION customer_analytics;
ROLLBACK;
BEGIN;
SAVEPOINT s;
DROP EXTENSION customer_analytics;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT 'jobs kept: ' || count(*) FROM cron.job;
-- the DROP: the job goes, the notice comes at commit
DROP EXTENSION customer_analytics;
SELECT 'jobs left: ' || count(*) FROM cron.job;
-- what stays: the (empty) schema customer_analytics, the database's setting,
-- the view schema
SELECT 'stays: schema ' || n.nspname || ', ' || (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid)
       || ' relations, ' || (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid) || ' functions'
  FROM pg_namespace n WHERE n.nspname = 'customer_analytics';
SELECT 'stays: ' || s FROM pg_db_role_setting d, unnest(d.setconfig) s
 WHERE d.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s LIKE 'customer_analytics.%';
SELECT 'stays: schema ' || nspname FROM pg_namespace WHERE nspname = 'ubi';
-- what to run afterwards (docs/operations.md)
DROP SCHEMA customer_analytics;
ALTER DATABASE ca_uninstall RESET customer_analytics.refresh_history_keep;
SELECT 'left: ' || count(*) FROM pg_namespace WHERE nspname = 'customer_analytics';
SELECT 'left: ' || count(*) FROM pg_db_role_setting d, unnest(d.setconfig) s
 WHERE d.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s LIKE 'customer_analytics.%';

-- CASCADE drops the definitions' views, the rollups' triggers and
-- everything built on them, the user's own views included
CREATE EXTENSION customer_analytics;
SET client_min_messages = warning;
SELECT 'campaign: ' || target_rows FROM customer_analytics.create_campaign('u2', 'ubi', source_schema => 'src');
SELECT 'rollup: ' || rollup_rows FROM customer_analytics.enable_rollup('src');
SELECT 'campaign: ' || target_rows FROM customer_analytics.refresh_campaign('u2');
CREATE VIEW ubi.my_sheet AS SELECT customer_code FROM ubi.u2_monthly;
SET client_min_messages = notice;
DROP EXTENSION customer_analytics CASCADE;
SELECT 'after CASCADE: ' || count(*) || ' relations in ubi' FROM pg_class WHERE relnamespace = 'ubi'::regnamespace;
SELECT 'after CASCADE: ' || count(*) || ' triggers on src' FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'src'::regnamespace;
\c contrib_regression
DROP DATABASE ca_uninstall;
