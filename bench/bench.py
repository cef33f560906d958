#!/usr/bin/python3
"""Benchmark of the promo-targeting functions (run through `make bench`).

For each scale of the demo data it times, on one server and one data set:
  floor             one scan of sales_order_lines: count(*) + sum(pretax_subtotal)
  target_customers  SELECT * FROM customer_analytics.target_customers()
  targeting_funnel  SELECT * FROM customer_analytics.targeting_funnel()
  plain SQL         the notebook transcribed into one SQL query (test/notebook_targets.sql)
  notebook way      the notebook's SQL extract, then polars (bench/notebook_way.cjs, nodejs-polars)
and prints medians of several runs and their ratios, all from the same run.
Connection settings come from PGHOST/PGPORT/PGUSER/PGDATABASE.
"""
import argparse
import os
import statistics
import subprocess
import time

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEGMENTATION = [
    ("customer_features", "SELECT * FROM customer_analytics.customer_features()"),
    ("kmeans_fit k=4", "SELECT customer_analytics.kmeans_fit(features, 4) FROM bench_features"),
    ("silhouette (exact)", "SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(m, features),"
                           " customer_analytics.kmeans_predict(m, features)) FROM bench_features, bench_model"),
]

QUERIES = [
    ("floor", "SELECT count(*), sum(pretax_subtotal) FROM cosmos_sync.sales_order_lines"),
    ("target_customers", "SELECT * FROM customer_analytics.target_customers()"),
    ("targeting_funnel", "SELECT * FROM customer_analytics.targeting_funnel()"),
    ("plain SQL", "SELECT * FROM notebook_targets"),
]


def load(scale):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"scale={scale}",
                    "-f", os.path.join(ROOT, "test", "demo_data.sql")],
                   check=True, stdout=subprocess.DEVNULL)


def notebook_way_ms(runs):
    """Median of the notebook way (extract + polars), or None without node."""
    script = os.path.join(ROOT, "bench", "notebook_way.cjs")
    if not os.path.isdir(os.path.join(ROOT, "bench", "node_modules", "nodejs-polars")):
        return None, None
    times, targets = [], None
    for _ in range(runs + 1):          # the first run warms up, as for the queries
        out = subprocess.run(["node", script], check=True, capture_output=True, text=True).stdout.split()
        targets = int(out[0])
        times.append(float(out[1]))
    return statistics.median(times[1:]), targets


def median_ms(cur, sql, runs):
    cur.execute(sql)              # warm-up: caches, plan, hint bits
    cur.fetchall()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        cur.execute(sql)
        cur.fetchall()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1 10")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    rows = []
    for scale in args.scales.split():
        print(f"-- scale {scale}: loading demo data", flush=True)
        load(scale)
        conn = psycopg2.connect("")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("VACUUM ANALYZE")
        with open(os.path.join(ROOT, "test", "notebook_targets.sql")) as f:
            cur.execute(f.read())
        counts = {}
        for table in ("customers", "sales_orders", "sales_order_lines"):
            cur.execute(f"SELECT count(*) FROM cosmos_sync.{table}")
            counts[table] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM customer_analytics.target_customers()")
        targets = cur.fetchone()[0]
        times = {name: median_ms(cur, sql, args.runs) for name, sql in QUERIES}
        times["notebook way"], counts["notebook targets"] = notebook_way_ms(args.runs)
        # segmentation: features of the repeat customers, fitted once for silhouette
        cur.execute("CREATE TEMP TABLE bench_features AS SELECT features"
                    "  FROM customer_analytics.customer_features() WHERE is_repeat")
        cur.execute("CREATE TEMP TABLE bench_model AS"
                    "  SELECT customer_analytics.kmeans_fit(features, 4) AS m FROM bench_features")
        cur.execute("SELECT count(*) FROM bench_features")
        counts["repeat customers"] = cur.fetchone()[0]
        seg_runs = max(1, min(args.runs, 3))
        times.update({name: median_ms(cur, sql, seg_runs) for name, sql in SEGMENTATION})
        rows.append((scale, counts, targets, times))
        conn.close()

    print()
    print(f"medians of {args.runs} runs after one warm-up; ratios within the same run")
    print()
    head = ("| scale | customers | orders | lines | targets | floor ms | target_customers ms"
            " | targeting_funnel ms | plain SQL ms | notebook way ms | ours / floor | plain SQL / ours"
            " | notebook way / ours |")
    print(head)
    print("|" + "|".join("---" for _ in range(head.count("|") - 1)) + "|")
    for scale, c, targets, t in rows:
        ours = t["target_customers"]
        nb = t["notebook way"]
        nb_ms = "n/a" if nb is None else f"{nb:.0f}"
        nb_ratio = "n/a" if nb is None else f"{nb / ours:.2f}x"
        if nb is not None and c["notebook targets"] != targets:
            nb_ratio += f" (it found {c['notebook targets']} targets)"
        print(f"| {scale} | {c['customers']:,} | {c['sales_orders']:,} | {c['sales_order_lines']:,} | {targets:,}"
              f" | {t['floor']:.0f} | {ours:.0f} | {t['targeting_funnel']:.0f} | {t['plain SQL']:.0f} | {nb_ms}"
              f" | {ours / t['floor']:.2f}x | {t['plain SQL'] / ours:.2f}x | {nb_ratio} |")

    print()
    print("segmentation (repeat customers, 11 features; kmeans_fit: k = 4, k-means++, n_init 10;"
          " medians of up to 3 runs)")
    print()
    print("| scale | repeat customers | customer_features ms | kmeans_fit ms | silhouette (exact) ms |")
    print("|---|---|---|---|---|")
    for scale, c, targets, t in rows:
        print(f"| {scale} | {c['repeat customers']:,} | {t['customer_features']:.0f} | {t['kmeans_fit k=4']:.0f}"
              f" | {t['silhouette (exact)']:.0f} |")


if __name__ == "__main__":
    main()
