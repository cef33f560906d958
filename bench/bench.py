#!/usr/bin/python3
"""Benchmark of customer_analytics (run through `make bench`).

For each scale of the demo data, on one server and one data set, it times:
  floor              one scan of sales_order_lines: count(*) + sum(pretax_subtotal)
  full recompute     target_customers() reading the source tables (use_rollup off)
  rollup             target_customers() reading the order rollup
  plain SQL          the notebook transcribed into one SQL query (test/notebook_targets.sql)
  plain REFRESH      REFRESH MATERIALIZED VIEW of a view defined by that plain SQL
  incremental        after 1 % of the orders changed: refresh_campaign() of a
                     built campaign (its views and the state the next refresh
                     starts from), as a scheduled job runs it; and after
                     another 1 %, REFRESH MATERIALIZED VIEW CONCURRENTLY of its
                     targets view alone (the same statement as plain REFRESH)
  notebook way       the notebook's SQL extract, then polars (bench/notebook_way.cjs)
  realistic shape    (--shape skewed, both or all) the same scales of bench/skewed_data.sql,
                     where about 20 % of the customers hold most of the orders:
                     after a 1 % and a 0.1 % change, the share of the customers
                     and orders the change reaches, the targets view's REFRESH
                     CONCURRENTLY, refresh_campaign() against a plain REFRESH, the
                     mode refresh_history records and the rows that differ from
                     a recompute (the demo shape gets the same table), with the
                     targets of issue 25 beside the ratios (>= 50x after 1 %,
                     >= 200x after 0.1 %) and whether they are met; then the
                     default segmentation: a plain REFRESH of its four views
                     against refresh_segmentation() after the same kinds of
                     change, with the time of its feature state and of its
                     elbow view (refresh_history.phases)
  route-heavy shape  (--shape routes or all) the same table for the demo data
                     with most orders moved to the campaign's route customers
                     (bench/route_heavy_data.sql): 1 % of the orders reaches
                     ~7,000 route customers at scale 10
and the rollup's costs: building it, and the trigger overhead of a 1 % (and,
at the smallest scale, a 100 %) reload of the lines.  Medians of several
runs; ratios from the same run.  The plans of the inner queries are printed
(auto_explain) so that parallel workers show.  Memory: the backend's peak
private memory (RssAnon, sampled every 2 ms) during one call.
Connection settings come from PGHOST/PGPORT/PGUSER/PGDATABASE.
"""
import argparse
import os
import re
import statistics
import subprocess
import threading
import time

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEGMENTATION = [
    ("customer_features", "SELECT * FROM customer_analytics.customer_features()"),
    ("kmeans_fit k=4", "SELECT customer_analytics.kmeans_fit(features, 4) FROM bench_features"),
    ("silhouette (exact)", "SELECT customer_analytics.silhouette(customer_analytics.kmeans_standardize(m, features),"
                           " customer_analytics.kmeans_predict(m, features)) FROM bench_features, bench_model"),
]

TARGETS = "SELECT * FROM customer_analytics.target_customers()"
SOURCE = "SET customer_analytics.use_rollup = off; "
ROLLUP = "SET customer_analytics.use_rollup = on; "

# one in {modulus} of the orders (1 % for 100), a different slice each run: their lines change
CHANGE = ("UPDATE cosmos_sync.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1"
          " WHERE abs(hashtext(order_number)) % {modulus} = {slice}")
# the changes timed per shape: (label, modulus, slice of run r); the 0.1 %
# slices count down from the top so that they are not among the 1 % ones
CHANGES = [("1%", 100, lambda run: run), ("0.1%", 1000, lambda run: 999 - run)]

# the scripts that load each shape, in order
DATA = {"demo": [os.path.join("test", "demo_data.sql")],
        "skewed": [os.path.join("bench", "skewed_data.sql")],
        "routes": [os.path.join("test", "demo_data.sql"), os.path.join("bench", "route_heavy_data.sql")]}
# what each realistic shape is, for its table's title
SHAPE_TITLES = {
    "skewed": "realistic shape (bench/skewed_data.sql: about 20 % of the customers order several times a"
              " week and hold most of the orders)",
    "routes": "route-heavy shape (test/demo_data.sql then bench/route_heavy_data.sql: about a quarter of the"
              " customers on the campaign's routes, holding most of the orders; 1 % of the orders reaches"
              " ~7,000 of them at scale 10)"}
# the issue 25 targets: plain REFRESH / refresh_campaign after each change
TARGETS_X = {"1%": 50, "0.1%": 200}


def load(scale, shape="demo"):
    for script in DATA[shape]:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"scale={scale}",
                        "-f", os.path.join(ROOT, script)],
                       check=True, stdout=subprocess.DEVNULL)


def shape_counts(cur):
    """Customers, customers with orders, orders, lines, and the share of the
    orders held by the top 20 % of the customers with orders."""
    cur.execute("DROP TABLE IF EXISTS bench_customer_orders;"
                " CREATE TEMP TABLE bench_customer_orders AS"
                " SELECT customer_code, count(*) AS n FROM cosmos_sync.sales_orders GROUP BY customer_code;"
                " ANALYZE bench_customer_orders")
    cur.execute("SELECT (SELECT count(*) FROM cosmos_sync.customers), count(*), sum(n),"
                "       (SELECT count(*) FROM cosmos_sync.sales_order_lines)"
                "  FROM bench_customer_orders")
    customers, with_orders, orders, lines = cur.fetchone()
    cur.execute("SELECT sum(n) FROM (SELECT n FROM bench_customer_orders ORDER BY n DESC LIMIT %s) t",
                (round(0.2 * with_orders),))
    top20 = float(cur.fetchone()[0]) / float(orders)
    return {"customers": customers, "customers with orders": with_orders, "sales_orders": orders,
            "sales_order_lines": lines, "top 20% share": top20}


