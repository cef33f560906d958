#!/usr/bin/env bash
# test/dump_restore.sh: a campaign survives pg_dump -Fc / pg_restore into a
# fresh database (run by scripts/test.sh against its throwaway cluster).
#
# Connection settings come from PGHOST/PGPORT/PGUSER (a superuser).  Creates
# the databases ca_dump_src and ca_dump_restored, loads the demo data at a
# small scale, creates the extension, a reader role and a campaign, refreshes
# it, dumps, restores, and checks in the restored database:
#   - pg_restore exits 0 and reports no errors or warnings;
#   - the catalog row of customer_analytics.campaigns is there, unchanged;
#   - both materialized views exist, are populated and hold the same rows as
#     in the original (md5 over the ordered rows), with their unique indexes,
#     comments and the reader's SELECT;
#   - refresh_campaign() works there and leaves the same rows;
#   - new orders in the restored source tables change the numbers after a
#     refresh (and only there: the original database is untouched).
# The original database also holds a non-superuser analyst's campaign,
# segmentation and schedules, and a rollup.  The same dump, restored as
# docs/operations.md says (roles first, then pg_restore) into a new cluster
# on another port (DUMP_RESTORE_PORT, default 5472, socket in a temp dir),
# must bring back:
#   - pg_restore exit 0: the analyst's views populated (REFRESH runs as the
#     view's owner with row_security off; the catalogs have row-level
#     security), with the original rows;
#   - the rollup disabled, with a reason that says it was restored and what
#     to run; rebuild_rollup() as the DBA makes it current;
#   - the analyst's schedules, and their next run (run_scheduled_refresh)
#     refreshing the restored database, recorded in its refresh_history;
#   - a view left unpopulated (WITH NO DATA) refreshed by the default
#     refresh_campaign() / refresh_segmentation() (CONCURRENTLY would fail),
#     the history's mode saying so.
# pg_cron jobs: a database where pg_cron runs (cron.database_name), on a
# cluster of its own on port DUMP_RESTORE_PORT + 1, with the analyst's
# campaign scheduled through pg_cron, restored into the new cluster: the
# restored job still names the original server's port, list_campaigns()
# says so, and rescheduling makes the job this server's.
# Prints one "ok - ..." / "not ok - ..." line per check and "N passed,
# M failed"; exits 1 on any failure.  Drops the databases at the end, and the
# role if this script created it.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
SRC=ca_dump_src
DST=ca_dump_restored
CAMPAIGN=dr_promo
READER=dr_reader
ANALYST=dr_analyst
AN_CAMPAIGN=dr_an_promo
AN_SEG=dr_an_seg
NEW_PORT=${DUMP_RESTORE_PORT:-5472}
SCALE=${DUMP_RESTORE_SCALE:-0.05}
WORK=$(mktemp -d /tmp/ca_dump_restore.XXXXXX)
created_role=0
created_analyst=0
chown postgres: "$WORK"

psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
# q DB SQL: one value (or rows joined by |), errors to stderr
q() { psql_ -At -d "$1" -c "SET client_min_messages = warning" -c "$2"; }

cleanup() {
    "$PG_BIN/dropdb" --if-exists --force "$SRC" 2>/dev/null
    "$PG_BIN/dropdb" --if-exists --force "$DST" 2>/dev/null
    [ "$created_role" -eq 1 ] && psql_ -d postgres -c "DROP ROLE IF EXISTS $READER" 2>/dev/null
    [ "$created_analyst" -eq 1 ] && psql_ -d postgres -c "DROP ROLE IF EXISTS $ANALYST" 2>/dev/null
    stop_clusters restored origin
}
trap cleanup EXIT

# the rows of a view as one checksum, ordered by its unique key
rows_md5() { q "$1" "SELECT count(*) || ' rows, md5 ' || md5(COALESCE(string_agg(v::text, E'\n' ORDER BY v.customer_code), '')) FROM $2 v"; }

