#!/usr/bin/python3
"""Bounded fuzz run of every SQL-callable function and aggregate of the extension.

Run by scripts/test.sh against the test cluster (libpq environment:
PGHOST/PGPORT/PGUSER), and with bigger numbers by `make fuzz`
(scripts/fuzz.sh).  Creates database ca_fuzz, loads the demo data at a small
scale plus a few deliberately odd source schemas, builds a campaign, a
segmentation and a rollup, then calls every function and aggregate of the
extension (found in the catalogs: pg_depend 'e' on the extension; functions
with `internal` arguments and trigger functions cannot be called from SQL and
are skipped) with arguments from a seeded generator: valid values with one
hostile argument, and fully random combinations (NULLs, empty, unbounded,
infinite and ancient ranges, huge arrays and texts, NaN and Infinity,
malformed models...).  Aggregates run over tables, VALUES lists and GROUP BY,
sometimes with parallel plans forced.

The budget is split in two runs: half the calls (and half the time) as the
superuser, the rest logged in as a non-superuser analyst with the README's grants
for one (SELECT on the source tables, CREATE on a view schema of its own;
USAGE on customer_analytics is PUBLIC's), a reader of the demo source's
rollup, who owns a campaign and a segmentation there: its calls reach its own
definitions (and, refused, the superuser's).  Crashes, internal errors and
hangs count the same way in both, and every function is called in each.

Every call runs in its own transaction with a statement_timeout and is rolled
back, so the side-effecting functions (create_campaign, drop_rollup...) cannot
change what the next call sees.  Counts calls, results, user errors by
SQLSTATE class, timeouts, internal errors (XX000), hangs (a call that outlives
its statement_timeout by FUZZ_HANG_SECONDS) and crashes (the connection drops,
or the server restarts).  Each internal error, hang or crash is printed once
per function and message with the SQL that reproduces it.

Environment: FUZZ_SEED (default 12; "random" picks one and prints it),
FUZZ_CALLS (default 3000), FUZZ_SECONDS (default 60: the superuser's run
gets half of both, the analyst's what is left; each call loop stops at
whichever comes first), FUZZ_TIMEOUT_MS (statement_timeout, default 2000),
FUZZ_SCALE (demo data scale, default 0.03), FUZZ_KEEP=1 keeps the database.

Prints "ok - ..." / "not ok - ..." lines; exits 1 on any failure.
"""
import os
import random
import re
import subprocess
import sys
import threading
import time

import psycopg2
import psycopg2.extensions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DB = os.environ.get("FUZZ_DB", "ca_fuzz")
ROLE = "ca_fuzz_analyst"
EXT = "customer_analytics"

seed_env = os.environ.get("FUZZ_SEED", "12")
SEED = random.SystemRandom().randrange(1, 2**31) if seed_env == "random" else int(seed_env)
MAX_CALLS = int(os.environ.get("FUZZ_CALLS", "3000"))
MAX_SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))
TIMEOUT_MS = int(os.environ.get("FUZZ_TIMEOUT_MS", "2000"))
HANG_SECONDS = float(os.environ.get("FUZZ_HANG_SECONDS", "10"))
SCALE = os.environ.get("FUZZ_SCALE", "0.03")
VERBOSE = os.environ.get("FUZZ_VERBOSE") == "1"  # print every error

# memory caps: no generated call may need more than a few hundred MB
# (cells of monthly revenue = customers or groups x months of the window)
MAX_MONTH_CELLS = 2_000_000

passed = failed = 0


def check(ok, what):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(("ok - " if ok else "not ok - ") + what, flush=True)


def lit(s):
    """An SQL string literal on one printable line (E'' escapes for control characters)."""
    if not any(ord(c) < 32 or c in "\\\x7f" for c in s):
        return "'" + s.replace("'", "''") + "'"
    return "E'" + "".join("\\\\" if c == "\\" else "''" if c == "'" else
                          "\\x%02x" % ord(c) if ord(c) < 32 or ord(c) == 0x7f else c for c in s) + "'"


# --------------------------------------------------------------------------
# fixture
# --------------------------------------------------------------------------

