#!/usr/bin/env bash
# The whole test suite on a throwaway cluster:  bash scripts/test.sh
# Installs what is missing, builds with warnings as errors, installs, starts
# a cluster as the postgres OS user and runs every pg_regress suite.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ca_install_deps
ca_build_install
ca_start_cluster

ca_log "Running the regression suites"
cd "$CA_ROOT"
rm -rf results regression.diffs regression.out
status=0
make -s PG_CONFIG=$PG_BIN/pg_config installcheck 2>&1 | tee /tmp/customer_analytics.installcheck.out || status=$?

# one closing line a CI reader can count
summary=$(grep -E 'tests? (passed|failed)' /tmp/customer_analytics.installcheck.out | tail -1 || true)
total=$(grep -cE '^(ok|not ok) ' /tmp/customer_analytics.installcheck.out || true)
failed=$(grep -cE '^not ok ' /tmp/customer_analytics.installcheck.out || true)
if [ "$total" -eq 0 ]; then   # pg_regress 15 prints "test ... ok" lines
    total=$(grep -cE '^(test| ) +[a-z0-9_]+ +\.\.\. ' /tmp/customer_analytics.installcheck.out || true)
    failed=$(grep -cE '^(test| ) +[a-z0-9_]+ +\.\.\. (FAILED|failed)' /tmp/customer_analytics.installcheck.out || true)
fi
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
    [ -f regression.diffs ] && head -200 regression.diffs
    status=1
fi
echo "$summary"
echo "$((total - failed)) passed, $failed failed"
exit $status
