#!/usr/bin/env bash
# bench/logical_apply.sh: what the rollup costs a subscription's apply worker
# (run by bench/run.sh after the main tables; not a test, asserts nothing).
#
# Two throwaway clusters as the postgres OS user, sockets in a temp dir: a
# publisher of the three ERP tables and a subscriber, once without and once
# with customer_analytics's rollup enabled on the subscriber.  One
# transaction on the publisher inserts APPLY_ORDERS orders (default 20,000)
# with two lines each; the time is from its COMMIT until a marker row
# written after it has arrived on the subscriber.  It starts only once the
# subscription's initial copy of every table is over (all of
# pg_subscription_rel in state r): before that the apply worker skips the
# tables still being copied, whose table-sync workers receive the rows by
# COPY instead, and the marker arrives before they are done (the figures of
# up to 1.6 timed that race).  With the rollup it also prints
# check_rollup()'s count (0 when exact) and the apply worker's CPU time
# (from /proc/<pid>/schedstat, steadier than wall time on a busy machine).
# APPLY_PORTS (default "5451 5452") are the publisher's and subscriber's ports.
set -uo pipefail
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
N=${APPLY_ORDERS:-20000}
read -r PUB_PORT SUB_PORT <<< "${APPLY_PORTS:-5451 5452}"
as_pg() { runuser -u postgres -- "$@"; }
declare -A took cpu
diffs=n/a
for mode in without with; do
    WORK=$(mktemp -d /tmp/ca_apply_bench.XXXXXX)
    chown postgres: "$WORK"
    for c in pub:$PUB_PORT sub:$SUB_PORT; do
        as_pg "$PG_BIN/initdb" -D "$WORK/${c%:*}" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
        as_pg "$PG_BIN/pg_ctl" -D "$WORK/${c%:*}" -l "$WORK/${c%:*}.log" -w start \
            -o "-k $WORK -p ${c#*:} -c listen_addresses='' -c fsync=off -c wal_level=logical -c shared_buffers=1GB" >/dev/null
    done
    q() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p "$1" -U postgres -d postgres -c "SET client_min_messages = warning" -c "$2"; }
    tables="CREATE SCHEMA cosmos_sync;
      CREATE TABLE cosmos_sync.customers (customer_code varchar(12) PRIMARY KEY, trade_name text, delivery_route varchar(4),
          shipping_address text, closure_date varchar(8), csm varchar(8));
      CREATE TABLE cosmos_sync.sales_orders (order_type varchar(4), order_number varchar(12), customer_code varchar(12),
          delivery_route varchar(4), order_date varchar(8), confirmed_code char(1), PRIMARY KEY (order_type, order_number));
      CREATE TABLE cosmos_sync.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
          product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2), PRIMARY KEY (order_type, order_number, line_no));
      CREATE TABLE cosmos_sync.marker (n int PRIMARY KEY);"
    q $PUB_PORT "$tables"; q $SUB_PORT "$tables"
    q $PUB_PORT "CREATE PUBLICATION erp FOR ALL TABLES"
    if [ "$mode" = with ]; then
        q $SUB_PORT "CREATE EXTENSION customer_analytics; SELECT customer_analytics.enable_rollup('cosmos_sync')" >/dev/null
    fi
    q $SUB_PORT "CREATE SUBSCRIPTION erp CONNECTION 'host=$WORK port=$PUB_PORT user=postgres dbname=postgres' PUBLICATION erp"
    q $PUB_PORT "INSERT INTO cosmos_sync.marker VALUES (0)"
    until [ "$(q $SUB_PORT "SELECT count(*) FROM cosmos_sync.marker")" = 1 ] &&
          [ "$(q $SUB_PORT "SELECT count(*) FILTER (WHERE srsubstate <> 'r') FROM pg_catalog.pg_subscription_rel")" = 0 ]; do
        sleep 0.1
    done
    worker=$(q $SUB_PORT "SELECT pid FROM pg_catalog.pg_stat_subscription WHERE relid IS NULL")
    cpu0=$(cut -d' ' -f1 /proc/$worker/schedstat)
    start=$(date +%s%N)
    q $PUB_PORT "BEGIN;
      INSERT INTO cosmos_sync.sales_orders SELECT 'SO', g::text, lpad((g % 1000)::text, 4, '0'), 'K1', '20251001', 'Y' FROM generate_series(1, $N) g;
      INSERT INTO cosmos_sync.sales_order_lines SELECT 'SO', g::text, l, 'P1', 1, 100 FROM generate_series(1, $N) g, generate_series(1, 2) l;
      INSERT INTO cosmos_sync.marker VALUES (1); COMMIT;"
    until [ "$(q $SUB_PORT 'SELECT count(*) FROM cosmos_sync.marker')" = 2 ]; do sleep 0.05; done
    took[$mode]=$(( ($(date +%s%N) - start) / 1000000 ))
    cpu[$mode]=$(( ($(cut -d' ' -f1 /proc/$worker/schedstat) - cpu0) / 1000000 ))
    [ "$mode" = with ] && diffs=$(q $SUB_PORT "SELECT count(*) FROM customer_analytics.check_rollup('cosmos_sync')")
    for c in pub sub; do as_pg "$PG_BIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null; done
    rm -rf "$WORK"
done
echo
echo "logical replication: a subscriber applying one transaction of $N orders and $((2 * N)) lines"
echo
echo "| apply without the rollup ms | apply with the rollup ms | ratio | apply worker's CPU without / with ms | check_rollup differences |"
echo "|---|---|---|---|---|"
echo "| ${took[without]} | ${took[with]} | $(awk "BEGIN { printf \"%.1fx\", ${took[with]} / ${took[without]} }") | ${cpu[without]} / ${cpu[with]} | $diffs |"