FIXTURE_SQL = r"""
-- a source with date-typed order dates, no rollup
CREATE SCHEMA fz_date;
CREATE TABLE fz_date.customers AS SELECT * FROM cosmos_sync.customers;
CREATE TABLE fz_date.sales_orders AS
  SELECT order_type, order_number, customer_code, delivery_route,
         CASE WHEN order_date ~ '^\d{8}$' THEN to_date(order_date, 'YYYYMMDD') END AS order_date,
         confirmed_code
    FROM cosmos_sync.sales_orders;
CREATE TABLE fz_date.sales_order_lines AS SELECT * FROM cosmos_sync.sales_order_lines;
-- a source with bad data: malformed confirmed dates, NULL dates, odd amounts
CREATE SCHEMA fz_bad;
CREATE TABLE fz_bad.customers AS SELECT * FROM cosmos_sync.customers;
INSERT INTO fz_bad.customers VALUES (NULL, NULL, NULL, NULL, NULL, NULL),
  ('', '', '', '', 'garbage', ''), ('x''; --', E'\u00e9\u4e2d', 'K1', NULL, '99999999', NULL);
CREATE TABLE fz_bad.sales_orders AS SELECT * FROM cosmos_sync.sales_orders;
INSERT INTO fz_bad.sales_orders VALUES
  ('SO', 'FZ1', (SELECT min(customer_code) FROM cosmos_sync.customers), 'K1', '2025-1-5', 'Y'),
  ('SO', 'FZ2', (SELECT min(customer_code) FROM cosmos_sync.customers), 'K1', NULL, 'Y'),
  ('SO', 'FZ3', (SELECT min(customer_code) FROM cosmos_sync.customers), 'K1', '99991231', 'Y'),
  ('SO', 'FZ4', NULL, NULL, '20250230', 'Y'),
  ('SO', 'FZ5', 'x''; --', 'K1', '00010101', 'Y');
CREATE TABLE fz_bad.sales_order_lines AS SELECT * FROM cosmos_sync.sales_order_lines;
INSERT INTO fz_bad.sales_order_lines VALUES
  ('SO', 'FZ3', 1, NULL, -1e9, 9999999999.99), ('SO', 'FZ5', 1, 'P', NULL, -9999999999.99);
-- a source with the right tables and no rows
CREATE SCHEMA fz_empty;
CREATE TABLE fz_empty.customers AS SELECT * FROM cosmos_sync.customers WITH NO DATA;
CREATE TABLE fz_empty.sales_orders AS SELECT * FROM cosmos_sync.sales_orders WITH NO DATA;
CREATE TABLE fz_empty.sales_order_lines AS SELECT * FROM cosmos_sync.sales_order_lines WITH NO DATA;
-- a source that breaks the data contract
CREATE SCHEMA fz_broken;
CREATE TABLE fz_broken.customers (customer_code int, trade_name text);
CREATE TABLE fz_broken.sales_orders (order_type text, order_number text, customer_code int,
  delivery_route int, order_date int, confirmed_code boolean);
INSERT INTO fz_broken.sales_orders VALUES ('SO', '1', 1, 1, 20250101, true);
CREATE SCHEMA "Fz Odd;Name";
CREATE TABLE "Fz Odd;Name".customers AS SELECT * FROM cosmos_sync.customers;
CREATE TABLE "Fz Odd;Name".sales_orders AS SELECT * FROM cosmos_sync.sales_orders;
CREATE TABLE "Fz Odd;Name".sales_order_lines AS SELECT * FROM cosmos_sync.sales_order_lines;

-- rows for the aggregates (real tables, so parallel plans can scan them)
CREATE SCHEMA fz;
CREATE TABLE fz.agg_clean AS
SELECT i AS id, i % 7 AS g,
       date '2025-01-01' + (hashint4(i) & 1023) % 400 AS d,
       round(((hashint4(i + 1) & 65535) / 10.0)::numeric, 2) AS n,
       ((hashint4(i + 2) & 255))::numeric AS q,
       ARRAY['P' || (hashint4(i + 3) & 63), 'P' || (hashint4(i + 4) & 63)] AS codes,
       ARRAY(SELECT ((hashint4(i * 16 + j) & 65535) / 6553.6 + (i % 4) * 10)::float8
               FROM generate_series(1, 11) j) AS vec,
       i % 4 AS cl
  FROM generate_series(1, 20000) i;
CREATE TABLE fz.agg_rows AS
SELECT id, g,
       CASE id % 23 WHEN 0 THEN NULL WHEN 1 THEN 'infinity'::date WHEN 2 THEN '-infinity'::date
                    WHEN 3 THEN '4713-01-01 BC'::date WHEN 4 THEN '5874897-12-31'::date
                    WHEN 5 THEN '0001-01-01'::date ELSE d END AS d,
       CASE id % 19 WHEN 0 THEN NULL WHEN 1 THEN 'NaN'::numeric WHEN 2 THEN -n
                    WHEN 3 THEN 1e300 WHEN 4 THEN 'Infinity'::numeric WHEN 5 THEN '-Infinity'::numeric
                    WHEN 6 THEN 0.000000000000000000001 ELSE n END AS n,
       CASE id % 17 WHEN 0 THEN NULL WHEN 1 THEN 'NaN'::numeric WHEN 2 THEN -1e100 ELSE q END AS q,
       CASE id % 13 WHEN 0 THEN NULL WHEN 1 THEN '{}'::text[] WHEN 2 THEN '{NULL}'::text[]
                    WHEN 3 THEN ARRAY[repeat('p', 3000), ''] WHEN 4 THEN '{{a,b},{c,d}}'::text[]
                    ELSE codes END AS codes,
       CASE id % 29 WHEN 0 THEN NULL WHEN 1 THEN '{}'::float8[] WHEN 2 THEN vec[1:3]
                    WHEN 3 THEN vec || 'NaN'::float8 WHEN 4 THEN array_replace(vec, vec[1], 'Infinity')
                    WHEN 5 THEN array_replace(vec, vec[2], NULL) WHEN 6 THEN array_fill(1e308::float8, ARRAY[11])
                    ELSE vec END AS vec,
       CASE id % 31 WHEN 0 THEN NULL WHEN 1 THEN -1 WHEN 2 THEN 2147483647 ELSE cl END AS cl
  FROM fz.agg_clean;
CREATE TABLE fz.models AS
SELECT 1 AS id, customer_analytics.kmeans_fit(vec, 4, '{"n_init": 2}') AS model
  FROM fz.agg_clean WHERE id <= 2000;
ANALYZE fz.agg_clean; ANALYZE fz.agg_rows; ANALYZE fz.models;

CREATE SCHEMA bi;
SET client_min_messages = warning;
SELECT customer_analytics.enable_rollup('cosmos_sync', readers => '{ca_fuzz_analyst}');
SELECT name FROM customer_analytics.create_campaign('fz_c1', 'bi', readers => '{ca_fuzz_analyst}');
SELECT name FROM customer_analytics.create_campaign('fz_c2', 'bi', source_schema => 'fz_date',
       route_source => 'order', revenue_window => '[2025-01-01,2025-12-31]');
SELECT name FROM customer_analytics.create_segmentation('fz_s1', 'bi', k => 3, k_to => 4,
       options => '{"n_init": 2}', silhouette_sample => 200);

-- the non-superuser, an analyst with the README's grants: SELECT on the
-- source tables (the demo source, and of fz_date only route K2's customers,
-- by row-level security, and no lines), CREATE on a view schema of its own
-- (fz_an, where it builds a campaign and a segmentation: ANALYST_SQL), and
-- reads of the fixture's tables and the superuser's views
-- (USAGE on customer_analytics: PUBLIC's)
GRANT USAGE ON SCHEMA cosmos_sync, fz_date, fz, bi TO ca_fuzz_analyst;
CREATE SCHEMA fz_an;
GRANT USAGE, CREATE ON SCHEMA fz_an, customer_analytics_state TO ca_fuzz_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA cosmos_sync TO ca_fuzz_analyst;
GRANT SELECT ON fz_date.customers, fz_date.sales_orders TO ca_fuzz_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA fz TO ca_fuzz_analyst;
ALTER TABLE fz_date.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY k2 ON fz_date.customers TO ca_fuzz_analyst USING (delivery_route = 'K2');
"""

# what the analyst builds, logged in as itself
ANALYST_SQL = r"""
SET client_min_messages = warning;
SELECT name FROM customer_analytics.create_campaign('fz_a1', 'fz_an', source_schema => 'cosmos_sync');
SELECT name FROM customer_analytics.create_segmentation('fz_as1', 'fz_an', k => 3, k_to => 4,
       options => '{"n_init": 2}', silhouette_sample => 200, source_schema => 'cosmos_sync');
"""

# The names valid arguments use, per run: each role mostly calls with its
# own definitions, sometimes with the other's.
PROFILES = {
    "superuser": {"campaigns": ["fz_c1", "fz_c2"], "segmentations": ["fz_s1"], "view_schema": "bi",
                  "new_campaign": "fz_new", "new_segmentation": "fz_s2", "views": "fz_c1"},
    "analyst": {"campaigns": ["fz_a1", "fz_a1", "fz_c1"], "segmentations": ["fz_as1", "fz_as1", "fz_s1"],
                "view_schema": "fz_an", "new_campaign": "fz_new", "new_segmentation": "fz_s2", "views": "fz_a1"},
}
P = PROFILES["superuser"]

