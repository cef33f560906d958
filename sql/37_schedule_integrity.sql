-- Schedules are facts, not claims a role can write (issue 21, items 2 and 4).
-- Needs 00_setup (fixture schema fx).
--   1. Forged job ids: an owner cannot write a pg_cron job id, a runner or a
--      schedule into its schedule rows other than its own job's; and
--      whatever a row says, the extension unschedules only the job pg_cron's
--      own row shows to be the definition's refresh job (the DBA's
--      nightly_backup survives the drop of an analyst's campaign whose row
--      names it).
--   2. A schedule does not outlive its definition: deleting the catalog row
--      takes the schedule (and its pg_cron job) with it, renaming or
--      re-owning a scheduled definition is refused, and a same-named
--      definition of another role schedules and lists as its own.
--   3. The dispatcher skips and records (in refresh_history, for the
--      definition's owner to see) what it cannot run, and runs the rest: a
--      schedule left behind by bypassing the foreign keys, and one whose
--      dispatcher's role can no longer act as the owner.
--   4. A dispatcher killed mid-run: its claim shows the run as 'running',
--      then 'interrupted' once its process is gone, and the next dispatcher
--      records it; a run still in progress is not started a second time.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;

CREATE ROLE ca_si_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_si_analyst;  -- the state of its definitions
CREATE ROLE ca_si_other;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_si_other;  -- the state of its definitions
CREATE ROLE ca_si_member;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_si_member;  -- the state of its definitions
GRANT ca_si_analyst TO ca_si_member;
GRANT USAGE ON SCHEMA fx TO ca_si_analyst, ca_si_other, ca_si_member;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_si_analyst, ca_si_other, ca_si_member;
CREATE SCHEMA si_bi AUTHORIZATION ca_si_analyst;
CREATE SCHEMA si_other AUTHORIZATION ca_si_other;
CREATE SCHEMA si_member AUTHORIZATION ca_si_member;
-- a schedule's status as list_campaigns() shows it to everyone, with the
-- dispatcher's process number masked
CREATE FUNCTION pg_temp.status(campaign text) RETURNS text LANGUAGE sql AS $$
    SELECT COALESCE(schedule_runner, 'unscheduled') || ' | ' || COALESCE(last_status, '-') || ' | '
           || COALESCE(regexp_replace(last_error, 'process [0-9]+', 'process N'), '-')
      FROM customer_analytics.list_campaigns() WHERE name = campaign
$$;

------------------------------------------------------------------------------
-- 1. Forged job ids (pg_cron in this database)
------------------------------------------------------------------------------
CREATE EXTENSION pg_cron;
GRANT USAGE ON SCHEMA cron TO ca_si_analyst, ca_si_member;
-- the DBA's own job, and a job of the analyst's that is no refresh
SELECT cron.schedule('nightly_backup', '0 3 * * *', $$SELECT 'backup'$$) AS backup_job \gset
SET ROLE ca_si_analyst;
SELECT cron.schedule('my report', '0 9 * * 1', $$SELECT 'report'$$) AS report_job \gset
SELECT name FROM customer_analytics.create_campaign('si1', 'si_bi', source_schema => 'fx');
SELECT name FROM customer_analytics.create_campaign('si2', 'si_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('si1', '0 6 * * *') AS si1_job \gset
-- the analyst cannot point its schedule rows at another job: not the DBA's,
-- not its own report, not si1's job for si2; nor give the row another
-- runner, another role to run as or a schedule its job does not have
\set VERBOSITY default
UPDATE customer_analytics.refresh_schedules SET job_id = :backup_job WHERE name = 'si1';
\set VERBOSITY terse
UPDATE customer_analytics.refresh_schedules SET job_id = :report_job WHERE name = 'si1';
INSERT INTO customer_analytics.refresh_schedules (kind, name, owner, schedule, runner, run_as, job_id)
VALUES ('campaign', 'si2', 'ca_si_analyst', '0 3 * * *', 'pg_cron', 'ca_si_analyst', :backup_job);
INSERT INTO customer_analytics.refresh_schedules (kind, name, owner, schedule, runner, run_as, job_id)
VALUES ('campaign', 'si2', 'ca_si_analyst', '0 6 * * *', 'pg_cron', 'ca_si_analyst', :si1_job);
UPDATE customer_analytics.refresh_schedules SET run_as = 'postgres' WHERE name = 'si1';
UPDATE customer_analytics.refresh_schedules SET runner = 'dispatcher', job_id = NULL, run_as = 'ca_si_member' WHERE name = 'si1';
UPDATE customer_analytics.refresh_schedules SET schedule = '* * * * *' WHERE name = 'si1';
SELECT name, runner, run_as, job_id = :si1_job AS its_job, schedule FROM customer_analytics.refresh_schedules;
-- scheduling again through the function still works (the same job)
SELECT customer_analytics.schedule_campaign_refresh('si1', '0 7 * * *') = :si1_job AS same_job;
RESET ROLE;
SELECT jobname, schedule, username FROM cron.job ORDER BY jobid;

-- A row naming another job, as only a superuser (or a row from before this
-- check, or an edited dump) can leave it: the DBA dropping the analyst's
-- campaign leaves the foreign job alone, saying so, and drops the rest.
SET session_replication_role = replica;
UPDATE customer_analytics.refresh_schedules SET job_id = :backup_job WHERE name = 'si1';
RESET session_replication_role;
\set VERBOSITY default
SELECT customer_analytics.drop_campaign('si1');
\set VERBOSITY terse
SELECT jobname, username FROM cron.job ORDER BY jobid;
-- (the analyst's own refresh job, which the row no longer named, is left
-- too: it runs as the analyst, who removes it)
SET ROLE ca_si_analyst;
SELECT cron.unschedule(:si1_job);
RESET ROLE;

-- the same with the analyst's own report job named by its row: the
-- analyst's unschedule leaves it alone too
SET ROLE ca_si_analyst;
SELECT customer_analytics.schedule_campaign_refresh('si2', '0 6 * * *') AS si2_job \gset
RESET ROLE;
SET session_replication_role = replica;
UPDATE customer_analytics.refresh_schedules SET job_id = :report_job WHERE name = 'si2';
RESET session_replication_role;
SET ROLE ca_si_analyst;
SELECT customer_analytics.unschedule_campaign_refresh('si2');
-- (its refresh job went: the analyst's own, under si2's job name)
SELECT jobname FROM cron.job ORDER BY jobid;
RESET ROLE;

-- a job the DBA cannot be sure of is left alone: a member of the owner
-- dropping the owner's campaign cannot see the owner's job (pg_cron shows
-- each role its own jobs), so it names the job and who removes it
SET ROLE ca_si_analyst;
SELECT customer_analytics.schedule_campaign_refresh('si2', '0 6 * * *') AS si2_job \gset
RESET ROLE;
SET ROLE ca_si_member;
\set VERBOSITY default
SELECT customer_analytics.drop_campaign('si2');
\set VERBOSITY terse
RESET ROLE;
SELECT jobname, username FROM cron.job ORDER BY jobid;
SELECT cron.unschedule(:si2_job);

-- DROP EXTENSION unschedules only the extension's jobs (the DBA's refresh
-- job of si3 here, not the analyst's look-alike that merely has its name;
-- rolled back.  That the update to 1.5 does not record such a job:
-- sql/43_cron_jobs_update.sql)
SET ROLE ca_si_analyst;
SELECT name FROM customer_analytics.create_campaign('si3', 'si_bi', source_schema => 'fx');
SELECT cron.schedule('customer_analytics refresh campaign si3', '0 4 * * *', $$SELECT 'not a refresh'$$) > 0 AS look_alike;
RESET ROLE;
SELECT customer_analytics.schedule_campaign_refresh('si3', '0 5 * * *') > 0 AS dba_scheduled;
BEGIN;
DROP EXTENSION customer_analytics CASCADE;
SELECT jobname, username, command FROM cron.job ORDER BY jobid;
ROLLBACK;
SELECT customer_analytics.unschedule_campaign_refresh('si3');
SELECT jobname, username FROM cron.job ORDER BY jobid;
SET ROLE ca_si_analyst;
SELECT cron.unschedule('customer_analytics refresh campaign si3');

------------------------------------------------------------------------------
-- 2. A schedule does not outlive its definition
------------------------------------------------------------------------------
-- deleting the catalog row by hand takes the schedule and its job with it
SELECT customer_analytics.schedule_campaign_refresh('si3', '0 6 * * *') > 0 AS scheduled;
DELETE FROM customer_analytics.campaigns WHERE name = 'si3';
SELECT count(*) AS si3_schedules FROM customer_analytics.refresh_schedules WHERE name = 'si3';
SELECT count(*) AS si3_jobs FROM cron.job WHERE jobname LIKE '%si3';
-- long names: a job name fits cron.job.jobname (63 bytes), so two campaigns
-- whose names share their first 27 characters get a job each (pg_cron cut
-- the names, and the second schedule took over the first's job), and
-- unschedule and drop remove each one's own job
SELECT name FROM customer_analytics.create_campaign('si_long_campaign_name_for_job_names_1', 'si_bi', source_schema => 'fx');
SELECT name FROM customer_analytics.create_campaign('si_long_campaign_name_for_job_names_2', 'si_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('si_long_campaign_name_for_job_names_1', '0 6 * * *') AS long1_job \gset
SELECT customer_analytics.schedule_campaign_refresh('si_long_campaign_name_for_job_names_2', '0 7 * * *') AS long2_job \gset
SELECT :long1_job <> :long2_job AS a_job_each;
SELECT jobid = :long1_job AS first, octet_length(jobname) AS name_bytes, schedule, command
  FROM cron.job WHERE jobid IN (:long1_job, :long2_job) ORDER BY jobid;
SELECT customer_analytics.unschedule_campaign_refresh('si_long_campaign_name_for_job_names_1');
SELECT count(*) FILTER (WHERE jobid = :long1_job) AS first_jobs, count(*) FILTER (WHERE jobid = :long2_job) AS second_jobs
  FROM cron.job;
SELECT customer_analytics.drop_campaign('si_long_campaign_name_for_job_names_2');
SELECT count(*) AS long_jobs_left FROM cron.job WHERE jobid IN (:long1_job, :long2_job);
SELECT customer_analytics.drop_campaign('si_long_campaign_name_for_job_names_1');
RESET ROLE;
-- the dispatcher's job name fits too
SELECT octet_length(customer_analytics._cron_fit_name(repeat('x', 100))) AS fitted_bytes,
       customer_analytics._cron_fit_name(repeat('x', 100)) <> customer_analytics._cron_fit_name(repeat('x', 99) || 'y') AS distinct_names,
       customer_analytics._cron_fit_name('short name') AS short_kept;
DROP EXTENSION pg_cron;

-- from here the dispatcher runs the schedules (no pg_cron in this database)
SET ROLE ca_si_analyst;
SELECT name FROM customer_analytics.create_campaign('h1', 'si_bi', source_schema => 'fx');
SELECT name FROM customer_analytics.create_campaign('o1', 'si_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('h1', '0 6 * * *');
SELECT customer_analytics.schedule_campaign_refresh('o1', '0 6 * * *');
-- the issue's case: the owner deletes its catalog row; the schedule goes too
DELETE FROM customer_analytics.campaigns WHERE name = 'o1';
SELECT name FROM customer_analytics.refresh_schedules ORDER BY name;
-- a scheduled definition is not renamed or given away under its schedule
UPDATE customer_analytics.campaigns SET name = 'h1b' WHERE name = 'h1';
RESET ROLE;
UPDATE customer_analytics.campaigns SET owner = 'ca_si_other' WHERE name = 'h1';
-- the dispatcher runs the healthy one (o1's schedule, had it stayed, would
-- come first)
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '2 hours' WHERE name = 'o1';
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 hour' WHERE name = 'h1';
SET ROLE ca_si_analyst;
CALL customer_analytics.run_due_refreshes();
SELECT name, via, succeeded FROM customer_analytics.refresh_history WHERE via = 'scheduled' ORDER BY id;
RESET ROLE;
-- another role's campaign of the same name schedules, and lists, as its own
SET ROLE ca_si_other;
SELECT name FROM customer_analytics.create_campaign('o1', 'si_other', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('o1', '0 6 * * *');
SELECT pg_temp.status('o1');
SELECT customer_analytics.unschedule_campaign_refresh('o1');
RESET ROLE;

------------------------------------------------------------------------------
-- 3. What a dispatcher cannot run is skipped and recorded; the rest runs
------------------------------------------------------------------------------
-- a schedule left behind by bypassing the foreign keys (as
-- session_replication_role = replica does, e.g. on a replica of the catalogs)
SET ROLE ca_si_analyst;
SELECT name FROM customer_analytics.create_campaign('o2', 'si_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('o2', '0 6 * * *');
RESET ROLE;
SET session_replication_role = replica;
DELETE FROM customer_analytics.campaigns WHERE name = 'o2';
RESET session_replication_role;
-- another role's campaign of that name cannot take it over: a clear error
SET ROLE ca_si_other;
SELECT name FROM customer_analytics.create_campaign('o2', 'si_other', source_schema => 'fx');
\set VERBOSITY default
SELECT customer_analytics.schedule_campaign_refresh('o2', '0 6 * * *');
\set VERBOSITY terse
SELECT pg_temp.status('o2');
RESET ROLE;
-- the left-behind schedule first (more overdue), then the healthy one: the
-- dispatcher records the first, removes it, runs the second, and fails
-- naming the first
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '2 hours' WHERE name = 'o2';
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 hour' WHERE name = 'h1';
SET ROLE ca_si_analyst;
CALL customer_analytics.run_due_refreshes();
RESET ROLE;
SELECT name, owner, via, succeeded, error FROM customer_analytics.refresh_history
 WHERE via = 'scheduled' ORDER BY id;
SELECT name, owner FROM customer_analytics.refresh_schedules ORDER BY name;
-- now the other role's o2 schedules as its own
SET ROLE ca_si_other;
SELECT customer_analytics.schedule_campaign_refresh('o2', '0 6 * * *');
SELECT pg_temp.status('o2');
RESET ROLE;

-- a schedule whose dispatcher's role can no longer act as the owner: a
-- member of the analyst schedules the analyst's m1 (its dispatcher runs
-- it) and has a campaign of its own, then loses the membership
SET ROLE ca_si_analyst;
SELECT name FROM customer_analytics.create_campaign('m1', 'si_bi', source_schema => 'fx');
RESET ROLE;
SET ROLE ca_si_member;
SELECT name FROM customer_analytics.create_campaign('mh', 'si_member', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('m1', '0 6 * * *');
SELECT customer_analytics.schedule_campaign_refresh('mh', '0 6 * * *');
RESET ROLE;
REVOKE ca_si_analyst FROM ca_si_member;
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '2 hours' WHERE name = 'm1';
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 hour' WHERE name = 'mh';
SET ROLE ca_si_member;
CALL customer_analytics.run_due_refreshes();
-- it may claim the analyst's schedule, nothing more
UPDATE customer_analytics.refresh_schedules SET schedule = '* * * * *' WHERE name = 'm1';
DELETE FROM customer_analytics.refresh_schedules WHERE name = 'm1';
RESET ROLE;
-- the analyst sees why m1 did not run; mh ran
SET ROLE ca_si_analyst;
SELECT name, pg_temp.status(name) FROM (VALUES ('m1'), ('mh')) v(name);
SELECT name, next_run > now() AS moved_on FROM customer_analytics.refresh_schedules WHERE name IN ('m1', 'mh') ORDER BY name;
-- scheduling it again as the analyst puts it right
SELECT customer_analytics.schedule_campaign_refresh('m1', '0 6 * * *');
SELECT pg_temp.status('m1');
RESET ROLE;

------------------------------------------------------------------------------
-- 4. A dispatcher killed mid-run
------------------------------------------------------------------------------
-- A dispatcher in another session (dblink) claims k1 and starts its
-- refresh, which waits on the refresh lock of source fx held here.
CREATE EXTENSION dblink;
CREATE FUNCTION pg_temp.wait_for(condition text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    FOR i IN 1 .. 1200 LOOP
        EXECUTE 'SELECT ' || condition INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.05);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
    RETURN false;
END $$;
SET ROLE ca_si_analyst;
SELECT name FROM customer_analytics.create_campaign('k1', 'si_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('k1', '0 6 * * *');
RESET ROLE;
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 hour' WHERE name = 'k1';
SELECT pg_advisory_lock(hashtext('customer_analytics.refresh'), hashtext('fx'));
SELECT dblink_connect('dispatcher', format('dbname=%s host=%s port=%s user=%s', current_database(),
                      split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user));
SELECT dblink_exec('dispatcher', 'SET ROLE ca_si_analyst');
SELECT pid AS dispatcher_pid FROM dblink('dispatcher', 'SELECT pg_backend_pid()') AS t(pid int) \gset
SELECT dblink_send_query('dispatcher', 'CALL customer_analytics.run_due_refreshes()');
SELECT pg_temp.wait_for(format('EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)', :dispatcher_pid)) AS refresh_waiting;
-- every role sees the run in progress
SET ROLE ca_si_other;
SELECT pg_temp.status('k1');
RESET ROLE;
-- due again meanwhile: another dispatcher of the role does not start a
-- second run of it (and runs what else is due)
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 minute' WHERE name = 'k1';
SET ROLE ca_si_analyst;
CALL customer_analytics.run_due_refreshes();
RESET ROLE;
SELECT count(*) AS k1_runs FROM customer_analytics.refresh_history WHERE name = 'k1' AND via = 'scheduled';
SELECT pg_temp.status('k1');
-- the dispatcher is killed mid-run: the run shows as interrupted at once
SELECT pg_terminate_backend(:dispatcher_pid);
SELECT pg_temp.wait_for(format('NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)', :dispatcher_pid)) AS dispatcher_gone;
SELECT dblink_disconnect('dispatcher');
SELECT pg_advisory_unlock(hashtext('customer_analytics.refresh'), hashtext('fx'));
SET ROLE ca_si_other;
SELECT pg_temp.status('k1');
RESET ROLE;
-- the next dispatcher of the role records it, for the owner to see, and
-- runs the refresh when it is due again
SET ROLE ca_si_analyst;
CALL customer_analytics.run_due_refreshes();
SELECT name, via, succeeded, mode, regexp_replace(error, 'process [0-9]+', 'process N') AS error
  FROM customer_analytics.refresh_history WHERE name = 'k1' AND via = 'scheduled' ORDER BY id;
SELECT pg_temp.status('k1');
SELECT claimed_at, claimed_pid FROM customer_analytics.refresh_schedules WHERE name = 'k1';
RESET ROLE;
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 minute' WHERE name = 'k1';
SET ROLE ca_si_analyst;
CALL customer_analytics.run_due_refreshes();
SELECT pg_temp.status('k1');
RESET ROLE;

-- clean up
SET ROLE ca_si_analyst;
SELECT customer_analytics.drop_campaign(name) FROM (VALUES ('h1'), ('m1'), ('k1')) v(name);
RESET ROLE;
SET ROLE ca_si_member;
SELECT customer_analytics.drop_campaign('mh');
RESET ROLE;
SET ROLE ca_si_other;
SELECT customer_analytics.drop_campaign(name) FROM (VALUES ('o1'), ('o2')) v(name);
RESET ROLE;
SELECT count(*) AS schedules FROM customer_analytics.refresh_schedules;
DELETE FROM customer_analytics.refresh_history WHERE name IN ('o2');
DELETE FROM customer_analytics.dispatcher_runs;
DROP EXTENSION dblink;
-- (and what the catalog rows deleted by hand left behind)
DROP SCHEMA si_bi, si_other, si_member CASCADE;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_si_analyst, ca_si_other, ca_si_member;
REVOKE ALL ON SCHEMA fx FROM ca_si_analyst, ca_si_other, ca_si_member;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_si_analyst;
DROP ROLE ca_si_analyst;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_si_other;
DROP ROLE ca_si_other;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_si_member;
DROP ROLE ca_si_member;
