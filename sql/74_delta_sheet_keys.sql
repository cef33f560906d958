-- A campaign's delta refresh replaces the sheet's rows only of the
-- customers whose targets row it wrote or deleted (_matview_touched) or
-- whose months changed, entered or left (the long form's keys), while the
-- targets view and the sheet are the versions the last refresh recorded
-- (_campaign_views_as_recorded): a changed customer who is no target, or a
-- target whose targets row and months stayed the same, is not even looked
-- up in the sheet.  After a REFRESH of a view by hand the sheet follows
-- every changed customer that may have been a route customer since the
-- last refresh (suite 78: off the routes, none is).  The search of a view's current rows
-- is prepared once per session: it survives an index added to a view, and
-- a campaign dropped and made again in the same session gets new ones.
-- After every refresh the three views equal a recompute
-- (campaign_differences); the sheet's keys looked up are its key index's
-- scans in the refresh (one per key; sequential scans off so that the
-- planner probes even this small view).
\set VERBOSITY terse
SET client_min_messages = warning;
-- 600 customers on K1/T9/K2/T8 (customer c on the route c % 4: K1, T9, K2,
-- T8), orders over 2025-06-03 .. 2026-01-03; the revenue window starts on
-- 2025-09-01, inside the data window
SELECT public.erp_source('dsk', 600, '{K1,T9,K2,T8}', '2025-06-03', 215, 2, 5);
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('dsk');
CREATE SCHEMA dsk_bi;
SELECT name FROM customer_analytics.create_campaign('dsk', 'dsk_bi', routes => '{K1,K2}', source_schema => 'dsk',
                                                  revenue_window => '[2025-09-01,2026-02-01)');
SELECT 1 FROM customer_analytics.refresh_campaign('dsk');
SET enable_seqscan = off;

-- the refresh's mode and the sheet's keys it looked up: the scans of the
-- sheet's key index in its transaction (counted before they are reported)
CREATE FUNCTION public.dsk_refresh(OUT mode text, OUT sheet_keys bigint) RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    before bigint := pg_stat_get_xact_numscans('dsk_bi.dsk_monthly_key'::regclass);
BEGIN
    PERFORM customer_analytics.refresh_campaign('dsk');
    sheet_keys := pg_stat_get_xact_numscans('dsk_bi.dsk_monthly_key'::regclass) - before;
    mode := (SELECT h.mode FROM customer_analytics.refresh_history h
              WHERE h.kind = 'campaign' AND h.name = 'dsk' ORDER BY h.id DESC LIMIT 1);
END $$;
-- lines of the orders of the given customers dated in [first, last) changed by delta
CREATE FUNCTION public.dsk_change(codes text[], first date, last date, delta numeric) RETURNS bigint LANGUAGE sql AS $$
    WITH u AS (UPDATE dsk.sales_order_lines l SET pretax_subtotal = pretax_subtotal + delta
                 FROM dsk.sales_orders o
                WHERE o.order_type = l.order_type AND o.order_number = l.order_number
                  AND o.customer_code = ANY (codes) AND to_date(o.order_date, 'YYYYMMDD') >= first
                  AND to_date(o.order_date, 'YYYYMMDD') < last
               RETURNING o.customer_code)
    SELECT count(DISTINCT customer_code) FROM u
$$;
-- two targets with orders before the revenue window, and with orders in it
CREATE TABLE public.dsk_some AS
SELECT t.customer_code FROM dsk_bi.dsk_targets t
 WHERE EXISTS (SELECT 1 FROM dsk.sales_orders o WHERE o.customer_code = t.customer_code AND o.order_date < '20250901')
   AND EXISTS (SELECT 1 FROM dsk.sales_orders o WHERE o.customer_code = t.customer_code AND o.order_date >= '20250901')
 ORDER BY t.customer_code LIMIT 2;
SELECT count(*) FROM public.dsk_some;

-- ten customers off the campaign's routes (T9): no targets row, no sheet
-- row, no sheet key
SELECT public.dsk_change(ARRAY(SELECT lpad(c::text, 5, '0') FROM generate_series(1, 37, 4) c), '2025-01-01', '2027-01-01', 5);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');

-- two targets' orders before the revenue window: their targets rows change
-- (spend, ticket size), their months do not: two sheet keys
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some), '2025-01-01', '2025-09-01', 400);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');

-- the same targets' orders in the revenue window, with ten customers off
-- the routes: the targets' rows and months change, two sheet keys
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some)
                         || ARRAY(SELECT lpad(c::text, 5, '0') FROM generate_series(1, 37, 4) c), '2025-09-01', '2027-01-01', 300);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');