# --------------------------------------------------------------------------
# argument generators: each returns an SQL expression of the type
# --------------------------------------------------------------------------

SCHEMAS = ["cosmos_sync", "fz_date", "fz_bad", "fz_empty", "fz_broken", "Fz Odd;Name",
           "no_such_schema", "public", "pg_catalog", "information_schema", EXT, "bi", "fz",
           "pg_toast", "COSMOS_SYNC", " cosmos_sync", '"cosmos_sync"', "cosmos_sync.customers"]
HOSTILE_TEXT = ["", " ", "x", "'", "''", '"', '";DROP TABLE fz.models;--', "'); DROP SCHEMA fz CASCADE; --",
                "a\tb\nc\rd", "\x01\x02\x1f\x7f", "é中文🙂", "\u202e\u200b", "%s%n%d", "\\", "\\x00",
                "$1", "$$", "s" * 63, "s" * 64, "s" * 200, "NULL", "null", "*", "..", ".", "a.b.c",
                "fz_c1", "fz_c2", "fz_s1", "fz_new", "K1", "customer", "order", "repeat", "all", "one_visit",
                "*/5 * * * *", "0 6 * * *", "bogus cron", "INSERT", "DELETE", "UPDATE", "TRUNCATE",
                "old_table", "new_table", "customer_code", "customer_code, order_number",
                "20250101", "2025-01-01", "20251301", "00000000", "99991231", "-1", "1e9", "NaN"]
HUGE_TEXT = ["repeat('x', 1000000)", "repeat('é', 100000)", "repeat('a''b', 10000)",
             "repeat(';', 65536)"]

RANGES_VALID = ["[2025-01-01,2025-12-31]", "[2025-09-01,2026-01-07]", "[2025-09-15,2026-01-07]",
                "[2025-08-31,2025-10-30]", "[2025-10-31,2025-12-31]", "[2024-01-01,2026-12-31]",
                "[2025-06-01,2025-06-30]"]
RANGES_HOSTILE = ["empty", "(,)", "[2025-01-01,)", "(,2025-01-01]", "[-infinity,infinity]",
                  "[-infinity,2025-01-01]", "[2025-01-01,infinity]", "[infinity,infinity]",
                  "[-infinity,-infinity]", "[2025-06-01,2025-06-01]", "(2025-06-01,2025-06-02)",
                  "[0001-01-01,9999-12-31]", "[4713-01-01 BC,2025-01-01)", "[4713-01-01 BC,4713-01-02 BC]",
                  "[0001-01-01 BC,0001-01-01]", "[2025-01-01,5874897-12-30]", "[5874897-12-01,5874897-12-30]",
                  "[4713-01-01 BC,4713-04-01 BC]", "[4000-01-15 BC,4000-03-15 BC]", "[0001-11-01 BC,0001-02-01]",
                  "[2025-01-01,5874897-12-31]",  # the upper bound's successor is out of range: PG rejects it
                  "[1900-01-01,2100-12-31]", "[2025-12-31,2025-12-31]", "[2025-01-31,2025-02-01)",
                  "[2024-02-29,2024-03-01]", "[2025-12-31,2026-01-01)", "[1,2025-12-31]",
                  "[2025-12-31,2025-01-01]",  # reversed: PG must reject it (22000)
                  "[2025-01-01,2025-12-31", "nonsense"]
DATES = ["2026-01-07", "2025-12-31", "2025-01-01", "infinity", "-infinity", "4713-01-01 BC",
         "5874897-12-31", "0001-01-01", "9999-12-31", "2024-02-29", "1970-01-01", "2025-02-30"]
NUMERICS = ["0", "1", "-1", "1000", "3000", "30", "100", "99.999", "-30", "NaN", "Infinity", "-Infinity",
            "1e300", "-1e300", "1e-300", "0.0000001", "1e100000", "123456789012345678901234567890.123456789"]
INTS = ["0", "1", "2", "3", "4", "10", "-1", "-2147483648", "2147483647", "100000", "40", "1000"]
BIGINTS = ["0", "1", "-1", "9223372036854775807", "-9223372036854775808", "42", "4294967296"]
FLOATS = ["0", "1", "-1", "'NaN'", "'Infinity'", "'-Infinity'", "1e308", "-0", "5e-324"]
TEXT_ARRAYS = ["NULL::text[]", "'{}'::text[]", "'{NULL}'::text[]", "'{K1,NULL}'::text[]", "'{\"\"}'::text[]",
               "'{{K1,K2},{PS,T1}}'::text[]", "'[5:7]={K1,K2,PS}'::text[]", "'{K1,K1,K1}'::text[]",
               "'{ca_fuzz_analyst}'::text[]", "'{postgres}'::text[]", "'{public}'::text[]", "'{PUBLIC}'::text[]",
               "'{no_such_role}'::text[]", "'{\"x; DROP ROLE postgres\"}'::text[]", "ARRAY[repeat('r', 100000)]",
               "(SELECT array_agg(customer_code) FROM cosmos_sync.customers)",
               "(SELECT array_agg(customer_code ORDER BY customer_code DESC) FROM cosmos_sync.customers)",
               "(SELECT array_agg(i::text) FROM generate_series(1, 100000) i)",
               "array_fill('K1'::text, ARRAY[1000000])",
               "array_fill(NULL::text, ARRAY[100000])",
               "(SELECT array_agg(lpad(i::text, 7, '0')) FROM generate_series(1, 10000) i)",
               "'{fz_c1_targets,fz_c1_monthly}'::text[]", "'{pg_class}'::text[]", "'{customers}'::text[]"]
CODE_ARRAYS_VALID = ["(SELECT array_agg(customer_code) FROM (SELECT customer_code FROM cosmos_sync.customers "
                     "ORDER BY customer_code LIMIT 50) c)", "'{}'::text[]",
                     "(SELECT array_agg(customer_code) FROM cosmos_sync.customers WHERE delivery_route = 'K1')"]


def q_date(s):
    return f"{lit(s)}::date"


def q_range(s):
    return f"{lit(s)}::daterange"


def rand_date(rng):
    return (f"date '2025-01-01' + {rng.randint(-400000, 400000)}" if rng.random() < 0.3
            else q_date(f"{rng.randint(1, 9999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"))


