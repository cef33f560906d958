#!/usr/bin/env bash
# test/pg_cron_scheduled.sh: a real scheduled refresh through pg_cron, and a
# failed one visible in list_campaigns() (issue 13, item 3).  Run by
# scripts/test.sh against its cluster, which preloads pg_cron with
# cron.database_name = postgres and cron.use_background_workers = on.
#
# In database postgres: a small ERP fixture, the extensions, a LOGIN role
# ca_cron_analyst owning a campaign, its refresh scheduled every minute with
# schedule_campaign_refresh (as the role: the job runs as it).  The first
# run succeeds; then the role loses SELECT on the order lines, and the next
# run fails: pg_cron's own cron.job_run_details says failed, and
# list_campaigns() shows last_status failed with the error, as the role and
# as another role.  Then, in another database (ca_cron_elsewhere), a
# schedule goes to the dispatcher, which pg_cron runs there once the command
# dispatcher_command() prints has been run in database postgres; DROP
# EXTENSION there leaves the dispatcher job a no-op and names it.  pg_cron
# 1.4 schedules by the minute, so this waits up to about five minutes.
# Prints "ok - ..." / "not ok - ..." lines.
set -uo pipefail
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
q()  { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = error" -c "$1"; }
qa() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres -U ca_cron_analyst -c "SET client_min_messages = error" -c "$1"; }

cleanup() {
    q "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'customer_analytics refresh %'" >/dev/null 2>&1
    q "DROP SCHEMA IF EXISTS cron_bi, cron_src CASCADE; DROP EXTENSION IF EXISTS customer_analytics CASCADE; DROP EXTENSION IF EXISTS pg_cron" >/dev/null 2>&1
    q "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'customer_analytics dispatcher %'" >/dev/null 2>&1
    q "DROP DATABASE IF EXISTS ca_cron_elsewhere" >/dev/null 2>&1
    q "DROP ROLE IF EXISTS ca_cron_analyst; DROP ROLE IF EXISTS ca_cron_other" >/dev/null 2>&1
}
trap cleanup EXIT

# the ERP fixture (and the analyst's view schema), in the database psql -d names
FIXTURE="
   CREATE SCHEMA cron_src; CREATE SCHEMA cron_bi AUTHORIZATION ca_cron_analyst;
   CREATE TABLE cron_src.customers (customer_code varchar(12) PRIMARY KEY, trade_name text, delivery_route varchar(4),
       shipping_address text, closure_date varchar(8), csm varchar(8));
   CREATE TABLE cron_src.sales_orders (order_type varchar(4), order_number varchar(12), customer_code varchar(12),
       delivery_route varchar(4), order_date varchar(8), confirmed_code char(1), PRIMARY KEY (order_type, order_number));
   CREATE TABLE cron_src.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
       product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2), PRIMARY KEY (order_type, order_number, line_no));
   INSERT INTO cron_src.customers SELECT lpad(c::text, 4, '0'), 'C' || c, 'K1', 'addr', NULL, '002' FROM generate_series(1, 20) c;
   INSERT INTO cron_src.sales_orders SELECT 'SO', (c * 10 + o)::text, lpad(c::text, 4, '0'), 'K1',
          to_char(date '2025-09-20' + o * 20, 'YYYYMMDD'), 'Y' FROM generate_series(1, 20) c, generate_series(1, 4) o;
   INSERT INTO cron_src.sales_order_lines SELECT 'SO', (c * 10 + o)::text, 1, 'P1', 1, 200 * c + o FROM generate_series(1, 20) c, generate_series(1, 4) o;
   GRANT USAGE ON SCHEMA cron_src TO ca_cron_analyst;
   GRANT SELECT ON ALL TABLES IN SCHEMA cron_src TO ca_cron_analyst;"

q "CREATE EXTENSION IF NOT EXISTS pg_cron; CREATE EXTENSION IF NOT EXISTS customer_analytics;
   CREATE ROLE ca_cron_analyst LOGIN; CREATE ROLE ca_cron_other LOGIN;
   GRANT USAGE ON SCHEMA cron TO ca_cron_analyst;
   GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_cron_analyst;
   $FIXTURE" \
    || { not_ok "fixture, pg_cron and the extension in database postgres"; finish; }
