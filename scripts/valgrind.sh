#!/usr/bin/env bash
# Memory check:  bash scripts/valgrind.sh [sql/NN_suite.sql ...]
# Runs the fixture suites (all but the demo-data cross-check, which is slow
# under valgrind; pg_cron is not preloaded here, so its steps just fail)
# against a postgres started under valgrind memcheck and
# reports every error whose stack passes through customer_analytics.so.
# PostgreSQL's own known reports (uninitialised padding written to WAL and
# the relcache init file) are listed separately; they do not involve us.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ca_install_deps
command -v valgrind >/dev/null || ca_as_root apt-get install -y -qq valgrind >/dev/null
ca_build_install

CA_CLUSTER_DIR=$(mktemp -d /tmp/customer_analytics.vg.XXXXXX)
trap ca_stop_cluster EXIT
chown postgres: "$CA_CLUSTER_DIR"
runuser -u postgres -- $PG_BIN/initdb -D "$CA_CLUSTER_DIR/data" -A trust -U postgres \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
ca_log "Starting postgres under valgrind (slow)"
runuser -u postgres -- bash -c "valgrind --quiet --trace-children=yes --error-limit=no \
    --log-file=$CA_CLUSTER_DIR/vg.%p.log $PG_BIN/postgres -D $CA_CLUSTER_DIR/data \
    -k $CA_CLUSTER_DIR -p 5432 -c listen_addresses='' -c jit=off \
    -c max_parallel_workers_per_gather=0 > $CA_CLUSTER_DIR/server.log 2>&1 &"
export PGHOST=$CA_CLUSTER_DIR PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
for _ in $(seq 120); do pg_isready -q && break; sleep 1; done
ca_psql -c "CREATE DATABASE vg"
cd "$CA_ROOT"
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(sql/0[1-6]_*.sql sql/0[8-9]_*.sql sql/[12][0-9]_*.sql)
for t in sql/00_setup.sql "${suites[@]}"; do
    ca_log "$t"
    psql -X -q -d vg -f "$t" > /dev/null 2>&1 || true
done
runuser -u postgres -- $PG_BIN/pg_ctl -D "$CA_CLUSTER_DIR/data" -m fast stop >/dev/null || true
sleep 3
ours=$(grep -lE 'customer_analytics|targeting|target_customers|query_stream|source_tables|order_date\.c|order_window|order_stats|order_rollup|monthly_revenue|customer_features|kmeans|silhouette|point_buffer|numeric_acc|sql_args|matview_apply|snapshot_exec|progress\.c|feature_state|rollup_trigger|role_trust|sharded_source' "$CA_CLUSTER_DIR"/vg.*.log || true)
ca_log "valgrind reports by kind (all processes):"
grep -h '^==[0-9]*== [A-Z]' "$CA_CLUSTER_DIR"/vg.*.log | sed 's/^==[0-9]*== //' | sort | uniq -c || true
if [ -n "$ours" ]; then
    ca_log "errors involving customer_analytics.so:"
    cat $ours
    exit 1
fi
echo "no valgrind error involves customer_analytics.so"