def rand_range(rng):
    a, b = sorted([rng.randint(1900, 2100), rng.randint(1900, 2100)])
    lo = f"{a:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    hi = f"{b:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if hi < lo:
        lo, hi = hi, lo
    return q_range(rng.choice("[(") + lo + "," + hi + rng.choice("])"))


def rand_float_array(rng, n=None):
    n = rng.choice([0, 1, 2, 3, 10, 11, 11, 11, 12, 100]) if n is None else n
    vals = []
    for _ in range(n):
        r = rng.random()
        vals.append("NULL" if r < 0.03 else rng.choice(["NaN", "Infinity", "-Infinity", "1e308", "-1e308"])
                    if r < 0.1 else repr(rng.uniform(-1e3, 1e3)))
    return "'{" + ",".join(vals) + "}'::float8[]"


def rand_json(rng, depth=0):
    r = rng.random()
    if depth > 2 or r < 0.3:
        return rng.choice(["null", "true", "0", "-1", "1e400", "-1e-400", "2147483648", "\"x\"", "\"NaN\"",
                           "[]", "{}", "\"\"", "1.5", "\"Infinity\""])
    if r < 0.6:
        return "[" + ",".join(rand_json(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    keys = ["mean", "scale", "centroids", "centroids_original", "k", "n_init", "max_iter", "tol", "seed",
            "init", "sizes", "inertia", "x", ""]
    return "{" + ",".join(f"\"{rng.choice(keys)}\": {rand_json(rng, depth + 1)}"
                          for _ in range(rng.randint(0, 4))) + "}"


MODEL = "(SELECT model FROM fz.models)"
MODEL_HOSTILE = [
    "'{}'::jsonb", "'[]'::jsonb", "'null'::jsonb", "'1'::jsonb", "'\"model\"'::jsonb",
    f"{MODEL} - 'centroids'", f"{MODEL} - 'mean'", f"{MODEL} - 'scale'",
    f"jsonb_set({MODEL}, '{{centroids}}', '[]')", f"jsonb_set({MODEL}, '{{centroids}}', '[[]]')",
    f"jsonb_set({MODEL}, '{{centroids}}', '\"x\"')", f"jsonb_set({MODEL}, '{{centroids,0}}', '[1,2]')",
    f"jsonb_set({MODEL}, '{{centroids,0,0}}', '\"NaN\"')", f"jsonb_set({MODEL}, '{{centroids,0,0}}', 'null')",
    f"jsonb_set({MODEL}, '{{centroids,0,0}}', '1e400')", f"jsonb_set({MODEL}, '{{scale}}', '[0,0,0,0,0,0,0,0,0,0,0]')",
    f"jsonb_set({MODEL}, '{{scale,0}}', '0')", f"jsonb_set({MODEL}, '{{mean}}', '[1]')",
    f"jsonb_set({MODEL}, '{{mean}}', '{{}}')", f"jsonb_set({MODEL}, '{{k}}', '1000000')",
    f"jsonb_set({MODEL}, '{{sizes}}', '[-1]')", f"jsonb_set({MODEL}, '{{centroids}}', "
    "(SELECT jsonb_agg(to_jsonb(array_fill(0::float8, ARRAY[11]))) FROM generate_series(1, 100000)))",
    f"jsonb_set({MODEL}, '{{mean}}', to_jsonb(array_fill(0::float8, ARRAY[1000000])))",
    "(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 100000) i)",
]
OPTIONS_HOSTILE = ["'{}'::jsonb", "'[]'::jsonb", "'null'::jsonb", "'{\"n_init\": 0}'", "'{\"n_init\": -1}'",
                   "'{\"n_init\": 2147483648}'", "'{\"n_init\": 1.5}'", "'{\"n_init\": \"10\"}'",
                   "'{\"max_iter\": 0}'", "'{\"max_iter\": -5}'", "'{\"max_iter\": 1e12}'", "'{\"tol\": -1}'",
                   "'{\"tol\": 1e400}'", "'{\"seed\": -1}'", "'{\"seed\": 1e30}'", "'{\"seed\": \"x\"}'",
                   "'{\"init\": []}'", "'{\"init\": [[]]}'", "'{\"init\": [[1,2],[3]]}'", "'{\"init\": \"k-means++\"}'",
                   "'{\"init\": [[1e400]]}'", "'{\"unknown\": 1}'", "'{\"n_init\": 1, \"n_init\": 2}'",
                   "(SELECT jsonb_build_object('init', jsonb_agg(to_jsonb(array_fill(0::float8, ARRAY[11])))) "
                   "FROM generate_series(1, 4))",
                   "(SELECT jsonb_build_object('init', jsonb_agg(to_jsonb(array_fill(i::float8, ARRAY[11])))) "
                   "FROM generate_series(1, 3) i)",
                   "jsonb_build_object('init', to_jsonb(array_fill(0::float8, ARRAY[100000, 1])))"]

COMPOSITE_SOURCE = {
    f"{EXT}.campaigns": ("campaigns", "name", ["fz_c1", "fz_c2"], {
        "view_schema": ["pg_catalog", "no_such_schema", "bi", "", "Fz Odd;Name"],
        "source_schema": ["fz_broken", "no_such_schema", "fz_date", "fz_empty"],
        "name": ["", "x\"; drop", "fz_c2", "UPPER"], "routes": [None, []],
        "revenue_window": ["empty", "[0001-01-01,9999-12-31]", None],
        "route_source": ["both", ""], "readers": [["no_such_role"], None],
        "min_low_tickets": [-1, 2147483647], "decline_pct": ["NaN", None]}),
    f"{EXT}.segmentations": ("segmentations", "name", ["fz_s1"], {
        "view_schema": ["pg_catalog", "no_such_schema"], "k": [0, -1, 100000, None],
        "segment": ["none", None], "options": [{"n_init": 0}, None, "x"], "k_from": [5, -1],
        "k_to": [0, 2147483647], "silhouette_sample": [0, -1], "as_of": ["infinity", None],
        "feature_window": ["(,)", None]}),
    f"{EXT}.rollups": ("rollups", "source_schema", ["cosmos_sync"], {
        "source_schema": ["fz_date", "fz_broken", "no_such_schema", None], "id": [0, -1, 2147483647, None],
        "order_date_is_date": [True, None], "state": ["disabled", "bogus", None],
        "generation": [-1, None], "writers": [["no_such_role"]]}),
}


def composite_value(rng, typname, hostile):
    table, key, keys, fields = COMPOSITE_SOURCE[typname]
    keys = P.get(table, keys)  # the run's own definitions, mostly
    base = f"(SELECT t FROM {typname.split('.')[0]}.{table} t WHERE t.{key} = {lit(rng.choice(keys))})"
    if not hostile:
        return base
    r = rng.random()
    if r < 0.2:
        return f"NULL::{typname}"
    if r < 0.3:
        return f"ROW({','.join(['NULL'] * 5)})::{typname}"  # wrong arity: PG rejects
    f, vals = rng.choice(sorted(fields.items()))
    import json
    v = rng.choice(vals)
    return f"jsonb_populate_record({base}, {lit(json.dumps({f: v}))})"


def regclass_value(rng, hostile):
    return rng.choice(["'bi.fz_c1_targets'::regclass", "'bi.fz_c1_monthly'::regclass", "'pg_class'::regclass",
                       "NULL::regclass", "0::oid::regclass", "4294967295::oid::regclass", "'fz.models'::regclass",
                       f"'{EXT}.campaigns'::regclass", "'bi.fz_s1_model'::regclass",
                       "'fz_an.fz_a1_targets'::regclass", "'fz_an.fz_as1_members'::regclass"])


def regrole_value(rng, hostile):
    return rng.choice(["NULL::regrole", "'postgres'::regrole", "'ca_fuzz_analyst'::regrole", "0::oid::regrole",
                       "4294967295::oid::regrole", "'pg_monitor'::regrole", "'public'::regrole", "current_user::regrole"])


def oid_value(rng, hostile):
    return rng.choice(["NULL::oid", "0::oid", "4294967295::oid", "1::oid",
                       "(SELECT oid FROM pg_description LIMIT 1)", "'bi.fz_c1_targets'::regclass::oid",
                       "(SELECT max(oid) FROM pg_class)"])


def text_value(rng, name, fn, hostile):
    if not hostile:
        return lit(valid_text(rng, name, fn))
    r = rng.random()
    if r < 0.12:
        return "NULL::text"
    if r < 0.2:
        return rng.choice(HUGE_TEXT)
    if r < 0.55:
        return lit(rng.choice(SCHEMAS))
    if r < 0.9:
        return lit(rng.choice(HOSTILE_TEXT))
    return lit("".join(chr(rng.choice([rng.randint(1, 0x7f), rng.randint(0x80, 0xd7ff)]))
                       for _ in range(rng.randint(0, 40))))


def valid_text(rng, name, fn):
    if name in ("source_schema",):
        return rng.choice(["cosmos_sync", "fz_date"])
    if name == "view_schema":
        return P["view_schema"]
    if name in ("campaign",):
        return rng.choice(P["campaigns"])
    if name == "segmentation":
        return rng.choice(P["segmentations"])
    if name == "name":
        if "segmentation" in fn:
            return rng.choice(P["segmentations"][:1] + [P["new_segmentation"]])
        return rng.choice(P["campaigns"][:1] + [P["new_campaign"]])
    if name == "kind":
        return rng.choice(["campaign", "segmentation"])
    if name == "route_source":
        return rng.choice(["customer", "order"])
    if name == "segment":
        return rng.choice(["repeat", "one_visit", "all"])
    if name == "schedule":
        return "*/5 * * * *"
    if name == "order_date":
        return rng.choice(["20250101", "20251231", "20260107", "20240229"])
    if name in ("order_type",):
        return "SO"
    if name == "order_number":
        return "1001"
    if name == "view":
        return P["views"] + "_targets"
    if name == "views":
        return P["views"] + "_targets"
    if name == "op":
        return rng.choice(["INSERT", "UPDATE", "DELETE"])
    if name in ("columns", "keys"):
        return "customer_code"
    if name == "command":
        return "SELECT 1"
    return rng.choice(["cosmos_sync", "x", P["campaigns"][0]])


def text_array_value(rng, name, fn, hostile):
    if not hostile:
        if name == "routes":
            return rng.choice(["'{K1,K2,PS}'::text[]", "'{K1}'::text[]"])
        if name in ("customers", "customer_codes"):
            return rng.choice(CODE_ARRAYS_VALID + ["NULL::text[]"] if name == "customers" else CODE_ARRAYS_VALID)
        if name == "views":
            return f"'{{{P['views']}_targets,{P['views']}_monthly}}'::text[]"
        if name == "statements":
            return "ARRAY['SELECT 1', 'SELECT current_user']"
        if name in ("readers", "writers", "revoke_from"):
            return rng.choice(["'{}'::text[]", "'{ca_fuzz_analyst}'::text[]"])
        return "'{K1,K2}'::text[]"
    return rng.choice(TEXT_ARRAYS)


def daterange_value(rng, name, hostile):
    if not hostile:
        by_name = {"spend_window": "[2025-01-01,2025-12-31]", "low_ticket_window": "[2025-09-15,2026-01-07]",
                   "base_window": "[2025-08-31,2025-10-30]", "recent_window": "[2025-10-31,2025-12-31]",
                   "revenue_window": "[2025-09-01,2026-01-07]", "feature_window": "[2025-01-01,2025-12-31]"}
        return q_range(by_name.get(name) or rng.choice(RANGES_VALID))
    r = rng.random()
    if r < 0.1:
        return "NULL::daterange"
    if r < 0.25:
        return rand_range(rng)
    if r < 0.3:
        return f"daterange({rand_date(rng)}, {rand_date(rng)})"
    return q_range(rng.choice(RANGES_HOSTILE))


def value(rng, typ, name, fn, hostile):
    """An SQL expression of type typ for argument name of function fn."""
    if typ == "text":
        return text_value(rng, name, fn, hostile)
    if typ == "text[]":
        return text_array_value(rng, name, fn, hostile)
    if typ == "daterange":
        return daterange_value(rng, name, hostile)
    if typ == "date":
        if not hostile:
            return q_date(rng.choice(["2026-01-07", "2025-12-31", "2025-06-15"]))
        r = rng.random()
        return ("NULL::date" if r < 0.1 else rand_date(rng) if r < 0.4 else q_date(rng.choice(DATES)))
    if typ == "numeric":
        if not hostile:
            return {"min_spend": "1000", "low_ticket_below": "3000", "decline_pct": "30"}.get(name, "100") + "::numeric"
        return "NULL::numeric" if rng.random() < 0.1 else f"{lit(rng.choice(NUMERICS))}::numeric"
    if typ == "integer":
        if not hostile:
            return {"min_low_tickets": "3", "k": "3", "k_from": "1", "k_to": "4", "silhouette_sample": "200",
                    "cluster": "1", "sample_size": "100", "id": "1"}.get(name, "2")
        return "NULL::int" if rng.random() < 0.1 else f"({rng.choice(INTS)})::int"
    if typ == "bigint":
        return ("0::bigint" if not hostile else "NULL::bigint" if rng.random() < 0.1
                else f"({rng.choice(BIGINTS)})::bigint")
    if typ == "boolean":
        return rng.choice(["true", "false"]) if not hostile else rng.choice(["true", "false", "NULL::boolean"])
    if typ == "timestamp with time zone":
        return "now()" if not hostile else rng.choice(["now()", "NULL::timestamptz", "'infinity'::timestamptz",
                                                       "'-infinity'::timestamptz", "'4713-01-01 BC'::timestamptz"])
    if typ == "jsonb":
        if name == "model":
            if not hostile:
                return MODEL
            r = rng.random()
            if r < 0.2:  # a model fitted here, from odd data and options
                opts = rng.choice(OPTIONS_HOSTILE + ["'{\"n_init\": 1}'"])
                return (f"(SELECT {EXT}.kmeans_fit(vec, {rng.choice([1, 2, 5, 50])}, ({opts})::jsonb) "
                        f"FROM fz.{rng.choice(['agg_clean', 'agg_rows'])} WHERE id <= {rng.choice([1, 2, 60, 500])})")
            return rng.choice(MODEL_HOSTILE) if r < 0.8 else f"{lit(rand_json(rng))}::jsonb"
        if not hostile:
            return "'{\"seed\": 0, \"n_init\": 2}'::jsonb"
        r = rng.random()
        return ("NULL::jsonb" if r < 0.1 else f"{lit(rand_json(rng))}::jsonb" if r < 0.4
                else f"({rng.choice(OPTIONS_HOSTILE)})::jsonb")
    if typ == "double precision[]":
        if not hostile:
            return ("(SELECT vec FROM fz.agg_clean WHERE id = %d)" % rng.randint(1, 20000)
                    if name == "features" else "'{100,50,30,20,15,12,11,10,9.5,9}'::float8[]")
        r = rng.random()
        if r < 0.1:
            return "NULL::float8[]"
        if r < 0.2:
            return rng.choice(["array_fill(1::float8, ARRAY[1000000])", "array_fill('NaN'::float8, ARRAY[11])",
                               "array_fill(NULL::float8, ARRAY[11])", "'{{1,2},{3,4}}'::float8[]",
                               "'[0:10]={1,2,3,4,5,6,7,8,9,10,11}'::float8[]", "'{}'::float8[]",
                               "array_fill(1::float8, ARRAY[11, 1])"])
        return rand_float_array(rng)
    if typ == "integer[]":
        if not hostile:
            return "'{1,2,3,4,5,6,7,8,9,10}'::int[]"
        return rng.choice(["NULL::int[]", "'{}'::int[]", "'{NULL}'::int[]", "'{1}'::int[]", "'{1,2}'::int[]",
                           "'{10,9,8,7,6,5,4,3,2,1}'::int[]", "'{1,1,1,1}'::int[]",
                           "'{-2147483648,0,2147483647}'::int[]", "'{1,2,NULL,4}'::int[]",
                           "(SELECT array_agg(i) FROM generate_series(1, 1000000) i)",
                           "'{{1,2},{3,4}}'::int[]", "'[3:5]={1,2,3}'::int[]",
                           "'{1,2,3,4,5,6,7,8,9,10,11,12}'::int[]"])
    if typ == "regclass":
        return regclass_value(rng, hostile)
    if typ == "oid":
        return oid_value(rng, hostile)
    if typ == "regrole":
        return regrole_value(rng, hostile)
    if typ in COMPOSITE_SOURCE:
        return composite_value(rng, typ, hostile)
    return f"NULL::{typ}"


# --------------------------------------------------------------------------
# memory caps
# --------------------------------------------------------------------------

def est_elems(sql):
    m = re.findall(r"generate_series\(1, (\d+)\)|ARRAY\[(\d+)\]", sql)
    if m:
        return max(int(a or b) for a, b in m)
    if "cosmos_sync.customers" in sql:
        return 1000
    return sql.count(",") + 1


def est_months(sql):
    """Months a daterange expression spans (large when unknown)."""
    if "empty" in sql or sql.startswith("NULL"):
        return 0
    years = [int(y) * (-1 if bc else 1) for y, bc in re.findall(r"(\d{4,7})-\d\d-\d\d( BC)?", sql)]
    if "infinity" in sql or "(," in sql or ",)" in sql or len(years) < 2:
        return 10 ** 7
    return abs(years[1] - years[0]) * 12 + 12


def capped(fn, args, rng):
    """Keep a monthly-revenue call's customers x months under MAX_MONTH_CELLS."""
    names = [n for n, _ in args]
    if "revenue_window" not in names:
        return args
    months = est_months(dict(args)["revenue_window"])
    for i, (n, v) in enumerate(args):
        if n in ("customer_codes",) and months * est_elems(v) > MAX_MONTH_CELLS:
            args[i] = (n, CODE_ARRAYS_VALID[0])
            if months * 50 > MAX_MONTH_CELLS:
                args[i] = (n, "'{}'::text[]")
    return args


# --------------------------------------------------------------------------
# calls
# --------------------------------------------------------------------------

class Func:
    def __init__(self, row):
        (self.oid, self.sig, self.name, self.kind, self.argnames, self.argtypes, self.ndefaults,
         self.retset, self.rettype) = row
        self.argnames = list(self.argnames or [])
        self.argnames += [f"arg{i + 1}" for i in range(len(self.argnames), len(self.argtypes))]


def function_call(rng, f, mode):
    """(SQL, label) for one call of a plain function; mode: valid, one, random."""
    hostile_at = rng.randrange(len(f.argtypes)) if f.argtypes and mode == "one" else -1
    args = []
    for i, (n, t) in enumerate(zip(f.argnames, f.argtypes)):
        hostile = mode == "random" and rng.random() < 0.6 or i == hostile_at
        args.append((n, value(rng, t, n, f.name, hostile)))
    args = capped(f, args, rng)
    nargs = len(args)
    named = False
    if f.ndefaults and rng.random() < 0.35:
        # leave out some defaulted trailing arguments, name the others sometimes
        first_default = nargs - f.ndefaults
        keep = [i for i in range(nargs) if i < first_default or rng.random() < 0.5]
        named = rng.random() < 0.7 or keep != list(range(len(keep)))
        args = [args[i] for i in keep]
    if named:
        arglist = ", ".join(f"\"{n}\" => {v}" if n != "arg" else v for n, v in args)
    else:
        arglist = ", ".join(v for _, v in args)
    call = f"{EXT}.{f.name}({arglist})"
    if f.retset:
        return f"SELECT count(*), max(md5(t::text)) FROM {call} t"
    return f"SELECT md5(({call})::text)"


AGG_ARG_COLS = {"order_date": "d", "order_total": "n", "quantity": "q", "product_codes": "codes",
                "features": "vec", "cluster": "cl"}


def agg_call(rng, f):
    """(SQL, settings) for one call of an aggregate."""
    settings = []
    clean = rng.random() < 0.5
    src = rng.random()
    group = rng.choice(["", "", " GROUP BY t.g", " GROUP BY t.id", " GROUP BY t.id % 2"])
    if src < 0.75:
        table = "fz.agg_clean" if clean else "fz.agg_rows"
        n = rng.choice([0, 1, 2, 5, 100, 2000, 20000])
        if f.name == "silhouette" and n > 4000:
            n = 4000  # O(n^2): kept under the timeout, most of the time
        source = f"{table} t WHERE t.id <= {n}"
        if rng.random() < 0.3:
            settings += ["parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0",
                         "force_parallel_mode = on", "max_parallel_workers_per_gather = 2",
                         f"enable_hashagg = {rng.choice(['on', 'off'])}"]
        nrows = n
    else:
        nrows = rng.randint(0, 6)
        rows = []
        for i in range(nrows):
            rows.append("(%d, %d, %s, %s, %s, %s, %s, %s)" % (
                i, i % 2, value(rng, "date", "order_date", f.name, not clean),
                value(rng, "numeric", "order_total", f.name, not clean),
                value(rng, "numeric", "quantity", f.name, not clean),
                value(rng, "text[]", "product_codes", f.name, not clean),
                value(rng, "double precision[]", "features", f.name, not clean),
                value(rng, "integer", "cluster", f.name, not clean)))
        if not rows:
            source = ("(SELECT 0 AS id, 0 AS g, NULL::date AS d, NULL::numeric AS n, NULL::numeric AS q, "
                      "NULL::text[] AS codes, NULL::float8[] AS vec, NULL::int AS cl WHERE false) t")
        else:
            source = f"(VALUES {', '.join(rows)}) t(id, g, d, n, q, codes, vec, cl)"
    ngroups = {"": 1, " GROUP BY t.g": 7, " GROUP BY t.id": max(nrows, 1), " GROUP BY t.id % 2": 2}[group]
    args = []
    for i, (n, t) in enumerate(zip(f.argnames, f.argtypes)):
        if n in AGG_ARG_COLS and rng.random() < 0.9:
            args.append(f"t.{AGG_ARG_COLS[n]}")
        elif t == "daterange" and rng.random() < 0.05:
            args.append("daterange(t.d, t.d + 30)")  # a window that changes per row
        elif t == "integer" and n == "k" and rng.random() < 0.05:
            args.append("(t.id % 5)")  # k that changes per row
        else:
            hostile = rng.random() < 0.4
            v = value(rng, t, n, f.name, hostile)
            if t == "daterange" and f.name == "monthly_revenue_stats" and est_months(v) * ngroups > MAX_MONTH_CELLS:
                v = value(rng, t, n, f.name, False)
            if f.name == "kmeans_fit" and n == "k" and hostile and rng.random() < 0.5:
                v = str(rng.choice([1, 2, 4, 10, nrows, nrows + 1, 1000]))
            args.append(v)
    extra = ""
    r = rng.random()
    if r < 0.1:
        extra = " ORDER BY t.id DESC"
    call = f"{EXT}.{f.name}({', '.join(args)}{extra})"
    if rng.random() < 0.1:
        call += " FILTER (WHERE t.id % 3 <> 0)"
    sql = f"SELECT count(*), max(md5(s::text)) FROM (SELECT {call} AS s FROM {source}{group}) x"
    return sql, settings


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

class Runner:
    """Calls over one connection: the superuser's (user None: the libpq
    environment's) or the analyst's login."""

    def __init__(self, user=None):
        self.user = user
        self.conn = None
        self.start_time = None
        self.connect()
        self.calls = self.ok = self.timeouts = 0
        self.classes = {}
        self.internal = {}   # (function, message) -> (count, sql)
        self.crashes = {}
        self.hangs = {}
        self.slow = {}       # function -> (timeouts, first sql)
        self.called = {}

    def connect(self, wait=60):
        deadline = time.time() + wait
        while True:
            try:
                self.conn = psycopg2.connect(dbname=DB, application_name="ca_fuzz",
                                             **({"user": self.user} if self.user else {}))
                self.conn.autocommit = True
                cur = self.conn.cursor()
                cur.execute("SELECT pg_backend_pid(), pg_postmaster_start_time()")
                self.pid, start = cur.fetchone()
                restarted = self.start_time is not None and start != self.start_time
                self.start_time = start
                return restarted
            except psycopg2.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def alive(self):
        try:
            cur = self.conn.cursor()
            cur.execute("SELECT pg_postmaster_start_time()")
            return cur.fetchone()[0] == self.start_time
        except psycopg2.Error:
            return False

    def run(self, fname, sql, settings):
        self.calls += 1
        self.called[fname] = self.called.get(fname, 0) + 1
        pre = [f"SET LOCAL statement_timeout = {TIMEOUT_MS}"] + [f"SET LOCAL {s}" for s in settings]
        repro = ((f"-- as {self.user}: " if self.user else "") + "BEGIN; " + "; ".join(pre) + "; " + sql
                 + "; ROLLBACK;")
        hung = []

        def watchdog():
            hung.append(time.time())
            try:
                w = psycopg2.connect(dbname=DB)  # the superuser: it may end any backend
                w.autocommit = True
                w.cursor().execute("SELECT pg_terminate_backend(%s)", (self.pid,))
                w.close()
            except psycopg2.Error:
                pass
        timer = threading.Timer(TIMEOUT_MS / 1000.0 + HANG_SECONDS, watchdog)
        timer.start()
        t0 = time.time()
        err = None
        try:
            cur = self.conn.cursor()
            cur.execute("BEGIN")
            for p in pre:
                cur.execute(p)
            cur.execute(sql)
            cur.fetchall()
            self.ok += 1
        except psycopg2.Error as e:
            err = e
        finally:
            timer.cancel()
        elapsed = time.time() - t0
        try:
            if not self.conn.closed:
                self.conn.cursor().execute("ROLLBACK")
        except psycopg2.Error:
            pass
        if err is None:
            return
        code = err.pgcode
        msg = (err.pgerror or str(err)).strip().splitlines()[0] if (err.pgerror or str(err)).strip() else ""
        key = (fname, re.sub(r"\d+", "N", msg))
        if hung:
            self.record(self.hangs, key, f"{repro}  -- ran {elapsed:.0f} s, past a {TIMEOUT_MS} ms timeout")
            if self.conn.closed or not self.alive():
                if self.connect():
                    self.record(self.crashes, (fname, "server restarted after a hang"), repro)
            return
        if self.conn.closed or code is None or code.startswith("57P"):
            self.connect()
            self.record(self.crashes, key, repro)
            self.classes["crash"] = self.classes.get("crash", 0) + 1
            return
        if code == "57014":
            self.timeouts += 1
            n, first = self.slow.get(fname, (0, repro))
            self.slow[fname] = (n + 1, first)
        if code == "XX000":
            self.record(self.internal, key, repro)
        elif VERBOSE:
            print(f"# {code} {fname}: {msg}\n#   {repro[:400]}")
        self.classes[code[:2]] = self.classes.get(code[:2], 0) + 1

    @staticmethod
    def record(table, key, repro):
        n, first = table.get(key, (0, repro))
        if n == 0:
            print(f"# FINDING {key[0]}: {key[1]}\n#   {first}", flush=True)
        table[key] = (n + 1, first)


def setup():
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    cur.execute(f"DROP ROLE IF EXISTS {ROLE}")
    cur.execute(f"CREATE ROLE {ROLE} LOGIN")
    cur.execute(f"CREATE DATABASE {DB}")
    admin.close()
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"scale={SCALE}", "-d", DB,
                    "-f", os.path.join(ROOT, "test", "demo_data.sql")], check=True, stdout=subprocess.DEVNULL)
    conn = psycopg2.connect(dbname=DB)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f"CREATE EXTENSION {EXT}")
    cur.execute(f"ALTER DATABASE {DB} SET {EXT}.source_schema = 'cosmos_sync'")
    cur.execute(FIXTURE_SQL)
    analyst = psycopg2.connect(dbname=DB, user=ROLE)
    analyst.autocommit = True
    analyst.cursor().execute(ANALYST_SQL)
    analyst.close()
    cur.execute("""
        SELECT p.oid, p.oid::regprocedure::text, p.proname, p.prokind, p.proargnames[1:p.pronargs],
               ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)
                      ORDER BY i), p.pronargdefaults, p.proretset, format_type(p.prorettype, NULL)
          FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
         WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
           AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = %s)
         ORDER BY 2""", (EXT,))
    funcs = [Func(r) for r in cur.fetchall()]
    # proargnames covers OUT arguments too: keep the input ones' names
    cur.execute("""SELECT p.oid, ARRAY(SELECT n FROM unnest(p.proargnames, coalesce(p.proargmodes, array_fill('i'::"char",
                          ARRAY[cardinality(p.proargnames)]))) u(n, m) WHERE m IN ('i', 'b', 'v'))
                     FROM pg_proc p WHERE p.oid = ANY(%s) AND p.proargnames IS NOT NULL""", ([f.oid for f in funcs],))
    names = dict(cur.fetchall())
    for f in funcs:
        if f.oid in names:
            f.argnames = list(names[f.oid]) + [f"arg{i + 1}" for i in range(len(names[f.oid]), len(f.argtypes))]
            f.argnames = [n or "arg" for n in f.argnames]
    conn.close()
    callable_ = [f for f in funcs if "internal" not in f.argtypes and f.rettype not in ("trigger", "event_trigger")
                 and f.kind in ("f", "a")]
    skipped = [f for f in funcs if f not in callable_]
    return callable_, skipped


