-- Refresh status and history (issue 13, item 3).  Needs 00_setup (fixture
-- schema fx, public.err).  A non-superuser owner refreshes its campaign by
-- function, by alter_campaign and by the procedure pg_cron jobs run; a
-- refresh made to fail (the owner loses SELECT on the order lines) is
-- recorded by the procedure, which commits the record and raises again;
-- another role reads the status and history but writes none; the history
-- is pruned; scheduling from a database without pg_cron goes to the
-- dispatcher (sql/35_refresh_schedules.sql); jobs run the procedure.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE ca_st_owner;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_st_owner;  -- the state of its definitions
CREATE ROLE ca_st_other;
GRANT USAGE ON SCHEMA fx TO ca_st_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_st_owner;
CREATE SCHEMA st_bi AUTHORIZATION ca_st_owner;

SET ROLE ca_st_owner;
SELECT name, target_rows FROM customer_analytics.create_campaign('st1', 'st_bi', source_schema => 'fx',
                                                                 readers => '{ca_st_other}');
-- the build is the first refresh recorded
SELECT name, last_status, last_success_at IS NOT NULL AS succeeded_at, last_error, last_error_at
  FROM customer_analytics.list_campaigns();
-- by function, by alter_campaign, by the procedure
SELECT target_rows FROM customer_analytics.refresh_campaign('st1');
SELECT target_rows FROM customer_analytics.alter_campaign('st1', decline_pct => 31);
CALL customer_analytics.run_scheduled_refresh('campaign', 'st1');
SELECT kind, name, owner, via, mode, rows, succeeded, error, duration_ms >= 0 AS timed,
       started_at <= now() AS started
  FROM customer_analytics.refresh_history WHERE owner = 'ca_st_owner' ORDER BY id;
-- what took the time: each phase the build or refresh showed in
-- pg_stat_activity, timed
SELECT h.mode, p.n, p.phase->>'phase' AS phase, (p.phase->>'ms')::numeric >= 0 AS timed
  FROM customer_analytics.refresh_history h, jsonb_array_elements(h.phases) WITH ORDINALITY AS p(phase, n)
 WHERE h.owner = 'ca_st_owner' ORDER BY h.id, p.n;
RESET ROLE;

-- the owner loses SELECT on the order lines: the refresh fails
REVOKE SELECT ON fx.sales_order_lines FROM ca_st_owner;
SET ROLE ca_st_owner;
-- refresh_campaign() in the caller's transaction: the failure rolls back
-- with everything else, nothing is recorded
SELECT customer_analytics.refresh_campaign('st1');
SELECT count(*) AS recorded FROM customer_analytics.refresh_history WHERE owner = 'ca_st_owner';
-- the procedure records it, commits, and raises the error again
CALL customer_analytics.run_scheduled_refresh('campaign', 'st1');
SELECT via, mode, rows, succeeded, error, phases->-1->>'phase' AS failed_in
  FROM customer_analytics.refresh_history ORDER BY id DESC LIMIT 1;
-- inside a transaction block it cannot commit (pg_cron calls it outside one)
BEGIN;
CALL customer_analytics.run_scheduled_refresh('campaign', 'st1');
ROLLBACK;
SELECT count(*) AS recorded FROM customer_analytics.refresh_history WHERE owner = 'ca_st_owner';
RESET ROLE;

-- the status, for a non-superuser that does not own the campaign and has
-- no USAGE on schema cron
SET ROLE ca_st_other;
SELECT name, owner, schedule, refreshed_at IS NOT NULL AS refreshed, last_status,
       last_success_at IS NOT NULL AS has_success, last_error, last_error_at >= last_success_at AS error_after
  FROM customer_analytics.list_campaigns();
SELECT count(*) AS history_rows_read FROM customer_analytics.refresh_history WHERE owner = 'ca_st_owner';
-- it reads the history but writes none: not as the owner, nor as itself
SELECT err($$INSERT INTO customer_analytics.refresh_history (kind, name, owner, started_at, duration_ms, via, succeeded)
             VALUES ('campaign', 'st1', 'ca_st_owner', now(), 0, 'function', true)$$);
SELECT err($$INSERT INTO customer_analytics.refresh_history (kind, name, owner, started_at, duration_ms, via, succeeded)
             VALUES ('campaign', 'st1', 'ca_st_other', now(), 0, 'function', true)$$);
WITH d AS (DELETE FROM customer_analytics.refresh_history RETURNING 1) SELECT count(*) AS deleted FROM d;
-- nor by running the procedure on the campaign: refused, not recorded
CALL customer_analytics.run_scheduled_refresh('campaign', 'st1');
SELECT count(*) AS recorded FROM customer_analytics.refresh_history WHERE owner = 'ca_st_owner';
RESET ROLE;

