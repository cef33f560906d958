-- Trust (issue 12, part 1): no role can make another role's refresh run its
-- code.  Needs 00_setup (fixture schema fx, public.err).
--
-- mallory owns a schema of views over fx whose "customers" calls his
-- function grab(): it records who ran it and tries ALTER ROLE mallory
-- SUPERUSER.  He tries every way to get alice's campaign and segmentation,
-- or a superuser, to read it: writing the catalogs directly (UPDATE, DELETE
-- then INSERT, INSERT with alice as owner), the API on her definitions,
-- alice pointing her own campaign at his schema, a definition of his under
-- the name of one she dropped, and a superuser calling the functions on it.
-- At the end grab() has run only as mallory, and he is no superuser.
\set VERBOSITY terse
SET client_min_messages = warning;
\pset tuples_only on
\pset format unaligned
CREATE ROLE ca_alice;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_alice;  -- the state of its definitions
CREATE ROLE ca_mallory;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_mallory;  -- the state of its definitions
CREATE ROLE ca_erp;
GRANT USAGE ON SCHEMA fx TO ca_alice, ca_mallory, ca_erp;
GRANT CREATE ON DATABASE contrib_regression TO ca_mallory, ca_erp;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_alice, ca_mallory, ca_erp;
-- the list of trusted source owners is a superuser's: a value a role sets
-- before the library is loaded (a placeholder) is dropped when it loads
SET ROLE ca_mallory;
SET customer_analytics.trusted_source_owners = 'ca_mallory';
RESET ROLE;
SELECT customer_analytics._source_trust_problem('fx') IS NULL AS fx_runs_no_untrusted_code;
SHOW customer_analytics.trusted_source_owners;
CREATE SCHEMA alice_bi AUTHORIZATION ca_alice;
CREATE SCHEMA mallory_src AUTHORIZATION ca_mallory;
CREATE SCHEMA erp_views AUTHORIZATION ca_erp;

-- mallory's trap
SET ROLE ca_mallory;
CREATE TABLE mallory_src.ran (who name);
GRANT INSERT ON mallory_src.ran TO PUBLIC;
GRANT USAGE ON SCHEMA mallory_src TO PUBLIC;
CREATE FUNCTION mallory_src.grab() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mallory_src.ran VALUES (current_user);
    BEGIN
        EXECUTE 'ALTER ROLE ca_mallory SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN true;
END $$;
CREATE VIEW mallory_src.customers AS SELECT * FROM fx.customers WHERE mallory_src.grab();
CREATE VIEW mallory_src.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE VIEW mallory_src.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
GRANT SELECT ON ALL TABLES IN SCHEMA mallory_src TO PUBLIC;
RESET ROLE;

-- alice's campaign and segmentation
SET ROLE ca_alice;
SELECT name, owner, target_rows FROM customer_analytics.create_campaign('own1', 'alice_bi', source_schema => 'fx');
SELECT name, owner, member_rows FROM customer_analytics.create_segmentation('seg1', 'alice_bi', k => 2, k_to => 3,
       segment => 'all', silhouette_sample => 0, source_schema => 'fx');
RESET ROLE;

