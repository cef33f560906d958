#!/usr/bin/env bash
# The long fuzz run for developers:  make fuzz   (or bash scripts/fuzz.sh)
# Builds and installs the extension, starts a throwaway cluster as test.sh
# does, and runs test/fuzz.py with bigger numbers than the test command:
# a random seed (printed; FUZZ_SEED=N repeats a run), FUZZ_CALLS calls
# (default 30000) or FUZZ_SECONDS seconds (default 600), whichever ends first,
# split between two runs: half as the superuser, the rest logged in as a
# non-superuser analyst with the README's grants (SELECT on the source
# tables, CREATE on a view schema, its own campaign and segmentation), so
# that every function is also called without a superuser's rights, on the
# analyst's own definitions and on others'.
# Every internal error (XX000), hang and crash is printed with the SQL that
# reproduces it (and the role it ran as); the exit status is non-zero if
# there was any.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ca_install_deps
ca_build_install
ca_start_cluster

ca_log "Fuzzing (server log: $CA_CLUSTER_DIR/server.log)"
cd "$CA_ROOT"
status=0
env FUZZ_SEED="${FUZZ_SEED:-random}" FUZZ_CALLS="${FUZZ_CALLS:-30000}" FUZZ_SECONDS="${FUZZ_SECONDS:-600}" \
    /usr/bin/python3 test/fuzz.py || status=$?
if grep -qE 'terminated by signal|PANIC' "$CA_CLUSTER_DIR/server.log"; then
    ca_log "The server log reports crashes:"
    grep -E -B2 -A2 'terminated by signal|PANIC' "$CA_CLUSTER_DIR/server.log" | head -50
    status=1
fi
exit $status