# (pg_cron's launcher running before the job is written: see wait_run)
for _ in $(seq 1 60); do
    [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'")" = 1 ] && break
    sleep 0.5
done
qa "SELECT customer_analytics.create_campaign('cronc', 'cron_bi', source_schema => 'cron_src', readers => '{ca_cron_other}')" >/dev/null \
    && qa "SELECT customer_analytics.schedule_campaign_refresh('cronc', '* * * * *')" >/dev/null \
    || { not_ok "campaign created and scheduled by ca_cron_analyst"; finish; }
ok "campaign cronc created and its refresh scheduled every minute by ca_cron_analyst"
check "the job runs as the campaign's owner" "$(q "SELECT username FROM cron.job WHERE jobname = 'customer_analytics refresh campaign cronc'")" "ca_cron_analyst"

# wait_run N: until the job has N finished runs (at most ~240 s: the
# machine is busy with the other tests meanwhile); on a timeout, print what
# pg_cron and the server were doing
wait_run() {
    for i in $(seq 1 480); do
        [ "$(q "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                 WHERE j.jobname = 'customer_analytics refresh campaign cronc' AND d.status IN ('succeeded', 'failed')")" -ge "$1" ] && return 0
        # pg_cron's launcher can miss a job written while it was loading
        # its job list (the job then never runs until cron.job changes
        # again): past 150 s with no run, rewrite the job's row (same
        # schedule) so the launcher reloads, and say so
        if [ "$i" = 300 ]; then
            echo "#   no run within 150 s: cron.alter_job (same schedule) to have pg_cron reload its jobs"
            q "SELECT cron.alter_job(jobid, schedule => schedule) FROM cron.job
                WHERE jobname = 'customer_analytics refresh campaign cronc'" >/dev/null
        fi
        sleep 0.5
    done
    q "SELECT '#   run: ' || d.runid || ' ' || d.status || ' ' || coalesce(d.return_message, '') FROM cron.job_run_details d
        UNION ALL SELECT '#   backend: ' || coalesce(backend_type, '') || ' ' || coalesce(state, '') || ' '
                         || coalesce(wait_event_type || ':' || wait_event, '') || ' ' || left(coalesce(query, ''), 80)
          FROM pg_stat_activity WHERE datname = 'postgres' AND pid <> pg_backend_pid()"
    return 1
}
if wait_run 1; then ok "a scheduled run finished"; else not_ok "a scheduled run finished within four minutes"; finish; fi
check "pg_cron says the first run succeeded" \
    "$(q "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'customer_analytics refresh campaign cronc' ORDER BY d.runid LIMIT 1")" "succeeded"
check "list_campaigns() as the owner: last run succeeded, scheduled" \
    "$(qa "SELECT last_status || ' ' || schedule FROM customer_analytics.list_campaigns() WHERE name = 'cronc'")" "succeeded * * * * *"

q "REVOKE SELECT ON cron_src.sales_order_lines FROM ca_cron_analyst"
if wait_run 2; then ok "a second scheduled run finished"; else not_ok "a second scheduled run finished within four minutes"; finish; fi
check "pg_cron says the second run failed" \
    "$(q "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'customer_analytics refresh campaign cronc' ORDER BY d.runid DESC LIMIT 1")" "failed"
check "list_campaigns() as the owner shows the failure and its error" \
    "$(qa "SELECT last_status || ' | ' || (last_error LIKE '42501: permission denied for table sales_order_lines%') || ' | ' || (last_success_at IS NOT NULL) FROM customer_analytics.list_campaigns() WHERE name = 'cronc'")" \
    "failed | true | true"
check "another role (no USAGE on cron) sees the failure too" \
    "$("$PG_BIN/psql" -X -q -At -d postgres -U ca_cron_other -c "SELECT last_status FROM customer_analytics.list_campaigns() WHERE name = 'cronc'")" "failed"
check "the readers' view still holds the last good rows" \
    "$("$PG_BIN/psql" -X -q -At -d postgres -U ca_cron_other -c "SELECT count(*) > 0 FROM cron_bi.cronc_targets")" "t"
qa "SELECT customer_analytics.drop_campaign('cronc')" >/dev/null
check "drop_campaign removes the job" "$(q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'customer_analytics refresh %'")" "0"
# dropping the extension takes its jobs with it; a DROP rolled back keeps them
q "GRANT SELECT ON cron_src.sales_order_lines TO ca_cron_analyst" >/dev/null
qa "SELECT customer_analytics.create_campaign('cronc2', 'cron_bi', source_schema => 'cron_src')" >/dev/null
qa "SELECT customer_analytics.schedule_campaign_refresh('cronc2', '0 6 * * *')" >/dev/null
q "BEGIN; DROP EXTENSION customer_analytics CASCADE; ROLLBACK;" >/dev/null 2>&1
check "a DROP EXTENSION rolled back keeps the job" "$(q "SELECT count(*) FROM cron.job WHERE jobname = 'customer_analytics refresh campaign cronc2'")" "1"
q "DROP EXTENSION customer_analytics CASCADE" >/dev/null 2>&1
check "DROP EXTENSION customer_analytics leaves no pg_cron job behind" \
    "$(q "SELECT count(*) FROM cron.job WHERE jobname LIKE 'customer_analytics refresh %'")" "0"

# Scheduling from a database pg_cron does not run in.  In database
# ca_cron_elsewhere the analyst's schedule goes to the dispatcher; the
# command dispatcher_command() prints, run once by the superuser in
# database postgres, has pg_cron run run_due_refreshes() there every minute
# as the analyst, which refreshes the campaign when it is due.
qe()  { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d ca_cron_elsewhere -c "SET client_min_messages = error" -c "$1"; }
qea() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d ca_cron_elsewhere -U ca_cron_analyst -c "SET client_min_messages = warning" -c "$1"; }
q "CREATE DATABASE ca_cron_elsewhere" && qe "CREATE EXTENSION customer_analytics; GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_cron_analyst; $FIXTURE" \
    && qea "SELECT customer_analytics.create_campaign('away', 'cron_bi', source_schema => 'cron_src', readers => '{ca_cron_other}')" >/dev/null \
    || { not_ok "database ca_cron_elsewhere: the extension, the fixture and a campaign"; finish; }
