#!/usr/bin/env bash
# test/logical_replication.sh: rows applied by logical replication reach the
# order rollup (issue 16).  Run by scripts/test.sh, as root, after the
# extension is installed.
#
# A subscription's apply worker fires row-level triggers only, never the
# statement-level ones the rollup is kept by; 1.5 adds a row trigger (ENABLE
# REPLICA) for it.  This starts two throwaway clusters as the postgres OS
# user (sockets in a temp dir, no TCP): a publisher holding the ERP tables,
# and an analytics database subscribing to them with the extension and the
# rollup enabled before the subscription (so the initial copy goes through
# the triggers too).  Then writes of every kind on the publisher: new orders
# with their lines, changed amounts, lines moved between orders, a
# confirmation flag flipped both ways, an order moved to another customer,
# deletes, a customer changed, a TRUNCATE and reload of the lines.  After
# each batch has been applied, on the subscriber: check_rollup() is empty,
# the rollup is current and read, and target_customers(), monthly_revenue()
# and customer_features() give the same rows with and without it.
# Prints "ok - ..." / "not ok - ..." lines and "N passed, M failed".
set -uo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WORK=$(mktemp -d /tmp/ca_logrep.XXXXXX)
chown postgres: "$WORK"
# LOGREP_PORTS: the publisher's and subscriber's ports (default 5441 5442)
read -r PUB_PORT SUB_PORT <<< "${LOGREP_PORTS:-5441 5442}"
source "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
trap 'stop_clusters pub sub' EXIT
# both clusters allow logical decoding (publisher and subscriber)
LOGICAL="-c wal_level=logical -c max_wal_senders=5 -c max_replication_slots=5"
q()   { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p "$1" -U postgres -d postgres -c "SET client_min_messages = warning" -c "$2"; }
pub() { q $PUB_PORT "$1"; }
sub() { q $SUB_PORT "$1"; }

