# test/checks.sh: sourced by the shell tests that scripts/test.sh runs
# through run_counted.  Each check prints "ok - ..." or "not ok - ...", and
# finish prints "N passed, M failed" and exits non-zero on a failure.  The
# tests that need clusters of their own start them in $WORK, on unix
# sockets only, as the postgres OS user.
passed=0
failed=0

ok()     { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1${2:+: $2}"; }
# check DESCRIPTION GOT EXPECTED
check()  { if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', expected '$3'"; fi; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

as_pg() { runuser -u postgres -- "$@"; }

# start_cluster NAME PORT [SETTINGS]: initdb $WORK/NAME and start it with its
# socket in $WORK (no TCP), fsync off, and the extra "-c name=value" SETTINGS
start_cluster() {
    as_pg "$PG_BIN/initdb" -D "$WORK/$1" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null || return 1
    as_pg "$PG_BIN/pg_ctl" -D "$WORK/$1" -l "$WORK/$1.log" -w start \
        -o "-k $WORK -p $2 -c listen_addresses='' -c fsync=off ${3:-}" >/dev/null
}

# stop_clusters NAME...: stop the clusters started in $WORK, remove $WORK
stop_clusters() {
    for c in "$@"; do
        [ -d "$WORK/$c" ] && as_pg "$PG_BIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null 2>&1
    done
    rm -rf "$WORK"
}
