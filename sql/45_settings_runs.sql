-- Settings for scheduled runs (issue 24, item 4).  Needs 00_setup (fixture
-- schema fx, whose last confirmed order is of 2026-01-08).
--
-- 1. customer_analytics.as_of_date is the session's own: a non-superuser
--    storing it for a role is told so, and what to do instead, whether or
--    not the library is loaded in the session.
-- 2. list_campaigns()/list_segmentations() show the as_of and windows the
--    next scheduled run will use (its date in UTC), not the caller's.
-- 3. A build or refresh whose resolved window holds no orders at all warns,
--    and refresh_history.mode says so.
CREATE ROLE ca_sr_analyst LOGIN;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_sr_analyst;  -- the state of its definitions
GRANT USAGE ON SCHEMA fx TO ca_sr_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_sr_analyst;
CREATE SCHEMA sr_bi AUTHORIZATION ca_sr_analyst;
SELECT current_database() AS db \gset

------------------------------------------------------------------------------
-- 1. ALTER ROLE ... IN DATABASE ... SET customer_analytics.as_of_date
------------------------------------------------------------------------------
-- a new session of the analyst that has not loaded the library: the setting
-- is a placeholder, and PostgreSQL itself refuses to store it for a
-- non-superuser (nothing of the extension runs yet: see docs/security.md)
\c - ca_sr_analyst
SELECT count(*) AS library_loaded FROM pg_settings WHERE name = 'customer_analytics.as_of_date';
ALTER ROLE ca_sr_analyst IN DATABASE :"db" SET customer_analytics.as_of_date = '2026-01-07';
-- once an extension function has run in the session, the library says why
-- a stored date does not pin anything, and what to do instead
SELECT customer_analytics._as_of_today() = current_date AS today;
SELECT count(*) AS library_loaded FROM pg_settings WHERE name = 'customer_analytics.as_of_date';
ALTER ROLE ca_sr_analyst IN DATABASE :"db" SET customer_analytics.as_of_date = '2026-01-07';
ALTER ROLE ca_sr_analyst IN DATABASE :"db" RESET customer_analytics.as_of_date;
\c - postgres

