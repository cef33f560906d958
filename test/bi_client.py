#!/usr/bin/python3
"""A BI client's view of a campaign, through psycopg2 (run by scripts/test.sh).

What a BI tool such as Metabase does with a campaign's materialized views,
done through the same driver layer (libpq via psycopg2):

  * an admin connection creates database bi_client, loads the demo data
    (test/demo_data.sql at scale 0.1 through psql), creates the extension, a
    login role bi_reader and the campaign bi_promo with readers => {bi_reader};
  * a second connection logs in as bi_reader (as the BI tool would) and checks
    the column names and type OIDs in cursor.description, the comments read
    the way pgjdbc's DatabaseMetaData reads them (pg_description,
    col_description), the unique indexes, that the source tables are refused
    and the views are readable;
  * the data: the targets view equals target_customers() row for row, and the
    monthly view's rev_ columns equal monthly_revenue() summed per customer
    and month, and plain SQL over the source tables;
  * the plain views beside them (<view>_v, 1.5): listed as VIEW by
    information_schema and a getTables()-style pg_class query, money and
    pct_change reported as numeric precision 18 scale 2, comments on every
    column, the same rows, and a WIN1252 client that fails on the Chinese
    target_reason of the materialized view but reads the plain views.

Connection settings come from PGHOST/PGPORT/PGUSER (trust authentication, as
on the test cluster).  Prints one "ok - ..." or "not ok - ..." line per check
and "N passed, M failed"; exits 1 on any failure.  The database is dropped at
the end, and the role too if this script created it.
"""
import datetime
import decimal
import os
import subprocess
import sys
import traceback

import psycopg2
import psycopg2.errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
DB = "bi_client"
ROLE = "bi_reader"
CAMPAIGN = "bi_promo"
SCALE = "0.1"
# the campaign's default revenue window [2025-09-01,2026-01-07]: September is
# whole, January is cut short on the 7th
WINDOW_FIRST = datetime.date(2025, 9, 1)
WINDOW_LAST = datetime.date(2026, 1, 7)

# PostgreSQL type OIDs as the driver reports them in cursor.description
TEXT, NUMERIC, INT8, BOOL, DATE = 25, 1700, 20, 16, 1082
TYPE_NAMES = {TEXT: "text", NUMERIC: "numeric", INT8: "bigint", BOOL: "boolean", DATE: "date"}

# the monthly sheet's columns before the rev_ columns
MONTHLY_LEAD = [("customer_code", TEXT), ("trade_name", TEXT), ("delivery_route", TEXT),
                ("csm", TEXT), ("avg_ticket_size", NUMERIC)]

passed = 0
failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"not ok - {what}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()
    return ok


def months():
    """(column name, first day, last day, partial) for each month of the window."""
    out = []
    m = WINDOW_FIRST.replace(day=1)
    while m <= WINDOW_LAST:
        nxt = (m.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        first = max(m, WINDOW_FIRST)
        last = min(nxt - datetime.timedelta(days=1), WINDOW_LAST)
        partial = first != m or last != nxt - datetime.timedelta(days=1)
        out.append((f"rev_{m.year}_{m.month:02d}", m, first, last, partial))
        m = nxt
    return out


def connect(dbname, user=None):
    kw = {"dbname": dbname, "application_name": "bi_client.py"}
    if user:
        kw["user"] = user
    return psycopg2.connect(**kw)


def describe(cur, relation):
    cur.execute(f"SELECT * FROM {relation} LIMIT 0")
    return [(d.name, d.type_code) for d in cur.description]


def fmt_cols(cols):
    return ", ".join(f"{n} {TYPE_NAMES.get(t, t)}" for n, t in cols)


def setup(admin):
    """Demo data, extension, role, campaign.  Returns True if this created the role."""
    res = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                          "-v", f"scale={SCALE}", "-f", "test/demo_data.sql", "-d", DB],
                         cwd=ROOT, capture_output=True, text=True)
    if not check(res.returncode == 0, f"demo data loaded at scale {SCALE} through psql",
                 (res.stderr or res.stdout).strip()):
        raise RuntimeError("no demo data")
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))
        created_role = cur.fetchone() is None
        if created_role:
            cur.execute(f"CREATE ROLE {ROLE} LOGIN")
        cur.execute("CREATE EXTENSION IF NOT EXISTS customer_analytics")
        cur.execute("CREATE SCHEMA bi")
        # what an admin grants a BI role: the schemas, not the ERP tables
        cur.execute(f"GRANT USAGE ON SCHEMA bi, cosmos_sync, customer_analytics TO {ROLE}")
        cur.execute("SET client_min_messages = warning")
        cur.execute("SELECT name, target_rows, monthly_rows FROM customer_analytics.create_campaign("
                    "%s, 'bi', readers => %s)", (CAMPAIGN, [ROLE]))
        name, target_rows, monthly_rows = cur.fetchone()
    check(name == CAMPAIGN and target_rows and target_rows > 0 and monthly_rows == target_rows,
          f"create_campaign built {CAMPAIGN} ({target_rows} targets, {monthly_rows} monthly rows)",
          f"got {name}, {target_rows}, {monthly_rows}")
    return created_role


