-- A campaign's delta refresh builds the long form's and the sheet's new
-- rows from the month rows its C pass leaves in memory for the changed
-- targets (_campaign_delta_month_rows, _campaign_delta_sheet_months: read
-- and adjusted, or inserted for a new target), not from a second read of
-- the month state and an SQL pivot.  In the refresh's transaction, the
-- kept rows are exactly the month state's rows of those customers (row
-- text, EXCEPT ALL both ways) and the pivot is the one of the month state;
-- the month state's key index is scanned once per changed customer the
-- pass reads and not again; after every refresh the views equal a
-- recompute (campaign_differences).  Outside a pass the functions return
-- nothing and the statements read the month state (the fallback).
\set VERBOSITY terse
SET client_min_messages = warning;
-- 200 customers on K1/T9 (customer c on the route c % 2: K1, T9), orders
-- over 2025-06-03 .. 2026-01-03; the revenue window starts on 2025-09-01,
-- inside the data window, and ends on 2026-01-07
SELECT public.erp_source('km', 200, '{K1,T9}', '2025-06-03', 215, 2, 5);
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('km');
CREATE SCHEMA km_bi;
SELECT name FROM customer_analytics.create_campaign('km', 'km_bi', routes => '{K1}', source_schema => 'km',
                                                  revenue_window => '[2025-09-01,2026-01-08)');
SELECT 1 FROM customer_analytics.refresh_campaign('km');

-- the refresh's mode, the month state's key index scans, and, in its
-- transaction: the kept rows (all, and those of the long form's keys),
-- their customers, the kept rows against the month state's rows of the
-- same customers and the kept pivot against the month state's (row text,
-- both ways: 0 when equal)
CREATE FUNCTION public.km_refresh(OUT mode text, OUT month_reads bigint, OUT kept_rows bigint, OUT kept_listed bigint,
                                  OUT kept_customers bigint, OUT rows_differ bigint, OUT pivot_differ bigint) RETURNS record
LANGUAGE plpgsql AS $$
DECLARE
    st regclass := (SELECT s.state_table FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'km');
    months regclass := (SELECT s.month_state_table FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'km');
    months_key regclass := (SELECT i.indexrelid::regclass FROM pg_index i WHERE i.indrelid = months AND i.indisprimary);
    m bigint := pg_stat_get_xact_numscans(months_key);
    ms date[] := ARRAY(SELECT p.month FROM customer_analytics.pivot_months('[2025-09-01,2026-01-08)') p ORDER BY p.month);
BEGIN
    PERFORM customer_analytics.refresh_campaign('km');
    month_reads := pg_stat_get_xact_numscans(months_key) - m;
    CREATE TEMP TABLE km_kept ON COMMIT DROP AS SELECT * FROM customer_analytics._campaign_delta_month_rows(st, false);
    kept_rows := (SELECT count(*) FROM km_kept);
    kept_listed := (SELECT count(*) FROM customer_analytics._campaign_delta_month_rows(st, true));
    kept_customers := (SELECT count(DISTINCT customer_code) FROM km_kept);
    EXECUTE format('SELECT count(*) FROM ((SELECT k::text FROM km_kept k EXCEPT ALL'
                   ' SELECT m::text FROM %1$s m WHERE m.customer_code IN (SELECT customer_code FROM km_kept))'
                   ' UNION ALL (SELECT m::text FROM %1$s m WHERE m.customer_code IN (SELECT customer_code FROM km_kept)'
                   ' EXCEPT ALL SELECT k::text FROM km_kept k)) x', months) INTO rows_differ;
    EXECUTE format('WITH p AS (SELECT m.customer_code, ARRAY(SELECT (SELECT x.revenue FROM %1$s x WHERE x.customer_code = m.customer_code AND x.month = d)'
                   '                                          FROM unnest($1) d) AS revenue'
                   '             FROM (SELECT DISTINCT customer_code FROM km_kept) m),'
                   ' k AS (SELECT * FROM customer_analytics._campaign_delta_sheet_months($2, $1))'
                   ' SELECT count(*) FROM ((SELECT k::text FROM k EXCEPT ALL SELECT p::text FROM p)'
                   '                       UNION ALL (SELECT p::text FROM p EXCEPT ALL SELECT k::text FROM k)) x', months)
      INTO pivot_differ USING ms, st;
    mode := (SELECT h.mode FROM customer_analytics.refresh_history h
              WHERE h.kind = 'campaign' AND h.name = 'km' ORDER BY h.id DESC LIMIT 1);