if ! start_cluster pub $PUB_PORT "$LOGICAL" || ! start_cluster sub $SUB_PORT "$LOGICAL"; then
    not_ok "two clusters started"; cat "$WORK"/*.log 2>/dev/null | tail -20; finish
fi
ok "publisher and subscriber clusters started (unix sockets in $WORK)"

TABLES="
CREATE SCHEMA cosmos_sync;
CREATE TABLE cosmos_sync.customers (customer_code varchar(12) PRIMARY KEY, trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE cosmos_sync.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE cosmos_sync.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    PRIMARY KEY (order_type, order_number, line_no));
CREATE TABLE cosmos_sync.sync_marker (n int PRIMARY KEY);"
pub "$TABLES" && sub "$TABLES" || { not_ok "ERP tables created"; finish; }
# 30 customers on K1/K2/PS, 4 orders each over Sep-Dec 2025, two lines an order
pub "INSERT INTO cosmos_sync.customers
       SELECT lpad(c::text, 4, '0'), 'C' || c, (ARRAY['K1','K2','PS'])[c % 3 + 1], 'addr', NULL, '00' || (c % 5) FROM generate_series(1, 30) c;
     INSERT INTO cosmos_sync.sales_orders
       SELECT 'SO', (c * 10 + o)::text, lpad(c::text, 4, '0'), (ARRAY['K1','K2','PS'])[c % 3 + 1],
              to_char(date '2025-09-01' + (c * 7 + o * 23) % 120, 'YYYYMMDD'), CASE WHEN (c + o) % 7 = 0 THEN 'N' ELSE 'Y' END
         FROM generate_series(1, 30) c, generate_series(1, 4) o;
     INSERT INTO cosmos_sync.sales_order_lines
       SELECT 'SO', (c * 10 + o)::text, l, 'P' || ((c + l) % 6), l, 300 + (c * 37 + o * 11 + l * 5) % 900
         FROM generate_series(1, 30) c, generate_series(1, 4) o, generate_series(1, 2) l;
     CREATE PUBLICATION erp FOR TABLE cosmos_sync.customers, cosmos_sync.sales_orders,
                                      cosmos_sync.sales_order_lines, cosmos_sync.sync_marker;" \
    || { not_ok "publisher data and publication"; finish; }

sub "CREATE EXTENSION customer_analytics; SELECT customer_analytics.enable_rollup('cosmos_sync');" >/dev/null \
    && sub "CREATE SUBSCRIPTION erp CONNECTION 'host=$WORK port=$PUB_PORT user=postgres dbname=postgres' PUBLICATION erp" \
    || { not_ok "extension, rollup and subscription on the subscriber"; finish; }
ok "subscriber: extension installed, rollup enabled, then subscribed"

marker=0
# wait_applied: every table's initial copy is done (each table syncs in its
# own worker, so the marker's table may be ready before the others), and a
# new marker row written on the publisher has reached the subscriber, so
# everything written before it has been applied
wait_applied() {
    for _ in $(seq 1 300); do
        [ "$(sub "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = "0" ] && break
        sleep 0.1
    done
    marker=$((marker + 1))
    pub "INSERT INTO cosmos_sync.sync_marker VALUES ($marker)"
    for _ in $(seq 1 300); do
        [ "$(sub "SELECT count(*) FROM cosmos_sync.sync_marker WHERE n = $marker")" = "1" ] && return 0
        sleep 0.1
    done
    return 1
}

# verify LABEL: the rollup after one batch of replicated writes
verify() {
    if ! wait_applied; then not_ok "$1: replicated within 30 s"; tail -20 "$WORK/sub.log"; return; fi
    check "$1: orders on publisher and subscriber" \
        "$(sub "SELECT count(*) || '/' || COALESCE(sum(pretax_subtotal), 0) FROM cosmos_sync.sales_order_lines")" \
        "$(pub "SELECT count(*) || '/' || COALESCE(sum(pretax_subtotal), 0) FROM cosmos_sync.sales_order_lines")"
    check "$1: check_rollup() finds no difference" "$(sub "SELECT count(*) FROM customer_analytics.check_rollup('cosmos_sync')")" "0"
    check "$1: the rollup is current and read" \
        "$(sub "SELECT state || ' ' || usable_here FROM customer_analytics.list_rollups()")" "current true"
    check "$1: target_customers, monthly_revenue, customer_features equal with and without the rollup" \
        "$(sub "CREATE TEMP TABLE t_on AS SELECT * FROM customer_analytics.target_customers(spend_window => '[2025-09-01,2025-12-31]', min_spend => 1);
                CREATE TEMP TABLE m_on AS SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM cosmos_sync.customers), '[2025-09-01,2025-12-31]');
                CREATE TEMP TABLE f_on AS SELECT * FROM customer_analytics.customer_features('[2025-09-01,2025-12-31]', as_of => '2026-01-07');
                SET customer_analytics.use_rollup = off;
                SELECT (SELECT count(*) FROM ((SELECT * FROM t_on EXCEPT ALL SELECT * FROM customer_analytics.target_customers(spend_window => '[2025-09-01,2025-12-31]', min_spend => 1))
                                 UNION ALL (SELECT * FROM customer_analytics.target_customers(spend_window => '[2025-09-01,2025-12-31]', min_spend => 1) EXCEPT ALL SELECT * FROM t_on)) d)
                     + (SELECT count(*) FROM ((SELECT * FROM m_on EXCEPT ALL SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM cosmos_sync.customers), '[2025-09-01,2025-12-31]'))
                                 UNION ALL (SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM cosmos_sync.customers), '[2025-09-01,2025-12-31]') EXCEPT ALL SELECT * FROM m_on)) d)
                     + (SELECT count(*) FROM ((SELECT * FROM f_on EXCEPT ALL SELECT * FROM customer_analytics.customer_features('[2025-09-01,2025-12-31]', as_of => '2026-01-07'))
                                 UNION ALL (SELECT * FROM customer_analytics.customer_features('[2025-09-01,2025-12-31]', as_of => '2026-01-07') EXCEPT ALL SELECT * FROM f_on)) d)")" "0"
}

verify "initial copy"
pub "INSERT INTO cosmos_sync.sales_orders VALUES ('SO', '901', '0001', 'K2', '20251105', 'Y'), ('SO', '902', '0002', 'K1', '20251201', 'Y');
     INSERT INTO cosmos_sync.sales_order_lines VALUES ('SO', '901', 1, 'P1', 1, 1500), ('SO', '901', 2, 'P2', 2, 20), ('SO', '902', 1, 'P3', 1, 2500);"
verify "new orders and lines"
pub "UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1000 WHERE order_number IN ('11', '21', '31');
     UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = NULL WHERE order_number = '41' AND line_no = 1;"
verify "amounts changed"
pub "UPDATE cosmos_sync.sales_order_lines SET order_number = '901', line_no = line_no + 10 WHERE order_number = '52';"
verify "lines moved to another order"
pub "UPDATE cosmos_sync.sales_orders SET confirmed_code = CASE confirmed_code WHEN 'Y' THEN 'N' ELSE 'Y' END WHERE order_number IN ('61', '62', '63', '64');"
verify "confirmation flipped both ways"
pub "UPDATE cosmos_sync.sales_orders SET customer_code = '0003', order_date = '20251015' WHERE order_number = '71';"
verify "order moved to another customer and date"
pub "DELETE FROM cosmos_sync.sales_order_lines WHERE order_number = '81' AND line_no = 2;
     DELETE FROM cosmos_sync.sales_orders WHERE order_number = '82';
     UPDATE cosmos_sync.customers SET delivery_route = 'K1' WHERE customer_code = '0009';"
verify "deletes and a customer changed"
# one applied transaction of 6,000 new orders, then a line for each (12,000
# applied rows): the apply worker's upkeep recomputes each order once, at
# the commit, after its lines have arrived (1.5 flushed every 10,000 applied
# rows: the orders were recomputed without their lines, then 2,000 of them
# again, 10,000 rows in the dirty table where 6,000 say it all)
dirty=$(sub "SELECT customer_analytics._rollup_dirty_table(id) FROM customer_analytics.rollups")
dirty_before=$(sub "SELECT count(*) FROM $dirty")
pub "BEGIN;
     INSERT INTO cosmos_sync.sales_orders
       SELECT 'SO', 'B' || g, lpad((g % 30 + 1)::text, 4, '0'), 'K1', to_char(date '2025-09-01' + g % 120, 'YYYYMMDD'), 'Y'
         FROM generate_series(1, 6000) g;
     INSERT INTO cosmos_sync.sales_order_lines SELECT 'SO', 'B' || g, 1, 'P' || (g % 6), 1, 10 + g % 90 FROM generate_series(1, 6000) g;
     COMMIT;"
verify "one transaction of 6,000 new orders and then their lines"
check "the apply worker's upkeep recomputed each of the 6,000 orders once (rows added to the dirty table)" \
    "$(sub "SELECT count(*) - $dirty_before FROM $dirty")" "6000"
pub "BEGIN; TRUNCATE cosmos_sync.sales_order_lines;
     INSERT INTO cosmos_sync.sales_order_lines
       SELECT 'SO', (c * 10 + o)::text, 1, 'P1', 1, 100 * c FROM generate_series(1, 30) c, generate_series(1, 3) o;
     COMMIT;"
verify "TRUNCATE and reload of the lines"
check "the subscriber's rollup holds every confirmed order" \
    "$(sub "SELECT rollup_rows IS NOT NULL FROM customer_analytics.rollups")" "t"
finish