# --- the original database --------------------------------------------------
"$PG_BIN/dropdb" --if-exists --force "$SRC" 2>/dev/null
"$PG_BIN/dropdb" --if-exists --force "$DST" 2>/dev/null
if [ -z "$(q postgres "SELECT 1 FROM pg_roles WHERE rolname = '$READER'")" ]; then
    psql_ -d postgres -c "CREATE ROLE $READER" && created_role=1
fi
if [ -z "$(q postgres "SELECT 1 FROM pg_roles WHERE rolname = '$ANALYST'")" ]; then
    psql_ -d postgres -c "CREATE ROLE $ANALYST LOGIN" && created_analyst=1
fi
if "$PG_BIN/createdb" "$SRC" &&
   (cd "$ROOT" && psql_ -v scale="$SCALE" -f test/demo_data.sql -d "$SRC" >"$WORK/load.out" 2>&1) &&
   psql_ -d "$SRC" >"$WORK/setup.out" 2>&1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION customer_analytics;
CREATE SCHEMA bi;
GRANT USAGE ON SCHEMA bi TO $READER;
SELECT customer_analytics.create_campaign('$CAMPAIGN', 'bi', readers => '{$READER}');
SELECT customer_analytics.refresh_campaign('$CAMPAIGN');
-- the DBA's rollup, and an analyst with the grants of the README's role table
SELECT state FROM customer_analytics.enable_rollup('cosmos_sync', readers => '{$ANALYST}');
GRANT USAGE ON SCHEMA cosmos_sync TO $ANALYST;
GRANT SELECT ON ALL TABLES IN SCHEMA cosmos_sync TO $ANALYST;
CREATE SCHEMA dr_an;
GRANT USAGE, CREATE ON SCHEMA dr_an TO $ANALYST;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO $ANALYST;
SET ROLE $ANALYST;
SELECT customer_analytics.create_campaign('$AN_CAMPAIGN', 'dr_an');
SELECT customer_analytics.launch_campaign('$AN_CAMPAIGN', holdout_share => 0.2, launched_on => '2025-12-01',
                                          seed => 'dr', stratify_by => '{}');
SELECT customer_analytics.end_campaign('$AN_CAMPAIGN', '2026-02-01');
SELECT customer_analytics.create_segmentation('$AN_SEG', 'dr_an', k => 3);
SELECT customer_analytics.schedule_campaign_refresh('$AN_CAMPAIGN', '*/30 * * * *');
SELECT customer_analytics.schedule_segmentation_refresh('$AN_SEG', '0 6 * * *');
RESET ROLE;
SQL
then
    ok "database $SRC: demo data (scale $SCALE), extension, campaign $CAMPAIGN; $ANALYST's campaign $AN_CAMPAIGN, segmentation $AN_SEG, their schedules; a rollup"
else
    not_ok "database $SRC: demo data (scale $SCALE), extension, campaign $CAMPAIGN; $ANALYST's campaign $AN_CAMPAIGN, segmentation $AN_SEG, their schedules; a rollup" \
        "$(cat "$WORK"/*.out 2>/dev/null | tail -5)"
    finish
fi

catalog_sql="SELECT c::text FROM customer_analytics.campaigns c ORDER BY name"
src_catalog=$(q "$SRC" "$catalog_sql")
src_targets=$(rows_md5 "$SRC" "bi.${CAMPAIGN}_targets")
src_monthly=$(rows_md5 "$SRC" "bi.${CAMPAIGN}_monthly")
src_target_count=$(q "$SRC" "SELECT count(*) FROM bi.${CAMPAIGN}_targets")
if [ "${src_target_count:-0}" -gt 0 ]; then
    ok "$SRC: $src_target_count targets before the dump"
else
    not_ok "$SRC: the campaign has targets before the dump" "got '$src_target_count'"
fi

# --- dump and restore -------------------------------------------------------
if "$PG_BIN/pg_dump" -Fc -f "$WORK/src.dump" "$SRC" 2>"$WORK/dump.err" && [ ! -s "$WORK/dump.err" ]; then
    ok "pg_dump -Fc $SRC: exit 0, nothing on stderr"
else
    not_ok "pg_dump -Fc $SRC: exit 0, nothing on stderr" "$(head -5 "$WORK/dump.err")"
