-- A campaign's delta refresh looks up in its targets view only the changed
-- customers that can have a row there: while the view is as the last
-- refresh left it, the old and new targets (the C pass's verdicts, and the
-- customers whose months it dropped); after a REFRESH of the view by hand,
-- the changed customers that may have been route customers since the
-- state's snapshot (the view holds the targets of its own snapshot); the
-- sheet, after such a REFRESH, likewise.  The month state is read only for
-- the changed customers that were route customers.  The three views and
-- the month state are made with a fillfactor (75) that keeps their
-- updates HOT.  After every refresh the views equal a recompute
-- (campaign_differences); the keys looked up are counted as the scans of
-- each view's key index in the refresh's transaction (one per key).
\set VERBOSITY terse
SET client_min_messages = warning;
-- 400 customers on K1/T9/K2/T8 (customer c on the route c % 4: K1, T9, K2,
-- T8), orders over 2025-06-03 .. 2026-01-03; the revenue window starts on
-- 2025-09-01, inside the data window
SELECT public.erp_source('vk', 400, '{K1,T9,K2,T8}', '2025-06-03', 215, 2, 5);
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('vk');
CREATE SCHEMA vk_bi;
SELECT name FROM customer_analytics.create_campaign('vk', 'vk_bi', routes => '{K1,K2}', source_schema => 'vk',
                                                  revenue_window => '[2025-09-01,2026-01-08)');
SELECT 1 FROM customer_analytics.refresh_campaign('vk');
SET enable_seqscan = off;

-- the views and the month state keep room for HOT updates
SELECT c.relname, c.reloptions FROM pg_class c
 WHERE c.oid IN ('vk_bi.vk_targets'::regclass, 'vk_bi.vk_monthly'::regclass, 'vk_bi.vk_monthly_long'::regclass,
                 (SELECT s.month_state_table FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'vk'))
 ORDER BY 1;

-- the refresh's mode, the keys it looked up in each view (its key index's
-- scans in the transaction; after a REFRESH by hand, one more: the view's
-- rows counted again), the month state's key index scans (one per changed
-- customer the pass reads; the long form's and the sheet's new rows are
-- the month rows the pass left, _campaign_delta_month_rows, not read
-- again) and the updates of the views and the month state that were not
-- HOT
CREATE FUNCTION public.vk_refresh(OUT mode text, OUT target_keys bigint, OUT sheet_keys bigint, OUT long_keys bigint,
                                  OUT month_reads bigint, OUT cold_updates bigint) RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    months regclass := (SELECT s.month_state_table FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'vk');
    months_key regclass := (SELECT i.indexrelid::regclass FROM pg_index i WHERE i.indrelid = months AND i.indisprimary);
    views regclass[] := ARRAY['vk_bi.vk_targets', 'vk_bi.vk_monthly', 'vk_bi.vk_monthly_long', months]::regclass[];
    t bigint := pg_stat_get_xact_numscans('vk_bi.vk_targets_key'::regclass);
    s bigint := pg_stat_get_xact_numscans('vk_bi.vk_monthly_key'::regclass);
    l bigint := pg_stat_get_xact_numscans('vk_bi.vk_monthly_long_key'::regclass);
    m bigint := pg_stat_get_xact_numscans(months_key);
    cold bigint := (SELECT sum(pg_stat_get_xact_tuples_updated(v) - pg_stat_get_xact_tuples_hot_updated(v)) FROM unnest(views) v);
BEGIN
    PERFORM customer_analytics.refresh_campaign('vk');
    target_keys := pg_stat_get_xact_numscans('vk_bi.vk_targets_key'::regclass) - t;
    sheet_keys := pg_stat_get_xact_numscans('vk_bi.vk_monthly_key'::regclass) - s;
    long_keys := pg_stat_get_xact_numscans('vk_bi.vk_monthly_long_key'::regclass) - l;
    month_reads := pg_stat_get_xact_numscans(months_key) - m;
    cold_updates := (SELECT sum(pg_stat_get_xact_tuples_updated(v) - pg_stat_get_xact_tuples_hot_updated(v)) FROM unnest(views) v) - cold;
    mode := (SELECT h.mode FROM customer_analytics.refresh_history h
              WHERE h.kind = 'campaign' AND h.name = 'vk' ORDER BY h.id DESC LIMIT 1);
