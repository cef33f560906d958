-- Scheduling: while pg_cron is absent here, the dispatcher runs schedules
-- (a WARNING says how to start one); then, with pg_cron,
-- schedule, reschedule, list, unschedule, and drop_campaign cleaning up.
-- (The test cluster preloads pg_cron with cron.database_name set to this
-- database.)
CREATE SCHEMA bi;
SET client_min_messages = warning;
SELECT name FROM customer_analytics.create_campaign('promo2', 'bi', source_schema => 'fx');
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT customer_analytics.schedule_campaign_refresh('promo2', '*/5 * * * *');

CREATE EXTENSION pg_cron;
SELECT customer_analytics.schedule_campaign_refresh('promo2', '*/5 * * * *') > 0 AS scheduled;
SELECT jobname, schedule, command, username = current_user AS as_caller FROM cron.job;
-- scheduling again replaces the schedule (one job)
SELECT customer_analytics.schedule_campaign_refresh('promo2', '0 6 * * *') > 0 AS rescheduled;
SELECT jobname, schedule FROM cron.job;
SELECT name, schedule FROM customer_analytics.list_campaigns();
-- what the job runs works
SELECT target_rows FROM customer_analytics.refresh_campaign('promo2');
-- a bad cron expression is refused, saying which field is wrong
\set VERBOSITY terse
SELECT customer_analytics.schedule_campaign_refresh('promo2', 'every day');
SELECT customer_analytics.schedule_campaign_refresh('promo2', NULL);
\set VERBOSITY default
SELECT customer_analytics.unschedule_campaign_refresh('promo2');
SELECT count(*) AS jobs FROM cron.job;
SELECT customer_analytics.unschedule_campaign_refresh('promo2');
-- dropping a campaign drops its schedule
SELECT customer_analytics.schedule_campaign_refresh('promo2', '0 6 * * *') > 0 AS scheduled;
SELECT customer_analytics.drop_campaign('promo2');
SELECT count(*) AS jobs FROM cron.job;
DROP EXTENSION pg_cron;
DROP SCHEMA bi;