fi
"$PG_BIN/createdb" "$DST"
"$PG_BIN/pg_restore" -d "$DST" "$WORK/src.dump" >"$WORK/restore.out" 2>&1
status=$?
if [ "$status" -eq 0 ] && [ ! -s "$WORK/restore.out" ]; then
    ok "pg_restore into fresh database $DST: exit 0, no errors or warnings"
else
    not_ok "pg_restore into fresh database $DST: exit 0, no errors or warnings" \
        "exit $status; $(head -10 "$WORK/restore.out" | tr '\n' ' ')"
fi

# --- the restored database --------------------------------------------------
check "$DST: catalog row of $CAMPAIGN restored unchanged" "$(q "$DST" "$catalog_sql")" "$src_catalog"
for v in targets monthly; do
    check "$DST: bi.${CAMPAIGN}_$v is a populated materialized view" \
        "$(q "$DST" "SELECT relkind::text || ' ' || relispopulated FROM pg_class WHERE oid = to_regclass('bi.${CAMPAIGN}_$v')")" "m true"
done
check "$DST: bi.${CAMPAIGN}_targets holds the original rows" "$(rows_md5 "$DST" "bi.${CAMPAIGN}_targets")" "$src_targets"
check "$DST: bi.${CAMPAIGN}_monthly holds the original rows" "$(rows_md5 "$DST" "bi.${CAMPAIGN}_monthly")" "$src_monthly"
# what a BI tool relies on: unique keys, comments, the reader's grant
extras_sql="SELECT string_agg(format('%s: %s unique, %s comments, reader %s', c.relname,
        (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique),
        (SELECT count(*) FROM pg_description d WHERE d.objoid = c.oid AND d.classoid = 'pg_class'::regclass),
        has_table_privilege('$READER', c.oid, 'SELECT')), '; ' ORDER BY c.relname)
      FROM pg_class c WHERE c.relnamespace = 'bi'::regnamespace AND c.relkind = 'm'"
check "$DST: unique indexes, comments and the reader's SELECT restored" \
    "$(q "$DST" "$extras_sql")" "$(q "$SRC" "$extras_sql")"

refresh_sql="SELECT target_rows || ' targets, ' || monthly_rows || ' monthly rows' FROM customer_analytics.refresh_campaign('$CAMPAIGN')"
check "$DST: refresh_campaign('$CAMPAIGN') works" \
    "$(q "$DST" "$refresh_sql" 2>&1)" "$src_target_count targets, $src_target_count monthly rows"
check "$DST: the refresh leaves the same targets" "$(rows_md5 "$DST" "bi.${CAMPAIGN}_targets")" "$src_targets"
check "$DST: the refresh leaves the same monthly sheet" "$(rows_md5 "$DST" "bi.${CAMPAIGN}_monthly")" "$src_monthly"