END $$;
-- lines of the orders of the given customers dated in [first, last) set to
-- amount (NULL: added delta to them)
CREATE FUNCTION public.vk_change(codes text[], first date, last date, delta numeric, amount numeric DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    WITH u AS (UPDATE vk.sales_order_lines l SET pretax_subtotal = COALESCE(amount, pretax_subtotal + delta)
                 FROM vk.sales_orders o
                WHERE o.order_type = l.order_type AND o.order_number = l.order_number
                  AND o.customer_code = ANY (codes) AND to_date(o.order_date, 'YYYYMMDD') >= first
                  AND to_date(o.order_date, 'YYYYMMDD') < last
               RETURNING o.customer_code)
    SELECT count(DISTINCT customer_code) FROM u
$$;
-- the rows of the given customers in the three views
CREATE FUNCTION public.vk_rows(codes text[], OUT targets bigint, OUT sheet bigint, OUT long_form bigint) RETURNS record
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM vk_bi.vk_targets WHERE customer_code = ANY (codes)),
           (SELECT count(*) FROM vk_bi.vk_monthly WHERE customer_code = ANY (codes)),
           (SELECT count(*) FROM vk_bi.vk_monthly_long WHERE customer_code = ANY (codes))
$$;
-- three targets, and ten customers off the routes (T9)
CREATE TABLE public.vk_some AS
SELECT t.customer_code FROM vk_bi.vk_targets t ORDER BY t.customer_code LIMIT 3;
CREATE TABLE public.vk_off AS SELECT lpad(c::text, 5, '0') AS customer_code FROM generate_series(1, 37, 4) c;
SELECT (SELECT count(*) FROM public.vk_some) AS some, (SELECT count(*) FROM vk_bi.vk_targets) AS targets,
       (SELECT count(*) FROM vk_bi.vk_monthly_long) / (SELECT count(*) FROM vk_bi.vk_targets) AS months_per_target;

-- ten customers off the routes: neither old nor new targets; no view looks
-- them up, their month state is not read, no row is written
SELECT public.vk_change(ARRAY(SELECT customer_code FROM public.vk_off), '2025-01-01', '2027-01-01', 5);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk');

-- the three targets' orders in the revenue window, with the ten beside:
-- three keys in the targets view, the sheet and the long form; the month
-- state read for the three (3 + 3 + 3 scans)
SELECT public.vk_change(ARRAY(SELECT customer_code FROM public.vk_some)
                        || ARRAY(SELECT customer_code FROM public.vk_off), '2025-09-01', '2027-01-01', 11);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk');

-- the first target's every line set to 0 (spend below the minimum): it
-- stops being a target and loses its rows in all three views (one key each)
SELECT public.vk_change(ARRAY(SELECT min(customer_code) FROM public.vk_some), '2025-01-01', '2027-01-01', NULL, 0);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk'), (public.vk_rows(ARRAY(SELECT min(customer_code) FROM public.vk_some))).*;
-- ... and its amounts back: it becomes a target again and gains them
SELECT public.vk_change(ARRAY(SELECT min(customer_code) FROM public.vk_some), '2025-01-01', '2027-01-01', NULL, 400);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk'), (public.vk_rows(ARRAY(SELECT min(customer_code) FROM public.vk_some))).*;

-- months at the window's edges: orders of the second target moved to the
-- revenue window's first and last day (2025-09-01, 2026-01-07), and one
-- moved out of it (2026-01-08: in the data window only)
UPDATE vk.sales_orders SET order_date = CASE o.n WHEN 1 THEN '20250901' WHEN 2 THEN '20260107' ELSE '20260108' END
  FROM (SELECT order_number, row_number() OVER (ORDER BY order_number) AS n FROM vk.sales_orders
         WHERE customer_code = (SELECT customer_code FROM public.vk_some ORDER BY 1 OFFSET 1 LIMIT 1)) o
 WHERE vk.sales_orders.order_number = o.order_number AND o.n <= 3;
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk');
SELECT month, revenue > 0 AS has_revenue, orders FROM vk_bi.vk_monthly_long
 WHERE customer_code = (SELECT customer_code FROM public.vk_some ORDER BY 1 OFFSET 1 LIMIT 1) ORDER BY month;

-- the third target's orders all deleted: it leaves the state and every view
DELETE FROM vk.sales_order_lines l USING vk.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number
   AND o.customer_code = (SELECT max(customer_code) FROM public.vk_some);
DELETE FROM vk.sales_orders WHERE customer_code = (SELECT max(customer_code) FROM public.vk_some);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk'), (public.vk_rows(ARRAY(SELECT max(customer_code) FROM public.vk_some))).*;

