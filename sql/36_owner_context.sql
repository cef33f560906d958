-- Issue 21, item 1: work on another role's definition runs as that role.
-- A superuser (a DBA's maintenance, a pg_cron job, the dispatcher) who
-- refreshes, alters or drops an analyst's campaign or segmentation must not
-- run the analyst's code with superuser rights.  Here the analyst attaches
-- an expression index to his views and state tables whose "IMMUTABLE"
-- function records who evaluated it, whether a superuser, and whether
-- inside a security-restricted operation; every row must say: the owner,
-- not a superuser, restricted.  Uses 00_setup's fx tables as a template.
\set VERBOSITY terse
SET client_min_messages = warning;

CREATE SCHEMA oc;
CREATE TABLE oc.customers (LIKE fx.customers);
CREATE TABLE oc.sales_orders (LIKE fx.sales_orders);
CREATE TABLE oc.sales_order_lines (LIKE fx.sales_order_lines);
INSERT INTO oc.customers
SELECT lpad(c::text, 4, '0'), 'Customer ' || c, (ARRAY['K1', 'K2', 'T9'])[1 + c % 3], 'addr', NULL, '00' || c % 4
  FROM generate_series(1, 40) c;
INSERT INTO oc.sales_orders
SELECT 'SO', (c * 100 + k)::text, lpad(c::text, 4, '0'), 'K1',
       to_char(date '2025-06-03' + ((k * 37 + c * 11) % 215), 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 40) c, generate_series(0, 3 + c % 5) k;
INSERT INTO oc.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || l, 1,
       round((150 + (o.order_number::int * 7919 % 1800) + l * 0.25)::numeric, 2)
  FROM oc.sales_orders o, generate_series(1, 2) l;
SELECT rollup_rows FROM customer_analytics.enable_rollup('oc');

SELECT customer_analytics._rollup_table(id) AS oc_rollup, customer_analytics._rollup_dirty_table(id) AS oc_dirty
  FROM customer_analytics.rollups WHERE source_schema = 'oc' \gset
CREATE ROLE ca_oc_owner;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_oc_owner;  -- the state of its definitions
CREATE ROLE ca_oc_stranger;
GRANT USAGE ON SCHEMA oc TO ca_oc_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA oc TO ca_oc_owner;
GRANT SELECT ON :oc_rollup, :oc_dirty TO ca_oc_owner;
CREATE SCHEMA oc_own AUTHORIZATION ca_oc_owner;

SET ROLE ca_oc_owner;
CREATE TABLE oc_own.witness (who name, superuser boolean, restricted boolean);
CREATE FUNCTION oc_own.note() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO oc_own.witness
    SELECT current_user, r.rolsuper, customer_analytics._in_owner_context(current_user)
      FROM pg_roles r WHERE r.rolname = current_user;
    RETURN true;
END $$;
-- declared IMMUTABLE so that an index may use it; it is not
CREATE FUNCTION oc_own.looks_immutable(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN oc_own.note();
END $$;
SELECT name, target_rows FROM customer_analytics.create_campaign('ocx', 'oc_own', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'oc');
SELECT name, member_rows FROM customer_analytics.create_segmentation('ocs', 'oc_own', k => 2,
    feature_window => '[2025-06-01,2025-12-31]', as_of => '2026-01-07', k_to => 3, silhouette_sample => 0,
    source_schema => 'oc');
-- the owner's refresh builds the campaign's per-customer state
SELECT (customer_analytics.refresh_campaign('ocx')).target_rows;
-- the owner's traps, on every kind of object the extension writes for him
CREATE INDEX ocx_targets_trap ON oc_own.ocx_targets ((oc_own.looks_immutable(customer_code)));
CREATE INDEX ocx_monthly_trap ON oc_own.ocx_monthly ((oc_own.looks_immutable(customer_code)));
CREATE INDEX ocx_state_trap ON customer_analytics_state.campaign_state_ocx ((oc_own.looks_immutable(customer_code)));
CREATE INDEX ocs_members_trap ON oc_own.ocs_members ((oc_own.looks_immutable(customer_code)));
CREATE INDEX ocs_state_trap ON customer_analytics_state.segment_features_ocs ((oc_own.looks_immutable(customer_code)));
TRUNCATE oc_own.witness;
RESET ROLE;

-- the DBA's maintenance after a data fix: delta refreshes (rows replaced
-- in place by the extension's own statements), a full refresh, an alter,
-- and the scheduled entry point
UPDATE oc.sales_order_lines SET pretax_subtotal = pretax_subtotal + 3 WHERE order_number::int % 7 = 1;
SELECT (customer_analytics.refresh_campaign('ocx')).target_rows;
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'ocx' ORDER BY id DESC LIMIT 1;
SELECT (customer_analytics.refresh_segmentation('ocs')).member_rows;
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'segmentation' AND name = 'ocs' ORDER BY id DESC LIMIT 1;
SELECT (customer_analytics.refresh_campaign('ocx', concurrently => false)).target_rows;
SELECT (customer_analytics.alter_campaign('ocx', min_spend => 1500)).target_rows;
SELECT (customer_analytics.alter_segmentation('ocs', as_of => '2026-01-06')).member_rows;
UPDATE oc.sales_order_lines SET pretax_subtotal = pretax_subtotal + 3 WHERE order_number::int % 7 = 2;
CALL customer_analytics.run_scheduled_refresh('campaign', 'ocx');
CALL customer_analytics.run_scheduled_refresh('segmentation', 'ocs');
-- every evaluation of the owner's code: as the owner, restricted
SELECT who, superuser, restricted, count(*) > 0 AS evaluated FROM oc_own.witness GROUP BY 1, 2, 3 ORDER BY 1;
-- and the results are the owner's (the delta state equals a recompute)
SET ROLE ca_oc_owner;
SELECT count(*) AS rows_differing FROM (
    (SELECT x::text FROM oc_own.ocx_targets x
     EXCEPT ALL SELECT x::text FROM customer_analytics.campaign_targets('ocx') x)
    UNION ALL
    (SELECT x::text FROM customer_analytics.campaign_targets('ocx') x
     EXCEPT ALL SELECT x::text FROM oc_own.ocx_targets x)) d;
RESET ROLE;

-- The steps that run as the owner refuse to run any other way: called
-- directly, by a superuser or by the owner outside the mechanism.
SELECT customer_analytics._refresh_campaign_as_owner('ocx', true);
SELECT customer_analytics._drop_segmentation_as_owner('ocs');
SET ROLE ca_oc_owner;
SELECT customer_analytics._rebuild_rollup_as_owner('oc');
RESET ROLE;

-- _as_owner only lets a role act as a role it could SET ROLE to anyway
SET ROLE ca_oc_stranger;
SELECT customer_analytics._as_owner('ca_oc_owner', 'SELECT 1');
SELECT customer_analytics._as_owner(NULL, 'SELECT 1');
SELECT customer_analytics._as_owner('no_such_role_oc', 'SELECT 1');
-- and a stranger still may not ask for another role's refresh
SELECT customer_analytics.refresh_campaign('ocx');
RESET ROLE;
SELECT customer_analytics._as_owner('ca_oc_owner', 'SELECT current_user::text || '' '' || customer_analytics._in_owner_context(current_user)');
SELECT customer_analytics._in_owner_context('ca_oc_owner') AS outside;

-- Scratch tables: only the reserved prefix, only shapes that run no code
SELECT customer_analytics._scratch_table('x', '(a int)');
SELECT customer_analytics._scratch_table('customer_analytics_t', '(a int DEFAULT 1)');
SELECT customer_analytics._scratch_table('customer_analytics_t', '(a int CHECK (a > 0))');
SELECT customer_analytics._scratch_table('customer_analytics_t', '(a int GENERATED ALWAYS AS IDENTITY)');
SELECT customer_analytics._scratch_table('customer_analytics_t', '(a int) INHERITS (oc.customers)');
SELECT customer_analytics._scratch_table('customer_analytics_t', '(LIKE oc.customers INCLUDING ALL)');
SELECT customer_analytics._scratch_table('customer_analytics_t', '(a int); DROP TABLE oc.customers; CREATE TEMP TABLE y (b int)');
SELECT customer_analytics._scratch_table('customer_analytics_t', 'AS SELECT 1');
SELECT customer_analytics._scratch_table('customer_analytics_t', NULL);
BEGIN;
SELECT customer_analytics._scratch_table('customer_analytics_t', '(a int PRIMARY KEY, b numeric NOT NULL)')::text AS scratch;
SELECT customer_analytics._scratch_table('customer_analytics_u', '(LIKE oc.customers)') IS NOT NULL AS like_ok;
COMMIT;
SELECT to_regclass('pg_temp.customer_analytics_t') IS NULL AS dropped_at_commit;
SELECT customer_analytics._refresh_matview('oc.customers', true);
SELECT customer_analytics._refresh_matview('oc_own.ocx_targets', NULL);
SET ROLE ca_oc_stranger;
SELECT customer_analytics._refresh_matview('oc_own.ocx_targets', false);
RESET ROLE;

-- A superuser drops the analyst's definitions: as the owner too
TRUNCATE oc_own.witness;
SELECT customer_analytics.drop_campaign('ocx');
SELECT customer_analytics.drop_segmentation('ocs');
SELECT count(*) AS relations_left FROM pg_class WHERE relnamespace = 'oc_own'::regnamespace AND relname LIKE 'oc%' AND relname <> 'witness';
SELECT count(*) AS catalog_rows_left FROM (SELECT name FROM customer_analytics.campaigns WHERE name = 'ocx'
    UNION ALL SELECT name FROM customer_analytics.segmentations WHERE name = 'ocs') x;

DROP SCHEMA oc_own CASCADE;
SELECT customer_analytics.drop_rollup('oc');
DROP SCHEMA oc CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_oc_owner;
DROP ROLE ca_oc_owner;
DROP ROLE ca_oc_stranger;
RESET client_min_messages;
