#!/usr/bin/env bash
# bench/sharded.sh (run by make bench; SHARDED_SCALES, default "1"): the
# functions over a source sharded by customer_code, on three shard clusters
# and a coordinator on this machine (README, "Past one server"), against the
# same data on the coordinator alone.  Prints, per scale, the best of RUNS
# (default 3) execution times of each function one server / sharded (and,
# at scales up to SHARDED_OFF_SCALE, default 1, sharded with the pushdown
# off, as before 1.5), the rows the shards sent for target_customers()
# against the customers on its routes, the Remote SQL that carries
# targeting_line_stats, and a sharded campaign's full refresh against its delta
# refresh from the per-shard rollups after a direct write of 0.1 % and 1 %
# of the lines on every shard, beside the same campaign's delta refresh on
# one server after the same write (medians of RUNS).  Not a test: nothing here asserts
# timing.  SHARDED_CROSSOVER (percentages of the customers, e.g. "1 5 10"):
# also the incremental refresh against a full one after the lines of that
# share of the customers changed.  Ports 5620-5623 (SHARDED_PORT), unix
# sockets only.
set -uo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-3}
COORD_PORT=${SHARDED_PORT:-5620}   # SHARDED_PORT: another base port (4 ports from it)
source "$ROOT/test/checks.sh"
source "$ROOT/test/sharded_setup.sh"
trap 'stop_clusters coord shard1 shard2 shard3' EXIT

CALLS=("target_customers(@)|customer_analytics.target_customers(source_schema => '@')"
       "targeting_funnel(@)|customer_analytics.targeting_funnel(source_schema => '@')"
       "monthly_revenue(targets, @)|customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM public.bench_targets), source_schema => '@')"
       "customer_features(@)|customer_analytics.customer_features(source_schema => '@')")