# New orders in the restored tables: a December order of 12345 for the first
# low-ticket target (a big order leaves its low tickets as they were), and
# three October orders of 1000 for the first customer on route K1 who is not
# a target yet (three low tickets and 3000 of spend make it one).
first=$(q "$DST" "SELECT customer_code FROM bi.${CAMPAIGN}_targets WHERE is_low_ticket ORDER BY customer_code LIMIT 1")
newcomer=$(q "$DST" "SELECT customer_code FROM cosmos_sync.customers c WHERE delivery_route = 'K1'
    AND NOT EXISTS (SELECT FROM bi.${CAMPAIGN}_targets t WHERE t.customer_code = c.customer_code)
    ORDER BY customer_code LIMIT 1")
# count | first's spend | first's December | newcomer a target? | its low tickets >= 3 and October >= 3000
numbers_sql="SELECT (SELECT count(*) FROM bi.${CAMPAIGN}_targets),
       (SELECT total_spend FROM bi.${CAMPAIGN}_targets WHERE customer_code = '$first'),
       (SELECT rev_2025_12 FROM bi.${CAMPAIGN}_monthly WHERE customer_code = '$first'),
       EXISTS (SELECT FROM bi.${CAMPAIGN}_targets WHERE customer_code = '$newcomer'),
       EXISTS (SELECT FROM bi.${CAMPAIGN}_targets t JOIN bi.${CAMPAIGN}_monthly m USING (customer_code)
                WHERE customer_code = '$newcomer' AND t.low_ticket_count >= 3 AND m.rev_2025_10 >= 3000)"
before=$(q "$DST" "$numbers_sql")
insert_out=$(psql_ -At -d "$DST" 2>&1 <<SQL
SET client_min_messages = warning;
BEGIN;
CREATE TEMP TABLE new_orders ON COMMIT DROP AS
SELECT 'DR000001' AS order_number, '$first' AS customer_code, '20251215' AS order_date, 12345 AS amount
UNION ALL
SELECT 'DR00000' || (1 + k), '$newcomer', '202510' || lpad((5 * k)::text, 2, '0'), 1000
  FROM generate_series(1, 3) k;
INSERT INTO cosmos_sync.sales_orders (order_type, order_number, customer_code, delivery_route, order_date, confirmed_code)
SELECT 'SO', n.order_number, n.customer_code, c.delivery_route, n.order_date, 'Y'
  FROM new_orders n JOIN cosmos_sync.customers c USING (customer_code);
INSERT INTO cosmos_sync.sales_order_lines (order_type, order_number, line_no, product_code, quantity, pretax_subtotal)
SELECT 'SO', order_number, 1, 'FS999999', 1, amount FROM new_orders;
SELECT count(*) FROM new_orders;
COMMIT;
SQL
)
check "$DST: 4 new confirmed orders for $first and $newcomer inserted into the restored source tables" "$insert_out" "4"
check "$DST: the views do not change before a refresh" "$(q "$DST" "$numbers_sql")" "$before"
q "$DST" "$refresh_sql" >/dev/null 2>"$WORK/refresh.err" || not_ok "$DST: refresh after the inserts" "$(cat "$WORK/refresh.err")"
IFS='|' read -r n_before spend_before dec_before _ _ <<<"$before"
expected_after=$(q "$DST" "SELECT $n_before + 1, ${spend_before:-0} + 12345, ${dec_before:-0} + 12345, true, true")
check "$DST: after a refresh the new orders show ($newcomer becomes a target; $first's spend and December +12345)" \
    "$(q "$DST" "$numbers_sql")" "$expected_after"
check "$DST: the catalog records the refresh" \
    "$(q "$DST" "SELECT target_rows FROM customer_analytics.campaigns WHERE name = '$CAMPAIGN'")" "$((src_target_count + 1))"
check "$SRC: the original database is untouched" "$(rows_md5 "$SRC" "bi.${CAMPAIGN}_targets")" "$src_targets"


# --- the analyst's definitions, in a new cluster on another port -------------
# What docs/operations.md says to run: the roles first (pg_dump does not
# carry them), then pg_restore; then rebuild_rollup as the rollup's owner.
an_views="'${AN_CAMPAIGN}_targets', '${AN_CAMPAIGN}_monthly', '${AN_CAMPAIGN}_monthly_long', '${AN_SEG}_model', '${AN_SEG}_members', '${AN_SEG}_profiles', '${AN_SEG}_elbow', '${AN_CAMPAIGN}_contact_list', '${AN_CAMPAIGN}_response', '${AN_CAMPAIGN}_lift', '${AN_CAMPAIGN}_response_monthly'"
populated_sql="SELECT string_agg(relname || ' ' || relispopulated, ', ' ORDER BY relname) FROM pg_class
                WHERE relnamespace = 'dr_an'::regnamespace AND relkind = 'm' AND relname IN ($an_views)"
all_populated=$(q "$SRC" "SELECT string_agg(v || ' true', ', ' ORDER BY v) FROM unnest(ARRAY[$an_views]) v")
check "$SRC: the analyst's views are populated" "$(q "$SRC" "$populated_sql")" "$all_populated"
check "$DST (same cluster): the analyst's views are populated" "$(q "$DST" "$populated_sql")" "$all_populated"
an_targets=$(rows_md5 "$SRC" "dr_an.${AN_CAMPAIGN}_targets")
an_members=$(rows_md5 "$SRC" "dr_an.${AN_SEG}_members")
# the analyst's launched campaign (issue 23): its frozen arms and its lift table
arms_sql="SELECT string_agg(arm || ' ' || n, ', ' ORDER BY arm) FROM (SELECT arm, count(*) n FROM customer_analytics.campaign_members GROUP BY arm) a"
an_arms=$(q "$SRC" "$arms_sql")
lift_sql="SELECT count(*) || ' rows, md5 ' || md5(COALESCE(string_agg(v::text, E'\n' ORDER BY v.metric, v.stratum), '')) FROM dr_an.${AN_CAMPAIGN}_lift v"
an_lift=$(q "$SRC" "$lift_sql")

NEW=(-h "$WORK" -p "$NEW_PORT" -U postgres)
qn() { psql_ "${NEW[@]}" -At -d "$1" -c "SET client_min_messages = warning" -c "$2"; }
# as the analyst (SET ROLE in the same session), e.g. what its schedule runs
qa() { psql_ "${NEW[@]}" -At -d "$DST" -c "SET client_min_messages = warning" -c "SET ROLE $ANALYST" "$@"; }
if start_cluster restored "$NEW_PORT" \
       "-c shared_preload_libraries=pg_cron -c cron.database_name=postgres -c cron.use_background_workers=on"; then
    ok "a new cluster on port $NEW_PORT (socket in $WORK)"
else
    not_ok "a new cluster on port $NEW_PORT" "$(tail -5 "$WORK/restored.log" 2>/dev/null)"
    finish
fi
"$PG_BIN/pg_dumpall" --roles-only >"$WORK/roles.sql" 2>"$WORK/roles.err"
# (every role of the original cluster; "role postgres already exists" is expected)
"$PG_BIN/psql" -X -q "${NEW[@]}" -d postgres -f "$WORK/roles.sql" >/dev/null 2>"$WORK/roles_load.err"
check "new cluster: pg_dumpall --roles-only brings $ANALYST and $READER (only error: postgres exists)" \
    "$(qn postgres "SELECT count(*) FROM pg_roles WHERE rolname IN ('$ANALYST', '$READER')"), $(grep -c ERROR "$WORK/roles_load.err")" "2, 1"
"$PG_BIN/createdb" "${NEW[@]}" "$DST"
"$PG_BIN/pg_restore" "${NEW[@]}" -d "$DST" "$WORK/src.dump" >"$WORK/restore_new.out" 2>&1
status=$?
if [ "$status" -eq 0 ] && [ ! -s "$WORK/restore_new.out" ]; then
    ok "pg_restore into the new cluster: exit 0, no errors or warnings"
else
    not_ok "pg_restore into the new cluster: exit 0, no errors or warnings" \
        "exit $status; $(head -10 "$WORK/restore_new.out" | tr '\n' ' ')"
fi
check "new cluster: the analyst's views are populated" "$(qn "$DST" "$populated_sql")" "$all_populated"
check "new cluster: the analyst's targets hold the original rows" \
    "$(psql_ "${NEW[@]}" -At -d "$DST" -c "SELECT count(*) || ' rows, md5 ' || md5(COALESCE(string_agg(v::text, E'\n' ORDER BY v.customer_code), '')) FROM dr_an.${AN_CAMPAIGN}_targets v")" "$an_targets"
check "new cluster: the analyst's segmentation members hold the original rows" \
    "$(psql_ "${NEW[@]}" -At -d "$DST" -c "SELECT count(*) || ' rows, md5 ' || md5(COALESCE(string_agg(v::text, E'\n' ORDER BY v.customer_code), '')) FROM dr_an.${AN_SEG}_members v")" "$an_members"
check "new cluster: the analyst's launched campaign keeps its arms ($an_arms)" "$(qn "$DST" "$arms_sql")" "$an_arms"
check "new cluster: the analyst's lift table holds the original rows" "$(qn "$DST" "$lift_sql")" "$an_lift"
check "new cluster: the analyst's schedules are restored" \
    "$(qn "$DST" "SELECT string_agg(kind || ' ' || name || ' ' || schedule || ' ' || runner || ' as ' || run_as, '; ' ORDER BY kind)
                   FROM customer_analytics.refresh_schedules")" \
    "campaign $AN_CAMPAIGN */30 * * * * dispatcher as $ANALYST; segmentation $AN_SEG 0 6 * * * dispatcher as $ANALYST"
# the rollup: its rows and its triggers were restored apart, so it waits for a rebuild, and says so
check "new cluster: the rollup is disabled, the reason says it was restored and what to run" \
    "$(qn "$DST" "SELECT state || ' | ' || reason FROM customer_analytics.list_rollups()")" \
    "disabled | the rollup is disabled (restored from a dump: its triggers were recreated after its rows were loaded; run SELECT customer_analytics.rebuild_rollup('cosmos_sync') as role postgres): customer_analytics.rebuild_rollup() makes it current"

# the schedules' next runs, as the dispatcher runs them (as the analyst)
qa -c "CALL customer_analytics.run_scheduled_refresh('campaign', '$AN_CAMPAIGN')" \
   -c "CALL customer_analytics.run_scheduled_refresh('segmentation', '$AN_SEG')" >/dev/null 2>"$WORK/scheduled.err"
check "new cluster: the next scheduled runs succeed and are recorded in its refresh_history" \
    "$(qn "$DST" "SELECT string_agg(kind || ' ' || name || ' ' || via || ' ' || succeeded, '; ' ORDER BY kind)
                   FROM customer_analytics.refresh_history")$(cat "$WORK/scheduled.err")" \
    "campaign $AN_CAMPAIGN scheduled true; segmentation $AN_SEG scheduled true"
check "new cluster: list_campaigns() shows the run" \
    "$(qn "$DST" "SELECT last_status || ' ' || schedule_runner FROM customer_analytics.list_campaigns() WHERE name = '$AN_CAMPAIGN'")" \
    "succeeded dispatcher (run_due_refreshes as $ANALYST)"
check "the original database's history has no run of them (the runs refreshed the restored database)" \
    "$(q "$SRC" "SELECT count(*) FROM customer_analytics.refresh_history WHERE via = 'scheduled'")" "0"

# the rollup rebuilt by its owner (the DBA): current, and read again
check "new cluster: rebuild_rollup('cosmos_sync') makes the rollup current" \
    "$(qn "$DST" "SELECT state FROM customer_analytics.rebuild_rollup('cosmos_sync')")|$(qn "$DST" "SELECT state || ' ' || usable_here || ' ' || COALESCE(reason, '-') FROM customer_analytics.list_rollups()")" \
    "current|current true -"
check "new cluster: the analyst's refresh after the rebuild works" \
    "$(qa -c "SELECT target_rows > 0 FROM customer_analytics.refresh_campaign('$AN_CAMPAIGN')" 2>&1)" "t"

# a view left unpopulated: the default refresh (CONCURRENTLY) cannot take it,
# so it is refreshed without, and the history says so
qa -c "REFRESH MATERIALIZED VIEW dr_an.${AN_CAMPAIGN}_monthly WITH NO DATA" >/dev/null
check "new cluster: refresh_campaign() with its defaults refreshes an unpopulated sheet" \
    "$(qa -c "SELECT target_rows > 0 FROM customer_analytics.refresh_campaign('$AN_CAMPAIGN')" 2>&1)|$(qn "$DST" "$populated_sql")" \
    "t|$all_populated"
qa -c "REFRESH MATERIALIZED VIEW dr_an.${AN_SEG}_members WITH NO DATA" >/dev/null
check "new cluster: refresh_segmentation() with its defaults refreshes unpopulated members" \
    "$(qa -c "SELECT member_rows > 0 FROM customer_analytics.refresh_segmentation('$AN_SEG')" 2>&1)|$(qn "$DST" "$populated_sql")" \
    "t|$all_populated"
# (the campaign is launched: its mode ends with its response views, recomputed in full)
check "new cluster: the history's modes say the views were refreshed without CONCURRENTLY" \
    "$(qn "$DST" "SELECT string_agg(kind || ': ' || substring(mode from 'not populated: .*'), '; ' ORDER BY kind)
                   FROM (SELECT DISTINCT ON (kind) kind, mode FROM customer_analytics.refresh_history ORDER BY kind, id DESC) h")" \
    "campaign: not populated: dr_an.${AN_CAMPAIGN}_monthly; refreshed without CONCURRENTLY); response views in full; segmentation: not populated: dr_an.${AN_SEG}_members; refreshed without CONCURRENTLY)"

# the analyst's state: restored into the extension's schema
# customer_analytics_state (not beside the views), the analyst's; the
# refreshes after an order change follow it (delta)
check "new cluster: the view schema holds views only; the state tables are the analyst's, in customer_analytics_state" \
    "$(qn "$DST" "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'dr_an'::regnamespace AND relkind NOT IN ('v', 'm', 'i'))
                  || ' ' || (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
                              WHERE relnamespace = 'customer_analytics_state'::regnamespace AND relkind = 'r'
                                AND relowner = '$ANALYST'::regrole)")" \
    "0 campaign_months_$AN_CAMPAIGN,campaign_state_$AN_CAMPAIGN,launch_months_$AN_CAMPAIGN,segment_features_$AN_SEG,segment_skus_$AN_SEG"
