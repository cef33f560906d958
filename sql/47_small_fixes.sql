-- Small fixes (issue 24, item 8): each a clear message instead of a surprise.
-- Needs 00_setup (fixture schema fx).
\set VERBOSITY terse
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