table=()
for scale in ${SHARDED_SCALES:-1}; do
    WORK=$(mktemp -d /tmp/ca_bench_sharded.XXXXXX)
    chown postgres: "$WORK"
    echo "-- scale $scale: starting a coordinator and three shards, loading the demo data"
    # the shards get the one server's work_mem: with the default 4MB each
    # shard's per-order grouping of order_totals spilled to disk (an
    # external merge sort); sharded target_customers() and
    # targeting_funnel() took about 1.3x longer at scale 10 (bench/README.md);
    # and a third each of the one server's shared_buffers: with the default
    # 128MB each shard read its lines (230MB at scale 10) from the OS cache
    # at every call, about 7 % more CPU on the shards (bench/README.md, 2026-12-07,
    # branch s31-shard-lines)
    sharded_start "-c shared_buffers=2GB -c work_mem=64MB" "-c work_mem=64MB -c shared_buffers=640MB"
    sharded_load "$scale" | grep -v '^ok - the same orders'
    coord "ANALYZE; CREATE TABLE public.bench_targets AS SELECT customer_code FROM customer_analytics.target_customers()" >/dev/null
    for c in "${CALLS[@]}"; do
        label=${c%%|*}; call=${c#*|}
        one=$(time_call "" "${call//@/cosmos_sync}" "$RUNS")
        sharded=$(time_call "" "${call//@/sharded}" "$RUNS")
        off="n/a"
        if awk "BEGIN {exit !($scale <= ${SHARDED_OFF_SCALE:-1})}"; then
            off=$(time_call "SET customer_analytics.shard_pushdown = off;" "${call//@/sharded}" 1)
        fi
        table+=("| $scale | ${label//@/source} | $one | $sharded | $off |")
    done
    plan=$(explain_call "customer_analytics.target_customers(source_schema => 'sharded')")
    stats_plan=$(awk '/Query Text: .*targeting_(line_)?stats/ {on = 1} /Query Text:/ && !/targeting_(line_)?stats/ {on = 0} on' <<<"$plan")
    fetched=$(grep -E 'Foreign Scan' <<<"$stats_plan" | grep -oE 'rows=[0-9]+ loops' | grep -oE '[0-9]+' | awk '{s += $1} END {print s}')
    routes=$(coord "SELECT count(*) FROM cosmos_sync.customers WHERE delivery_route IN ('K1', 'K2', 'PS')")
    echo "-- scale $scale: target_customers() sharded: the shards sent $fetched per-customer rows for $routes customers on the routes; Remote SQL (one shard):"
    grep -E 'Remote SQL: .*customer_analytics\.targeting_(line_)?stats\(' <<<"$plan" | head -1 | sed 's/^ */   /'
    # a campaign on the sharded source: full, then from the per-shard
    # rollups after a direct write on every shard; the same campaign on one
    # server (a rollup on the coordinator's cosmos_sync) after the same write
    # there: their delta refreshes side by side
    coord "CREATE SCHEMA bench_bi; SELECT count(*) FROM customer_analytics.create_campaign('bs', 'bench_bi', source_schema => 'sharded')" >/dev/null
    full=$(coord "SELECT count(*) FROM customer_analytics.refresh_campaign('bs');
                  SELECT duration_ms || ' ms, ' || mode FROM customer_analytics.refresh_history WHERE name = 'bs' ORDER BY id DESC LIMIT 1" | tail -1)
    sharded_rollups >/dev/null
    coord "SELECT count(*) FROM customer_analytics.refresh_campaign('bs')" >/dev/null   # the shards' snapshots and the state
    full_state=$(coord "SELECT duration_ms || ' ms, ' || mode FROM customer_analytics.refresh_history WHERE name = 'bs' ORDER BY id DESC LIMIT 1")
    coord "SET client_min_messages = warning; SELECT count(*) FROM customer_analytics.enable_rollup('cosmos_sync');
           CREATE SCHEMA bench_one; SELECT count(*) FROM customer_analytics.create_campaign('b1', 'bench_one', source_schema => 'cosmos_sync');
           SELECT count(*) FROM customer_analytics.refresh_campaign('b1')" >/dev/null
    table+=("| $scale | refresh_campaign on the sharded source | | ${full%%,*} (full); ${full_state%%,*} (full, building the per-customer state) | |")
    # median of RUNS: the same lines changed on the shards and on one
    # server (every order whose number hashes to the residue), then both
    # refreshed
    for share in "0.1|1000" "1|100"; do
        pct=${share%%|*}; mod=${share#*|}
        ones=(); shs=(); mode=""
        for run in $(seq "$RUNS"); do
            for s in "${SHARDS[@]}"; do
                q "$(shard_port "$s")" "UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1
                                         WHERE abs(hashtext(order_number)) % $mod = $run" >/dev/null
            done
            coord "UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1
                    WHERE abs(hashtext(order_number)) % $mod = $run" >/dev/null
            ones+=("$(coord "SELECT count(*) FROM customer_analytics.refresh_campaign('b1');
                             SELECT round(duration_ms) FROM customer_analytics.refresh_history WHERE name = 'b1' ORDER BY id DESC LIMIT 1" | tail -1)")
            r=$(coord "SET customer_analytics.shard_incremental_max_fraction = 1;
                       SELECT count(*) FROM customer_analytics.refresh_campaign('bs');
                       SELECT round(duration_ms) || '|' || mode FROM customer_analytics.refresh_history WHERE name = 'bs' ORDER BY id DESC LIMIT 1" | tail -1)
            shs+=("${r%%|*}"); mode=${r#*|}
        done
        one=$(printf '%s\n' "${ones[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
        sh=$(printf '%s\n' "${shs[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
        table+=("| $scale | refresh_campaign after $pct % of the lines changed (delta; median of $RUNS) | $one | $sh ($(awk "BEGIN {printf \"%.1f\", $sh / ($one > 0 ? $one : 1)}")× one server; $mode) | |")
    done
    # where the incremental path stops paying: PCT % of the customers'
    # lines changed on every shard, refreshed incrementally
    # (shard_incremental_max_fraction = 1) and in full (= 0), each the best
    # of RUNS, alternating
    for pct in ${SHARDED_CROSSOVER:-}; do
        for m in 1 0; do
            best=""
            for _ in $(seq "$RUNS"); do
                for s in "${SHARDS[@]}"; do
                    q "$(shard_port "$s")" "UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1
                                             WHERE abs(hashtext(customer_code)) % 1000 < $pct * 10" >/dev/null
                done
                r=$(coord "SET customer_analytics.shard_incremental_max_fraction = $m;
                           SELECT count(*) FROM customer_analytics.refresh_campaign('bs');
                           SELECT round(duration_ms) || '|' || mode FROM customer_analytics.refresh_history WHERE name = 'bs' ORDER BY id DESC LIMIT 1" | tail -1)
                if [ -z "$best" ] || [ "${r%%|*}" -lt "${best%%|*}" ]; then best=$r; fi
            done
            if [ $m = 1 ]; then inc=$best; else fullr=$best; fi
        done
        table+=("| $scale | refresh_campaign after the lines of $pct % of the customers changed: incremental / full | | ${inc%%|*} (${inc#*|}) / ${fullr%%|*} | |")
    done
    stop_clusters coord shard1 shard2 shard3
done
echo
echo "## customer_analytics over three shards and a coordinator on one machine (best of $RUNS, ms)"
echo
echo "| scale | call | one server | sharded | sharded, pushdown off |"
echo "|---|---|---|---|---|"
printf '%s\n' "${table[@]}"