qn "$DST" "UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1
            WHERE (order_type, order_number) IN (SELECT order_type, order_number FROM cosmos_sync.sales_orders
                                                  ORDER BY order_date DESC, order_number LIMIT 3)" >/dev/null
qa -c "SELECT count(*) FROM customer_analytics.refresh_campaign('$AN_CAMPAIGN')" \
   -c "SELECT count(*) FROM customer_analytics.refresh_segmentation('$AN_SEG')" >/dev/null 2>"$WORK/delta.err"
check "new cluster: the analyst's refreshes after an order change follow it from the restored state (delta)" \
    "$(qn "$DST" "SELECT string_agg(kind || ' ' || split_part(mode, ' ', 1), ', ' ORDER BY kind)
                   FROM (SELECT DISTINCT ON (kind) kind, mode FROM customer_analytics.refresh_history ORDER BY kind, id DESC) h")$(cat "$WORK/delta.err")" \
    "campaign delta, segmentation delta"

# --- restored pg_cron jobs ----------------------------------------------------
CRON_DB=ca_dump_cron
ORIGIN_PORT=$((NEW_PORT + 1))
ORIGIN=(-h "$WORK" -p "$ORIGIN_PORT" -U postgres)
qo() { psql_ "${ORIGIN[@]}" -At -d "$CRON_DB" -c "SET client_min_messages = warning" "$@"; }
qc() { psql_ "${NEW[@]}" -At -d "$CRON_DB" -c "SET client_min_messages = warning" "$@"; }
cron_opts="-c shared_preload_libraries=pg_cron -c cron.database_name=$CRON_DB -c cron.use_background_workers=on"
# the new cluster again, with pg_cron in the restored database's name
as_pg "$PG_BIN/pg_ctl" -D "$WORK/restored" -m fast stop >/dev/null
if start_cluster origin "$ORIGIN_PORT" "$cron_opts" &&
   as_pg "$PG_BIN/pg_ctl" -D "$WORK/restored" -l "$WORK/restored.log" -w start \
        -o "-k $WORK -p $NEW_PORT -c listen_addresses='' -c fsync=off $cron_opts" >/dev/null &&
   { "$PG_BIN/psql" -X -q "${ORIGIN[@]}" -d postgres -f "$WORK/roles.sql" >/dev/null 2>&1; true; } &&
   "$PG_BIN/createdb" "${ORIGIN[@]}" "$CRON_DB" &&
   (cd "$ROOT" && psql_ "${ORIGIN[@]}" -v scale=0.02 -f test/demo_data.sql -d "$CRON_DB" >"$WORK/cron_load.out" 2>&1) &&
   psql_ "${ORIGIN[@]}" -d "$CRON_DB" >"$WORK/cron_setup.out" 2>&1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION customer_analytics;