END $$;
-- lines of the orders of the given customers dated in [first, last) set to
-- amount (NULL: added delta to them)
CREATE FUNCTION public.km_change(codes text[], first date, last date, delta numeric, amount numeric DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    WITH u AS (UPDATE km.sales_order_lines l SET pretax_subtotal = COALESCE(amount, pretax_subtotal + delta)
                 FROM km.sales_orders o
                WHERE o.order_type = l.order_type AND o.order_number = l.order_number
                  AND o.customer_code = ANY (codes) AND to_date(o.order_date, 'YYYYMMDD') >= first
                  AND to_date(o.order_date, 'YYYYMMDD') < last
               RETURNING o.customer_code)
    SELECT count(DISTINCT customer_code) FROM u
$$;
-- a customer's months in the long form and its sheet row
CREATE FUNCTION public.km_months(code text) RETURNS TABLE(month date, revenue numeric, orders bigint)
LANGUAGE sql AS $$ SELECT l.month, l.revenue, l.orders FROM km_bi.km_monthly_long l WHERE l.customer_code = code ORDER BY l.month $$;
CREATE FUNCTION public.km_sheet(code text) RETURNS text
LANGUAGE sql AS $$ SELECT s::text FROM km_bi.km_monthly s WHERE s.customer_code = code $$;
-- three targets
CREATE TABLE public.km_some AS SELECT t.customer_code FROM km_bi.km_targets t ORDER BY t.customer_code LIMIT 3;
SELECT (SELECT count(*) FROM km_bi.km_targets) AS targets,
       (SELECT count(*) FROM km_bi.km_monthly_long) / (SELECT count(*) FROM km_bi.km_targets) AS months_per_target;

-- outside a pass: nothing kept, no row
SELECT customer_analytics._campaign_delta_months_kept(s.state_table) AS kept,
       (SELECT count(*) FROM customer_analytics._campaign_delta_month_rows(s.state_table, false)) AS month_rows,
       (SELECT count(*) FROM customer_analytics._campaign_delta_sheet_months(s.state_table, '{2025-09-01}')) AS sheet_rows
  FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'km';
SELECT customer_analytics._campaign_delta_months_kept(NULL) AS kept,
       (SELECT count(*) FROM customer_analytics._campaign_delta_month_rows(NULL, NULL)) AS month_rows,
       (SELECT count(*) FROM customer_analytics._campaign_delta_sheet_months(NULL, NULL)) AS sheet_rows;

-- the three targets' amounts in the revenue window raised by amounts with
-- many decimals (the lines keep two: numeric(14,2)), with the months of
-- all three kept (5 months each) and listed; the month state read once per
-- changed customer (3), not again for the views
SELECT public.km_change(ARRAY(SELECT customer_code FROM public.km_some), '2025-09-01', '2027-01-01', 0.123456789);
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km');
SELECT * FROM public.km_months((SELECT min(customer_code) FROM public.km_some));

-- a target with no order in two of its months (October and November
-- 2025 deleted): those months 0 revenue and 0 orders, as a recompute
DELETE FROM km.sales_order_lines l USING km.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number
   AND o.customer_code = (SELECT min(customer_code) FROM public.km_some)
   AND o.order_date >= '20251001' AND o.order_date < '20251201';
DELETE FROM km.sales_orders o
 WHERE o.customer_code = (SELECT min(customer_code) FROM public.km_some)
   AND o.order_date >= '20251001' AND o.order_date < '20251201';
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km');
SELECT * FROM public.km_months((SELECT min(customer_code) FROM public.km_some));
SELECT public.km_sheet((SELECT min(customer_code) FROM public.km_some));

-- months at both edges of the window: orders of the second target moved to
-- its first and last day (2025-09-01, 2026-01-07), one out of it
UPDATE km.sales_orders SET order_date = CASE o.n WHEN 1 THEN '20250901' WHEN 2 THEN '20260107' ELSE '20260108' END
  FROM (SELECT order_number, row_number() OVER (ORDER BY order_number) AS n FROM km.sales_orders
         WHERE customer_code = (SELECT customer_code FROM public.km_some ORDER BY 1 OFFSET 1 LIMIT 1)) o
 WHERE km.sales_orders.order_number = o.order_number AND o.n <= 3;
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km');

-- the third target's every line set to 0: it stops being a target (its
-- months dropped: nothing kept, its rows gone from both views)
SELECT public.km_change(ARRAY(SELECT max(customer_code) FROM public.km_some), '2025-01-01', '2027-01-01', NULL, 0);
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km'), (SELECT count(*) FROM km_bi.km_monthly WHERE customer_code = (SELECT max(customer_code) FROM public.km_some)) AS sheet_rows;
-- ... and its amounts back: a new target, its months inserted and kept
SELECT public.km_change(ARRAY(SELECT max(customer_code) FROM public.km_some), '2025-01-01', '2027-01-01', NULL, 400.5);
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km'), (SELECT count(*) FROM km_bi.km_monthly WHERE customer_code = (SELECT max(customer_code) FROM public.km_some)) AS sheet_rows;

