#!/usr/bin/env bash
# make bench:  the benchmark table (not a test; nothing here asserts timing).
# Starts its own throwaway cluster, loads the demo data at each scale in
# SCALES (default "1 10 30") and times each query RUNS times (default 5);
# then the same for the realistic shape (SHAPES, default "demo skewed");
# then the rollup's cost to a logical replication apply worker and the
# sharded source (bench/sharded.sh, SHARDED_SCALES, default "1").
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

ca_install_deps
ca_build_install
# enough shared_buffers to hold scale 30 (~4 GB and its rollup): queries read from memory
ca_start_cluster shared_buffers=8GB work_mem=64MB max_parallel_workers_per_gather=2
ca_psql -c "CREATE EXTENSION customer_analytics"

# the notebook way (SQL extract + a polars dataframe) needs nodejs-polars from
# npm; optional: without node/npm the column reads n/a
if command -v npm >/dev/null && [ ! -d "$CA_ROOT/bench/node_modules/nodejs-polars" ]; then
    ca_log "Installing nodejs-polars and pg from npm into bench/node_modules (for the notebook-way column)"
    (cd "$CA_ROOT/bench" && npm install --no-package-lock --no-audit --no-fund --silent) || true
fi
# SHAPES: the demo data (test/demo_data.sql), the realistic shape
# (bench/skewed_data.sql, about 20 % of the customers hold most orders), the
# route-heavy shape (bench/route_heavy_data.sql over the demo data: the
# campaign's route customers hold most orders), or a list of them
/usr/bin/python3 "$CA_ROOT/bench/bench.py" --scales "${SCALES:-1 10 30}" --runs "${RUNS:-5}" \
    --shape "${SHAPES:-demo skewed routes}"
# the rollup's cost to a subscription's apply worker (row triggers)
bash "$CA_ROOT/bench/logical_apply.sh"
# the functions over three shards and a coordinator (SHARDED_SCALES, default 1)
bash "$CA_ROOT/bench/sharded.sh"