CREATE EXTENSION pg_cron;
GRANT USAGE ON SCHEMA cron TO $ANALYST;
GRANT USAGE ON SCHEMA cosmos_sync TO $ANALYST;
GRANT SELECT ON ALL TABLES IN SCHEMA cosmos_sync TO $ANALYST;
CREATE SCHEMA dr_an;
GRANT USAGE, CREATE ON SCHEMA dr_an TO $ANALYST;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO $ANALYST;
SET ROLE $ANALYST;
SELECT (customer_analytics.create_campaign('$AN_CAMPAIGN', 'dr_an')).name;
SELECT customer_analytics.schedule_campaign_refresh('$AN_CAMPAIGN', '*/30 * * * *');
SQL
then
    ok "an original cluster on port $ORIGIN_PORT, pg_cron in $CRON_DB: $ANALYST's campaign scheduled through pg_cron"
else
    not_ok "an original cluster on port $ORIGIN_PORT, pg_cron in $CRON_DB: $ANALYST's campaign scheduled through pg_cron" \
        "$(cat "$WORK"/cron_*.out "$WORK/origin.log" 2>/dev/null | tail -5)"
    finish
fi
job_sql="SELECT nodeport || ' ' || database FROM cron.job WHERE jobname = 'customer_analytics refresh campaign $AN_CAMPAIGN'"
check "origin: the job connects to the origin's port" "$(qo -c "$job_sql")" "$ORIGIN_PORT $CRON_DB"
"$PG_BIN/pg_dump" "${ORIGIN[@]}" -Fc -f "$WORK/cron.dump" "$CRON_DB" 2>"$WORK/cron_dump.err"
"$PG_BIN/createdb" "${NEW[@]}" "$CRON_DB"
"$PG_BIN/pg_restore" "${NEW[@]}" -d "$CRON_DB" "$WORK/cron.dump" >"$WORK/cron_restore.out" 2>&1
status=$?
check "pg_restore of $CRON_DB (pg_cron's database) into the new cluster: exit 0, no errors" \
    "$status $(head -3 "$WORK/cron_restore.out" | tr '\n' ' ')" "0 "