def check_columns(admin, reader, targets, monthly):
    with admin.cursor() as cur:
        expected_targets = describe(cur, "customer_analytics.target_customers()")
    with reader.cursor() as cur:
        got_targets = describe(cur, targets)
        got_monthly = describe(cur, monthly)
    check(got_targets == expected_targets,
          f"{targets}: driver reports the columns and type OIDs of target_customers()",
          f"got [{fmt_cols(got_targets)}], expected [{fmt_cols(expected_targets)}]")
    t = dict(got_targets)
    want = {"customer_code": TEXT, "trade_name": TEXT, "delivery_route": TEXT, "csm": TEXT,
            "target_reason": TEXT, "total_spend": NUMERIC, "base_sales": NUMERIC,
            "recent_sales": NUMERIC, "total_orders": INT8, "last_order_date": DATE}
    bad = [f"{n} is {TYPE_NAMES.get(t.get(n), t.get(n))}, not {TYPE_NAMES[o]}"
           for n, o in want.items() if t.get(n) != o]
    check(not bad, f"{targets}: codes and names are text (OID 25), money numeric (OID 1700)",
          "; ".join(bad))

    expected_monthly = MONTHLY_LEAD + [(m[0], NUMERIC) for m in months()]
    check(got_monthly == expected_monthly,
          f"{monthly}: columns {', '.join(n for n, _ in expected_monthly)}; rev_ columns numeric",
          f"got [{fmt_cols(got_monthly)}]")
    return [n for n, _ in got_targets], [n for n, _ in got_monthly]


def check_comments(reader, targets, monthly, target_cols, monthly_cols):
    # pgjdbc's getTables()/getColumns() (what Metabase calls) read the remarks
    # from pg_description: the relation's with objsubid 0, the columns' with
    # col_description().  information_schema has no materialized views at all.
    with reader.cursor() as cur:
        for rel in (targets, monthly):
            cur.execute("SELECT c.relkind, d.description FROM pg_catalog.pg_class c "
                        "LEFT JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.objsubid = 0 "
                        " AND d.classoid = 'pg_catalog.pg_class'::regclass "
                        "WHERE c.oid = %s::regclass", (rel,))
            relkind, remark = cur.fetchone()
            check(relkind == "m" and remark and f"refresh_campaign('{CAMPAIGN}')" in remark,
                  f"{rel}: a materialized view whose comment says how to refresh it",
                  f"relkind {relkind!r}, comment {remark!r}")
        comments = {}
        for rel in (targets, monthly):
            cur.execute("SELECT a.attname, pg_catalog.col_description(a.attrelid, a.attnum) "
                        "FROM pg_catalog.pg_attribute a WHERE a.attrelid = %s::regclass "
                        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (rel,))
            comments[rel] = dict(cur.fetchall())
    for rel, cols in ((targets, target_cols), (monthly, monthly_cols)):
        missing = [c for c in cols if not (comments[rel].get(c) or "").strip()]
        check(not missing, f"{rel}: every column has a comment ({len(cols)} columns)",
              "no comment on " + ", ".join(missing))
    bad = []
    for col, _, first, last, partial in months():
        text = comments[monthly].get(col) or ""
        if f"{first.isoformat()} to {last.isoformat()}" not in text:
            bad.append(f"{col} does not name {first} to {last}: {text!r}")
        if ("partial" in text) != partial:
            bad.append(f"{col} {'lacks' if partial else 'has'} 'partial': {text!r}")
    check(not bad, f"{monthly}: each rev_ comment names its period; only the last month "
                   f"({months()[-1][0]}, to {WINDOW_LAST}) is marked partial", "; ".join(bad))


