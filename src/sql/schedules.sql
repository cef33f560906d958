-- schedules.sql
--	Scheduled refreshes: pg_cron jobs and the dispatcher, refresh_schedules, claims and their outcomes.

-- Does process `pid` hold the claim lock of this schedule (here)?
CREATE FUNCTION customer_analytics._claim_alive(kind text, name text, pid integer) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT EXISTS (SELECT 1 FROM pg_locks l, customer_analytics._claim_lock($1, $2) k
                    WHERE l.locktype = 'advisory' AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                      AND l.classid = k.key1::oid AND l.objid = k.key2::oid AND l.objsubid = 2
                      AND l.pid = $3 AND l.granted)
$_$;

-- The run is over (its outcome recorded): clear the claim.  The lock goes
-- after the COMMIT (_claim_unlock), so that no one sees the claim without it.
CREATE FUNCTION customer_analytics._claim_clear(kind text, name text) RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    UPDATE customer_analytics.refresh_schedules r SET claimed_at = NULL, claimed_pid = NULL
     WHERE r.kind = $1 AND r.name = $2 AND r.claimed_pid = pg_backend_pid()
$_$;

-- Claim the caller's most overdue refresh due by `until` and not in
-- `passed` (those this dispatcher call has had already), moving its
-- next_run past `until` (so each is claimed at most once per dispatcher
-- call, and missed runs are not caught up one by one, as cron does not);
-- SKIP LOCKED: two dispatchers at once never claim the same refresh.
-- claimed: this process now holds its claim (committed with the caller's
-- transaction) and its lock; false when a run of it by another dispatcher
-- of the role is still in progress (not a second one at once), or when the
-- claim could not be recorded (problem: SQLSTATE: message).
CREATE FUNCTION customer_analytics._claim_due_refresh(until timestamp with time zone, passed text[] DEFAULT '{}'::text[], OUT kind text, OUT name text, OUT owner name, OUT claimed boolean, OUT problem text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    k record;
    err_state text;
    err_message text;
BEGIN
    SELECT d.kind, d.name, d.owner INTO kind, name, owner
      FROM customer_analytics.refresh_schedules d
     WHERE d.runner = 'dispatcher' AND d.run_as = current_user AND d.next_run <= until
       AND d.kind || ' ' || d.name <> ALL (COALESCE(passed, '{}'))
     ORDER BY d.next_run, d.kind, d.name
     LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    k := customer_analytics._claim_lock(kind, name);
    claimed := pg_try_advisory_lock(k.key1, k.key2);
    BEGIN
        UPDATE customer_analytics.refresh_schedules r
           SET next_run = customer_analytics._cron_next_run(r.schedule, until),
               claimed_at = CASE WHEN claimed THEN clock_timestamp() ELSE r.claimed_at END,
               claimed_pid = CASE WHEN claimed THEN pg_backend_pid() ELSE r.claimed_pid END
         WHERE r.kind = _claim_due_refresh.kind AND r.name = _claim_due_refresh.name;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
        problem := err_state || ': ' || err_message;
        IF claimed THEN
            PERFORM pg_advisory_unlock(k.key1, k.key2);
            claimed := false;
        END IF;
    END;
END $$;

-- The claim's advisory lock: two int4 keys.
CREATE FUNCTION customer_analytics._claim_lock(kind text, name text, OUT key1 integer, OUT key2 integer) RETURNS record
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT hashtext('customer_analytics.dispatch'), hashtext(kind || ' ' || name)
$$;

-- run_scheduled_refresh's claim of a pg_cron schedule run as the caller:
-- its start, as the dispatcher claims a run (_claim_due_refresh): the
-- claim's lock and claimed_at/claimed_pid, committed by the caller before
-- the refresh, cleared (_claim_clear, _claim_unlock) once its outcome is
-- recorded; a run that ends otherwise shows as interrupted.  false (no
-- claim, the run is not recorded before it ends): no such schedule, a run
-- of it in progress, or a claim the caller may not write.
CREATE FUNCTION customer_analytics._claim_scheduled_run(kind text, name text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    k record := customer_analytics._claim_lock(kind, name);
BEGIN
    IF NOT pg_try_advisory_lock(k.key1, k.key2) THEN
        RETURN false;
    END IF;
    BEGIN
        UPDATE customer_analytics.refresh_schedules r SET claimed_at = clock_timestamp(), claimed_pid = pg_backend_pid()
         WHERE r.kind = _claim_scheduled_run.kind AND r.name = _claim_scheduled_run.name
           AND r.runner = 'pg_cron' AND r.run_as = current_user;
        IF FOUND THEN
            RETURN true;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    PERFORM pg_advisory_unlock(k.key1, k.key2);
    RETURN false;
END $$;

-- Release the advisory lock a dispatcher holds while it runs a claimed
-- refresh.
CREATE FUNCTION customer_analytics._claim_unlock(kind text, name text) RETURNS boolean
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT pg_advisory_unlock(k.key1, k.key2) FROM customer_analytics._claim_lock($1, $2) k
$_$;

-- Why pg_cron's jobs cannot connect to this server, or NULL: without
-- background workers a job connects through libpq to cron.host (default
-- localhost, by TCP), which a server with listen_addresses = '' refuses.
-- NULL arguments (settings the caller may not read) mean "unknown".
CREATE FUNCTION customer_analytics._cron_connection_problem(use_background_workers text, host text, listen_addresses text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT CASE WHEN use_background_workers IN ('off', 'false') AND btrim(listen_addresses) = ''
                     AND host NOT LIKE '/%'
                THEN format('cron.use_background_workers is off and the server listens on no TCP address (listen_addresses = ''''), '
                            'so pg_cron cannot connect to cron.host "%s" to run the job', host) END
$$;

-- Why a pg_cron job was made for another server or database, or NULL:
-- pg_cron records where a job connects (cron.job.nodename, nodeport,
-- database) when it is scheduled, and a restore (pg_dump carries cron.job)
-- keeps the original server's, so the job would refresh the original.
-- Compared with what cron.schedule() records here now: cron.host, this
-- server's port, cron.database_name; the settings a role may not read
-- (pg_read_all_settings) are not compared.  NULL too when the job cannot
-- be read.
CREATE FUNCTION customer_analytics._cron_job_elsewhere(job bigint) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    j record;
    host text := customer_analytics._setting('cron.host');
    port int := current_setting('port')::int;
    db text := customer_analytics._setting('cron.database_name');
BEGIN
    IF job IS NULL OR NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')
       OR NOT has_schema_privilege('cron', 'USAGE') OR NOT has_table_privilege('cron.job', 'SELECT') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT nodename, nodeport, database FROM cron.job WHERE jobid = $1' INTO j USING job;
    IF j IS NULL OR (j.nodename, j.nodeport, j.database) IS NOT DISTINCT FROM
                    (COALESCE(host, j.nodename), port, COALESCE(db, j.database)) THEN
        RETURN NULL;
    END IF;
    RETURN format('made for another server: it connects to %s:%s, database %s; this is %s:%s, database %s',
                  j.nodename, j.nodeport, quote_ident(j.database), COALESCE(host, j.nodename), port,
                  quote_ident(COALESCE(db, j.database)));
END $_$;

-- The schedule of a definition's refresh, or NULL, from the extension's own
-- record of schedules (refresh_schedules), which every role may read:
-- list_campaigns() works for every role without reading cron.*.  A job
-- made under the definition's job name outside schedule_*_refresh (by hand,
-- or before 1.5 and not recorded) counts too, for its owner.
CREATE FUNCTION customer_analytics._cron_job(kind text, name text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    schedule text;
BEGIN
    SELECT r.schedule INTO schedule FROM customer_analytics.refresh_schedules r WHERE r.kind = $1 AND r.name = $2;
    IF schedule IS NULL AND customer_analytics._cron_job_id(kind, name) IS NOT NULL THEN
        EXECUTE 'SELECT schedule FROM cron.job WHERE jobid = $1' INTO schedule
          USING customer_analytics._cron_job_id(kind, name);
    END IF;
    RETURN schedule;
END $_$;

-- The caller's pg_cron job for the definition's refresh, as pg_cron's own
-- row shows it: the definition's job name, run as the caller, running the
-- command schedule_*_refresh() gives it; or NULL (none, no pg_cron here,
-- or cron.job not readable by this role).
CREATE FUNCTION customer_analytics._cron_job_id(kind text, name text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    job bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')
       OR NOT has_schema_privilege('cron', 'USAGE')
       OR NOT has_table_privilege('cron.job', 'SELECT') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT jobid FROM cron.job WHERE jobname = $1 AND username = current_user AND command = $2'
       INTO job USING customer_analytics._cron_job_name(kind, name), customer_analytics._refresh_job_command(kind, name);
    RETURN job;
END $_$;

-- A pg_cron job name that fits cron.job.jobname (a name: 63 bytes): the
-- text itself when it fits, else its first 54 bytes' worth of characters
-- and 8 hex digits of its md5.  pg_cron cuts a longer name silently, and two
-- definitions whose names share the first 63 bytes would share one job.
CREATE FUNCTION customer_analytics._cron_fit_name(job text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN octet_length(job) <= 63 THEN job
                ELSE (SELECT left(job, n) FROM generate_series(54, 0, -1) n
                       WHERE octet_length(left(job, n)) <= 54 LIMIT 1) || ' ' || left(md5(job), 8) END
$$;

-- The pg_cron job name of a definition's scheduled refresh.
CREATE FUNCTION customer_analytics._cron_job_name(kind text, name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT customer_analytics._cron_fit_name('customer_analytics refresh ' || kind || ' ' || name) $$;

-- The next time a cron schedule fires after `after`, in UTC as pg_cron 1.4
-- reads schedules (src/cron_schedule.c); NULL for @reboot, and when the
-- next run would be past the end of PostgreSQL's timestamp range (294276
-- AD); 22023 for a schedule that cannot be read.
CREATE FUNCTION customer_analytics._cron_next_run(schedule text, after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'cron_next_run';

COMMENT ON FUNCTION customer_analytics._cron_next_run(schedule text, after timestamp with time zone) IS 'The first minute after `after` at which a cron schedule (pg_cron 1.4 grammar, UTC) fires; NULL for @reboot or past the end of the timestamp range';

-- Why the caller's dispatcher cannot run this schedule (SQLSTATE and
-- message), or NULLs when it can: its definition is gone (a schedule left
-- by bypassing the foreign keys), or the dispatcher's role can no longer
-- act as the definition's owner.
CREATE FUNCTION customer_analytics._dispatch_problem(kind text, name text, owner name, OUT err_state text, OUT err_message text) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM customer_analytics.campaigns c
                    WHERE $1 = 'campaign' AND c.name = $2 AND c.owner = $3
                   UNION ALL
                   SELECT 1 FROM customer_analytics.segmentations s
                    WHERE $1 = 'segmentation' AND s.name = $2 AND s.owner = $3) THEN
        err_state := '42704';
        err_message := format('%s "%s" of role %s no longer exists: its schedule is removed', kind, name, quote_ident(owner));
    ELSIF NOT customer_analytics._is_definition_owner(owner) THEN
        err_state := '42501';
        err_message := format('the dispatcher runs as role %s, which cannot act as role %s, the owner of %s "%s": '
                              'skipped until role %s schedules it again', quote_ident(current_user), quote_ident(owner),
                              kind, name, quote_ident(owner));
    END IF;
END $_$;

-- Why there is no pg_cron here, for the dispatcher WARNING.
CREATE FUNCTION customer_analytics._dispatcher_detail() RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    cron_db text;
BEGIN
    BEGIN
        cron_db := current_setting('cron.database_name', true);
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN 'pg_cron is not installed in this database. No run_due_refreshes() has run as this role here in the last 5 minutes.';
    END;
    IF cron_db IS NULL THEN
        RETURN 'pg_cron is not loaded (shared_preload_libraries). No run_due_refreshes() has run as this role here in the last 5 minutes.';
    END IF;
    RETURN format('pg_cron runs jobs from database %s (cron.database_name), not this one. '
                  'No run_due_refreshes() has run as this role here in the last 5 minutes.', quote_ident(cron_db));
END $$;

-- At DROP EXTENSION (src/extension_drop.c): the dispatcher jobs that ran
-- here live in pg_cron's database, which this one cannot reach; they do
-- nothing from now on, and this says how to remove them.
CREATE FUNCTION customer_analytics._dispatcher_drop_notice() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    calls text;
BEGIN
    SELECT string_agg(format('SELECT cron.unschedule(%L);',
                             customer_analytics._cron_fit_name('customer_analytics dispatcher ' || current_database() || ' ' || d.role)), ' ' ORDER BY d.role)
      INTO calls FROM customer_analytics.dispatcher_runs d;
    IF calls IS NOT NULL THEN
        RAISE NOTICE 'customer_analytics: the dispatcher jobs for this database in pg_cron''s database now do nothing'
            USING HINT = 'A superuser connected to pg_cron''s database removes them: ' || calls;
    END IF;
END $$;

-- Record that the caller's dispatcher runs.
CREATE FUNCTION customer_analytics._dispatcher_heartbeat() RETURNS void
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    INSERT INTO customer_analytics.dispatcher_runs AS d (role, last_run_at) VALUES (current_user, now())
    ON CONFLICT (role) DO UPDATE SET last_run_at = excluded.last_run_at
$$;

-- How to start a dispatcher for `role` in this database.
CREATE FUNCTION customer_analytics._dispatcher_hint(role name) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    cron_db text;
BEGIN
    BEGIN
        cron_db := current_setting('cron.database_name', true);
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN format('Once per role and database, a superuser connected to pg_cron''s database (cron.database_name) runs: %s',
                      customer_analytics.dispatcher_command(role));
    END;
    IF cron_db IS NULL THEN
        RETURN format('Run CALL customer_analytics.run_due_refreshes(); every minute as role %s in this database '
                      'from any scheduler (cron, a systemd timer), or load pg_cron.', quote_ident(role));
    END IF;
    RETURN format('Once per role and database, a superuser connected to database %s runs: %s',
                  quote_ident(cron_db), customer_analytics.dispatcher_command(role));
END $$;

-- A dispatcher records the runs it could not do (or that were interrupted)
-- of the schedules it runs, also when it cannot act as their owner: only
-- failures, only scheduled ones, and only for a schedule that names it.
CREATE FUNCTION customer_analytics._dispatches(kind text, name text, owner name) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT EXISTS (SELECT 1 FROM customer_analytics.refresh_schedules r
                    WHERE r.kind = $1 AND r.name = $2 AND r.owner = $3
                      AND r.runner = 'dispatcher' AND r.run_as = current_user)
$_$;

-- What an interrupted run records as its error: a claim of a pg_cron
-- schedule is its job's run_scheduled_refresh, else the dispatcher's.
CREATE FUNCTION customer_analytics._interrupted_error(runner text, run_as name, pid integer) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('interrupted: %s (%s as %s, process %s) ended before the refresh finished',
                  CASE runner WHEN 'pg_cron' THEN 'the scheduled run' ELSE 'the dispatcher' END,
                  CASE runner WHEN 'pg_cron' THEN 'run_scheduled_refresh' ELSE 'run_due_refreshes' END,
                  quote_ident(run_as), pid)
$$;

-- A schedule's next run, NULL when unknown (a schedule a later pg_cron
-- accepts but _cron_next_run does not read).
CREATE FUNCTION customer_analytics._next_run_or_null(schedule text, after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    RETURN customer_analytics._cron_next_run(schedule, after);
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN NULL;
END $$;

-- Record a scheduled run's failure that no refresh recorded (a run the
-- dispatcher could not do, or an interrupted one) in refresh_history.
CREATE FUNCTION customer_analytics._record_dispatch_failure(kind text, name text, owner name, started timestamp with time zone, error text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    PERFORM set_config('customer_analytics.refresh_via', 'scheduled', true);
    PERFORM customer_analytics._record_history(kind, name, owner, started, NULL, NULL, error);
    PERFORM set_config('customer_analytics.refresh_via', '', true);
END $$;

-- Record the caller's interrupted runs (claims whose process is gone, the
-- dispatcher's and run_scheduled_refresh's) and clear their claims;
-- returns how many.  Called before a run starts, when no run of this
-- process is in progress: a claim of this process is one whose run ended
-- without clearing it (its transaction failed to commit), and its lock
-- goes too.  SKIP LOCKED: a claim being made or cleared right now is not
-- one.
CREATE FUNCTION customer_analytics._record_interrupted_runs() RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN SELECT d.kind, d.name, d.owner, d.runner, d.run_as, d.claimed_at, d.claimed_pid
               FROM customer_analytics.refresh_schedules d
              WHERE d.run_as = current_user AND d.claimed_pid IS NOT NULL
              ORDER BY d.kind, d.name
                FOR UPDATE SKIP LOCKED
    LOOP
        CONTINUE WHEN r.claimed_pid <> pg_backend_pid() AND customer_analytics._claim_alive(r.kind, r.name, r.claimed_pid);
        PERFORM customer_analytics._record_dispatch_failure(r.kind, r.name, r.owner, r.claimed_at,
                                                            customer_analytics._interrupted_error(r.runner, r.run_as, r.claimed_pid));
        UPDATE customer_analytics.refresh_schedules d SET claimed_at = NULL, claimed_pid = NULL
         WHERE d.kind = r.kind AND d.name = r.name;
        IF r.claimed_pid = pg_backend_pid() AND customer_analytics._claim_alive(r.kind, r.name, r.claimed_pid) THEN
            PERFORM customer_analytics._claim_unlock(r.kind, r.name);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Record a scheduled refresh's failure for the definition's owner: only
-- the owner's runs are recorded (a dropped definition has none).  phases:
-- those of the failed refresh, when its transaction is gone.
CREATE FUNCTION customer_analytics._record_refresh_failure(kind text, name text, started timestamp with time zone, error text, phases jsonb DEFAULT NULL::jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    definer name;
BEGIN
    SELECT c.owner INTO definer FROM customer_analytics.campaigns c
     WHERE kind = 'campaign' AND c.name = _record_refresh_failure.name
    UNION ALL
    SELECT s.owner FROM customer_analytics.segmentations s
     WHERE kind = 'segmentation' AND s.name = _record_refresh_failure.name;
    IF definer IS NOT NULL AND customer_analytics._history_writable(kind, name, definer) THEN
        PERFORM set_config('customer_analytics.refresh_via', 'scheduled', true);
        PERFORM customer_analytics._record_history(kind, name, definer, started, NULL, NULL, error, phases);
        PERFORM set_config('customer_analytics.refresh_via', '', true);
    END IF;
END $$;

-- The command and job name pg_cron runs for a definition.
CREATE FUNCTION customer_analytics._refresh_job_command(kind text, name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT format('CALL customer_analytics.run_scheduled_refresh(%L, %L)', kind, name)
$$;

-- Run one scheduled refresh; on failure (a cancel or statement_timeout
-- too) return the error, its work rolled back to the block, recording
-- nothing.
CREATE FUNCTION customer_analytics._refresh_or_error(kind text, name text, OUT err_state text, OUT err_message text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF kind IS NULL OR kind NOT IN ('campaign', 'segmentation') THEN
        RAISE EXCEPTION 'kind must be ''campaign'' or ''segmentation'', not %', COALESCE(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        PERFORM set_config('customer_analytics.refresh_via', 'scheduled', true);
        IF kind = 'campaign' THEN
            PERFORM customer_analytics.refresh_campaign(_refresh_or_error.name);
        ELSE
            PERFORM customer_analytics.refresh_segmentation(_refresh_or_error.name);
        END IF;
        PERFORM set_config('customer_analytics.refresh_via', '', true);
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT;
    END;
END $$;

-- Run one refresh; on failure, record it (in this transaction: the
-- refresh's own work is rolled back to the block) and return the error.
CREATE FUNCTION customer_analytics._refresh_recording_failure(kind text, name text, OUT err_state text, OUT err_message text) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    started timestamptz := clock_timestamp();
BEGIN
    SELECT f.err_state, f.err_message INTO err_state, err_message
      FROM customer_analytics._refresh_or_error(kind, name) f;
    IF err_state IS NOT NULL THEN
        PERFORM customer_analytics._record_refresh_failure(kind, name, started, err_state || ': ' || err_message);
    END IF;
END $$;

-- The pg_cron job a schedule row names, checked against pg_cron's own row
-- before it is unscheduled: unscheduled only when it is the job the
-- extension makes for this definition's refresh, run as run_as; otherwise
-- left alone, saying so.  Nothing when there is no job or no pg_cron.
CREATE FUNCTION customer_analytics._release_refresh_job(kind text, name text, run_as name, job bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    job_name text;
    job_user text;
    job_command text;
    our_name text := customer_analytics._cron_job_name(kind, name);
    our_command text := customer_analytics._refresh_job_command(kind, name);
BEGIN
    IF job IS NULL OR NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;   -- no job, or pg_cron (and every job with it) dropped since
    END IF;
    IF NOT has_schema_privilege('cron', 'USAGE') OR NOT has_table_privilege('cron.job', 'SELECT') THEN
        RAISE WARNING 'pg_cron job % of % "%" was left alone: this role may not read pg_cron''s jobs', job, kind, name
            USING HINT = format('As role %I (or a superuser): SELECT cron.unschedule(%s);', run_as, job);
        RETURN;
    END IF;
    EXECUTE 'SELECT jobname, username, command FROM cron.job WHERE jobid = $1'
       INTO job_name, job_user, job_command USING job;
    IF job_user IS NULL THEN
        -- cron.job shows a role only its own jobs (row-level security)
        IF run_as = current_user OR NOT row_security_active('cron.job') THEN
            RAISE NOTICE 'pg_cron job % of % "%" was already gone', job, kind, name;
        ELSE
            RAISE WARNING 'pg_cron job % of % "%" runs as role %: left alone', job, kind, name, quote_ident(run_as)
                USING DETAIL = 'pg_cron shows each role only its own jobs, so this role cannot check that it is the job made for this refresh.',
                      HINT = format('As role %I (or a superuser): SELECT cron.unschedule(%s);', run_as, job);
        END IF;
        RETURN;
    END IF;
    IF job_name IS DISTINCT FROM our_name OR job_user IS DISTINCT FROM run_as::text
       OR job_command IS DISTINCT FROM our_command THEN
        RAISE WARNING 'pg_cron job % (%) is not the refresh job of % "%": left alone',
            job, COALESCE(quote_literal(job_name), 'unnamed'), kind, name
            USING DETAIL = format('It runs as role %s: %s. The refresh job of %s "%s" is named %L and runs as role %s: %s.',
                                  quote_ident(job_user), job_command, kind, name, our_name, quote_ident(run_as), our_command);
        RETURN;
    END IF;
    BEGIN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    EXCEPTION WHEN internal_error THEN
        RAISE NOTICE 'pg_cron job % of % "%" was already gone', job, kind, name;
    END;
END $_$;

-- A schedule's claim: 'running' while the dispatcher that claimed it runs
-- it, 'interrupted' once that process is gone (with the error it records);
-- no row when no dispatcher has claimed it.
CREATE FUNCTION customer_analytics._schedule_claim(kind text, name text, owner name, OUT state text, OUT error text, OUT claimed_at timestamp with time zone) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT CASE WHEN customer_analytics._claim_alive(r.kind, r.name, r.claimed_pid) THEN 'running' ELSE 'interrupted' END,
           customer_analytics._interrupted_error(r.runner, r.run_as, r.claimed_pid), r.claimed_at
      FROM customer_analytics.refresh_schedules r
     WHERE r.kind = $1 AND r.name = $2 AND r.owner = $3 AND r.claimed_pid IS NOT NULL
$_$;

-- Refuse a schedule that _schedule_refresh cannot record for a definition
-- (kind, name) owned by `owner`: NULL, or not in cron's grammar (the same
-- grammar for pg_cron and the dispatcher: refused here, with the field at
-- fault), or where a schedule of another owner's definition of that name is
-- left (the foreign keys make one only by bypassing them, as
-- session_replication_role = replica does): not ours to replace, and not to
-- be attached to this one.
CREATE FUNCTION customer_analytics._schedule_require_valid(kind text, name text, schedule text, owner name) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    stale_owner name;
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'A cron expression such as ''*/5 * * * *'' (every five minutes).';
    END IF;
    PERFORM customer_analytics._cron_next_run(schedule, now());
    SELECT r.owner INTO stale_owner FROM customer_analytics.refresh_schedules r
     WHERE r.kind = _schedule_require_valid.kind AND r.name = _schedule_require_valid.name;
    IF stale_owner IS NOT NULL AND stale_owner IS DISTINCT FROM _schedule_require_valid.owner THEN
        RAISE EXCEPTION '% "%" has a schedule left from a former % of that name owned by role %',
            kind, name, kind, stale_owner
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A schedule belongs to the definition it was made for, not to a later one of the same name.',
                  HINT = format('Role %I (or a superuser) removes it: DELETE FROM customer_analytics.refresh_schedules WHERE kind = %L AND name = %L;',
                                stale_owner, kind, name);
    END IF;
END $_$;

-- Say that a definition's refresh is scheduled (a NOTICE naming its runner,
-- pg_cron's job or the dispatcher's next run), and WARN when the runner
-- will not run it: pg_cron cannot connect (_cron_connection_problem), or
-- no dispatcher has run as the current role lately.
CREATE FUNCTION customer_analytics._schedule_announce(kind text, name text, schedule text, runner text, job bigint,
                                                      next_run timestamp with time zone) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    problem text;
BEGIN
    IF runner = 'pg_cron' THEN
        RAISE NOTICE '% "%" refresh scheduled: % (pg_cron job %)', kind, name, schedule, job;
        problem := customer_analytics._cron_connection_problem(customer_analytics._setting('cron.use_background_workers'),
                                                                customer_analytics._setting('cron.host'),
                                                                customer_analytics._setting('listen_addresses'));
        IF problem IS NOT NULL THEN
            RAISE WARNING '% "%": its scheduled refresh will fail: %', kind, name, problem
                USING HINT = 'Set cron.use_background_workers = on (and restart), or cron.host to the server''s socket directory '
                             '(unix_socket_directories), or listen on localhost.';
        END IF;
    ELSE
        RAISE NOTICE '% "%" refresh scheduled: % (by the dispatcher, customer_analytics.run_due_refreshes(); next run %)',
            kind, name, schedule, to_char(next_run AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
        IF NOT EXISTS (SELECT 1 FROM customer_analytics.dispatcher_runs d
                        WHERE d.role = current_user AND d.last_run_at > now() - interval '5 minutes') THEN
            RAISE WARNING '% "%" will not be refreshed until a dispatcher runs as role % in database %',
                kind, name, quote_ident(current_user), quote_ident(current_database())
                USING DETAIL = customer_analytics._dispatcher_detail(),
                      HINT = customer_analytics._dispatcher_hint(current_user);
        END IF;
    END IF;
END $_$;

-- Schedule a definition's refresh (scheduling again replaces the schedule)
-- and record it in refresh_schedules.  With pg_cron installed in this
-- database: a pg_cron job under the definition's job name, run as the
-- caller.  Elsewhere (pg_cron runs in another database, or is not used):
-- the dispatcher runs it; a WARNING says how to start one when none has run
-- for the caller lately.  Returns the pg_cron job id, or NULL.  The steps:
-- refuse what cannot be recorded (_schedule_require_valid), schedule and
-- record, say so (_schedule_announce).
CREATE FUNCTION customer_analytics._schedule_refresh(kind text, name text, schedule text, command text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    job bigint;
    runner text;
    next_run timestamptz;
    problem text;
    owner name := (SELECT c.owner FROM customer_analytics.campaigns c WHERE kind = 'campaign' AND c.name = _schedule_refresh.name
                   UNION ALL
                   SELECT s.owner FROM customer_analytics.segmentations s WHERE kind = 'segmentation' AND s.name = _schedule_refresh.name);
BEGIN
    PERFORM customer_analytics._schedule_require_valid(kind, name, schedule, owner);
    -- what the job runs: the procedure that records failures too
    command := customer_analytics._refresh_job_command(kind, name);
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        runner := 'pg_cron';
        -- cron.schedule() keeps a job's server and database: one made for
        -- another (a restored job) is replaced
        job := customer_analytics._cron_job_id(kind, name);
        problem := customer_analytics._cron_job_elsewhere(job);
        IF problem IS NOT NULL THEN
            RAISE NOTICE '% "%": pg_cron job % was %: replaced', kind, name, job, problem;
            PERFORM customer_analytics._release_refresh_job(kind, name, current_user, job);
        END IF;
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
          USING customer_analytics._cron_job_name(kind, name), schedule, command;
    ELSE
        runner := 'dispatcher';
        next_run := customer_analytics._cron_next_run(schedule, now());
    END IF;
    INSERT INTO customer_analytics.refresh_schedules AS r
           (kind, name, owner, schedule, runner, run_as, job_id, next_run, scheduled_at)
    VALUES (kind, name, owner, schedule, runner, current_user, job, next_run, now())
    ON CONFLICT ON CONSTRAINT refresh_schedules_pkey DO UPDATE
       SET owner = excluded.owner, schedule = excluded.schedule, runner = excluded.runner,
           run_as = excluded.run_as, job_id = excluded.job_id, next_run = excluded.next_run,
           scheduled_at = excluded.scheduled_at;
    PERFORM customer_analytics._schedule_announce(kind, name, schedule, runner, job, next_run);
    RETURN job;
END $_$;

-- A schedule row's run_as (sched, as the writer wrote it) must be the writer:
-- a schedule runs as the role that makes it.
CREATE FUNCTION customer_analytics._schedule_row_check_run_as(sched customer_analytics.refresh_schedules) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
    IF sched.run_as IS DISTINCT FROM current_user THEN
        RAISE EXCEPTION 'a schedule of % "%" written by role % runs as %, not as %',
            sched.kind, sched.name, quote_ident(current_user), quote_ident(current_user), COALESCE(quote_ident(sched.run_as), 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A schedule runs as the role that makes it: its pg_cron job runs as that role, and so does its dispatcher.',
                  HINT = format('To have it run as role %s, that role schedules it: customer_analytics.schedule_%s_refresh(%L, ...).',
                                COALESCE(quote_ident(sched.run_as), 'NULL'), sched.kind, sched.name);
    END IF;
END $_$;

-- A pg_cron schedule row's job_id and schedule (sched, as the writer wrote
-- it) must be the writer's refresh job of the definition and that job's
-- schedule.
CREATE FUNCTION customer_analytics._schedule_row_check_cron_job(sched customer_analytics.refresh_schedules) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    job bigint := customer_analytics._cron_job_id(sched.kind, sched.name);
    job_schedule text;
BEGIN
    IF job IS NOT NULL THEN
        EXECUTE 'SELECT schedule FROM cron.job WHERE jobid = $1' INTO job_schedule USING job;
    END IF;
    IF sched.job_id IS DISTINCT FROM job THEN
        RAISE EXCEPTION 'pg_cron job % is not the refresh job of % "%"', COALESCE(sched.job_id::text, 'NULL'), sched.kind, sched.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = CASE WHEN job IS NULL
                                THEN format('Role %s has no pg_cron job named %L running %L.', quote_ident(current_user),
                                            customer_analytics._cron_job_name(sched.kind, sched.name),
                                            customer_analytics._refresh_job_command(sched.kind, sched.name))
                                ELSE format('Its refresh job for role %s is job %s.', quote_ident(current_user), job) END,
                  HINT = format('customer_analytics.schedule_%s_refresh() schedules it and records its job.', sched.kind);
    END IF;
    IF sched.schedule IS DISTINCT FROM job_schedule THEN
        RAISE EXCEPTION 'the schedule of % "%" is its pg_cron job''s, %, not %', sched.kind, sched.name,
            quote_literal(job_schedule), COALESCE(quote_literal(sched.schedule), 'NULL')
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('customer_analytics.schedule_%s_refresh(%L, %L) changes both.', sched.kind, sched.name, sched.schedule);
    END IF;
END $_$;

-- Refuse a schedule row (or change) whose run_as, job_id or schedule is
-- not the writer's own fact (see above).  Superusers are trusted here as
-- row-level security trusts them: the update to 1.5 records other roles'
-- jobs, pg_restore loads the rows.  The dispatcher a row names, when it
-- cannot act as the definition's owner (policy dispatcher_claims), may
-- only claim its runs.  A row that only moves its next run or its claim
-- passes as it is.  The checks: the run_as (_schedule_row_check_run_as),
-- a pg_cron row's job (_schedule_row_check_cron_job), the schedule's
-- grammar.
CREATE FUNCTION customer_analytics._schedule_row_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NOT customer_analytics._is_definition_owner(OLD.owner) THEN
            IF (NEW.kind, NEW.name, NEW.owner, NEW.schedule, NEW.runner, NEW.run_as, NEW.job_id, NEW.scheduled_at)
               IS DISTINCT FROM (OLD.kind, OLD.name, OLD.owner, OLD.schedule, OLD.runner, OLD.run_as, OLD.job_id, OLD.scheduled_at) THEN
                RAISE EXCEPTION 'must be owner of % "%"', OLD.kind, OLD.name
                    USING ERRCODE = 'insufficient_privilege',
                          DETAIL = format('%s "%s" belongs to role "%s"; the dispatcher that runs its schedule may only claim its runs.',
                                          initcap(OLD.kind), OLD.name, OLD.owner);
            END IF;
            RETURN NEW;
        END IF;
        IF (NEW.kind, NEW.name, NEW.owner, NEW.schedule, NEW.runner, NEW.run_as, NEW.job_id)
           IS NOT DISTINCT FROM (OLD.kind, OLD.name, OLD.owner, OLD.schedule, OLD.runner, OLD.run_as, OLD.job_id) THEN
            RETURN NEW;
        END IF;
    END IF;
    PERFORM customer_analytics._schedule_row_check_run_as(NEW);
    IF NEW.runner = 'pg_cron' THEN
        PERFORM customer_analytics._schedule_row_check_cron_job(NEW);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.schedule IS DISTINCT FROM OLD.schedule THEN
        -- one the dispatcher can read (22023 naming the field)
        PERFORM customer_analytics._cron_next_run(NEW.schedule, now());
    END IF;
    RETURN NEW;
END $_$;

-- May the current role write this schedule row?  Only for a definition of
-- that kind and name owned by `owner`, which the role can act as, and to be
-- run as a role it can act as: no one schedules (or blocks the schedule of)
-- another role's definition, or has another role's dispatcher run it.
-- (_schedule_row_guard, below, narrows run_as and job_id to facts.)
CREATE FUNCTION customer_analytics._schedule_row_ok(kind text, name text, owner name, run_as name) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
    SELECT customer_analytics._is_definition_owner(owner)
       AND customer_analytics._is_definition_owner(run_as)
       AND EXISTS (SELECT 1 FROM customer_analytics.campaigns c
                    WHERE kind = 'campaign' AND c.name = _schedule_row_ok.name AND c.owner = _schedule_row_ok.owner
                   UNION ALL
                   SELECT 1 FROM customer_analytics.segmentations s
                    WHERE kind = 'segmentation' AND s.name = _schedule_row_ok.name AND s.owner = _schedule_row_ok.owner)
$$;

-- A schedule row's pg_cron job goes with the row, whoever deletes it (the
-- unschedule and drop functions, the foreign keys' cascade when the
-- definition's catalog row is deleted, its owner by hand), or when the row
-- names another job; _release_refresh_job checks it first.  AFTER
-- triggers run as the role whose statement fired them (a cascade's too).
CREATE FUNCTION customer_analytics._schedule_row_release() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    IF OLD.runner = 'pg_cron' AND (TG_OP = 'DELETE' OR OLD.job_id IS DISTINCT FROM NEW.job_id) THEN
        PERFORM customer_analytics._release_refresh_job(OLD.kind, OLD.name, OLD.run_as, OLD.job_id);
    END IF;
    RETURN NULL;
END $$;

-- A definition's schedule, who runs it, and its next run: the
-- dispatcher's due time, or the next time pg_cron's job fires.
CREATE FUNCTION customer_analytics._schedule_status(kind text, name text, OUT schedule text, OUT next_run timestamp with time zone, OUT runner text) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT r.schedule,
           CASE r.runner WHEN 'dispatcher' THEN r.next_run
                ELSE customer_analytics._next_run_or_null(r.schedule, now()) END,
           CASE r.runner WHEN 'dispatcher' THEN 'dispatcher (run_due_refreshes as ' || quote_ident(r.run_as) || ')'
                ELSE 'pg_cron job ' || r.job_id
                     || COALESCE(' (' || customer_analytics._cron_job_elsewhere(r.job_id)
                                 || format(': reschedule it: SELECT customer_analytics.schedule_%s_refresh(%L, %L))',
                                           r.kind, r.name, r.schedule), '') END
      FROM customer_analytics.refresh_schedules r
     WHERE r.kind = $1 AND r.name = $2
       -- made for this definition (its owner's), never a former one of that name
       AND r.owner IN (SELECT c.owner FROM customer_analytics.campaigns c WHERE $1 = 'campaign' AND c.name = $2
                       UNION ALL
                       SELECT s.owner FROM customer_analytics.segmentations s WHERE $1 = 'segmentation' AND s.name = $2)
$_$;

-- Skip a schedule the caller's dispatcher cannot run: record why, and
-- remove a schedule whose definition is gone.
CREATE FUNCTION customer_analytics._skip_schedule(kind text, name text, owner name, err_state text, err_message text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
BEGIN
    PERFORM customer_analytics._record_dispatch_failure(kind, name, owner, clock_timestamp(), err_state || ': ' || err_message);
    IF err_state = '42704' THEN
        DELETE FROM customer_analytics.refresh_schedules r WHERE r.kind = $1 AND r.name = $2 AND r.owner = $3;
    END IF;
END $_$;

-- Unschedule a definition's refresh: its row in refresh_schedules (its
-- pg_cron job goes with it, _schedule_row_release), and the caller's own
-- job for this refresh made outside schedule_*_refresh (by hand, or before
-- 1.5 and not recorded).
CREATE FUNCTION customer_analytics._unschedule_refresh(kind text, name text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
DECLARE
    r customer_analytics.refresh_schedules;
    job bigint := customer_analytics._cron_job_id(kind, name);
BEGIN
    SELECT * INTO r FROM customer_analytics.refresh_schedules s WHERE s.kind = $1 AND s.name = $2;
    IF NOT FOUND AND job IS NULL THEN
        RAISE EXCEPTION '% "%" has no scheduled refresh', kind, name
            USING ERRCODE = 'undefined_object',
                  HINT = 'customer_analytics.list_' || kind || 's() shows each ' || kind || '''s schedule.';
    END IF;
    DELETE FROM customer_analytics.refresh_schedules s WHERE s.kind = $1 AND s.name = $2;
    IF job IS NOT NULL AND job IS DISTINCT FROM r.job_id THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    END IF;
    RAISE NOTICE '% "%" refresh unscheduled', kind, name;
END $_$;

-- The pg_cron call that starts role's dispatcher in this database.
CREATE FUNCTION customer_analytics.dispatcher_command(role name DEFAULT CURRENT_USER) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
    SELECT format('SELECT cron.schedule_in_database(%L, %L, %L, %L, %L);',
                  customer_analytics._cron_fit_name('customer_analytics dispatcher ' || current_database() || ' ' || role), '* * * * *',
                  -- a no-op once the extension is dropped from the database:
                  -- it calls the procedure only while it is the extension's
                  -- own (not one a role with CREATE made in a new schema of
                  -- that name, which the job would run as its role)
                  'DO $dispatch$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_depend d, pg_catalog.pg_extension e'
                  ' WHERE d.classid OPERATOR(pg_catalog.=) ''pg_catalog.pg_proc''::pg_catalog.regclass'
                  ' AND d.objid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(''customer_analytics.run_due_refreshes()'')'
                  ' AND d.refobjid OPERATOR(pg_catalog.=) e.oid AND e.extname OPERATOR(pg_catalog.=) ''customer_analytics'''
                  ' AND d.deptype OPERATOR(pg_catalog.=) ''e'') '
                  'THEN CALL customer_analytics.run_due_refreshes(); END IF; END $dispatch$',
                  current_database(), role)
$_$;

COMMENT ON FUNCTION customer_analytics.dispatcher_command(role name) IS 'The cron.schedule_in_database() call (to run in pg_cron''s database, by a superuser, once per role and database) that has pg_cron run customer_analytics.run_due_refreshes() every minute here as the role';

-- The dispatcher: runs every refresh of the caller's that the dispatcher
-- schedules and that is due, each in its own transaction, and records
-- each outcome as run_scheduled_refresh() does; then raises an error
-- naming the ones that failed, so that the job that called it fails too.
-- Refreshes of other roles are left to their own dispatchers.  A schedule
-- it cannot run is skipped and recorded, and the others still run; each
-- claim is committed before its refresh runs, so an interrupted run shows
-- (see "Claims" above), and this records the caller's interrupted runs
-- first.
CREATE PROCEDURE customer_analytics.run_due_refreshes()
    LANGUAGE plpgsql
    AS $$
DECLARE
    until timestamptz := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) interval '5 seconds';
    claim record;
    failure record;
    problem record;
    err_message text;
    passed text[] := '{}';
    failed text[] := '{}';
    cancelled boolean := false;
BEGIN
    PERFORM customer_analytics._dispatcher_heartbeat();
    PERFORM customer_analytics._record_interrupted_runs();
    COMMIT;
    LOOP
        SELECT * INTO claim FROM customer_analytics._claim_due_refresh(until, passed) d;
        EXIT WHEN claim.kind IS NULL;
        passed := pg_catalog.array_append(passed, claim.kind OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) claim.name);
        COMMIT;
        err_message := NULL;
        BEGIN
            IF claim.claimed THEN
                problem := customer_analytics._dispatch_problem(claim.kind, claim.name, claim.owner);
                IF problem.err_state IS NULL THEN
                    failure := customer_analytics._refresh_recording_failure(claim.kind, claim.name);
                    err_message := failure.err_message;
                    cancelled := failure.err_state OPERATOR(pg_catalog.=) '57014';
                ELSE
                    PERFORM customer_analytics._skip_schedule(claim.kind, claim.name, claim.owner,
                                                              problem.err_state, problem.err_message);
                    err_message := problem.err_message;
                END IF;
            ELSIF claim.problem IS NOT NULL THEN
                -- its claim failed: recorded, not claimed again by this call
                err_message := claim.problem;
                PERFORM customer_analytics._record_dispatch_failure(claim.kind, claim.name, claim.owner,
                                                                    pg_catalog.clock_timestamp(), claim.problem);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            -- (recording failed: said in the error this raises at the end)
            GET STACKED DIAGNOSTICS err_message = MESSAGE_TEXT;
        END;
        IF claim.claimed THEN
            PERFORM customer_analytics._claim_clear(claim.kind, claim.name);
        END IF;
        IF err_message IS NOT NULL THEN
            failed := pg_catalog.array_append(failed, pg_catalog.format('%s "%s": %s', claim.kind, claim.name, err_message));
        END IF;
        COMMIT;
        IF claim.claimed THEN
            PERFORM customer_analytics._claim_unlock(claim.kind, claim.name);
        END IF;
        -- canceled (or its statement_timeout): recorded, and no more runs
        EXIT WHEN cancelled;
    END LOOP;
    IF pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'scheduled refresh failed: %', pg_catalog.array_to_string(failed, '; ')
            USING ERRCODE = 'external_routine_exception',
                  HINT = 'The failures are recorded: customer_analytics.list_campaigns() and list_segmentations() show the last status, '
                         'customer_analytics.refresh_history every run.';
    END IF;
END $$;

COMMENT ON PROCEDURE customer_analytics.run_due_refreshes() IS 'The dispatcher: CALL customer_analytics.run_due_refreshes() every minute (pg_cron: see dispatcher_command()) runs the caller''s scheduled refreshes that are due, each in its own transaction after committing its claim, records every outcome (a schedule it cannot run and an earlier run that was interrupted too) and fails if any failed';

-- What a pg_cron job runs.  A procedure, called with CALL outside a
-- transaction block (as pg_cron does), so that every run it starts ends in
-- refresh_history: it records interrupted runs of the caller (as the
-- dispatcher does), then commits its claim of the run (the run's start,
-- _claim_scheduled_run) before the refresh; on failure (a statement_timeout
-- too) it rolls the work back, with any foreign server's transaction (a
-- shard that died mid-refresh leaves one that cannot commit), records the
-- failure in a transaction of its own and commits it, then raises the
-- error again: the job then fails in cron.job_run_details and the failure
-- stays in refresh_history.  A run that ends otherwise (its process killed,
-- its COMMIT failing) leaves its claim: list_*() show it as interrupted,
-- the next run records it.  No SET clause (a procedure with one cannot
-- COMMIT); the work is in the functions.
CREATE PROCEDURE customer_analytics.run_scheduled_refresh(IN kind text, IN name text)
    LANGUAGE plpgsql
    AS $$
DECLARE
    claimed boolean;
    started timestamptz;
    failure record;
    phases jsonb;
BEGIN
    PERFORM customer_analytics._record_interrupted_runs();
    claimed := customer_analytics._claim_scheduled_run(kind, name);
    COMMIT;
    started := pg_catalog.clock_timestamp();
    failure := customer_analytics._refresh_or_error(kind, name);
    IF failure.err_state IS NOT NULL THEN
        phases := customer_analytics._progress_phases();   -- the ROLLBACK forgets them
        ROLLBACK;
        PERFORM customer_analytics._record_refresh_failure(kind, name, started,
                                                           failure.err_state OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) failure.err_message,
                                                           phases);
    END IF;
    IF claimed THEN
        PERFORM customer_analytics._claim_clear(kind, name);
    END IF;
    COMMIT;
    IF claimed THEN
        PERFORM customer_analytics._claim_unlock(kind, name);
    END IF;
    IF failure.err_state IS NOT NULL THEN
        RAISE EXCEPTION 'scheduled refresh of % "%" failed: %', kind, name, failure.err_message
            USING ERRCODE = failure.err_state,
                  HINT = 'The failure is recorded: customer_analytics.list_' || kind || 's() shows the last status, '
                         'customer_analytics.refresh_history every run.';
    END IF;