def touched(cur, modulus, slice_):
    """The share of the customers with orders whose orders a change of this
    slice reaches (orders with lines), and the share of all orders they hold
    (bench_customer_orders from shape_counts())."""
    cur.execute("SELECT count(*)::float8 / (SELECT count(*) FROM bench_customer_orders),"
                "       sum(n)::float8 / (SELECT sum(n) FROM bench_customer_orders)"
                "  FROM bench_customer_orders c"
                " WHERE c.customer_code IN (SELECT o.customer_code FROM cosmos_sync.sales_orders o"
                "                            WHERE abs(hashtext(o.order_number)) %% %s = %s"
                "                              AND EXISTS (SELECT FROM cosmos_sync.sales_order_lines l"
                "                                           WHERE l.order_type = o.order_type"
                "                                             AND l.order_number = o.order_number))",
                (modulus, slice_))
    customers, orders = cur.fetchone()
    return customers or 0.0, orders or 0.0


def campaign_changes(cur, runs, label, modulus, slice_of, plain_refresh_ms):
    """Per run, two changes of different slices: after the first,
    refresh_campaign() alone (as a scheduled job runs it: the ratio against
    the plain REFRESH); after the second, the targets view alone by
    REFRESH MATERIALIZED VIEW CONCURRENTLY (the same statement as the plain
    REFRESH, incremental by itself) and then refresh_campaign(), which then
    finds its targets view refreshed by hand and looks further.  The shares
    the first changes reach, the recorded mode and the rows that differ
    from a recompute (both ways).  Needs the campaign 'bench' built and
    refreshed, and shape_counts() run."""
    shares = [touched(cur, modulus, slice_of(run)) for run in range(runs)]
    change, view_only, refresh, after_view = [], [], [], []
    for run in range(runs):
        change.append(timed_ms(cur, CHANGE.format(modulus=modulus, slice=slice_of(run))))
        refresh.append(timed_ms(cur, "SELECT customer_analytics.refresh_campaign('bench')"))
        # a quarter of the slices further on: as many orders, others
        cur.execute(CHANGE.format(modulus=modulus, slice=(slice_of(run) + modulus // 4) % modulus))
        view_only.append(timed_ms(cur, "REFRESH MATERIALIZED VIEW CONCURRENTLY bench_bi.bench_targets"))
        after_view.append(timed_ms(cur, "SELECT customer_analytics.refresh_campaign('bench')"))
    cur.execute("SELECT mode FROM customer_analytics.refresh_history"
                " WHERE kind = 'campaign' AND name = 'bench' ORDER BY id DESC LIMIT 1")
    mode = cur.fetchone()[0]
    cur.execute(ROLLUP + "SELECT (SELECT count(*) FROM (SELECT * FROM bench_bi.bench_targets EXCEPT ALL"
                "                                   SELECT * FROM customer_analytics.target_customers()) x)"
                "     + (SELECT count(*) FROM (SELECT * FROM customer_analytics.target_customers() EXCEPT ALL"
                "                              SELECT * FROM bench_bi.bench_targets) y)")
    differences = cur.fetchone()[0]
    view_ms, refresh_ms = statistics.median(view_only), statistics.median(refresh)
    return {"label": label,
            "customers touched": statistics.median(c for c, o in shares),
            "their orders": statistics.median(o for c, o in shares),
            "change ms": statistics.median(change), "view ms": view_ms, "refresh ms": refresh_ms,
            "refresh after view ms": statistics.median(after_view),
            "plain REFRESH ms": plain_refresh_ms, "mode": mode, "differences": differences}


SEG_VIEWS = ["bseg_model", "bseg_members", "bseg_profiles", "bseg_elbow"]
# the members view against customer_features() recomputed (the model's
# cluster aside), and the model against kmeans_fit() over the same rows
SEG_DIFFERENCES = (
    "WITH f AS MATERIALIZED (SELECT * FROM customer_analytics.customer_features() WHERE is_repeat),"
    " v AS (SELECT ROW(customer_code, visits, total_spend, ticket_size, skus, total_quantity, first_order,"
    "                  last_order, recency_days, tenure_days, span_days, quantity_per_visit, days_per_visit,"
    "                  skus_per_visit, diff, features)::text AS r FROM bench_bi.bseg_members),"
    " w AS (SELECT ROW(customer_code, visits, total_spend, ticket_size, skus, total_quantity, first_order,"
    "                  last_order, recency_days, tenure_days, span_days, quantity_per_visit, days_per_visit,"
    "                  skus_per_visit, diff, features)::text AS r FROM f)"
    " SELECT (SELECT count(*) FROM (SELECT r FROM v EXCEPT ALL SELECT r FROM w) a)"
    "      + (SELECT count(*) FROM (SELECT r FROM w EXCEPT ALL SELECT r FROM v) b)"
    "      + (SELECT count(*) FROM bench_bi.bseg_model m"
    "          WHERE m.model IS DISTINCT FROM (SELECT customer_analytics.kmeans_fit(features, 4,"
    "                                          '{\"n_init\": 10, \"seed\": 0}') FROM f))")


def segmentation_phases(cur):
    """The last refresh of segmentation 'bseg': its mode, and the ms of the
    feature state's phase and of the elbow view's (refresh_history.phases)."""
    cur.execute("SELECT mode, phases FROM customer_analytics.refresh_history"
                " WHERE kind = 'segmentation' AND name = 'bseg' ORDER BY id DESC LIMIT 1")
    mode, phases = cur.fetchone()
    state = sum(p["ms"] for p in phases or [] if p["phase"].startswith("refresh_segmentation("))
    elbow = sum(p["ms"] for p in phases or [] if "bseg_elbow" in p["phase"])
    return mode, state, elbow


def segmentation_changes(cur, runs):
    """The default segmentation (repeat customers, k = 4, the elbow for
    k = 1 .. 10) on the loaded data: a plain REFRESH of its four views (each
    computes the features), refresh_segmentation() with no change, and after
    each change of CHANGES (a different slice than the campaign's runs):
    refresh_segmentation() with the time of its feature state and of its
    elbow view, the recorded mode and the differences from a recompute."""
    cur.execute("SELECT customer_analytics.create_segmentation('bseg', 'bench_bi')")
    cur.execute("SELECT count(*) FROM bench_bi.bseg_members")
    seg = {"members": cur.fetchone()[0]}
    seg["plain REFRESH ms"] = median_ms(
        cur, "BEGIN; " + " ".join(f"REFRESH MATERIALIZED VIEW bench_bi.{v};" for v in SEG_VIEWS) + " COMMIT", runs)
    # what refresh_segmentation() did before 1.5's feature state: each view
    # REFRESHed CONCURRENTLY, computing the features itself
    seg["concurrent views ms"] = median_ms(
        cur, "BEGIN; " + " ".join(f"REFRESH MATERIALIZED VIEW CONCURRENTLY bench_bi.{v};" for v in SEG_VIEWS)
        + " COMMIT", runs)
    seg["unchanged refresh ms"] = median_ms(cur, "SELECT customer_analytics.refresh_segmentation('bseg')", runs)
    seg["changes"] = []
    for label, modulus, slice_of in CHANGES:
        refresh, state, elbow = [], [], []
        for run in range(runs):
            cur.execute(CHANGE.format(modulus=modulus, slice=(slice_of(run) + modulus // 2) % modulus))
            refresh.append(timed_ms(cur, "SELECT customer_analytics.refresh_segmentation('bseg')"))
            mode, state_ms, elbow_ms = segmentation_phases(cur)
            state.append(state_ms)
            elbow.append(elbow_ms)
        cur.execute(ROLLUP + SEG_DIFFERENCES)
        seg["changes"].append({"label": label, "refresh ms": statistics.median(refresh),
                               "state ms": statistics.median(state), "elbow ms": statistics.median(elbow),
                               "mode": mode, "differences": cur.fetchone()[0]})
    cur.execute("SELECT customer_analytics.drop_segmentation('bseg')")
    return seg


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


def median_ms(cur, sql, runs, setup=""):
    if setup:
        cur.execute(setup)
    cur.execute(sql)              # warm-up: caches, plan, hint bits
    if cur.description:
        cur.fetchall()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        cur.execute(sql)
        if cur.description:
            cur.fetchall()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def timed_ms(cur, sql):
    start = time.perf_counter()
    cur.execute(sql)
    return (time.perf_counter() - start) * 1000.0


def launch_refresh(cur, runs, modulus, slices):
    """refresh_campaign() of the launched campaign 'bench' after a change of
    one in {modulus} of the orders, alternately with its response views
    recomputed in full (forced by a REFRESH of bench_response by hand just
    before: what every refresh did before they followed the delta) and from
    the changed members (the delta path); a different slice of the orders
    each time (slices(i)).  Medians of each, the changed members, and the
    rows of the three response views that differ from a recompute after the
    last one."""
    out = {"full": [], "delta": [], "members": [], "modes": set()}
    for i in range(2 * runs):
        kind = ("full", "delta")[i % 2]
        cur.execute(CHANGE.format(modulus=modulus, slice=slices(i)))
        if kind == "full":
            cur.execute("REFRESH MATERIALIZED VIEW bench_bi.bench_response")
        out[kind].append(timed_ms(cur, "SELECT customer_analytics.refresh_campaign('bench')"))
        cur.execute("SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'bench'"
                    " ORDER BY id DESC LIMIT 1")
        mode = cur.fetchone()[0]
        last = mode.split("; ")[-1]
        out["modes"].add(last.split(" (")[0])
        if kind == "delta":
            # "response views from N changed members", or the reason the
            # refresh recomputed them in full after all (past a quarter of
            # the members changed, say): then the row says so
            members = last.rsplit("from ", 1)[-1].split(" ")[0] if "changed members" in last else ""
            out["members"].append(int(members) if members.isdigit() else re.sub(r"[0-9]+", "N", last))
    cur.execute(LAUNCH_DIFFERENCES)
    out["differences"] = cur.fetchone()[0]
    return {"full ms": statistics.median(out["full"]), "delta ms": statistics.median(out["delta"]),
            "changed members": (f"{statistics.median(out['members']):,.0f}"
                                if all(isinstance(m, int) for m in out["members"])
                                else "; ".join(sorted({str(m) for m in out["members"]}))),
            "differences": out["differences"],
            "modes": sorted(out["modes"])}


# the rows of bench's response, lift and monthly response views that differ
# from a recompute (the response of every member, campaign_response(), the
# months from monthly_revenue())
LAUNCH_DIFFERENCES = """
SELECT (SELECT count(*) FROM ((SELECT customer_code, arm, baseline_revenue, revenue, baseline_orders, orders,
                                      baseline_low_tickets, low_tickets FROM bench_bi.bench_response
                               EXCEPT ALL SELECT customer_code, arm, baseline_revenue, revenue, baseline_orders, orders,
                                      baseline_low_tickets, low_tickets
                                 FROM customer_analytics._campaign_member_response('bench', NULL, NULL))
                              UNION ALL
                              (SELECT customer_code, arm, baseline_revenue, revenue, baseline_orders, orders,
                                      baseline_low_tickets, low_tickets
                                 FROM customer_analytics._campaign_member_response('bench', NULL, NULL)
                               EXCEPT ALL SELECT customer_code, arm, baseline_revenue, revenue, baseline_orders, orders,
                                      baseline_low_tickets, low_tickets FROM bench_bi.bench_response)) d)
     + (SELECT count(*) FROM ((SELECT metric, stratum, lift, p_value, cuped_lift FROM bench_bi.bench_lift
                               EXCEPT ALL SELECT metric, stratum, lift, p_value, cuped_lift
                                 FROM customer_analytics.campaign_response('bench'))
                              UNION ALL
                              (SELECT metric, stratum, lift, p_value, cuped_lift FROM customer_analytics.campaign_response('bench')
                               EXCEPT ALL SELECT metric, stratum, lift, p_value, cuped_lift FROM bench_bi.bench_lift)) d)
     + (SELECT count(*) FROM (
         WITH x AS (SELECT r.month, m.arm, sum(r.revenue) AS revenue
                      FROM customer_analytics.campaign_launches l
                     CROSS JOIN LATERAL customer_analytics._launch_windows(l, NULL, NULL) w
                      JOIN customer_analytics.campaign_members m ON m.campaign = l.campaign
                      JOIN customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM customer_analytics.campaign_members
                                                                     WHERE campaign = 'bench'),
                                                              daterange(lower(w.baseline), upper(w.measure)), 'cosmos_sync') r
                        ON r.customer_code = m.customer_code
                     WHERE l.campaign = 'bench' GROUP BY 1, 2)
         (SELECT month, arm, revenue FROM bench_bi.bench_response_monthly EXCEPT ALL SELECT * FROM x)
         UNION ALL (SELECT * FROM x EXCEPT ALL SELECT month, arm, revenue FROM bench_bi.bench_response_monthly)) d)
"""


def peak_private_mb(setup, sql):
    """Peak RssAnon of a fresh backend while it runs sql, minus its level before."""
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(setup + "SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]

    def rss_anon():
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    try:
        before = rss_anon()
    except OSError:                # the server runs elsewhere: no reading
        conn.close()
        return None
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    cur.execute(sql)
    cur.fetchall()
    done.set()
    sampler.join()
    conn.close()
    return peak[0] - before


def inner_plans(cur, setup, sql):
    """The plans of the queries a function runs inside (auto_explain)."""
    conn = cur.connection
    del conn.notices[:]
    cur.execute("LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;"
                " SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice;"
                " SET auto_explain.log_format = text; SET client_min_messages = notice;")
    cur.execute(setup + sql)
    cur.fetchall()
    cur.execute("SET auto_explain.log_min_duration = -1")
    # (the statement's own plan, logged last, is the function scan around
    # them all: left out)
    plans = [n for n in conn.notices if ("Gather" in n or "Scan" in n)
             and not re.search(r"^Function Scan on target_customers", n, re.M)]
    del conn.notices[:]

    def duration(notice):
        m = re.search(r"duration: ([0-9.]+) ms", notice)
        return float(m.group(1)) if m else 0.0
    # the scan of the orders or lines is the plan that ran longest
    return max(plans, key=duration).strip() if plans else "(no plan logged)"


def reload_lines_ms(cur, percent):
    """One reload of percent % of the lines: delete them and insert them back."""
    cur.execute("BEGIN")
    cur.execute("CREATE TEMP TABLE reload AS SELECT * FROM cosmos_sync.sales_order_lines"
                f" WHERE abs(hashtext(order_number)) % 100 < {percent}")
    ms = timed_ms(cur, "DELETE FROM cosmos_sync.sales_order_lines l USING (SELECT DISTINCT order_type, order_number"
                       " FROM reload) r WHERE l.order_type = r.order_type AND l.order_number = r.order_number")
    ms += timed_ms(cur, "INSERT INTO cosmos_sync.sales_order_lines SELECT * FROM reload")
    cur.execute("ROLLBACK")
    return ms


def plain_view(cur):
    """The plain SQL as a real view, and a materialized view of it (plain REFRESH)."""
    with open(os.path.join(ROOT, "test", "notebook_targets.sql")) as f:
        sql = f.read()
    cur.execute(sql)
    cur.execute(sql.replace("CREATE TEMP VIEW notebook_targets", "CREATE VIEW public.bench_plain_targets"))
    cur.execute("CREATE MATERIALIZED VIEW public.bench_plain_mv AS SELECT * FROM public.bench_plain_targets")
    cur.execute("CREATE UNIQUE INDEX ON public.bench_plain_mv (customer_code)")


def run_scale(scale, runs):
    print(f"-- scale {scale}: loading demo data", flush=True)
    load(scale)
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("DROP SCHEMA IF EXISTS bench_bi CASCADE; DROP VIEW IF EXISTS public.bench_plain_targets CASCADE")
    cur.execute("SELECT customer_analytics.drop_rollup('cosmos_sync')"
                " FROM customer_analytics.rollups WHERE source_schema = 'cosmos_sync'")
    cur.execute("VACUUM ANALYZE")
    plain_view(cur)
    counts = {}
    for table in ("customers", "sales_orders", "sales_order_lines"):
        cur.execute(f"SELECT count(*) FROM cosmos_sync.{table}")
        counts[table] = cur.fetchone()[0]
    cur.execute(SOURCE + "SELECT count(*) FROM customer_analytics.target_customers()")
    counts["targets"] = cur.fetchone()[0]

    t = {}
    print(f"-- scale {scale}: full recompute, plain SQL, plain REFRESH", flush=True)
    t["floor"] = median_ms(cur, "SELECT count(*), sum(pretax_subtotal) FROM cosmos_sync.sales_order_lines", runs)
    t["full recompute"] = median_ms(cur, TARGETS, runs, SOURCE)
    t["targeting_funnel"] = median_ms(cur, "SELECT * FROM customer_analytics.targeting_funnel()", runs, SOURCE)
    t["plain SQL"] = median_ms(cur, "SELECT * FROM notebook_targets", runs)
    t["plain REFRESH"] = median_ms(cur, "REFRESH MATERIALIZED VIEW public.bench_plain_mv", runs)
    plans = {"full recompute": inner_plans(cur, SOURCE, TARGETS)}
    mem = {"full recompute": peak_private_mb(SOURCE, TARGETS)}
    t["reload 1% (no rollup)"] = reload_lines_ms(cur, 1)
    if scale == min_scale:
        t["reload 100% (no rollup)"] = reload_lines_ms(cur, 100)

    print(f"-- scale {scale}: the rollup", flush=True)
    t["rollup build"] = timed_ms(cur, "SELECT customer_analytics.enable_rollup('cosmos_sync')")
    cur.execute("VACUUM ANALYZE customer_analytics.order_rollup_1")
    cur.execute("SELECT pg_total_relation_size('customer_analytics.order_rollup_1')")
    counts["rollup MB"] = cur.fetchone()[0] / 2**20
    t["rollup"] = median_ms(cur, TARGETS, runs, ROLLUP)
    plans["rollup"] = inner_plans(cur, ROLLUP, TARGETS)
    mem["rollup"] = peak_private_mb(ROLLUP, TARGETS)
    t["reload 1% (rollup)"] = reload_lines_ms(cur, 1)
    if scale == min_scale:
        t["reload 100% (rollup)"] = reload_lines_ms(cur, 100)

    print(f"-- scale {scale}: incremental campaign refresh", flush=True)
    cur.execute("CREATE SCHEMA bench_bi")
    cur.execute("SELECT customer_analytics.create_campaign('bench', 'bench_bi')")
    cur.execute("SELECT customer_analytics.refresh_campaign('bench')")   # records the state
    shape = shape_counts(cur)
    shape["unchanged view ms"] = median_ms(cur, "REFRESH MATERIALIZED VIEW CONCURRENTLY bench_bi.bench_targets", runs)
    shape["unchanged refresh ms"] = median_ms(cur, "SELECT customer_analytics.refresh_campaign('bench')", runs)
    changes = [campaign_changes(cur, runs, *c, t["plain REFRESH"]) for c in CHANGES]
    t["1% change"] = changes[0]["change ms"]
    t["incremental view"] = changes[0]["view ms"]
    t["incremental"] = changes[0]["refresh ms"]
    cur.execute(ROLLUP + "SELECT count(*) FROM (SELECT * FROM bench_bi.bench_targets"
                " EXCEPT SELECT * FROM customer_analytics.target_customers()) x")
    counts["incremental differences"] = cur.fetchone()[0]
    counts["shape"] = dict(shape, targets=counts["targets"], changes=changes)
    # the plain view's numbers moved too: refresh it once before comparing
    cur.execute("REFRESH MATERIALIZED VIEW public.bench_plain_mv")
    t["notebook way"], counts["notebook targets"] = notebook_way_ms(runs)

    # a launched campaign (issue 23): the launch once (it cannot be repeated),
    # then refresh_campaign() with no order change before and after the launch
    # in the same minute: the difference is the four response views
    print(f"-- scale {scale}: launched campaign", flush=True)
    t["refresh before launch"] = median_ms(cur, "SELECT customer_analytics.refresh_campaign('bench')", runs)
    t["launch"] = timed_ms(cur, "SELECT customer_analytics.launch_campaign('bench', launched_on => '2025-12-01',"
                                " seed => 'bench')")
    cur.execute("SELECT treatment_members + holdout_members FROM customer_analytics.campaign_launches"
                " WHERE campaign = 'bench'")
    counts["members"] = cur.fetchone()[0]
    t["end_campaign"] = timed_ms(cur, "SELECT customer_analytics.end_campaign('bench', '2026-02-01')")
    t["refresh after launch"] = median_ms(cur, "SELECT customer_analytics.refresh_campaign('bench')", runs)
    # after a change: the response views in full (as every refresh did
    # before) and from the changed members, alternately in the same minutes
    counts["launch changes"] = {label: launch_refresh(cur, runs, modulus, lambda i, m=modulus: (m - 100 - i) if m == 1000 else 50 + i)
                                for label, modulus in (("1%", 100), ("0.1%", 1000))}
    t["response view"] = median_ms(cur, "REFRESH MATERIALIZED VIEW CONCURRENTLY bench_bi.bench_response", runs)
    t["lift view"] = median_ms(cur, "REFRESH MATERIALIZED VIEW CONCURRENTLY bench_bi.bench_lift", runs)
    t["campaign_response"] = median_ms(cur, "SELECT count(*) FROM customer_analytics.campaign_response('bench')", runs)

    # segmentation: features of the repeat customers, fitted once for silhouette
    cur.execute("CREATE TEMP TABLE bench_features AS SELECT features"
                "  FROM customer_analytics.customer_features() WHERE is_repeat")
    cur.execute("CREATE TEMP TABLE bench_model AS"
                "  SELECT customer_analytics.kmeans_fit(features, 4) AS m FROM bench_features")
    cur.execute("SELECT count(*) FROM bench_features")
    counts["repeat customers"] = cur.fetchone()[0]
    seg_runs = max(1, min(runs, 3))
    t.update({name: median_ms(cur, sql, seg_runs) for name, sql in SEGMENTATION})
    cur.execute("SELECT customer_analytics.drop_campaign('bench')")
    conn.close()
    return counts, t, plans, mem


def run_skewed(scale, runs, kind="skewed"):
    """A realistic shape at one scale: load its data (DATA[kind]), build
    the rollup, the plain view and the campaign, then time the changes."""
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    # before the load drops the source tables under them
    cur.execute("DROP SCHEMA IF EXISTS bench_bi CASCADE; DROP VIEW IF EXISTS public.bench_plain_targets CASCADE")
    cur.execute("SELECT customer_analytics.drop_rollup('cosmos_sync')"
                " FROM customer_analytics.rollups WHERE source_schema = 'cosmos_sync'")
    print(f"-- scale {scale}: loading the {kind} shape ({', '.join(DATA[kind])})", flush=True)
    start = time.perf_counter()
    load(scale, kind)
    generation_s = time.perf_counter() - start
    cur.execute("VACUUM ANALYZE")
    shape = shape_counts(cur)
    shape["generation s"] = generation_s
    shape["rollup build ms"] = timed_ms(cur, "SELECT customer_analytics.enable_rollup('cosmos_sync')")
    cur.execute("VACUUM ANALYZE")       # the rollup's tables too
    plain_view(cur)
    cur.execute(ROLLUP + "SELECT count(*) FROM customer_analytics.target_customers()")
    shape["targets"] = cur.fetchone()[0]
    print(f"-- scale {scale}: {kind} shape: plain REFRESH, campaign refresh after changes", flush=True)
    plain_refresh = median_ms(cur, "REFRESH MATERIALIZED VIEW public.bench_plain_mv", runs)
    cur.execute("CREATE SCHEMA bench_bi")
    cur.execute("SELECT customer_analytics.create_campaign('bench', 'bench_bi')")
    cur.execute("SELECT customer_analytics.refresh_campaign('bench')")   # records the state
    # what a refresh costs when nothing changed: REFRESH ... CONCURRENTLY of
    # the unchanged targets view, and refresh_campaign() with no order change
    shape["unchanged view ms"] = median_ms(cur, "REFRESH MATERIALIZED VIEW CONCURRENTLY bench_bi.bench_targets", runs)
    shape["unchanged refresh ms"] = median_ms(cur, "SELECT customer_analytics.refresh_campaign('bench')", runs)
    shape["changes"] = [campaign_changes(cur, runs, *c, plain_refresh) for c in CHANGES]
    cur.execute("SELECT customer_analytics.drop_campaign('bench')")
    print(f"-- scale {scale}: {kind} shape: segmentation refresh after changes", flush=True)
    shape["segmentation"] = segmentation_changes(cur, runs)
    conn.close()
    return shape


def pct(v):
    return "n/a" if v is None else f"{100 * v:.1f} %"


def shape_table(title, results, with_build):
    """One column per scale, one row per measure: the data's shape, then per
    change its reach, times, ratios, recorded mode and differences."""
    rows = [["customers (with orders)"] + [f"{s['customers']:,} ({s['customers with orders']:,})" for _, s in results],
            ["orders / lines"] + [f"{s['sales_orders']:,} / {s['sales_order_lines']:,}" for _, s in results],
            ["orders held by the top 20 % of customers with orders"] + [pct(s["top 20% share"]) for _, s in results],
            ["targets (demo campaign)"] + [f"{s['targets']:,}" for _, s in results]]
    if with_build:
        rows.append(["data generation s"] + [f"{s['generation s']:.1f}" for _, s in results])
        rows.append(["rollup build ms"] + [ms(s["rollup build ms"]) for _, s in results])
    rows.append(["plain REFRESH ms"] + [ms(s["changes"][0]["plain REFRESH ms"]) for _, s in results])
    rows.append(["no change: targets view REFRESH CONCURRENTLY ms"] + [ms(s.get("unchanged view ms")) for _, s in results])
    rows.append(["no change: refresh_campaign ms"] + [ms(s.get("unchanged refresh ms")) for _, s in results])
    for i, (label, _, _) in enumerate(CHANGES):
        ch = [s["changes"][i] for _, s in results]
        rows += [[f"{label} of orders changed: customers with orders touched"] + [pct(c["customers touched"]) for c in ch],
                 [f"{label}: orders those customers hold"] + [pct(c["their orders"]) for c in ch],
                 [f"{label}: the change (UPDATE) ms"] + [ms(c["change ms"]) for c in ch],
                 [f"{label}: targets view REFRESH CONCURRENTLY ms"] + [ms(c["view ms"]) for c in ch],
                 [f"{label}: refresh_campaign ms"] + [ms(c["refresh ms"]) for c in ch],
                 [f"{label}: refresh_campaign after the targets view's REFRESH CONCURRENTLY ms"]
                 + [ms(c["refresh after view ms"]) for c in ch],
                 [f"{label}: plain REFRESH / targets view"] + [ratio(c["plain REFRESH ms"], c["view ms"]) for c in ch],
                 [f"{label}: plain REFRESH / refresh_campaign [target >= {TARGETS_X[label]}x]"]
                 + [ratio(c["plain REFRESH ms"], c["refresh ms"]) for c in ch],
                 [f"{label}: target >= {TARGETS_X[label]}x met"]
                 + [met(c["plain REFRESH ms"], c["refresh ms"], TARGETS_X[label]) for c in ch],
                 [f"{label}: mode of the last refresh (refresh_history)"] + [c["mode"] for c in ch],
                 [f"{label}: differences from a recompute (EXCEPT ALL both ways)"] + [c["differences"] for c in ch]]
    segs = [s.get("segmentation") for _, s in results]
    if all(segs):
        rows += [["segmentation (repeat customers, k = 4, elbow k = 1 .. 10): members"] + [f"{g['members']:,}" for g in segs],
                 ["segmentation: plain REFRESH of its 4 views ms"] + [ms(g["plain REFRESH ms"]) for g in segs],
                 ["segmentation: its 4 views REFRESH CONCURRENTLY, each computing the features (refresh_segmentation"
                  " before the feature state) ms"] + [ms(g["concurrent views ms"]) for g in segs],
                 ["segmentation: no change: refresh_segmentation ms"] + [ms(g["unchanged refresh ms"]) for g in segs]]
        for i, (label, _, _) in enumerate(CHANGES):
            ch = [g["changes"][i] for g in segs]
            rows += [[f"{label}: refresh_segmentation ms"] + [ms(c["refresh ms"]) for c in ch],
                     [f"{label}: of which the feature state ms"] + [ms(c["state ms"]) for c in ch],
                     [f"{label}: of which the elbow view ms"] + [ms(c["elbow ms"]) for c in ch],
                     [f"{label}: plain REFRESH of the 4 views / refresh_segmentation"
                      + (" [target >= 5x]" if label == "1%" else "")]
                     + [ratio(g["plain REFRESH ms"], c["refresh ms"]) for g, c in zip(segs, ch)],
                     [f"{label}: segmentation mode (refresh_history)"] + [c["mode"] for c in ch],
                     [f"{label}: segmentation differences from a recompute"] + [c["differences"] for c in ch]]
    table(title, ["measure"] + [f"scale {scale}" for scale, _ in results], rows)


def met(a, b, target):
    return "n/a" if a is None or not b else ("yes" if a / b >= target else "no")


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def ms(v):
    return "n/a" if v is None else f"{v:.0f}"


def mb(v):
    return "n/a" if v is None else f"{v:.1f}"


def table(title, columns, rows):
    """One markdown table under its title."""
    print()
    print(title)
    print()
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")


def main():
    global min_scale
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1 10 30")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--shape", default="all",
                    help="demo, skewed (the realistic shape, bench/skewed_data.sql), routes (the route-heavy"
                         " shape, bench/route_heavy_data.sql), both (demo and skewed), all, or a list: 'demo routes'")
    args = ap.parse_args()
    scales = args.scales.split()
    min_scale = scales[0]
    shapes = {"both": {"demo", "skewed"}, "all": {"demo", "skewed", "routes"}}.get(args.shape.strip(),
                                                                                   set(args.shape.split()))
    if not shapes or not shapes <= {"demo", "skewed", "routes"}:
        ap.error(f"--shape: demo, skewed, routes, both or all, not {args.shape!r}")

    results = []
    for scale in scales if "demo" in shapes else []:
        try:
            results.append((scale,) + run_scale(scale, args.runs))
        except (psycopg2.Error, subprocess.CalledProcessError) as e:
            # a scale that cannot run (disk, memory) must not lose the others
            print(f"-- scale {scale} failed: {e}", flush=True)
    realistic = {}
    for shape in [s for s in ("skewed", "routes") if s in shapes]:
        realistic[shape] = []
        for scale in scales:
            try:
                realistic[shape].append((scale, run_skewed(scale, args.runs, shape)))
            except (psycopg2.Error, subprocess.CalledProcessError) as e:
                print(f"-- scale {scale}, {shape} shape, failed: {e}", flush=True)

    print()
    print(f"## customer_analytics benchmark: medians of {args.runs} runs after one warm-up; ratios within the same run")
    if results:
        table("times in ms",
              ["scale", "customers", "orders", "lines", "targets", "floor", "full recompute", "rollup", "plain SQL",
               "plain REFRESH", "incremental: targets view (1% orders changed)", "refresh_campaign (both views)",
               "notebook way"],
              [[scale, f"{c['customers']:,}", f"{c['sales_orders']:,}", f"{c['sales_order_lines']:,}",
                f"{c['targets']:,}", ms(t["floor"]), ms(t["full recompute"]), ms(t["rollup"]), ms(t["plain SQL"]),
                ms(t["plain REFRESH"]), ms(t["incremental view"]), ms(t["incremental"]), ms(t["notebook way"])]
               for scale, c, t, plans, mem in results])
        ratios = []
        for scale, c, t, plans, mem in results:
            nb = ratio(t["notebook way"], t["full recompute"])
            if t["notebook way"] is not None and c["notebook targets"] != c["targets"]:
                nb += f" (it found {c['notebook targets']} targets)"
            ratios.append([scale, ratio(t["full recompute"], t["floor"]), ratio(t["plain SQL"], t["full recompute"]),
                           ratio(t["plain SQL"], t["rollup"]), nb, ratio(t["plain REFRESH"], t["incremental view"]),
                           ratio(t["plain REFRESH"], t["incremental"])])
        table("ratios (target in brackets)",
              ["scale", "full recompute / floor [<= 1.3x]", "plain SQL / full recompute [>= 2x]",
               "plain SQL / rollup [>= 10x]", "notebook way / full recompute [>= 10x]",
               "plain REFRESH / incremental targets view [>= 50x]", "plain REFRESH / refresh_campaign"],
              ratios)
        table("the rollup: its cost, the ERP's write cost, memory",
              ["scale", "rollup build ms", "rollup MB", "1% of orders changed (UPDATE) ms",
               "reload 1% of lines, no rollup ms", "with rollup ms", "reload 100%, no rollup ms", "with rollup ms",
               "peak memory MB: full recompute", "rollup", "incremental refresh differences"],
              [[scale, ms(t["rollup build"]), f"{c['rollup MB']:.0f}", ms(t["1% change"]),
                ms(t["reload 1% (no rollup)"]), ms(t["reload 1% (rollup)"]),
                ms(t.get("reload 100% (no rollup)")), ms(t.get("reload 100% (rollup)")),
                mb(mem["full recompute"]), mb(mem["rollup"]), c["incremental differences"]]
               for scale, c, t, plans, mem in results])
        table("segmentation (repeat customers, 11 features; kmeans_fit: k = 4, k-means++, n_init 10;"
              " medians of up to 3 runs)",
              ["scale", "repeat customers", "customer_features ms", "kmeans_fit ms", "silhouette (exact) ms"],
              [[scale, f"{c['repeat customers']:,}", ms(t["customer_features"]), ms(t["kmeans_fit k=4"]),
                ms(t["silhouette (exact)"])]
               for scale, c, t, plans, mem in results])
        table("launched campaign (issue 23): launch_campaign (once), then refresh_campaign() with no order change"
              " before and after the launch (after it, the refresh also keeps the four response views), medians",
              ["scale", "members", "launch ms", "end_campaign ms", "refresh before launch ms",
               "refresh after launch ms", "REFRESH _response ms", "REFRESH _lift ms", "campaign_response() ms"],
              [[scale, f"{c['members']:,}", ms(t["launch"]), ms(t["end_campaign"]), ms(t["refresh before launch"]),
                ms(t["refresh after launch"]), ms(t["response view"]), ms(t["lift view"]),
                ms(t["campaign_response"])]
               for scale, c, t, plans, mem in results])
        table("launched campaign (issue 23): refresh_campaign() after a change of 1 % and 0.1 % of the orders (rollup on),"
              " the response views recomputed in full (a REFRESH of <name>_response by hand first) and from the"
              " changed members (the delta path), alternately; medians",
              ["scale", "change", "members", "changed members (delta path)", "response views in full ms", "delta path ms",
               "ratio", "differences"],
              [[scale, label, f"{c['members']:,}", ch["changed members"], ms(ch["full ms"]), ms(ch["delta ms"]),
                f"{ch['full ms'] / ch['delta ms']:.1f}x", ch["differences"]]
               for scale, c, t, plans, mem in results for label, ch in c["launch changes"].items()])
        shape_table("demo shape (test/demo_data.sql): the campaign's refresh by the size of the change"
                    " (medians of the runs; the 1% rows are the runs of the tables above)",
                    [(scale, c["shape"]) for scale, c, t, plans, mem in results], False)
    for shape, shape_results in realistic.items():
        if shape_results:
            shape_table(SHAPE_TITLES[shape] + ": the campaign's refresh by the size of the change"
                        " (medians of the runs)", shape_results, True)
    print()
    for scale, c, t, plans, mem in results:
        for name, plan in plans.items():
            print(f"plan of the order scan inside target_customers(), {name}, scale {scale}:")
            print(plan)
            print()


if __name__ == "__main__":
    main()