def check_indexes(reader, targets, monthly):
    with reader.cursor() as cur:
        for rel in (targets, monthly):
            cur.execute("SELECT i.indexrelid::regclass::text, "
                        "array(SELECT a.attname::text FROM unnest(i.indkey) k "
                        "      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k) "
                        "FROM pg_catalog.pg_index i WHERE i.indrelid = %s::regclass "
                        "AND i.indisunique AND i.indisvalid AND i.indpred IS NULL", (rel,))
            found = cur.fetchall()
            check(any(cols == ["customer_code"] for _, cols in found),
                  f"{rel}: unique index on customer_code", f"unique indexes: {found}")


def check_privileges(admin, reader, targets, monthly):
    with admin.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {targets}")
        n_targets = cur.fetchone()[0]
    for table in ("customers", "sales_orders", "sales_order_lines"):
        with reader.cursor() as cur:
            try:
                cur.execute(f"SELECT * FROM cosmos_sync.{table} LIMIT 1")
                check(False, f"{ROLE} is refused SELECT on cosmos_sync.{table}", "the query ran")
            except psycopg2.errors.InsufficientPrivilege as e:
                check(True, f"{ROLE} is refused SELECT on cosmos_sync.{table} (42501)")
            finally:
                reader.rollback()
    with reader.cursor() as cur:
        try:
            cur.execute("SELECT count(*) FROM customer_analytics.target_customers()")
            check(False, f"{ROLE} cannot compute targets from the tables it may not read",
                  "target_customers() answered")
        except psycopg2.errors.InsufficientPrivilege:
            check(True, f"{ROLE} cannot compute targets from the tables it may not read (42501)")
        finally:
            reader.rollback()
    with reader.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {targets}")
        r_targets = cur.fetchone()[0]
        cur.execute(f"SELECT count(*) FROM {monthly}")
        r_monthly = cur.fetchone()[0]
    reader.rollback()
    check(r_targets == n_targets > 0 and r_monthly == n_targets,
          f"{ROLE} reads both views ({r_targets} and {r_monthly} rows)",
          f"expected {n_targets} rows in each")