END $$;

COMMENT ON PROCEDURE customer_analytics.run_scheduled_refresh(IN kind text, IN name text) IS 'What scheduled refreshes run: CALL customer_analytics.run_scheduled_refresh(''campaign'' or ''segmentation'', name) refreshes and records the outcome, a failure included (it commits its claim of the run first, rolls a failed refresh back, commits the failure''s record, then raises the error again; a run killed before it ends shows as interrupted)';

-- Schedule refresh_campaign() with pg_cron (cron expression).
CREATE FUNCTION customer_analytics.schedule_campaign_refresh(campaign text, schedule text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    RETURN customer_analytics._schedule_refresh('campaign', c.name, schedule,
        format('SELECT customer_analytics.refresh_campaign(%L)', c.name));
END $$;

COMMENT ON FUNCTION customer_analytics.schedule_campaign_refresh(campaign text, schedule text) IS 'Schedule refresh_campaign() with pg_cron (cron expression); scheduling again replaces the schedule';

-- Schedule refresh_segmentation() with pg_cron (cron expression).
CREATE FUNCTION customer_analytics.schedule_segmentation_refresh(segmentation text, schedule text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    RETURN customer_analytics._schedule_refresh('segmentation', s.name, schedule,
        format('SELECT customer_analytics.refresh_segmentation(%L)', s.name));
END $$;

COMMENT ON FUNCTION customer_analytics.schedule_segmentation_refresh(segmentation text, schedule text) IS 'Schedule refresh_segmentation() with pg_cron (cron expression); scheduling again replaces the schedule';

-- Remove a campaign's schedule (and its pg_cron job, when it is the
-- campaign's own).
CREATE FUNCTION customer_analytics.unschedule_campaign_refresh(campaign text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign(campaign);
BEGIN
    PERFORM customer_analytics._unschedule_refresh('campaign', c.name);
END $$;

COMMENT ON FUNCTION customer_analytics.unschedule_campaign_refresh(campaign text) IS 'Remove a campaign''s refresh schedule, and its pg_cron job when the job is the campaign''s own';

-- Remove a segmentation's schedule (and its pg_cron job, when it is the
-- segmentation's own).
CREATE FUNCTION customer_analytics.unschedule_segmentation_refresh(segmentation text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
DECLARE
    s customer_analytics.segmentations := customer_analytics._segmentation(segmentation);
BEGIN
    PERFORM customer_analytics._unschedule_refresh('segmentation', s.name);
END $$;

COMMENT ON FUNCTION customer_analytics.unschedule_segmentation_refresh(segmentation text) IS 'Remove a segmentation''s refresh schedule, and its pg_cron job when the job is the segmentation''s own';