-- SELECT restored: the next run succeeds; the last error stays listed
GRANT SELECT ON fx.sales_order_lines TO ca_st_owner;
SET ROLE ca_st_owner;
CALL customer_analytics.run_scheduled_refresh('campaign', 'st1');
SELECT last_status, last_success_at > last_error_at AS success_after, last_error
  FROM customer_analytics.list_campaigns();

-- pruning: each definition keeps the last refresh_history_keep rows
SET customer_analytics.refresh_history_keep = 3;
SELECT target_rows FROM customer_analytics.refresh_campaign('st1');
SELECT count(*) AS kept, bool_and(succeeded) AS all_succeeded FROM customer_analytics.refresh_history WHERE name = 'st1';
SET customer_analytics.refresh_history_keep = 0;
RESET customer_analytics.refresh_history_keep;

-- a segmentation: its refreshes too
SELECT name, member_rows FROM customer_analytics.create_segmentation('st_seg', 'st_bi', k => 2, k_to => 3,
       segment => 'all', silhouette_sample => 0, source_schema => 'fx');
SELECT member_rows FROM customer_analytics.refresh_segmentation('st_seg');
CALL customer_analytics.run_scheduled_refresh('segmentation', 'st_seg');
SELECT kind, name, via, mode, rows, succeeded FROM customer_analytics.refresh_history
 WHERE kind = 'segmentation' ORDER BY id;
SELECT name, last_status, last_success_at IS NOT NULL AS has_success, last_error
  FROM customer_analytics.list_segmentations();

-- the procedure's own errors
CALL customer_analytics.run_scheduled_refresh('rollup', 'st1');
CALL customer_analytics.run_scheduled_refresh(NULL, 'st1');
-- a definition that does not exist: the error, and no row (there is no owner)
CALL customer_analytics.run_scheduled_refresh('campaign', 'nope');
SELECT count(*) AS about_nope FROM customer_analytics.refresh_history WHERE name = 'nope';
RESET ROLE;

-- scheduling from a database pg_cron does not run in (the test cluster's
-- pg_cron runs in database postgres): the dispatcher will run it, and the
-- WARNING's hint is the command that starts one, to run there.
\set VERBOSITY default
SELECT customer_analytics.schedule_campaign_refresh('st1', '0 6 * * *');
-- a role that may not read cron.database_name is told where to run it
SET ROLE ca_st_owner;
SELECT customer_analytics.schedule_campaign_refresh('st1', '0 6 * * *');
RESET ROLE;
\set VERBOSITY terse

-- with pg_cron here, the job runs the procedure
CREATE EXTENSION pg_cron;
GRANT USAGE ON SCHEMA cron TO ca_st_owner;
SET ROLE ca_st_owner;
SELECT customer_analytics.schedule_campaign_refresh('st1', '0 6 * * *') > 0 AS scheduled;
SELECT customer_analytics.schedule_segmentation_refresh('st_seg', '0 7 * * *') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job ORDER BY jobname;
SELECT name, schedule, last_status FROM customer_analytics.list_campaigns();
RESET ROLE;
-- every role sees the schedule (the extension's own record), without USAGE on cron too
SET ROLE ca_st_other;
SELECT name, schedule, last_status FROM customer_analytics.list_campaigns();
RESET ROLE;

-- (what the update to 1.5 does with jobs scheduled before 1.5:
-- sql/43_cron_jobs_update.sql)

-- when pg_cron's jobs could not connect, scheduling warns (the test
-- cluster runs them in background workers, so this is the check itself)
SELECT customer_analytics._cron_connection_problem('off', 'localhost', '');
SELECT customer_analytics._cron_connection_problem('on', 'localhost', '') IS NULL AS bgworkers,
       customer_analytics._cron_connection_problem('off', '/var/run/postgresql', '') IS NULL AS socket_host,
       customer_analytics._cron_connection_problem('off', 'localhost', 'localhost') IS NULL AS tcp,
       customer_analytics._cron_connection_problem(NULL, NULL, '') IS NULL AS unknown;

-- dropping a definition drops its job and its history
SET ROLE ca_st_owner;
SELECT customer_analytics.drop_campaign('st1');
SELECT customer_analytics.drop_segmentation('st_seg');
RESET ROLE;
SELECT count(*) AS jobs FROM cron.job;
SELECT count(*) AS history_rows FROM customer_analytics.refresh_history WHERE owner = 'ca_st_owner';

DROP EXTENSION pg_cron;
DROP SCHEMA st_bi;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_st_owner;
REVOKE ALL ON SCHEMA fx FROM ca_st_owner;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_st_owner;
DROP ROLE ca_st_owner;
DROP ROLE ca_st_other;