def check_data(admin, reader, targets, monthly, monthly_cols):
    with reader.cursor() as cur:
        cur.execute(f"SELECT * FROM {targets} ORDER BY customer_code")
        view_rows = cur.fetchall()
        cur.execute(f"SELECT * FROM {monthly} ORDER BY customer_code")
        sheet = cur.fetchall()
    reader.rollback()
    with admin.cursor() as cur:
        cur.execute("SELECT * FROM customer_analytics.target_customers() ORDER BY customer_code")
        fn_rows = cur.fetchall()
    diff = [r for r in view_rows if r not in fn_rows] + [r for r in fn_rows if r not in view_rows]
    check(view_rows == fn_rows,
          f"{targets} has the rows of target_customers() ({len(fn_rows)} rows, every column)",
          f"{len(view_rows)} vs {len(fn_rows)} rows; differing: {diff[:3]}")
    check(all(isinstance(r[5], decimal.Decimal) for r in view_rows),
          "total_spend arrives as an exact decimal (psycopg2 Decimal)")

    codes = [r[0] for r in view_rows]
    check([r[0] for r in sheet] == codes, f"{monthly} has one row per target, same codes")
    rev = [(i, m) for i, m in enumerate(monthly_cols) if m.startswith("rev_")]
    month_of = {m[0]: m[1] for m in months()}
    window = f"[{WINDOW_FIRST},{WINDOW_LAST}]"
    with admin.cursor() as cur:
        cur.execute("SELECT customer_code, month, revenue FROM customer_analytics.monthly_revenue(%s, %s)",
                    (codes, window))
        fn = {}
        for code, month, revenue in cur.fetchall():
            fn[(code, month)] = fn.get((code, month), 0) + revenue
        # the same, independently: plain SQL over the ERP tables
        cur.execute("""
            SELECT o.customer_code, date_trunc('month', to_date(o.order_date, 'YYYYMMDD'))::date,
                   COALESCE(sum(l.pretax_subtotal), 0)
              FROM cosmos_sync.sales_orders o
              LEFT JOIN cosmos_sync.sales_order_lines l USING (order_type, order_number)
             WHERE o.confirmed_code = 'Y' AND o.customer_code = ANY (%s)
               AND to_date(o.order_date, 'YYYYMMDD') <@ %s::daterange
             GROUP BY 1, 2""", (codes, window))
        plain = {(c, m): v for c, m, v in cur.fetchall()}
    for name, ref in (("monthly_revenue() summed per customer and month", fn),
                      ("plain SQL sums of confirmed order lines", plain)):
        bad = []
        for row in sheet:
            for i, col in rev:
                want = ref.get((row[0], month_of[col]), 0)
                if row[i] != want:
                    bad.append(f"{row[0]} {col}: view {row[i]}, expected {want}")
        totals = {col: sum(row[i] for row in sheet) for i, col in rev}
        check(not bad, f"{monthly} rev_ columns equal {name} "
                       f"(total {sum(totals.values())} over {len(sheet)} x {len(rev)} cells)",
              f"{len(bad)} cells differ, e.g. " + "; ".join(bad[:3]))