check "new cluster: the restored job still connects to the origin's port (pg_cron restores cron.job as it was)" \
    "$(qc -c "$job_sql")" "$ORIGIN_PORT $CRON_DB"
runner_sql="SELECT schedule_runner FROM customer_analytics.list_campaigns() WHERE name = '$AN_CAMPAIGN'"
job=$(qc -c "SELECT job_id FROM customer_analytics.refresh_schedules WHERE name = '$AN_CAMPAIGN'")
check "new cluster: list_campaigns() says the job was made for another server, and what to run" \
    "$(qc -c "SET ROLE $ANALYST" -c "$runner_sql")" \
    "pg_cron job $job (made for another server: it connects to localhost:$ORIGIN_PORT, database $CRON_DB; this is localhost:$NEW_PORT, database $CRON_DB: reschedule it: SELECT customer_analytics.schedule_campaign_refresh('$AN_CAMPAIGN', '*/30 * * * *'))"
qc -c "SET ROLE $ANALYST" -c "SELECT customer_analytics.schedule_campaign_refresh('$AN_CAMPAIGN', '*/30 * * * *')" >/dev/null 2>"$WORK/reschedule.err"
check "new cluster: rescheduling replaces the job: it connects to this server" \
    "$(qc -c "$job_sql")|$(grep -c ERROR "$WORK/reschedule.err")" "$NEW_PORT $CRON_DB|0"
check "new cluster: list_campaigns() shows the new job, without a note" \
    "$(qc -c "SET ROLE $ANALYST" -c "$runner_sql")" \
    "pg_cron job $(qc -c "SELECT job_id FROM customer_analytics.refresh_schedules WHERE name = '$AN_CAMPAIGN'")"
check "new cluster: one job for the campaign, the one its schedule names" \
    "$(qc -c "SELECT count(*) || ' ' || bool_and(j.jobid = r.job_id) FROM cron.job j, customer_analytics.refresh_schedules r
                  WHERE r.name = '$AN_CAMPAIGN' AND j.jobname = 'customer_analytics refresh campaign $AN_CAMPAIGN'")" "1 true"
check "origin: its own job is left as it was" "$(qo -c "$job_sql")" "$ORIGIN_PORT $CRON_DB"

finish