-- 0. the README's grants suffice: alice has SELECT on the source tables
-- and her own view schema (USAGE on customer_analytics is PUBLIC's); a reader gets its
-- grants from readers =>; scheduling takes pg_cron's own USAGE on cron
CREATE ROLE ca_reader;
CREATE EXTENSION pg_cron;
GRANT USAGE ON SCHEMA cron TO ca_alice;
SET ROLE ca_alice;
SELECT 'alice lists: ' || string_agg(name || ' ' || COALESCE(schedule, 'unscheduled'), ', ')
  FROM customer_analytics.list_campaigns();
SELECT 'alice lists: ' || string_agg(name, ', ') FROM customer_analytics.list_segmentations();
SELECT 'alice alters: ' || min_spend FROM customer_analytics.alter_campaign('own1', min_spend => 1000.5, readers => '{ca_reader}');
SELECT 'alice refreshes: ' || target_rows FROM customer_analytics.refresh_campaign('own1');
SELECT 'alice schedules: ' || (customer_analytics.schedule_campaign_refresh('own1', '0 6 * * *') > 0);
SELECT 'alice lists: ' || string_agg(name || ' ' || COALESCE(schedule, 'unscheduled'), ', ')
  FROM customer_analytics.list_campaigns();
SELECT customer_analytics.unschedule_campaign_refresh('own1');
RESET ROLE;
SET ROLE ca_reader;
SELECT 'the reader reads: ' || count(*) FROM alice_bi.own1_targets;
RESET ROLE;
-- the extension's schema is usable by everyone: a reader lists, never refreshes
SET ROLE ca_reader;
SELECT 'the reader has USAGE on customer_analytics: ' || has_schema_privilege('customer_analytics', 'USAGE');
SELECT 'the reader lists: ' || string_agg(name, ', ') FROM customer_analytics.list_campaigns();
SELECT public.err($$SELECT customer_analytics.refresh_campaign('own1')$$);
RESET ROLE;
DROP EXTENSION pg_cron;

-- 1. the catalogs, written directly: every role may write its own rows
-- (PUBLIC has INSERT/UPDATE/DELETE since 1.5), none may touch alice's
SET ROLE ca_mallory;
WITH u AS (UPDATE customer_analytics.campaigns SET source_schema = 'mallory_src' WHERE name = 'own1' RETURNING 1) SELECT 'campaign rows mallory could update: ' || count(*) FROM u;
WITH d AS (DELETE FROM customer_analytics.campaigns WHERE name = 'own1' RETURNING 1) SELECT 'campaign rows mallory could delete: ' || count(*) FROM d;
WITH u AS (UPDATE customer_analytics.segmentations SET source_schema = 'mallory_src', k = 3 RETURNING 1) SELECT 'segmentation rows mallory could update: ' || count(*) FROM u;
WITH d AS (DELETE FROM customer_analytics.segmentations RETURNING 1) SELECT 'segmentation rows mallory could delete: ' || count(*) FROM d;
WITH u AS (UPDATE customer_analytics.campaign_refresh_state SET generation = generation + 1 RETURNING 1) SELECT 'refresh states mallory could change: ' || count(*) FROM u;
-- a row in alice's name
SELECT public.err($$INSERT INTO customer_analytics.campaigns
    SELECT (c).* FROM (SELECT c FROM customer_analytics.campaigns c WHERE name = 'own1') x$$);
-- a rollup catalog row (rollups stay with the extension's owner)
SELECT public.err($$INSERT INTO customer_analytics.rollups (source_schema, id, order_date_is_date, state, owner)
    VALUES ('fx', 99, false, 'current', 'ca_alice')$$);
RESET ROLE;
SELECT 'alice''s campaign still reads: ' || source_schema || ', owner ' || owner FROM customer_analytics.campaigns WHERE name = 'own1';
SELECT 'alice''s segmentation still reads: ' || source_schema || ', k ' || k FROM customer_analytics.segmentations WHERE name = 'seg1';

-- 2. the API on alice's definitions
SET ROLE ca_mallory;
SELECT public.err($$SELECT customer_analytics.alter_campaign('own1', source_schema => 'mallory_src')$$);
SELECT public.err($$SELECT customer_analytics.refresh_campaign('own1')$$);
SELECT public.err($$SELECT customer_analytics.drop_campaign('own1')$$);
SELECT public.err($$SELECT customer_analytics.schedule_campaign_refresh('own1', '* * * * *')$$);
SELECT public.err($$SELECT * FROM customer_analytics.campaign_targets('own1')$$);
SELECT public.err($$SELECT * FROM customer_analytics.campaign_monthly_revenue('own1')$$);
SELECT public.err($$SELECT customer_analytics.refresh_segmentation('seg1')$$);
SELECT public.err($$SELECT customer_analytics.drop_segmentation('seg1')$$);
SELECT public.err($$SELECT * FROM customer_analytics.segmentation_features('seg1')$$);
-- reading the catalogs stays open to everyone
SELECT 'mallory lists: ' || string_agg(name || ' of ' || owner, ', ') FROM customer_analytics.list_campaigns();
RESET ROLE;

-- 3. alice herself points her campaign at mallory's schema: refused, her
-- definition unchanged (the alter's refresh fails and rolls it back)
SET ROLE ca_alice;
SELECT public.err($$SELECT customer_analytics.alter_campaign('own1', source_schema => 'mallory_src')$$);
SELECT public.err($$SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'mallory_src')$$);
SELECT 'alice''s campaign source: ' || source_schema FROM customer_analytics.campaigns WHERE name = 'own1';
RESET ROLE;

-- 4. a superuser reads mallory's schema, or refreshes mallory's campaign
-- built on it: the superuser's own call is refused, and the refresh runs as
-- mallory (the view's owner), so grab() gains him nothing
SELECT public.err($$SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'mallory_src')$$);
SET ROLE ca_mallory;
CREATE SCHEMA mallory_bi;
SELECT name, owner FROM customer_analytics.create_campaign('mal1', 'mallory_bi', source_schema => 'mallory_src');
-- nor can he hand his definition to alice, for her refresh to run it
SELECT public.err($$UPDATE customer_analytics.campaigns SET owner = 'ca_alice' WHERE name = 'mal1'$$);
RESET ROLE;
SELECT 'superuser refreshed mallory''s campaign: ' || target_rows FROM customer_analytics.refresh_campaign('mal1');
REFRESH MATERIALIZED VIEW mallory_bi.mal1_targets;
SELECT public.err($$SELECT count(*) FROM customer_analytics.campaign_targets('mal1')$$);

-- 5. alice deletes her own catalog row and leaves the views; mallory stores
-- his definition under the same name.  Refreshing alice's views (as her, by
-- anyone) refuses the definition that is not hers.
SET ROLE ca_alice;
DELETE FROM customer_analytics.campaigns WHERE name = 'own1';
DELETE FROM customer_analytics.segmentations WHERE name = 'seg1';
RESET ROLE;
SET ROLE ca_mallory;
INSERT INTO customer_analytics.campaigns (name, view_schema, source_schema, routes, spend_window, min_spend,
    low_ticket_window, low_ticket_below, min_low_tickets, base_window, recent_window, decline_pct,
    exclude_closed, route_source, revenue_window)
VALUES ('own1', 'alice_bi', 'mallory_src', '{K1,K2,PS}', '[2025-01-01,2025-12-31]', 1000,
        '[2025-09-15,2026-01-07]', 3000, 3, '[2025-08-31,2025-10-30]', '[2025-10-31,2025-12-31]', 30,
        false, 'customer', '[2025-09-01,2026-01-07]');
INSERT INTO customer_analytics.segmentations (name, view_schema, source_schema, segment, k, feature_window,
    as_of, options, k_from, k_to, silhouette_sample)
VALUES ('seg1', 'alice_bi', 'mallory_src', 'all', 2, '[2025-01-01,2025-12-31]', '2026-01-07', '{}', 1, 3, 0);
RESET ROLE;
SELECT public.err($$REFRESH MATERIALIZED VIEW alice_bi.own1_targets$$);
SELECT public.err($$REFRESH MATERIALIZED VIEW alice_bi.own1_monthly$$);
SELECT public.err($$REFRESH MATERIALIZED VIEW alice_bi.seg1_model$$);
SELECT public.err($$REFRESH MATERIALIZED VIEW alice_bi.seg1_members$$);
-- the profiles and elbow views read the catalog through the same check
SELECT public.err($$REFRESH MATERIALIZED VIEW alice_bi.seg1_profiles$$);
SELECT public.err($$REFRESH MATERIALIZED VIEW alice_bi.seg1_elbow$$);
-- a view given to another owner runs its definition no more
DELETE FROM customer_analytics.campaigns WHERE name = 'own1';
SET ROLE ca_alice;
SELECT 'alice rebuilt: ' || name FROM customer_analytics.create_campaign('own2', 'alice_bi', source_schema => 'fx');
RESET ROLE;
ALTER MATERIALIZED VIEW alice_bi.own2_targets OWNER TO ca_mallory;
SELECT public.err($$REFRESH MATERIALIZED VIEW alice_bi.own2_targets$$);
ALTER MATERIALIZED VIEW alice_bi.own2_targets OWNER TO ca_alice;

-- 6. what grab() did: it ran only as mallory, and mallory is no superuser
SELECT 'grab() ran as: ' || COALESCE(string_agg(DISTINCT who::text, ', '), 'nobody') FROM mallory_src.ran;
SELECT 'mallory is superuser: ' || rolsuper FROM pg_roles WHERE rolname = 'ca_mallory';

-- 7. a source owner the DBA trusts: views owned by ca_erp are refused to
-- alice until a superuser lists ca_erp in customer_analytics.trusted_source_owners
SET ROLE ca_erp;
CREATE VIEW erp_views.customers AS SELECT * FROM fx.customers;
CREATE VIEW erp_views.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE VIEW erp_views.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
GRANT USAGE ON SCHEMA erp_views TO ca_alice;
GRANT SELECT ON ALL TABLES IN SCHEMA erp_views TO ca_alice;
RESET ROLE;
SET ROLE ca_alice;
SELECT public.err($$SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'erp_views')$$);
SELECT public.err($$SET customer_analytics.trusted_source_owners = 'ca_erp'$$);
RESET ROLE;
SET customer_analytics.trusted_source_owners = 'ca_erp';
SET ROLE ca_alice;
SELECT 'alice reads erp_views: ' || count(*) FROM customer_analytics.target_customers(source_schema => 'erp_views');
RESET ROLE;
RESET customer_analytics.trusted_source_owners;
SELECT public.err($$SET customer_analytics.trusted_source_owners = 'a,"b'$$);
-- row-level security policies of an untrusted owner run as the reader too:
-- refused while they apply to alice; a superuser (never subject to them) reads
SET ROLE ca_erp;
CREATE SCHEMA erp_rls;
CREATE TABLE erp_rls.customers AS SELECT * FROM fx.customers;
CREATE TABLE erp_rls.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE TABLE erp_rls.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
ALTER TABLE erp_rls.sales_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY alice_k1 ON erp_rls.sales_orders TO ca_alice USING (delivery_route = 'K1');
GRANT USAGE ON SCHEMA erp_rls TO ca_alice;
GRANT SELECT ON ALL TABLES IN SCHEMA erp_rls TO ca_alice;
RESET ROLE;
SET ROLE ca_alice;
SELECT public.err($$SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'erp_rls')$$);
RESET ROLE;
SELECT 'superuser reads erp_rls: ' || count(*) FROM customer_analytics.target_customers(source_schema => 'erp_rls');

-- clean up
SELECT customer_analytics.drop_campaign('mal1');
SELECT customer_analytics.drop_campaign('own2');
REVOKE ALL ON SCHEMA alice_bi FROM ca_reader;
DELETE FROM customer_analytics.campaigns WHERE name = 'own1';
DELETE FROM customer_analytics.segmentations WHERE name = 'seg1';
DROP SCHEMA alice_bi, mallory_src, mallory_bi, erp_views, erp_rls CASCADE;
REVOKE CREATE ON DATABASE contrib_regression FROM ca_mallory, ca_erp;
REVOKE ALL ON SCHEMA fx FROM ca_alice, ca_mallory, ca_erp;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_alice, ca_mallory, ca_erp;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_alice;
DROP ROLE ca_alice;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_mallory;
DROP ROLE ca_mallory;
DROP ROLE ca_erp;
DROP ROLE ca_reader;
