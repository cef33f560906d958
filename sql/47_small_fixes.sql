-- Small fixes (issue 24, item 8): each a clear message instead of a surprise.
-- Needs 00_setup (fixture schema fx).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- 1. near the end of time: a next run PostgreSQL cannot represent is NULL
-- (never by the clock, as for @reboot), not an out-of-range timestamp
SET TimeZone = 'UTC';
SELECT customer_analytics._cron_next_run('* * * * *', '294276-12-31 23:58:00+00') AS last_minute;
SELECT customer_analytics._cron_next_run('* * * * *', '294276-12-31 23:59:00+00') IS NULL AS past_the_end;
SELECT customer_analytics._cron_next_run('0 0 29 2 *', '294276-03-01 00:00:00+00') IS NULL AS leap_day_past_the_end;
SELECT customer_analytics._cron_next_run('@yearly', '294276-06-01 00:00:00+00') IS NULL AS yearly_past_the_end;
-- the result is a valid timestamp: it survives arithmetic and comparison
SELECT customer_analytics._cron_next_run('* * * * *', '294276-12-31 23:59:00+00') - interval '1 minute' AS minus_a_minute;
RESET TimeZone;

-- 2. @-shorthands as pg_cron 1.4 reads them: lower case only (it compares
-- them with strcmp), @restart being @reboot; refused otherwise with 22023
SELECT s, customer_analytics._cron_next_run(s, '2026-03-04 05:06:07+00') AT TIME ZONE 'UTC' AS next_run
  FROM unnest(ARRAY['@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually',
                    '@reboot', '@restart']) s;
\set VERBOSITY default
SELECT customer_analytics._cron_next_run('@HOURLY', now());
\set VERBOSITY terse
SELECT customer_analytics._cron_next_run('@Daily', now());
SELECT customer_analytics._cron_next_run('@REBOOT', now());
-- names of months and days are read in any case, by pg_cron as here
SELECT customer_analytics._cron_next_run('0 6 * JAN Mon', '2026-03-04 05:06:07+00') AT TIME ZONE 'UTC' AS by_name;
-- scheduling refuses it before anything is recorded
SELECT name FROM customer_analytics.create_campaign('sf_promo', 'public', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('sf_promo', '@HOURLY');
SELECT count(*) AS schedules FROM customer_analytics.refresh_schedules WHERE name = 'sf_promo';
-- pg_cron 1.4 itself: the same (the test cluster preloads it)
CREATE EXTENSION pg_cron;
SELECT cron.schedule('sf probe', '@HOURLY', 'SELECT 1');
SELECT cron.schedule('sf probe', '@restart', 'SELECT 1') > 0 AS restart_accepted;
SELECT cron.unschedule('sf probe');
DROP EXTENSION pg_cron;

-- 3. a segmentation has at most 50 segments: the error names the limit,
-- the values given and why
CREATE SCHEMA sf_seg;
\set VERBOSITY default
SELECT customer_analytics.create_segmentation('sf_s', 'sf_seg', k => 51, source_schema => 'fx');
\set VERBOSITY terse
SELECT customer_analytics.create_segmentation('sf_s', 'sf_seg', k => 4, k_to => 60, source_schema => 'fx');

-- 4. pg_dump carries the catalogs registered with pg_extension_config_dump,
-- not refresh_history (docs/operations.md, "Backup and restore", says why)
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) r(oid), pg_class c
 WHERE e.extname = 'customer_analytics' AND c.oid = r.oid ORDER BY 1;
