-- Schedules kept by the extension and the dispatcher (issue 13, item 3).
-- Needs 00_setup (fixture schema fx).  This database is not pg_cron's (the
-- test cluster's pg_cron runs in database postgres) and pg_cron is not
-- installed here, so schedules go to the dispatcher, run_due_refreshes();
-- test/pg_cron_scheduled.sh has pg_cron run it for real from database
-- postgres.  Here: the next-run computation against hand-worked dates, the
-- scheduling WARNING and its command, what every role sees in
-- list_campaigns(), the dispatcher running only its own role's due
-- refreshes and recording failures, and the row-level security of the
-- schedule rows against another role.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- When a schedule fires next, in UTC whatever the session's TimeZone
-- (2026-11-30 is a Monday; worked out by hand from a calendar).
SET TimeZone = 'Asia/Taipei';
SELECT s, to_char(customer_analytics._cron_next_run(s, a) AT TIME ZONE 'UTC', 'Dy YYYY-MM-DD HH24:MI') AS next_utc
  FROM (VALUES
    ('*/5 * * * *',        '2026-11-30 10:02:30+00'::timestamptz),  -- Mon 10:05
    ('*/5 * * * *',        '2026-11-30 10:05:00+00'),               -- strictly after: 10:10
    ('0 6 * * *',          '2026-11-30 06:00:00+00'),               -- tomorrow 06:00
    ('0 6 * * *',          '2026-11-30 05:59:59+00'),               -- today 06:00
    ('0 6 * * *',          '2026-11-30 05:00:00+08'),               -- 21:00 UTC the day before: 06:00 on the 30th
    ('0 0 29 2 *',         '2026-03-01 00:00+00'),                  -- next leap day, 2028
    ('0 9 * * 1-5',        '2026-12-04 10:00+00'),                  -- Friday after 09:00: Monday
    ('0 0 13 * 5',         '2026-11-30 00:00+00'),                  -- 13th OR Friday: Fri Dec 4
    ('30 4 * jan,jul sun', '2026-11-30 00:00+00'),                  -- a Sunday in January: Jan 3
    ('15 */4 * * *',       '2026-11-30 23:50+00'),                  -- 00:15 next day
    ('0 12 * * 7',         '2026-11-30 00:00+00'),                  -- 7 is Sunday: Dec 6
    ('1-10/3 2 * * *',     '2026-11-30 02:05+00'),                  -- minutes 1,4,7,10: 02:07
    ('@hourly',            '2026-11-30 10:00+00'),
    ('@weekly',            '2026-11-30 10:00+00'),                  -- Sunday 00:00
    ('@monthly',           '2026-11-30 10:00+00'),
    ('@yearly',            '2026-11-30 10:00+00'),
    ('@daily',             '2026-12-31 23:59:59+00'),
    ('@reboot',            '2026-11-30 10:00+00')                   -- never by the clock: NULL
  ) v(s, a);