def check_bi_views(admin, reader, targets, monthly):
    """The plain views <view>_v (1.5): what drivers that list only tables and
    views find, with numeric(18,2) money and an ASCII reason code."""
    targets_v, monthly_v = targets + "_v", monthly + "_v"
    schema = targets.split(".")[0]
    with reader.cursor() as cur:
        # information_schema (ODBC's SQLTables, many BI tools) and pgjdbc's
        # getTables(null, schema, "%", {"TABLE","VIEW"}), which maps relkind
        # 'r' to TABLE and 'v' to VIEW ('m' is MATERIALIZED VIEW)
        cur.execute("SELECT table_name, table_type FROM information_schema.tables "
                    "WHERE table_schema = %s ORDER BY 1", (schema,))
        got = cur.fetchall()
        want = [(f"{CAMPAIGN}_monthly_long_v", "VIEW"), (f"{CAMPAIGN}_monthly_v", "VIEW"),
                (f"{CAMPAIGN}_targets_v", "VIEW")]
        check(got == want, f"{ROLE} finds the plain views in information_schema.tables as VIEW",
              f"got {got}")
        cur.execute("SELECT c.relname, CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW' END "
                    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'p', 'f') ORDER BY 1", (schema,))
        got = cur.fetchall()
        check(got == want, "a getTables() query for TABLE and VIEW lists the three plain views", f"got {got}")
        # the driver's view of the types: numeric(18,2) carries precision and scale
        cur.execute(f"SELECT * FROM {targets_v} LIMIT 0")
        desc = {d.name: d for d in cur.description}
        bad = [f"{n}: {desc[n].type_code} ({desc[n].precision},{desc[n].scale})"
               for n in ("total_spend", "base_sales", "recent_sales", "pct_change", "avg_ticket_size")
               if (desc[n].type_code, desc[n].precision, desc[n].scale) != (NUMERIC, 18, 2)]
        check(not bad, f"{targets_v}: money and pct_change are numeric with precision 18, scale 2",
              "; ".join(bad))
        check("target_reason" not in desc and desc.get("target_reason_code") and
              desc["target_reason_code"].type_code == TEXT,
              f"{targets_v}: target_reason_code (text) instead of the Chinese target_reason")
        cur.execute(f"SELECT * FROM {monthly_v} LIMIT 0")
        bad = [d.name for d in cur.description if d.name.startswith("rev_")
               and (d.type_code, d.precision, d.scale) != (NUMERIC, 18, 2)]
        check(not bad, f"{monthly_v}: every rev_ column is numeric(18,2)", ", ".join(bad))
        missing = []
        for rel in (targets_v, monthly_v):
            cur.execute("SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = %s::regclass "
                        "AND a.attnum > 0 AND pg_catalog.col_description(a.attrelid, a.attnum) IS NULL", (rel,))
            missing += [f"{rel}.{n}" for n, in cur.fetchall()]
            cur.execute("SELECT pg_catalog.obj_description(%s::regclass, 'pg_class')", (rel,))
            if not cur.fetchone()[0]:
                missing.append(rel)
        check(not missing, "the plain views and all their columns have comments", ", ".join(missing))
        # same rows; money exact (the demo's amounts are numeric(14,2))
        cur.execute(f"SELECT customer_code, total_spend, base_sales, recent_sales, pct_change, "
                    f"target_reason_code, avg_ticket_size FROM {targets_v} ORDER BY 1")
        plain = cur.fetchall()
    reader.rollback()
    with admin.cursor() as cur:
        cur.execute(f"SELECT customer_code, total_spend, base_sales, recent_sales, round(pct_change, 2), "
                    f"CASE target_reason WHEN '低客單' THEN 'low_ticket' WHEN '業績下滑' THEN 'declining' END, "
                    f"avg_ticket_size FROM {targets} ORDER BY 1")
        mat = cur.fetchall()
    diff = [(a, b) for a, b in zip(plain, mat) if a != b]
    check(len(plain) == len(mat) > 0 and not diff,
          f"{targets_v} equals {targets} ({len(plain)} rows; pct_change rounded, reason as code)",
          f"{len(plain)} vs {len(mat)} rows; differing: {diff[:3]}")

    # a WIN1252 client (an older Windows BI tool): the Chinese label cannot
    # be converted, the plain views can be read in full
    win = connect(DB, user=ROLE)
    try:
        win.set_client_encoding("WIN1252")
        with win.cursor() as cur:
            try:
                cur.execute(f"SELECT * FROM {targets}")
                cur.fetchall()
                check(False, f"WIN1252 client: {targets} fails on the Chinese target_reason", "it was read")
            except psycopg2.errors.UntranslatableCharacter:
                check(True, f"WIN1252 client: {targets} fails on the Chinese target_reason (22P05), as issue 13 reports")
            finally:
                win.rollback()
        with win.cursor() as cur:
            cur.execute(f"SELECT * FROM {targets_v} ORDER BY customer_code")
            rows = cur.fetchall()
            cur.execute(f"SELECT * FROM {monthly_v} ORDER BY customer_code")
            sheet = cur.fetchall()
        check(len(rows) == len(plain) and len(sheet) == len(plain),
              f"WIN1252 client reads every row of {targets_v} and {monthly_v} ({len(rows)} rows each)")
    finally:
        win.close()


def main():
    admin = connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DB}")
    db_admin = reader = None
    created_role = False
    try:
        db_admin = connect(DB)
        db_admin.autocommit = True
        created_role = setup(db_admin)
        reader = connect(DB, user=ROLE)
        with reader.cursor() as cur:
            cur.execute("SELECT current_user, session_user")
            check(cur.fetchone() == (ROLE, ROLE), f"second connection logged in as {ROLE}")
        reader.rollback()
        targets, monthly = f"bi.{CAMPAIGN}_targets", f"bi.{CAMPAIGN}_monthly"
        target_cols, monthly_cols = check_columns(db_admin, reader, targets, monthly)
        reader.rollback()
        check_comments(reader, targets, monthly, target_cols, monthly_cols)
        reader.rollback()
        check_indexes(reader, targets, monthly)
        reader.rollback()
        check_privileges(db_admin, reader, targets, monthly)
        check_data(db_admin, reader, targets, monthly, monthly_cols)
        check_bi_views(db_admin, reader, targets, monthly)
    except Exception as e:  # a broken step fails the test, cleanup still runs
        traceback.print_exc(file=sys.stdout)
        check(False, "bi_client.py ran to the end", f"{type(e).__name__}: {e}".strip())
    finally:
        for conn in (reader, db_admin):
            if conn is not None:
                conn.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            if created_role:
                cur.execute(f"DROP ROLE IF EXISTS {ROLE}")
        admin.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