-- the targets view refreshed by hand between two changes: the first made
-- the first target's spend 0 (the REFRESH drops its row), the second gives
-- its amounts back; the delta follows the customers that may be route
-- customers (the first target and the second, on the routes: 2 keys, and
-- the recount; the ten off the routes are not looked up), in the targets
-- view and the sheet
SELECT public.vk_change(ARRAY(SELECT min(customer_code) FROM public.vk_some), '2025-01-01', '2027-01-01', NULL, 0);
REFRESH MATERIALIZED VIEW vk_bi.vk_targets;
SELECT (public.vk_rows(ARRAY(SELECT min(customer_code) FROM public.vk_some))).targets AS after_refresh_by_hand;
SELECT public.vk_change(ARRAY(SELECT min(customer_code) FROM public.vk_some), '2025-01-01', '2027-01-01', NULL, 300);
SELECT public.vk_change(ARRAY(SELECT customer_code FROM public.vk_some ORDER BY 1 OFFSET 1 LIMIT 1)
                        || ARRAY(SELECT customer_code FROM public.vk_off), '2025-09-01', '2027-01-01', 7);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk'), (public.vk_rows(ARRAY(SELECT min(customer_code) FROM public.vk_some))).*;
-- the reverse: the REFRESH by hand sees a new target that a later change
-- (before the delta) takes away again; the delta removes its row (a
-- customer that was no target at the state's snapshot and is none now,
-- looked up because the view was refreshed by hand)
SELECT public.vk_change(ARRAY(SELECT min(customer_code) FROM public.vk_some), '2025-01-01', '2027-01-01', NULL, 0);
SELECT * FROM public.vk_refresh();
SELECT public.vk_change(ARRAY(SELECT min(customer_code) FROM public.vk_some), '2025-01-01', '2027-01-01', NULL, 300);
REFRESH MATERIALIZED VIEW CONCURRENTLY vk_bi.vk_targets;
SELECT (public.vk_rows(ARRAY(SELECT min(customer_code) FROM public.vk_some))).targets AS after_refresh_by_hand;
SELECT public.vk_change(ARRAY(SELECT min(customer_code) FROM public.vk_some), '2025-01-01', '2027-01-01', NULL, 0);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk'), (public.vk_rows(ARRAY(SELECT min(customer_code) FROM public.vk_some))).*;
-- a target moved off the routes (its own row changed), then back
UPDATE vk.customers SET delivery_route = 'T9' WHERE customer_code = (SELECT customer_code FROM public.vk_some ORDER BY 1 OFFSET 1 LIMIT 1);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk'), (public.vk_rows(ARRAY(SELECT customer_code FROM public.vk_some ORDER BY 1 OFFSET 1 LIMIT 1))).*;
UPDATE vk.customers SET delivery_route = 'K2' WHERE customer_code = (SELECT customer_code FROM public.vk_some ORDER BY 1 OFFSET 1 LIMIT 1);
SELECT * FROM public.vk_refresh();
SELECT public.campaign_differences('vk'), (public.vk_rows(ARRAY(SELECT customer_code FROM public.vk_some ORDER BY 1 OFFSET 1 LIMIT 1))).*;

-- _campaign_delta_view_keys: the keys of the last pass of this transaction
-- over that state table; NULL outside it, for another table, for NULLs
SELECT public.vk_change(ARRAY(SELECT customer_code FROM public.vk_some)
                        || ARRAY(SELECT customer_code FROM public.vk_off), '2025-09-01', '2027-01-01', 2);
BEGIN;
SELECT 1 FROM customer_analytics.refresh_campaign('vk');
SELECT cardinality(customer_analytics._campaign_delta_view_keys(s.state_table, true)) AS targets,
       cardinality(customer_analytics._campaign_delta_view_keys(s.state_table, false)) AS route_customers,
       customer_analytics._campaign_delta_view_keys(s.month_state_table, true) IS NULL AS other_table,
       customer_analytics._campaign_delta_view_keys(NULL, true) IS NULL AS null_table
  FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'vk';
COMMIT;
SELECT customer_analytics._campaign_delta_view_keys(s.state_table, true) IS NULL AS none_outside
  FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'vk';
SELECT public.campaign_differences('vk');

RESET enable_seqscan;
SELECT customer_analytics.drop_campaign('vk');
SELECT customer_analytics.drop_rollup('vk');
DROP SCHEMA vk, vk_bi CASCADE;
DROP FUNCTION public.vk_refresh(), public.vk_change(text[], date, date, numeric, numeric), public.vk_rows(text[]);
DROP TABLE public.vk_some, public.vk_off;