-- a new customer with quotes and non-ASCII letters in its code, on the
-- routes, with orders in three of the window's months (no target yet: no
-- month rows, nothing kept)
INSERT INTO km.customers VALUES ('O''Bé "ü" 客', 'Quoted', 'K1', 'addr', NULL, '001');
INSERT INTO km.sales_orders VALUES ('SO', '900001', 'O''Bé "ü" 客', 'K1', '20250903', 'Y'),
                                   ('SO', '900002', 'O''Bé "ü" 客', 'K1', '20251115', 'Y'),
                                   ('SO', '900003', 'O''Bé "ü" 客', 'K1', '20260107', 'Y');
INSERT INTO km.sales_order_lines SELECT 'SO', n, 1, 'P1', 1, 2500.99 FROM unnest(ARRAY['900001', '900002', '900003']) n;
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km');
SELECT * FROM public.km_months('O''Bé "ü" 客');
SELECT public.km_sheet('O''Bé "ü" 客');
-- ... one of its orders made small (a low ticket): a new target, its
-- months inserted and kept
UPDATE km.sales_order_lines SET pretax_subtotal = 10.01 WHERE order_number = '900002';
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km');
SELECT public.km_sheet('O''Bé "ü" 客');

-- five customers off the routes moved onto them (their own rows changed):
-- those that pass the criteria are new targets, their months inserted and
-- kept
UPDATE km.customers SET delivery_route = 'K1' WHERE customer_code IN ('00001', '00003', '00005', '00007', '00009');
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km'),
       (SELECT count(*) FROM km_bi.km_monthly_long WHERE customer_code IN ('00001', '00003', '00005', '00007', '00009')) AS long_rows;

-- the sheet refreshed by hand between two changes (its rows then follow
-- every changed route customer) and the long form's key index dropped by
-- hand (its old rows read by a query): still equal to a recompute
REFRESH MATERIALIZED VIEW km_bi.km_monthly;
SELECT public.km_change(ARRAY(SELECT customer_code FROM public.km_some), '2025-09-01', '2027-01-01', 1.5);
SELECT * FROM public.km_refresh();
SELECT public.campaign_differences('km');
DROP INDEX km_bi.km_monthly_long_key;
SELECT public.km_change(ARRAY(SELECT customer_code FROM public.km_some), '2025-09-01', '2027-01-01', 2.25);
SELECT (public.km_refresh()).mode;
SELECT public.campaign_differences('km');

-- the fallback, outside a pass (nothing kept): the sheet's new rows
-- pivoted from the month state by the same statement, equal to the sheet
CREATE FUNCTION public.km_fallback_differences() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    c customer_analytics.campaigns := customer_analytics._campaign_resolved((SELECT x FROM customer_analytics.campaigns x WHERE x.name = 'km'));
    s customer_analytics.campaign_refresh_state := (SELECT x FROM customer_analytics.campaign_refresh_state x WHERE x.campaign = 'km');
    q text := customer_analytics._campaign_delta_sheet_rows_sql(c, 'km_bi.km_targets', s.state_table, s.month_state_table,
                                                                'ARRAY(SELECT t.customer_code FROM km_bi.km_targets t)');
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM (%1$s) x EXCEPT ALL SELECT m::text FROM km_bi.km_monthly m)'
                   ' UNION ALL (SELECT m::text FROM km_bi.km_monthly m EXCEPT ALL SELECT x::text FROM (%1$s) x)) d', q) INTO n;
    RETURN n;
END $$;
SELECT public.km_fallback_differences() AS differences, (SELECT count(*) FROM km_bi.km_monthly) AS sheet_rows;

-- what a pass keeps is read only by a role that may read the campaign's
-- state table: another role of the same session, in the refresh's own
-- transaction, is refused (42501) by each of the three functions; the
-- owner (here the superuser who made the campaign) reads it
CREATE ROLE ca_km_other;
SELECT public.km_change(ARRAY(SELECT customer_code FROM public.km_some), '2025-09-01', '2027-01-01', 1);
SELECT s.state_table::oid AS km_state FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'km' \gset
BEGIN;
SELECT 1 FROM customer_analytics.refresh_campaign('km');
SET ROLE ca_km_other;
SAVEPOINT other;
SELECT count(*) FROM customer_analytics._campaign_delta_month_rows(:km_state::oid::regclass, false);
ROLLBACK TO other;
SELECT count(*) FROM customer_analytics._campaign_delta_sheet_months(:km_state::oid::regclass, '{2025-09-01}');
ROLLBACK TO other;
SELECT customer_analytics._campaign_delta_view_keys(:km_state::oid::regclass, true);
ROLLBACK TO other;
-- (whether anything was kept is no secret)
SELECT customer_analytics._campaign_delta_months_kept(:km_state::oid::regclass) AS kept;
RESET ROLE;
SELECT count(*) AS kept_rows FROM customer_analytics._campaign_delta_month_rows(:km_state::oid::regclass, false);
SELECT cardinality(customer_analytics._campaign_delta_view_keys(:km_state::oid::regclass, true)) AS view_keys;
COMMIT;
SELECT public.campaign_differences('km');
DROP ROLE ca_km_other;
