-- Every scheduled run that starts ends in refresh_history (issue 24, item
-- 7).  Needs 00_setup (fixture schema fx).  run_scheduled_refresh, what
-- pg_cron jobs run, commits its claim of the run before the refresh (as
-- the dispatcher does), so that:
--   1. a statement_timeout (57014) during the refresh is rolled back and
--      recorded as failed, in refresh_history and list_campaigns();
--   2. a run whose process is killed mid-refresh shows as running, then as
--      interrupted at once, and the next run records it;
--   3. a run whose transaction failed to commit (a shard that died
--      mid-fetch leaves such a transaction) left its claim and lock in its
--      session: the next run in that session records it;
--   4. the dispatcher records a statement_timeout too, and stops there.
-- The refresh is held up by the refresh lock of source fx, taken by
-- another session (dblink).
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE ca_rr_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_rr_analyst;  -- the state of its definitions
CREATE ROLE ca_rr_reader;
GRANT USAGE ON SCHEMA fx TO ca_rr_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA fx TO ca_rr_analyst;
CREATE SCHEMA rr_bi AUTHORIZATION ca_rr_analyst;
CREATE EXTENSION pg_cron;
GRANT USAGE ON SCHEMA cron TO ca_rr_analyst;
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
-- a schedule's status as list_campaigns() shows it to everyone, with the
-- job's and the process's numbers masked
CREATE FUNCTION pg_temp.status(campaign text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(COALESCE(schedule_runner, 'unscheduled'), 'job [0-9]+', 'job N') || ' | '
           || COALESCE(last_status, '-') || ' | '
           || COALESCE(regexp_replace(last_error, 'process [0-9]+', 'process N'), '-')
      FROM customer_analytics.list_campaigns() WHERE name = campaign
$$;
CREATE FUNCTION pg_temp.history(campaign text) RETURNS TABLE (via text, succeeded boolean, error text)
LANGUAGE sql AS $$
    SELECT h.via, h.succeeded, regexp_replace(h.error, 'process [0-9]+', 'process N')
      FROM customer_analytics.refresh_history h WHERE h.name = campaign ORDER BY h.id
$$;
CREATE FUNCTION pg_temp.connect(conn text) RETURNS text LANGUAGE sql AS $$
    SELECT dblink_connect(conn, format('dbname=%s host=%s port=%s user=%s', current_database(),
                          split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user))
$$;

SET ROLE ca_rr_analyst;
SELECT name FROM customer_analytics.create_campaign('rr1', 'rr_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh('rr1', '0 6 * * *') > 0 AS pg_cron_job;
RESET ROLE;
SELECT runner, run_as FROM customer_analytics.refresh_schedules WHERE name = 'rr1';
-- another session holds the refresh lock of source fx
SELECT pg_temp.connect('holder');
SELECT * FROM dblink('holder', $$SELECT pg_advisory_lock(hashtext('customer_analytics.refresh'), hashtext('fx'))::text$$) AS t(locked text);

------------------------------------------------------------------------------
-- 1. A statement_timeout during a scheduled run
------------------------------------------------------------------------------
SET ROLE ca_rr_analyst;
SET statement_timeout = '300ms';
CALL customer_analytics.run_scheduled_refresh('campaign', 'rr1');
RESET statement_timeout;
-- recorded as failed, its claim cleared
SELECT * FROM pg_temp.history('rr1');
SELECT pg_temp.status('rr1');
SELECT claimed_at, claimed_pid FROM customer_analytics.refresh_schedules WHERE name = 'rr1';
RESET ROLE;
SELECT count(*) AS claim_locks_left FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = hashtext('campaign rr1')::oid;

------------------------------------------------------------------------------
-- 2. A run killed mid-refresh
------------------------------------------------------------------------------
SELECT pg_temp.connect('runner');
SELECT dblink_exec('runner', 'SET ROLE ca_rr_analyst');
SELECT pid AS runner_pid FROM dblink('runner', 'SELECT pg_backend_pid()') AS t(pid int) \gset
SELECT dblink_send_query('runner', $$CALL customer_analytics.run_scheduled_refresh('campaign', 'rr1')$$);
SELECT pg_temp.wait_for(format('EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)', :runner_pid)) AS refresh_waiting;
-- its start is committed: every role sees the run in progress
SET ROLE ca_rr_reader;
SELECT pg_temp.status('rr1');
RESET ROLE;
SELECT claimed_pid = :runner_pid AS claimed_by_runner FROM customer_analytics.refresh_schedules WHERE name = 'rr1';
-- the process is killed: the run shows as interrupted at once
SELECT pg_terminate_backend(:runner_pid);
SELECT pg_temp.wait_for(format('NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)', :runner_pid)) AS runner_gone;
SELECT dblink_disconnect('runner');
SET ROLE ca_rr_reader;
SELECT pg_temp.status('rr1');
RESET ROLE;
-- the lock is released: the next run records the interrupted one, then
-- refreshes
SELECT dblink_disconnect('holder');
SET ROLE ca_rr_analyst;
CALL customer_analytics.run_scheduled_refresh('campaign', 'rr1');
SELECT * FROM pg_temp.history('rr1');
SELECT pg_temp.status('rr1');
SELECT claimed_at, claimed_pid FROM customer_analytics.refresh_schedules WHERE name = 'rr1';
RESET ROLE;

------------------------------------------------------------------------------
-- 3. A run whose transaction failed to commit, in this session
------------------------------------------------------------------------------
-- what such a run leaves: its committed claim, and its claim lock held by
-- its session (made here by hand)
SELECT pg_advisory_lock(k.key1, k.key2) FROM customer_analytics._claim_lock('campaign', 'rr1') k;
UPDATE customer_analytics.refresh_schedules SET claimed_at = now(), claimed_pid = pg_backend_pid() WHERE name = 'rr1';
SELECT pg_temp.status('rr1');
SELECT count(*) AS claim_locks_held FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = hashtext('campaign rr1')::oid;
-- the next run in this session records it, refreshes and lets the lock go
SET ROLE ca_rr_analyst;
CALL customer_analytics.run_scheduled_refresh('campaign', 'rr1');
SELECT * FROM pg_temp.history('rr1');
SELECT pg_temp.status('rr1');
RESET ROLE;
SELECT count(*) AS claim_locks_left FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = hashtext('campaign rr1')::oid;

------------------------------------------------------------------------------
-- 4. The dispatcher: a statement_timeout is recorded, and ends the call
------------------------------------------------------------------------------
DROP EXTENSION pg_cron;
SET ROLE ca_rr_analyst;
SET client_min_messages = error;
SELECT name FROM customer_analytics.create_campaign('rr2', 'rr_bi', source_schema => 'fx');
SELECT name FROM customer_analytics.create_campaign('rr3', 'rr_bi', source_schema => 'fx');
SELECT customer_analytics.schedule_campaign_refresh(name, '0 6 * * *') IS NULL AS by_dispatcher
  FROM (VALUES ('rr2'), ('rr3')) v(name);
SET client_min_messages = warning;
RESET ROLE;
UPDATE customer_analytics.refresh_schedules SET next_run = now() - interval '1 hour' WHERE name IN ('rr2', 'rr3');
SELECT pg_temp.connect('holder');
SELECT * FROM dblink('holder', $$SELECT pg_advisory_lock(hashtext('customer_analytics.refresh'), hashtext('fx'))::text$$) AS t(locked text);
SET ROLE ca_rr_analyst;
SET statement_timeout = '300ms';
CALL customer_analytics.run_due_refreshes();
RESET statement_timeout;
-- rr2 recorded as failed, its claim cleared; rr3 not run, still due
SELECT * FROM pg_temp.history('rr2');
SELECT pg_temp.status('rr2');
SELECT name, claimed_pid, next_run <= now() AS due FROM customer_analytics.refresh_schedules
 WHERE name IN ('rr2', 'rr3') ORDER BY name;
RESET ROLE;
SELECT dblink_disconnect('holder');

-- clean up
SET ROLE ca_rr_analyst;
SELECT customer_analytics.drop_campaign(name) FROM (VALUES ('rr1'), ('rr2'), ('rr3')) v(name);
RESET ROLE;
SELECT count(*) AS schedules FROM customer_analytics.refresh_schedules WHERE name LIKE 'rr_';
DELETE FROM customer_analytics.dispatcher_runs;
DROP EXTENSION dblink;
DROP SCHEMA rr_bi CASCADE;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_rr_analyst;
REVOKE ALL ON SCHEMA fx FROM ca_rr_analyst;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_rr_analyst;
DROP ROLE ca_rr_analyst;
DROP ROLE ca_rr_reader;