-- the targets view refreshed by hand after the change: it already holds
-- the new rows, which the delta then leaves as they are, while the sheet
-- still has the old ones; every changed customer on the routes is looked
-- up in the sheet (2 keys: the ten off the routes are not), and the sheet
-- follows
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some)
                         || ARRAY(SELECT lpad(c::text, 5, '0') FROM generate_series(1, 37, 4) c), '2025-01-01', '2025-09-01', -350);
REFRESH MATERIALIZED VIEW dsk_bi.dsk_targets;
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');
-- and the next refresh is keyed by the targets rows again
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some), '2025-01-01', '2025-09-01', 20);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');

-- the sheet refreshed by hand: keyed by every changed route customer (2
-- keys, and one scan more: the sheet's rows counted again after its REFRESH)
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some), '2025-09-01', '2027-01-01', 20);
REFRESH MATERIALIZED VIEW CONCURRENTLY dsk_bi.dsk_monthly;
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');

-- a target leaves (moved off the routes), then comes back
UPDATE dsk.customers SET delivery_route = 'T9' WHERE customer_code = (SELECT min(customer_code) FROM public.dsk_some);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk'),
       (SELECT count(*) FROM dsk_bi.dsk_monthly WHERE customer_code = (SELECT min(customer_code) FROM public.dsk_some)) AS sheet_rows;
UPDATE dsk.customers SET delivery_route = 'K1' WHERE customer_code = (SELECT min(customer_code) FROM public.dsk_some);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk'),
       (SELECT count(*) FROM dsk_bi.dsk_monthly WHERE customer_code = (SELECT min(customer_code) FROM public.dsk_some)) AS sheet_rows;

-- the recorded row counts still equal count(*)
SELECT c.target_rows = (SELECT count(*) FROM dsk_bi.dsk_targets) AS targets_counted,
       c.monthly_rows = (SELECT count(*) FROM dsk_bi.dsk_monthly) AS sheet_counted
  FROM customer_analytics.campaigns c WHERE c.name = 'dsk';

-- the kept searches of the views' rows: an index added to a view (its
-- plans made again), then the same session's campaign dropped and made again
CREATE INDEX dsk_targets_route ON dsk_bi.dsk_targets (delivery_route, customer_code);
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some), '2025-09-01', '2027-01-01', 7);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');
DROP INDEX dsk_bi.dsk_targets_route;
SELECT customer_analytics.drop_campaign('dsk');
SELECT name FROM customer_analytics.create_campaign('dsk', 'dsk_bi', routes => '{K1,K2}', source_schema => 'dsk',
                                                  revenue_window => '[2025-09-01,2026-02-01)');
SELECT 1 FROM customer_analytics.refresh_campaign('dsk');
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some), '2025-01-01', '2027-01-01', 9);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');

-- _matview_touched: the keys of the last apply of this transaction; none
-- outside it, none after the subtransaction that applied them rolled back
SELECT public.dsk_change(ARRAY(SELECT customer_code FROM public.dsk_some), '2025-01-01', '2027-01-01', 3);
BEGIN;
SAVEPOINT s;
SELECT 1 FROM customer_analytics.refresh_campaign('dsk');
SELECT ARRAY(SELECT DISTINCT u FROM unnest(customer_analytics._matview_touched('dsk_bi.dsk_targets')) u ORDER BY 1)
       = ARRAY(SELECT customer_code FROM public.dsk_some ORDER BY 1) AS touched_the_two;
ROLLBACK TO SAVEPOINT s;
SELECT customer_analytics._matview_touched('dsk_bi.dsk_targets') IS NULL AS rolled_back;
COMMIT;
SELECT customer_analytics._matview_touched('dsk_bi.dsk_targets') IS NULL AS none_outside;
-- only for those who may read the view
CREATE ROLE dsk_stranger;
SET ROLE dsk_stranger;
SELECT customer_analytics._matview_touched('dsk_bi.dsk_targets');
RESET ROLE;
DROP ROLE dsk_stranger;
SELECT customer_analytics._matview_touched(NULL);
SELECT * FROM public.dsk_refresh();
SELECT public.campaign_differences('dsk');

RESET enable_seqscan;
SELECT customer_analytics.drop_campaign('dsk');
SELECT customer_analytics.drop_rollup('dsk');
DROP SCHEMA dsk, dsk_bi CASCADE;
DROP FUNCTION public.dsk_refresh(), public.dsk_change(text[], date, date, numeric);
DROP TABLE public.dsk_some;
