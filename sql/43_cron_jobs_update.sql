-- The update to 1.5 and the pg_cron jobs made before it (issue 13, item 3;
-- issue 21).  Needs 00_setup (fixture schema fx).  Before 1.5 a schedule
-- was only a pg_cron job that ran the refresh function; ALTER EXTENSION
-- ... UPDATE (1.4 -> 1.5, whose script defines and runs its one-shot
-- helpers; 1.6 does not install them) makes each definition's refresh job
-- run the procedure and records it as the definition's schedule.  It
-- leaves alone a job of the owner's that runs a refresh under another
-- name, and a look-alike: a job with a definition's job name that is not
-- its refresh.  A job whose name pg_cron cut to 63 bytes under 1.4 (which
-- the 1.4 -> 1.5 update looked for by its whole name, and missed) is taken
-- over by the 1.5 -> 1.6 step.  Then a fresh extension for whatever runs
-- next.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS customer_analytics CASCADE;
CREATE EXTENSION pg_cron;
CREATE EXTENSION customer_analytics VERSION '1.4';

CREATE ROLE ca_cu_owner;
GRANT USAGE ON SCHEMA fx TO ca_cu_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_cu_owner;
GRANT USAGE ON SCHEMA cron TO ca_cu_owner;
CREATE SCHEMA cu_bi AUTHORIZATION ca_cu_owner;
-- under 1.4 a DBA let the analyst keep definitions with grants on the
-- catalogs (as in sql/38_upgrade_leftovers.sql)
GRANT USAGE ON SCHEMA customer_analytics TO ca_cu_owner;
GRANT INSERT, UPDATE, DELETE ON customer_analytics.campaigns, customer_analytics.segmentations TO ca_cu_owner;

-- under 1.4: two definitions scheduled by 1.4's functions (jobs that run
-- the refresh function), the owner's own job running a refresh, and a
-- look-alike with the job name of a third definition
SET ROLE ca_cu_owner;
SELECT name FROM customer_analytics.create_campaign('cu1', 'cu_bi', source_schema => 'fx');
SELECT name FROM customer_analytics.create_segmentation('cu_seg', 'cu_bi', k => 2, segment => 'all', k_to => 2,
                                                        silhouette_sample => 0, source_schema => 'fx');
SELECT name FROM customer_analytics.create_campaign('cu3', 'cu_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('cu1', '0 6 * * *') > 0 AS scheduled;
SELECT customer_analytics.schedule_segmentation_refresh('cu_seg', '0 7 * * *') > 0 AS scheduled;
SELECT cron.schedule('my own job', '0 8 * * *', $$SELECT customer_analytics.refresh_campaign('cu1')$$) > 0 AS other;
SELECT cron.schedule('customer_analytics refresh campaign cu3', '0 4 * * *', $$SELECT 'not a refresh'$$) > 0 AS look_alike;
-- a definition whose job name pg_cron cut to 63 bytes under 1.4 (the
-- 1.4 -> 1.5 update looked for it by its whole name and missed it)
SELECT name FROM customer_analytics.create_campaign('cu_a_campaign_name_of_forty_characters_x', 'cu_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('cu_a_campaign_name_of_forty_characters_x', '0 5 * * *') > 0 AS scheduled;
RESET ROLE;
SELECT jobname, username, schedule, command FROM cron.job ORDER BY jobname;

ALTER EXTENSION customer_analytics UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'customer_analytics';
-- 1.6 keeps no one-shot helper of the 1.5 update
SELECT proname FROM pg_proc
 WHERE pronamespace = 'customer_analytics'::regnamespace
   AND proname IN ('_upgrade_cron_jobs', '_record_existing_cron_jobs');

-- the definitions' refresh jobs run the procedure; the owner's own job
-- and the look-alike are left alone
SELECT jobname, username, schedule, command FROM cron.job ORDER BY jobname;
-- and are recorded as the definitions' schedules, with their jobs (cu3's
-- look-alike is not its refresh job; 'my own job' is no definition's)
SELECT s.kind, s.name, s.owner, s.schedule, s.runner, s.run_as, j.jobname
  FROM customer_analytics.refresh_schedules s LEFT JOIN cron.job j ON j.jobid = s.job_id
 ORDER BY s.name;
SELECT name, schedule, regexp_replace(schedule_runner, '[0-9]+$', 'N') AS runner
  FROM customer_analytics.list_campaigns() ORDER BY name;
SELECT name, schedule, regexp_replace(schedule_runner, '[0-9]+$', 'N') AS runner
  FROM customer_analytics.list_segmentations() ORDER BY name;

-- the recorded schedules are the definitions' own: dropping them drops
-- their jobs, and leaves the others
SET ROLE ca_cu_owner;
SELECT customer_analytics.drop_campaign('cu1');
SELECT customer_analytics.drop_segmentation('cu_seg');
SELECT customer_analytics.drop_campaign('cu3');
SELECT customer_analytics.drop_campaign('cu_a_campaign_name_of_forty_characters_x');
SELECT jobname, command FROM cron.job ORDER BY jobname;
SELECT cron.unschedule('my own job');
SELECT cron.unschedule('customer_analytics refresh campaign cu3');
RESET ROLE;
SELECT count(*) AS jobs FROM cron.job;
SELECT count(*) AS schedules FROM customer_analytics.refresh_schedules;

-- clean up: a fresh extension for whatever runs next
DROP EXTENSION pg_cron;
DROP SCHEMA cu_bi;
REVOKE ALL ON SCHEMA customer_analytics FROM ca_cu_owner;
DROP EXTENSION customer_analytics;
CREATE EXTENSION customer_analytics;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_cu_owner;
REVOKE ALL ON SCHEMA fx FROM ca_cu_owner;
DROP ROLE ca_cu_owner;