RESET TimeZone;
\set VERBOSITY default
SELECT customer_analytics._cron_next_run('61 * * * *', now());
SELECT customer_analytics._cron_next_run('* * * *', now());
SELECT customer_analytics._cron_next_run('0 0 31 2 *', now());
\set VERBOSITY terse
-- each refusal says what is wrong (its DETAIL)
CREATE FUNCTION pg_temp.refusal(s text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    PERFORM customer_analytics._cron_next_run(s, now());
    RETURN 'accepted';
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN detail;
END $$;
SELECT s, pg_temp.refusal(s) FROM unnest(ARRAY['every day', '*/0 * * * *', '5/2 * * * *', '10-5 * * * *',
    '* * * mon *', '0 0 * * 8', '1,,2 * * * *', '@often', '@daily 1', '', '1234 * * * *', '* * * * * *', '0 6 * * MON-fri']) s;

CREATE ROLE ca_ds_owner;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_ds_owner;  -- the state of its definitions
CREATE ROLE ca_ds_other;
CREATE ROLE "o'hara";
GRANT USAGE ON SCHEMA fx TO ca_ds_owner, ca_ds_other;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_ds_owner, ca_ds_other;
CREATE SCHEMA ds_bi AUTHORIZATION ca_ds_owner;
GRANT USAGE, CREATE ON SCHEMA ds_bi TO ca_ds_other;

SET ROLE ca_ds_owner;
SELECT name FROM customer_analytics.create_campaign('ds1', 'ds_bi', source_schema => 'fx', readers => '{ca_ds_other}');
SELECT name FROM customer_analytics.create_campaign('ds2', 'ds_bi', source_schema => 'fx');
-- no dispatcher has run for this role here: scheduled, with a WARNING that
-- says why it would not run and the one command that starts a dispatcher
\set VERBOSITY default
SELECT customer_analytics.schedule_campaign_refresh('ds1', '0 6 * * *') AS job;
\set VERBOSITY terse
SELECT kind, name, owner, schedule, runner, run_as, job_id,
       next_run = customer_analytics._cron_next_run('0 6 * * *', scheduled_at) AS next_run_is_next_0600
  FROM customer_analytics.refresh_schedules;
-- a bad schedule is refused before anything is recorded
SELECT customer_analytics.schedule_campaign_refresh('ds2', '0 25 * * *');
SELECT count(*) AS schedules FROM customer_analytics.refresh_schedules;
RESET ROLE;

-- every role sees the schedule, who runs it and when it is next due,
-- without any right on pg_cron's schema
SET ROLE ca_ds_other;
SELECT name, schedule, schedule_runner, next_run > now() AS next_run_ahead, last_status
  FROM customer_analytics.list_campaigns() ORDER BY name;
-- and may not write another role's schedule rows: not for a definition it
-- does not own, not in the owner's name, not by moving them
INSERT INTO customer_analytics.refresh_schedules (kind, name, owner, schedule, runner, run_as, next_run)
VALUES ('campaign', 'ds2', 'ca_ds_other', '* * * * *', 'dispatcher', 'ca_ds_other', now());
INSERT INTO customer_analytics.refresh_schedules (kind, name, owner, schedule, runner, run_as, next_run)
VALUES ('campaign', 'ds2', 'ca_ds_owner', '* * * * *', 'dispatcher', 'ca_ds_other', now());
UPDATE customer_analytics.refresh_schedules SET run_as = 'ca_ds_other', next_run = now();
DELETE FROM customer_analytics.refresh_schedules;
SELECT customer_analytics.schedule_campaign_refresh('ds1', '* * * * *');
SELECT customer_analytics.unschedule_campaign_refresh('ds1');
RESET ROLE;
SELECT name, run_as, next_run > now() AS next_run_ahead FROM customer_analytics.refresh_schedules;

-- the owner cannot hand its schedule to another role's dispatcher either
SET ROLE ca_ds_owner;
UPDATE customer_analytics.refresh_schedules SET run_as = 'ca_ds_other';
SELECT run_as FROM customer_analytics.refresh_schedules;
-- the dispatcher: the heartbeat is recorded; nothing is due yet
CALL customer_analytics.run_due_refreshes();
SELECT role, last_run_at > now() - interval '1 minute' AS recent FROM customer_analytics.dispatcher_runs;
SELECT count(*) AS refreshes FROM customer_analytics.refresh_history WHERE owner = 'ca_ds_owner' AND mode <> 'build';
-- now a dispatcher has run for this role: scheduling says so, no WARNING
SELECT customer_analytics.schedule_campaign_refresh('ds2', '*/10 * * * *') AS job;
-- both due (as if their time had come): one call runs both, each once,
-- and moves each next run past the present
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '3 hours';
CALL customer_analytics.run_due_refreshes();
SELECT name, via, mode, succeeded FROM customer_analytics.refresh_history
 WHERE owner = 'ca_ds_owner' AND mode <> 'build' ORDER BY name, id;
SELECT name, next_run > now() AS next_run_ahead,
       next_run = customer_analytics._cron_next_run(schedule, next_run - interval '1 minute') AS on_schedule
  FROM customer_analytics.refresh_schedules ORDER BY name;
RESET ROLE;

-- another role's dispatcher does not run the owner's refreshes
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 hour' WHERE name = 'ds1';
SET ROLE ca_ds_other;
CALL customer_analytics.run_due_refreshes();
RESET ROLE;
SELECT count(*) AS ds1_refreshes FROM customer_analytics.refresh_history WHERE name = 'ds1' AND mode <> 'build';
SELECT next_run < now() AS still_due FROM customer_analytics.refresh_schedules WHERE name = 'ds1';

-- a failing refresh (its view now belongs to another role): recorded, the
-- others still run, and the dispatcher fails naming it (so pg_cron's job
-- run fails too)
ALTER MATERIALIZED VIEW ds_bi.ds1_targets OWNER TO ca_ds_other;
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 hour';
SET ROLE ca_ds_owner;
CALL customer_analytics.run_due_refreshes();
SELECT name, last_status, last_error FROM customer_analytics.list_campaigns() ORDER BY name;
SELECT bool_and(next_run > now()) AS all_moved_on FROM customer_analytics.refresh_schedules;
-- it commits between refreshes, so not inside a transaction block
BEGIN;
CALL customer_analytics.run_due_refreshes();
ROLLBACK;
RESET ROLE;
ALTER MATERIALIZED VIEW ds_bi.ds1_targets OWNER TO ca_ds_owner;

-- the command that starts a dispatcher quotes what it must
SELECT customer_analytics.dispatcher_command('o''hara');

-- unscheduling and dropping leave no schedule behind
SET ROLE ca_ds_owner;
SELECT customer_analytics.unschedule_campaign_refresh('ds2');
SELECT customer_analytics.unschedule_campaign_refresh('ds2');
SELECT customer_analytics.drop_campaign('ds1');
SELECT customer_analytics.drop_campaign('ds2');
RESET ROLE;
SELECT count(*) AS schedules FROM customer_analytics.refresh_schedules;

DELETE FROM customer_analytics.dispatcher_runs;
DROP SCHEMA ds_bi;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_ds_owner, ca_ds_other;
REVOKE ALL ON SCHEMA fx FROM ca_ds_owner, ca_ds_other;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_ds_owner;
DROP ROLE ca_ds_owner;
DROP ROLE ca_ds_other;
DROP ROLE "o'hara";