------------------------------------------------------------------------------
-- 2. What the next scheduled run will use
------------------------------------------------------------------------------
SET ROLE ca_sr_analyst;
SET client_min_messages = warning;
-- the caller pins "today" to 2026-01-07; the runs will not
SET customer_analytics.as_of_date = '2026-01-07';
SELECT name FROM customer_analytics.create_campaign('sr_today', 'sr_bi', source_schema => 'fx',
    rolling => '{"as_of": "today", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
SELECT name FROM customer_analytics.create_campaign('sr_pinned', 'sr_bi', source_schema => 'fx',
    rolling => '{"as_of": "2025-12-31", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"}}');
SELECT name FROM customer_analytics.create_campaign('sr_fixed', 'sr_bi', source_schema => 'fx');
SELECT name FROM customer_analytics.create_segmentation('sr_seg', 'sr_bi', k => 2, k_to => 3, segment => 'all',
    silhouette_sample => 0, source_schema => 'fx',
    rolling => '{"as_of": "today", "feature_window": {"from": "month_start -3 months", "to": "month_start -1 day"}}');
-- dispatcher schedules (this database is not pg_cron's): 1 January, 03:00 UTC
SET client_min_messages = error;
SELECT customer_analytics.schedule_campaign_refresh(c, '0 3 1 1 *') IS NULL AS by_dispatcher
  FROM (VALUES ('sr_today'), ('sr_pinned'), ('sr_fixed')) v(c);
SELECT customer_analytics.schedule_segmentation_refresh('sr_seg', '0 3 1 1 *') IS NULL AS by_dispatcher;
SET client_min_messages = warning;
-- "today" follows the next run's date in UTC (a 1 January), whatever the
-- caller's as_of_date or time zone; a pinned spec keeps its date; fixed
-- windows have none
SET TimeZone = 'America/Los_Angeles';
SELECT name, as_of,
       to_char(next_run AT TIME ZONE 'UTC', 'MM-DD HH24:MI') AS next_run_utc,
       next_run_as_of = (next_run AT TIME ZONE 'UTC')::date AS next_run_date_utc,
       to_char(next_run_as_of, 'MM-DD') AS next_as_of,
       next_run_windows ->> 'spend_window'
         = customer_analytics._rolling_window(rolling, 'spend_window', next_run_as_of)::text AS next_spend_window,
       next_run_windows ->> 'revenue_window' = revenue_window::text AS revenue_window_as_stored
  FROM customer_analytics.list_campaigns() WHERE view_schema = 'sr_bi' ORDER BY name;
SELECT name, as_of, to_char(next_run_as_of, 'MM-DD') AS next_as_of,
       next_run_feature_window = customer_analytics._rolling_window(rolling, 'feature_window', next_run_as_of)
         AS next_feature_window,
       to_char(lower(next_run_feature_window), 'MM-DD') AS next_from, to_char(upper(next_run_feature_window), 'MM-DD') AS next_to
  FROM customer_analytics.list_segmentations() WHERE view_schema = 'sr_bi';
RESET TimeZone;
-- unscheduled: nothing to show
SELECT customer_analytics.unschedule_campaign_refresh('sr_today');
SELECT name, next_run, next_run_as_of, next_run_windows FROM customer_analytics.list_campaigns() WHERE name = 'sr_today';

------------------------------------------------------------------------------
-- 3. A window with no orders at all is said
------------------------------------------------------------------------------
\set VERBOSITY default
-- "today" after the last order (2026-01-08): the spend window is empty
SET customer_analytics.as_of_date = '2027-06-01';
SELECT name, target_rows FROM customer_analytics.refresh_campaign('sr_today');
SELECT name, target_rows FROM customer_analytics.create_campaign('sr_late', 'sr_bi', source_schema => 'fx',
    rolling => '{"as_of": "today", "spend_window": {"from": "as_of -12 months +1 day", "to": "as_of"},
                 "recent_window": {"from": "month_start -2 months", "to": "as_of"}}');
SELECT name, member_rows FROM customer_analytics.refresh_segmentation('sr_seg');
-- a scheduled run says it too
CALL customer_analytics.run_scheduled_refresh('segmentation', 'sr_seg');
-- windows with orders: nothing said
SET customer_analytics.as_of_date = '2026-01-07';
SELECT name, target_rows FROM customer_analytics.refresh_campaign('sr_today');
-- fixed windows with no orders: said, with another hint
SELECT name FROM customer_analytics.alter_campaign('sr_fixed', spend_window => '[2030-01-01,2031-01-01)');
SELECT name, via, mode FROM customer_analytics.refresh_history WHERE owner = 'ca_sr_analyst' AND mode LIKE '%no orders%'
 ORDER BY id;
SELECT name, mode FROM customer_analytics.refresh_history
 WHERE owner = 'ca_sr_analyst' AND name = 'sr_today' ORDER BY id DESC LIMIT 1;
RESET customer_analytics.as_of_date;
RESET client_min_messages;
RESET ROLE;

------------------------------------------------------------------------------
-- 4. The note reads the source as the refresh does, through its trust checks
------------------------------------------------------------------------------
-- the analyst's campaign over a source of its own
CREATE ROLE ca_sr_other;
CREATE SCHEMA sr_src AUTHORIZATION ca_sr_analyst;
SET ROLE ca_sr_analyst;
CREATE TABLE sr_src.customers AS SELECT * FROM fx.customers;
CREATE TABLE sr_src.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE TABLE sr_src.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
SET client_min_messages = warning;
SELECT name, target_rows FROM customer_analytics.create_campaign('sr_src', 'sr_bi', source_schema => 'sr_src');
RESET client_min_messages;
RESET ROLE;
-- then its sales_orders becomes a view of another role, not trusted by the
-- analyst, running that role's code with the reader's rights
CREATE FUNCTION sr_src.peek() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'code of ca_sr_other ran as %', current_user;
    RETURN true;
END $$;
ALTER FUNCTION sr_src.peek() OWNER TO ca_sr_other;
ALTER TABLE sr_src.sales_orders RENAME TO sales_orders_data;
GRANT USAGE ON SCHEMA sr_src TO ca_sr_other;
GRANT SELECT ON sr_src.sales_orders_data TO ca_sr_other;
CREATE VIEW sr_src.sales_orders AS SELECT * FROM sr_src.sales_orders_data WHERE sr_src.peek();
ALTER VIEW sr_src.sales_orders OWNER TO ca_sr_other;
GRANT SELECT ON sr_src.sales_orders TO ca_sr_analyst;
SET ROLE ca_sr_analyst;
-- the refresh refuses it, and so does the note itself (no code of
-- ca_sr_other runs: no NOTICE)
\set SHOW_CONTEXT never
SELECT name FROM customer_analytics.refresh_campaign('sr_src');
SELECT customer_analytics._empty_windows_note('campaign', 'sr_src');
SELECT * FROM customer_analytics._window_has_orders('sr_src', ARRAY['[2025-01-01,2026-01-01)']::daterange[]);
-- over the analyst's own source: each window, and the last order
SELECT * FROM customer_analytics._window_has_orders('fx',
    ARRAY['[2025-01-01,2026-01-01)', '[2030-01-01,2031-01-01)', 'empty', '(,)']::daterange[]);
-- bad input
SELECT * FROM customer_analytics._window_has_orders('fx', NULL);
SELECT * FROM customer_analytics._window_has_orders('fx', ARRAY[NULL]::daterange[]);
SELECT * FROM customer_analytics._window_has_orders('fx', '{}');
\set SHOW_CONTEXT errors
SELECT customer_analytics.drop_campaign('sr_src');
RESET ROLE;
DROP SCHEMA sr_src CASCADE;
DROP ROLE ca_sr_other;

-- clean up
SET client_min_messages = warning;
SET ROLE ca_sr_analyst;
SELECT customer_analytics.drop_campaign(c) FROM (VALUES ('sr_today'), ('sr_pinned'), ('sr_fixed'), ('sr_late')) v(c);
SELECT customer_analytics.drop_segmentation('sr_seg');
RESET ROLE;
DROP SCHEMA sr_bi CASCADE;
DELETE FROM customer_analytics.refresh_history WHERE owner = 'ca_sr_analyst';
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_sr_analyst;
REVOKE ALL ON SCHEMA fx FROM ca_sr_analyst;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_sr_analyst;
DROP ROLE ca_sr_analyst;