warning=$(qea "SELECT customer_analytics.schedule_campaign_refresh('away', '* * * * *')" 2>&1 >/dev/null)
check "scheduling there warns that no dispatcher runs yet, with the command to start one" \
    "$(grep -c "will not be refreshed until a dispatcher runs as role ca_cron_analyst in database ca_cron_elsewhere" <<<"$warning") $(grep -c "SELECT cron.schedule_in_database(" <<<"$warning")" "1 1"
command=$(qea "SELECT customer_analytics.dispatcher_command()")
q "$command" >/dev/null || not_ok "the dispatcher command runs in database postgres"
check "pg_cron has the dispatcher job, for database ca_cron_elsewhere as the analyst" \
    "$(q "SELECT database || ' ' || username FROM cron.job WHERE jobname = 'customer_analytics dispatcher ca_cron_elsewhere ca_cron_analyst'")" \
    "ca_cron_elsewhere ca_cron_analyst"
# wait_elsewhere N: until the dispatcher job has N finished runs (at most ~130 s)
wait_elsewhere() {
    for _ in $(seq 1 260); do
        [ "$(q "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                 WHERE j.jobname = 'customer_analytics dispatcher ca_cron_elsewhere ca_cron_analyst'
                   AND d.status IN ('succeeded', 'failed')")" -ge "$1" ] && return 0
        sleep 0.5
    done
    return 1
}
if wait_elsewhere 1; then ok "the dispatcher ran"; else not_ok "the dispatcher ran within two minutes"; finish; fi
check "pg_cron says the dispatcher's run succeeded" \
    "$(q "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
           WHERE j.jobname = 'customer_analytics dispatcher ca_cron_elsewhere ca_cron_analyst' ORDER BY d.runid LIMIT 1")" "succeeded"
check "the campaign was refreshed there by the schedule, as the analyst" \
    "$(qe "SELECT via || ' ' || succeeded || ' ' || owner FROM customer_analytics.refresh_history WHERE name = 'away' AND via = 'scheduled'")" \
    "scheduled true ca_cron_analyst"
check "a reader there sees the schedule, its runner, a next run ahead and the success (no right on cron)" \
    "$("$PG_BIN/psql" -X -q -At -d ca_cron_elsewhere -U ca_cron_other -c "SELECT schedule || ' | ' || schedule_runner || ' | ' || (next_run > now()) || ' | ' || last_status FROM customer_analytics.list_campaigns()")" \
    "* * * * * | dispatcher (run_due_refreshes as ca_cron_analyst) | true | succeeded"
notice=$("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d ca_cron_elsewhere -c "DROP EXTENSION customer_analytics CASCADE" 2>&1)
check "DROP EXTENSION there names the dispatcher job to unschedule in pg_cron's database" \
    "$(grep -c "SELECT cron.unschedule('customer_analytics dispatcher ca_cron_elsewhere ca_cron_analyst');" <<<"$notice")" "1"
# the extension's schema outlives DROP EXTENSION (it is not the
# extension's member); once the DBA drops it too, another role with CREATE
# on that database plants a schema of the same name with a procedure of the
# same name: the left-behind job, which runs as the analyst, must not call it
qe "DROP SCHEMA customer_analytics; GRANT CREATE ON DATABASE ca_cron_elsewhere TO ca_cron_other" >/dev/null
"$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d ca_cron_elsewhere -U ca_cron_other -c "
    CREATE SCHEMA customer_analytics; GRANT USAGE ON SCHEMA customer_analytics TO PUBLIC;
    CREATE TABLE customer_analytics.planted (ran_as name); GRANT INSERT ON customer_analytics.planted TO PUBLIC;
    CREATE PROCEDURE customer_analytics.run_due_refreshes() LANGUAGE sql
        AS 'INSERT INTO customer_analytics.planted VALUES (current_user)';" \
    || not_ok "another role planted a look-alike procedure"
runs=$(q "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
           WHERE j.jobname = 'customer_analytics dispatcher ca_cron_elsewhere ca_cron_analyst' AND d.status IN ('succeeded', 'failed')")
if wait_elsewhere $((runs + 1)); then
    check "after the drop the dispatcher job does nothing, and succeeds" \
        "$(q "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
               WHERE j.jobname = 'customer_analytics dispatcher ca_cron_elsewhere ca_cron_analyst' ORDER BY d.runid DESC LIMIT 1")" "succeeded"
    check "it did not run the look-alike procedure another role planted" \
        "$(qe "SELECT count(*) FROM customer_analytics.planted")" "0"
else
    not_ok "the dispatcher ran again within two minutes"
fi
finish
