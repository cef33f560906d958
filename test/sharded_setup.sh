# test/sharded_setup.sh: a coordinator and three shard clusters holding the
# demo data sharded by customer_code, as docs/sharding.md sets them
# up; sourced by test/sharded.sh and bench/sharded.sh after test/checks.sh,
# with PG_BIN, ROOT, WORK (the socket directory, owned by postgres) and
# COORD_PORT set.  The shards listen on COORD_PORT + 1 .. 3, unix sockets
# only.
#
# sharded_start [COORD_SETTINGS [SHARD_SETTINGS]]: start the four clusters
#     (the coordinator with COORD_SETTINGS too, each shard with
#     SHARD_SETTINGS) and create, on each shard, the extension, the ERP
#     tables (lines with their order's customer_code) and the order_totals
#     and order_lines views of the data contract.
# sharded_load SCALE: the demo data at SCALE on the coordinator (schema
#     cosmos_sync, the single-node answer) and the same rows in schema
#     "sharded": hash-partitioned tables whose partitions are foreign tables
#     on the shards.
# sharded_rollups: per-shard rollups: each shard keeps the rollup of its
#     cosmos_sync and exposes its changes in a view cosmos_sync.rollup_changes
#     (create_rollup_changes_view); the coordinator reads them through
#     sharded.rollup_changes.
# Each prints "ok - ..." / "not ok - ..." lines and stops the run on failure.
# explain_call CALL: the coordinator's plans for SELECT count(*) FROM CALL,
#     nested statements included (auto_explain, verbose, actual rows).
# time_call SETTINGS CALL [RUNS]: the best of RUNS (3) execution times, in
#     ms, of SELECT * FROM CALL on the coordinator after SETTINGS.

SHARDS=(1 2 3)
shard_port() { echo $((COORD_PORT + $1)); }
q() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p "$1" -U postgres -d postgres -c "SET client_min_messages = warning" -c "$2"; }
coord() { q $COORD_PORT "$1"; }

