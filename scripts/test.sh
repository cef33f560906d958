#!/usr/bin/env bash
# The whole test suite on a throwaway cluster:  bash scripts/test.sh
# Installs what is missing, builds with warnings as errors, installs, starts
# a cluster as the postgres OS user and runs `make installcheck` (every
# pg_regress suite in sql/, then the isolation specs in specs/), then the
# BI-client tests (test/bi_client.py through psycopg2, test/jdbc_client.sh
# through pgjdbc on its own cluster on 127.0.0.1) and the dump/restore test
# (test/dump_restore.sh), the catalog equality of a fresh install and one
# updated from 1.0 (test/catalog_equality.sh), the scikit-learn agreement of
# the k-means functions (test/sklearn_parity.py) and a bounded fuzz run of every
# (test/dump_restore.sh), plpgsql_check over every PL/pgSQL function on its
# own cluster (test/plpgsql_check.sh), the scikit-learn agreement of the k-means
# functions (test/sklearn_parity.py), the SciPy agreement of arm_comparison
# (test/response_parity.py) and a bounded fuzz run of every
# function and aggregate (test/fuzz.py), and the sharded source on three
# shard clusters and a coordinator (test/sharded.sh).  The last line counts them all: "N passed, M failed".
#
# The quick tier for development:  bash scripts/test.sh quick
# runs the pg_regress suites and the isolation specs only (a few minutes);
# SUITES="00_setup 14_kmeans" and SPECS="dispatcher" narrow it further.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
tier=${1:-full}
case "$tier" in
    full|quick) ;;
    *) echo "usage: bash scripts/test.sh [quick]" >&2; exit 2 ;;
esac

ca_install_deps
ca_build_install
# room for pg_cron's job workers beside the parallel workers of the tests
# running meanwhile (a job that finds no worker slot is not run)
ca_start_cluster max_worker_processes=24

ca_log "Running the regression suites and the isolation specs"
cd "$CA_ROOT"
rm -rf results regression.diffs regression.out output_iso
# this run's logs (a fixed name would mix up two runs at once)
logs=$(mktemp -d /tmp/customer_analytics.test.XXXXXX)
installcheck_out=$logs/installcheck.out
# a blocked isolation step is cancelled (and fails its spec) after this long
export PGISOLATIONTIMEOUT=${PGISOLATIONTIMEOUT:-60}
status=0
narrow=()
[ -n "${SUITES:-}" ] && narrow+=("REGRESS=$SUITES")
[ -n "${SPECS+x}" ] && narrow+=("ISOLATION=$SPECS")
make -s PG_CONFIG=$PG_BIN/pg_config installcheck "${narrow[@]}" 2>&1 | tee "$installcheck_out" || status=$?
if ! grep -q '^+++ isolation install-check' "$installcheck_out"; then
    # make stopped at the failing pg_regress suites: still run the specs
    ca_log "Running the isolation specs on their own"
    make -s PG_CONFIG=$PG_BIN/pg_config installcheck "${narrow[@]}" REGRESS= 2>&1 | tee -a "$installcheck_out" || status=1
fi

summary=$(grep -E 'tests? (passed|failed)' "$installcheck_out" || true)
total=$(grep -cE '^(ok|not ok) ' "$installcheck_out" || true)
passed=$(grep -cE '^ok ' "$installcheck_out" || true)
if [ "$total" -eq 0 ]; then   # pg_regress 15 prints "test NAME ... ok" lines
    total=$(grep -cE '^(test| ) +[a-z0-9_]+ +\.\.\. ' "$installcheck_out" || true)
    # anything but ok fails: FAILED, failed (ignored), a diff that could not run
    passed=$(grep -cE '^(test| ) +[a-z0-9_]+ +\.\.\. ok ' "$installcheck_out" || true)
fi
failed=$((total - passed))
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
    for d in regression.diffs output_iso/regression.diffs; do
        [ -f "$d" ] && { echo "--- $d"; head -200 "$d"; }
    done
    status=1
fi

if [ "$tier" = quick ]; then
    echo "$summary"
    echo "logs: $logs"
    echo "$passed passed, $failed failed"
    exit $status
fi

# run_counted NAME COMMAND...: a test that prints "ok - ..." / "not ok - ..."
# lines; its checks add to the totals, and a non-zero exit without a "not ok"
# line (a crash) counts as one failure
extra_summaries=()
run_counted() {
    local name=$1 rc=0
    shift
    ca_log "Running $name"
    "$@" 2>&1 | tee "$logs/$name.out" || rc=$?
    count_result "$name" "$rc"
}

# count_result NAME RC: add the "ok" / "not ok" lines of $logs/NAME.out
count_result() {
    local name=$1 rc=$2 out=$logs/$1.out ok bad
    ok=$(grep -cE '^ok ' "$out" || true)
    bad=$(grep -cE '^not ok ' "$out" || true)
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ]; then status=1; fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    extra_summaries+=("$name: $ok passed, $bad failed")
}

# start_counted NAME COMMAND...: run_counted in the background (a test that
# mostly waits, beside the others); finish_counted NAME prints and counts it
declare -A background=()
start_counted() {
    local name=$1
    shift
    ca_log "Starting $name in the background"
    "$@" > "$logs/$name.out" 2>&1 &
    background[$name]=$!
}
finish_counted() {
    local name=$1 rc=0
    wait "${background[$name]}" || rc=$?
    ca_log "Finished $name"
    cat "$logs/$name.out"
    count_result "$name" "$rc"
}

# pg_cron schedules by the minute: its test waits about three minutes, in
# database postgres and ca_cron_elsewhere, while the tests on their own
# clusters (or databases) run
start_counted pg_cron_scheduled env PG_BIN=$PG_BIN bash test/pg_cron_scheduled.sh
run_counted bi_client env PG_BIN=$PG_BIN /usr/bin/python3 test/bi_client.py
run_counted jdbc_client env PG_BIN=$PG_BIN bash test/jdbc_client.sh
run_counted dump_restore env PG_BIN=$PG_BIN bash test/dump_restore.sh
# a fresh install and one updated from 1.0 with live objects: the same catalogs
run_counted catalog_equality env PG_BIN=$PG_BIN bash test/catalog_equality.sh
# plpgsql_check over every PL/pgSQL routine: no finding outside test/plpgsql_check.allow
run_counted plpgsql_check env PG_BIN=$PG_BIN bash test/plpgsql_check.sh
run_counted sklearn_parity /usr/bin/python3 test/sklearn_parity.py
# arm_comparison and minimum_detectable_effect against SciPy on random data of many shapes
run_counted response_parity /usr/bin/python3 test/response_parity.py
run_counted logical_replication env PG_BIN=$PG_BIN bash test/logical_replication.sh
# three shard clusters and a coordinator: the pushed-down functions equal the single node
run_counted sharded env PG_BIN=$PG_BIN bash test/sharded.sh
finish_counted pg_cron_scheduled
# a bounded fuzz run (fixed seed, about a minute): 0 crashes, 0 XX000, 0 hangs
run_counted fuzz /usr/bin/python3 test/fuzz.py

# one closing line a CI reader can count
echo "$summary"
printf '%s\n' "${extra_summaries[@]}"
echo "logs: $logs"
echo "$passed passed, $failed failed"
exit $status
