#!/usr/bin/env bash
# bench/logical_apply.sh: what the rollup costs a subscription's apply worker
# (run by bench/run.sh after the main tables; not a test, asserts nothing).
#
# Two throwaway clusters as the postgres OS user, sockets in a temp dir: a
# publisher of the three ERP tables and a subscriber, once without and once
# with customer_analytics's rollup enabled on the subscriber.  One
# transaction on the publisher inserts APPLY_ORDERS orders (default 20,000)
# with two lines each; the time is from its COMMIT until a marker row
# written after it has arrived on the subscriber.  With the rollup it also
# prints check_rollup()'s count (0 when exact).
set -uo pipefail
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
N=${APPLY_ORDERS:-20000}
as_pg() { runuser -u postgres -- "$@"; }
declare -A took
diffs=n/a
for mode in without with; do
    WORK=$(mktemp -d /tmp/ca_apply_bench.XXXXXX)
    chown postgres: "$WORK"
    for c in pub:5451 sub:5452; do
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
    q 5451 "$tables"; q 5452 "$tables"
    q 5451 "CREATE PUBLICATION erp FOR ALL TABLES"
    if [ "$mode" = with ]; then
        q 5452 "CREATE EXTENSION customer_analytics; SELECT customer_analytics.enable_rollup('cosmos_sync')" >/dev/null
    fi
    q 5452 "CREATE SUBSCRIPTION erp CONNECTION 'host=$WORK port=5451 user=postgres dbname=postgres' PUBLICATION erp"
    q 5451 "INSERT INTO cosmos_sync.marker VALUES (0)"
    until [ "$(q 5452 'SELECT count(*) FROM cosmos_sync.marker')" = 1 ]; do sleep 0.1; done
    start=$(date +%s%N)
    q 5451 "BEGIN;
      INSERT INTO cosmos_sync.sales_orders SELECT 'SO', g::text, lpad((g % 1000)::text, 4, '0'), 'K1', '20251001', 'Y' FROM generate_series(1, $N) g;
      INSERT INTO cosmos_sync.sales_order_lines SELECT 'SO', g::text, l, 'P1', 1, 100 FROM generate_series(1, $N) g, generate_series(1, 2) l;
      INSERT INTO cosmos_sync.marker VALUES (1); COMMIT;"
    until [ "$(q 5452 'SELECT count(*) FROM cosmos_sync.marker')" = 2 ]; do sleep 0.05; done
    took[$mode]=$(( ($(date +%s%N) - start) / 1000000 ))
    [ "$mode" = with ] && diffs=$(q 5452 "SELECT count(*) FROM customer_analytics.check_rollup('cosmos_sync')")
    for c in pub sub; do as_pg "$PG_BIN/pg_ctl" -D "$WORK/$c" -m immediate stop >/dev/null; done
    rm -rf "$WORK"
done
echo
echo "logical replication: a subscriber applying one transaction of $N orders and $((2 * N)) lines"
echo
echo "| apply without the rollup ms | apply with the rollup ms | ratio | check_rollup differences |"
echo "|---|---|---|---|"
echo "| ${took[without]} | ${took[with]} | $(awk "BEGIN { printf \"%.1fx\", ${took[with]} / ${took[without]} }") | $diffs |"