SHARD_DDL="
CREATE EXTENSION customer_analytics;
CREATE SCHEMA cosmos_sync;
CREATE TABLE cosmos_sync.customers (customer_code varchar(12), trade_name text, delivery_route varchar(4),
    shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE INDEX ON cosmos_sync.customers (customer_code);
CREATE TABLE cosmos_sync.sales_orders (order_type varchar(4) NOT NULL, order_number varchar(12) NOT NULL,
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE cosmos_sync.sales_order_lines (order_type varchar(4) NOT NULL, order_number varchar(12) NOT NULL,
    line_no int NOT NULL, product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    customer_code varchar(12), PRIMARY KEY (order_type, order_number, line_no));
CREATE INDEX ON cosmos_sync.sales_orders (customer_code);
CREATE INDEX ON cosmos_sync.sales_order_lines (customer_code);
CREATE VIEW cosmos_sync.order_totals AS
    SELECT o.customer_code, o.order_type, o.order_number, o.delivery_route, o.order_date, o.confirmed_code,
           sum(l.pretax_subtotal) AS order_total, sum(l.quantity) AS quantity,
           array_agg(l.product_code::text) FILTER (WHERE l.product_code IS NOT NULL) AS product_codes
      FROM cosmos_sync.sales_orders o
      LEFT JOIN cosmos_sync.sales_order_lines l ON l.order_type = o.order_type AND l.order_number = o.order_number
     GROUP BY o.order_type, o.order_number, o.customer_code, o.delivery_route, o.order_date, o.confirmed_code;
CREATE VIEW cosmos_sync.order_lines AS
    SELECT o.customer_code, o.order_type, o.order_number, o.delivery_route, o.order_date, o.confirmed_code,
           l.pretax_subtotal AS line_amount
      FROM cosmos_sync.sales_orders o
      LEFT JOIN cosmos_sync.sales_order_lines l ON l.order_type = o.order_type AND l.order_number = o.order_number;"

sharded_start() {
    local started=true pids s p
    start_cluster coord $COORD_PORT "-c synchronous_commit=off ${1:-}" & pids=($!)
    for s in "${SHARDS[@]}"; do start_cluster "shard$s" "$(shard_port "$s")" "-c synchronous_commit=off ${2:-}" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || started=false; done
    if ! $started; then
        not_ok "coordinator and three shard clusters started"; tail -5 "$WORK"/*.log 2>/dev/null; finish
    fi
    ok "coordinator and three shard clusters started (unix sockets in $WORK, ports $COORD_PORT-$((COORD_PORT + 3)))"
    for s in "${SHARDS[@]}"; do
        q "$(shard_port "$s")" "$SHARD_DDL" || { not_ok "shard$s: extension, tables and order_totals view"; finish; }
    done
    ok "each shard: the extension, the ERP tables and the order_totals and order_lines views"
}

sharded_load() {
    local scale=$1 t0 s t ddl
    t0=$(date +%s)
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p $COORD_PORT -U postgres -d postgres \
        -v scale="$scale" -f "$ROOT/test/demo_data.sql" >/dev/null || { not_ok "scale-$scale demo data on the coordinator"; finish; }
    ddl="CREATE EXTENSION customer_analytics; CREATE EXTENSION postgres_fdw; CREATE SCHEMA sharded;
CREATE TABLE sharded.customers (customer_code varchar(12), trade_name text, delivery_route varchar(4),
    shipping_address text, closure_date varchar(8), csm varchar(8)) PARTITION BY HASH (customer_code);
CREATE TABLE sharded.sales_orders (order_type varchar(4) NOT NULL, order_number varchar(12) NOT NULL,
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1))
    PARTITION BY HASH (customer_code);
CREATE TABLE sharded.sales_order_lines (order_type varchar(4) NOT NULL, order_number varchar(12) NOT NULL,
    line_no int NOT NULL, product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    customer_code varchar(12)) PARTITION BY HASH (customer_code);
CREATE TABLE sharded.order_totals (customer_code varchar(12), order_type varchar(4), order_number varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1), order_total numeric,
    quantity numeric, product_codes text[]) PARTITION BY HASH (customer_code);
CREATE TABLE sharded.order_lines (customer_code varchar(12), order_type varchar(4), order_number varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1), line_amount numeric)
    PARTITION BY HASH (customer_code);"
    for s in "${SHARDS[@]}"; do
        ddl+="
CREATE SERVER shard$s FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '$WORK', port '$(shard_port "$s")', dbname 'postgres', extensions 'customer_analytics',
             use_remote_estimate 'true', async_capable 'true', fetch_size '10000', batch_size '1000',
             options '-c cursor_tuple_fraction=1 -c random_page_cost=1.1');
CREATE USER MAPPING FOR postgres SERVER shard$s OPTIONS (user 'postgres');"
        for t in customers sales_orders sales_order_lines order_totals order_lines; do
            ddl+="
CREATE FOREIGN TABLE sharded.${t}_$s PARTITION OF sharded.$t FOR VALUES WITH (MODULUS 3, REMAINDER $((s - 1)))
    SERVER shard$s OPTIONS (schema_name 'cosmos_sync', table_name '$t');"
        done
    done
    coord "$ddl" || { not_ok "coordinator: servers, user mappings, partitioned foreign tables"; finish; }
    coord "INSERT INTO sharded.customers SELECT * FROM cosmos_sync.customers;
           INSERT INTO sharded.sales_orders SELECT * FROM cosmos_sync.sales_orders;
           INSERT INTO sharded.sales_order_lines
             SELECT l.*, o.customer_code FROM cosmos_sync.sales_order_lines l
               JOIN cosmos_sync.sales_orders o USING (order_type, order_number);" \
        || { not_ok "scale-$scale demo data sharded"; finish; }
    for s in "${SHARDS[@]}"; do q "$(shard_port "$s")" "ANALYZE" || not_ok "shard$s: ANALYZE"; done
    check "the same orders and lines on the shards as on the single node" \
        "$(coord "SELECT (SELECT count(*) FROM sharded.sales_orders) || '/' || (SELECT sum(pretax_subtotal) FROM sharded.sales_order_lines)")" \
        "$(coord "SELECT (SELECT count(*) FROM cosmos_sync.sales_orders) || '/' || (SELECT sum(l.pretax_subtotal) FROM cosmos_sync.sales_order_lines l JOIN cosmos_sync.sales_orders o USING (order_type, order_number))")"
    ok "scale-$scale demo data on the single node and sharded over three shards ($(( $(date +%s) - t0 )) s)"
}

sharded_rollups() {
    local s ddl="CREATE TABLE sharded.rollup_changes (customer_code text, xid xid8, generation bigint, rollup_state text,
    snapshot pg_snapshot, campaigns bigint, system_identifier bigint, order_date date, total numeric, quantity numeric,
    sign smallint) PARTITION BY HASH (customer_code);"
    for s in "${SHARDS[@]}"; do
        q "$(shard_port "$s")" "SELECT count(*) FROM customer_analytics.enable_rollup('cosmos_sync');
            SELECT customer_analytics.create_rollup_changes_view('cosmos_sync');" >/dev/null \
            || not_ok "shard$s: enable_rollup and the rollup_changes view"
        # (no remote estimates: a refresh reads them once, in one statement,
        # and an estimate costs a round trip per shard at its planning)
        ddl+="
CREATE FOREIGN TABLE sharded.rollup_changes_$s PARTITION OF sharded.rollup_changes FOR VALUES WITH (MODULUS 3, REMAINDER $((s - 1)))
    SERVER shard$s OPTIONS (schema_name 'cosmos_sync', table_name 'rollup_changes', use_remote_estimate 'false');"
    done
    coord "$ddl" || not_ok "coordinator: sharded.rollup_changes over the shards' rollup_changes views"
}

explain_call() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p $COORD_PORT -U postgres -d postgres \
        -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
        -c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_verbose = on" \
        -c "SET auto_explain.log_analyze = on" -c "SET auto_explain.log_timing = off" \
        -c "SET client_min_messages = log" -c "SELECT count(*) FROM $1" 2>&1
}
time_call() {  # SETTINGS CALL [RUNS]
    for _ in $(seq "${3:-3}"); do
        coord "$1 EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) SELECT * FROM $2" | sed -n 's/^Execution Time: \([0-9.]*\) ms/\1/p'
    done | sort -n | head -1
}