def main():
    t_start = time.time()
    print(f"# fuzz seed {SEED} (FUZZ_SEED={SEED} to repeat), up to {MAX_CALLS} calls / {MAX_SECONDS:.0f} s, "
          f"statement_timeout {TIMEOUT_MS} ms", flush=True)
    funcs, skipped = setup()
    print(f"# {len(funcs)} callable functions and aggregates, {len(skipped)} skipped "
          f"(internal arguments or triggers); setup {time.time() - t_start:.1f} s", flush=True)
    rng = random.Random(SEED)
    global P
    # the budget, split: the superuser's run gets half the calls and half
    # the time, the analyst's run what is left of both
    calls_left, seconds_left = MAX_CALLS, MAX_SECONDS
    for label, user in (("superuser", None), ("analyst", ROLE)):
        calls_budget = calls_left if user else max(MAX_CALLS // 2, 1)
        seconds_budget = seconds_left if user else MAX_SECONDS / 2
        P = PROFILES[label]
        runner = Runner(user)
        order = []
        t_loop = time.time()
        while runner.calls < calls_budget and time.time() - t_loop < seconds_budget:
            if not order:
                order = list(funcs)
                rng.shuffle(order)
            f = order.pop()
            settings = []
            if f.kind == "a":
                sql, settings = agg_call(rng, f)
            else:
                mode = rng.choice(["valid", "one", "one", "one", "random", "random"])
                sql = function_call(rng, f, mode)
                r = rng.random()
                if r < 0.05:
                    settings.append(f"{EXT}.source_schema = {lit(rng.choice(SCHEMAS))}")
                elif r < 0.1:
                    settings += ["parallel_setup_cost = 0", "parallel_tuple_cost = 0",
                                 "min_parallel_table_scan_size = 0", "force_parallel_mode = on"]
            runner.run(f.sig, sql, settings)
        loop_s = time.time() - t_loop
        calls_left -= runner.calls
        seconds_left -= loop_s
        runner.conn.close()
        who = f"as {label}" + (f" ({user}, logged in)" if user else "")
        print(f"# {who}: {runner.calls} calls in {loop_s:.1f} s: {runner.ok} ok, {runner.timeouts} timeouts (57014); "
              "errors by SQLSTATE class: " + ", ".join(f"{k}: {v}" for k, v in sorted(runner.classes.items())),
              flush=True)
        for title, table in (("crash", runner.crashes), ("hang", runner.hangs), ("internal error", runner.internal)):
            for (fname, msg), (n, repro) in sorted(table.items()):
                print(f"# {title} x{n} in {fname}: {msg}\n#   {repro}")
        for fname, (n, repro) in sorted(runner.slow.items()):
            print(f"# timeout x{n} in {fname} (cancelled by statement_timeout; not a failure)\n#   {repro}")
        ncrash = sum(n for n, _ in runner.crashes.values())
        nxx = sum(n for n, _ in runner.internal.values())
        nhang = sum(n for n, _ in runner.hangs.values())
        check(ncrash == 0, f"{who}: {runner.calls} calls of {len(funcs)} functions: {ncrash} crashes")
        check(nxx == 0, f"{who}: {nxx} internal errors (XX000)"
              + (f" in {len(runner.internal)} distinct places" if nxx else ""))
        check(nhang == 0, f"{who}: {nhang} hangs (calls still running {HANG_SECONDS:.0f} s past statement_timeout)")
        missing = [f.sig for f in funcs if f.sig not in runner.called]
        check(not missing, f"{who}: every extension function was called at least once"
              + (f" (never: {', '.join(missing)})" if missing else f" ({len(funcs)} of {len(funcs)})"))
    if os.environ.get("FUZZ_KEEP") != "1":
        try:
            admin = psycopg2.connect(dbname="postgres")
            admin.autocommit = True
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            admin.cursor().execute(f"DROP ROLE IF EXISTS {ROLE}")
            admin.close()
        except psycopg2.Error as e:
            print(f"# cleanup: {e}")
    print(f"# total {time.time() - t_start:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
