-- A campaign's delta refresh decides on the state of its changed customers
-- on the campaign's routes alone (issue 25): the customers query finds the
-- route customers among the changed ones, and the state is probed for
-- those, not for every changed customer (most of a change is often off the
-- routes).  Counted with the state's pg_stat_user_tables counters over one
-- refresh that changes only customers off the routes, and one that changes
-- customers on and off them.  Then random rounds of changes (order totals,
-- new and removed orders, customers moved onto and off the routes, closed
-- and reopened) by the analyst who owns the campaign (no superuser): after
-- each refresh, every view equals a full recompute from the source tables.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_rk_analyst;
-- 1,200 customers, a quarter of them on the campaign's routes K1/K2 (the
-- others on T9/T8); customer c has 3 + c % 4 orders over
-- 2025-06 .. 2026-01, two lines each
SELECT public.erp_source('rk', 1200, '{K1,T9,K2,T8,T9,T8,T9,T8}', '2025-06-03', 215, 3, 4);
GRANT USAGE ON SCHEMA rk TO ca_rk_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rk TO ca_rk_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_rk_analyst;  -- the state of its campaign
SELECT rollup_rows FROM customer_analytics.enable_rollup('rk', readers => '{ca_rk_analyst}');
CREATE SCHEMA rk_bi AUTHORIZATION ca_rk_analyst;

-- the views against a full recompute from the source tables (row text)
CREATE FUNCTION public.rk_differences(OUT targets bigint, OUT targets_differ bigint, OUT long_rows_differ bigint,
                                      OUT sheet_rows_differ bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL customer_analytics.use_rollup = off;
    CREATE TEMP TABLE rk_full ON COMMIT DROP AS
    SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', min_spend => 2000,
        low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'rk');
    CREATE TEMP TABLE rk_months ON COMMIT DROP AS
    SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM rk_full), '[2025-09-01,2026-01-07]', 'rk');
    targets := (SELECT count(*) FROM rk_full);
    targets_differ := (SELECT count(*) FROM ((SELECT x::text FROM rk_bi.rkc_targets x EXCEPT ALL SELECT x::text FROM rk_full x)
                           UNION ALL (SELECT x::text FROM rk_full x EXCEPT ALL SELECT x::text FROM rk_bi.rkc_targets x)) d);
    long_rows_differ := (SELECT count(*) FROM ((SELECT x::text FROM rk_bi.rkc_monthly_long x EXCEPT ALL SELECT x::text FROM rk_months x)
                             UNION ALL (SELECT x::text FROM rk_months x EXCEPT ALL SELECT x::text FROM rk_bi.rkc_monthly_long x)) d);
    -- the sheet: one row per target, its months' revenue summed
    sheet_rows_differ := (SELECT count(*) FROM (
        (SELECT s.customer_code, s.trade_name, s.csm, s.avg_ticket_size,
                s.rev_2025_09 + s.rev_2025_10 + s.rev_2025_11 + s.rev_2025_12 + s.rev_2026_01 AS revenue
           FROM rk_bi.rkc_monthly s
         EXCEPT ALL
         SELECT f.customer_code, f.trade_name, COALESCE(f.csm, ''), f.avg_ticket_size,
                COALESCE((SELECT sum(m.revenue) FROM rk_months m WHERE m.customer_code = f.customer_code), 0)
           FROM rk_full f)
        UNION ALL
        (SELECT f.customer_code, f.trade_name, COALESCE(f.csm, ''), f.avg_ticket_size,
                COALESCE((SELECT sum(m.revenue) FROM rk_months m WHERE m.customer_code = f.customer_code), 0)
           FROM rk_full f
         EXCEPT ALL
         SELECT s.customer_code, s.trade_name, s.csm, s.avg_ticket_size,
                s.rev_2025_09 + s.rev_2025_10 + s.rev_2025_11 + s.rev_2025_12 + s.rev_2026_01
           FROM rk_bi.rkc_monthly s)) d);
    DROP TABLE rk_full, rk_months;
END $$;
-- the state's counters before one refresh, and the rows fetched since
CREATE TABLE public.rk_before (fetched bigint, seq bigint);
GRANT ALL ON public.rk_before TO ca_rk_analyst;
CREATE FUNCTION public.rk_mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM public.rk_before;
    INSERT INTO public.rk_before
    SELECT COALESCE(s.idx_tup_fetch, 0), s.seq_scan FROM pg_stat_user_tables s WHERE s.relid = to_regclass('customer_analytics_state.campaign_state_rkc');
$$;
CREATE FUNCTION public.rk_fetched(OUT fetched bigint, OUT seq_scans bigint) LANGUAGE sql AS $$
    SELECT COALESCE(s.idx_tup_fetch, 0) - b.fetched, s.seq_scan - b.seq
      FROM public.rk_before b, pg_stat_user_tables s WHERE s.relid = to_regclass('customer_analytics_state.campaign_state_rkc');
$$;
CREATE FUNCTION public.rk_mode() RETURNS text LANGUAGE sql AS $$
    SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'rkc' ORDER BY id DESC LIMIT 1;
$$;

SET ROLE ca_rk_analyst;
SELECT name FROM customer_analytics.create_campaign('rkc', 'rk_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'rk');
-- (the first refresh builds the state)
SELECT target_rows FROM customer_analytics.refresh_campaign('rkc');
RESET ROLE;
ANALYZE rk.customers, customer_analytics_state.campaign_state_rkc, customer_analytics_state.campaign_months_rkc, rk_bi.rkc_targets, rk_bi.rkc_monthly, rk_bi.rkc_monthly_long;
SELECT * FROM public.rk_differences();

-- 150 customers off the routes change every order: the state is probed
-- once for each of them (1 row fetched per changed customer; none of them
-- is a route customer)
SELECT pg_stat_force_next_flush();
SELECT public.rk_mark();
SET ROLE ca_rk_analyst;
UPDATE rk.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 3
  FROM rk.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 8 = 1;
SELECT target_rows FROM customer_analytics.refresh_campaign('rkc');
SELECT public.rk_mode();
RESET ROLE;
SELECT pg_stat_force_next_flush();
SELECT round(fetched / 150.0, 2) AS fetched_per_changed_customer, seq_scans FROM public.rk_fetched();
SELECT * FROM public.rk_differences();

-- 300 customers change every order, 150 on the routes and 150 off them:
-- the one pass of the state update and the decisions reads the 300 rows
-- once (1.0 row fetched per changed customer; 1.5 when the decisions
-- probed the state again for the 150 route customers)
SELECT pg_stat_force_next_flush();
SELECT public.rk_mark();
SET ROLE ca_rk_analyst;
UPDATE rk.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 4
  FROM rk.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 8 IN (2, 3);
SELECT target_rows FROM customer_analytics.refresh_campaign('rkc');
SELECT public.rk_mode();
RESET ROLE;
SELECT pg_stat_force_next_flush();
SELECT round(fetched / 300.0, 2) AS fetched_per_changed_customer, seq_scans FROM public.rk_fetched();
SELECT * FROM public.rk_differences();

-- random rounds (a fixed seed), each its own transaction before the
-- refresh: order totals changed, orders added and removed, customers
-- moved onto and off the routes, closed and reopened; every refresh
-- follows the changes (delta) and equals a recompute
CREATE FUNCTION public.rk_change(r int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- a few dozen orders' lines change by a random amount
    UPDATE rk.sales_order_lines l SET pretax_subtotal = greatest(0, pretax_subtotal + round((random() * 900 - 450)::numeric, 2))
     WHERE (l.order_type, l.order_number) IN (SELECT o.order_type, o.order_number FROM rk.sales_orders o
                                              ORDER BY random() LIMIT 40);
    -- a few orders removed with their lines
    CREATE TEMP TABLE rk_gone ON COMMIT DROP AS
    SELECT o.order_type, o.order_number FROM rk.sales_orders o ORDER BY random() LIMIT 4;
    DELETE FROM rk.sales_order_lines l USING rk_gone g WHERE l.order_type = g.order_type AND l.order_number = g.order_number;
    DELETE FROM rk.sales_orders o USING rk_gone g WHERE o.order_type = g.order_type AND o.order_number = g.order_number;
    -- a few new orders of random customers
    INSERT INTO rk.sales_orders
    SELECT 'SO', 'R' || r || '-' || i, lpad((1 + floor(random() * 1200))::int::text, 5, '0'), 'K1',
           to_char(date '2025-09-01' + floor(random() * 120)::int, 'YYYYMMDD'), 'Y'
      FROM generate_series(1, 6) i;
    INSERT INTO rk.sales_order_lines
    SELECT 'SO', 'R' || r || '-' || i, 1, 'P1', 1, round((200 + random() * 2500)::numeric, 2)
      FROM generate_series(1, 6) i;
    -- customers moved onto the routes, off them, closed, reopened
    UPDATE rk.customers SET delivery_route = 'K2'
     WHERE customer_code IN (SELECT customer_code FROM rk.customers WHERE delivery_route LIKE 'T%' ORDER BY random() LIMIT 3);
    UPDATE rk.customers SET delivery_route = 'T9'
     WHERE customer_code IN (SELECT customer_code FROM rk.customers WHERE delivery_route LIKE 'K%' ORDER BY random() LIMIT 3);
    UPDATE rk.customers SET closure_date = CASE WHEN closure_date IS NULL THEN '20251201' END
     WHERE customer_code IN (SELECT customer_code FROM rk.customers ORDER BY random() LIMIT 2);
END $$;
GRANT EXECUTE ON FUNCTION public.rk_change(int) TO ca_rk_analyst;
-- (one line per round: its mode, and the views' differences from a recompute)
CREATE FUNCTION public.rk_round() RETURNS text LANGUAGE sql AS $$
    SELECT format('%s: %s targets; differences: targets %s, long form %s, sheet %s', split_part(public.rk_mode(), ' (', 1),
                  CASE WHEN d.targets > 0 THEN 'some' ELSE 'no' END, d.targets_differ, d.long_rows_differ, d.sheet_rows_differ)
      FROM public.rk_differences() d
$$;
SELECT setseed(0.25);
SET ROLE ca_rk_analyst;
SELECT public.rk_change(1);
SELECT 1 FROM customer_analytics.refresh_campaign('rkc');
RESET ROLE;
SELECT public.rk_round();
SET ROLE ca_rk_analyst;
SELECT public.rk_change(2);
SELECT 1 FROM customer_analytics.refresh_campaign('rkc');
RESET ROLE;
SELECT public.rk_round();
SET ROLE ca_rk_analyst;
SELECT public.rk_change(3);
SELECT 1 FROM customer_analytics.refresh_campaign('rkc');
RESET ROLE;
SELECT public.rk_round();
SET ROLE ca_rk_analyst;
SELECT public.rk_change(4);
SELECT 1 FROM customer_analytics.refresh_campaign('rkc');
RESET ROLE;
SELECT public.rk_round();
SET ROLE ca_rk_analyst;
SELECT public.rk_change(5);
SELECT 1 FROM customer_analytics.refresh_campaign('rkc');
RESET ROLE;
SELECT public.rk_round();

SET ROLE ca_rk_analyst;
SELECT customer_analytics.drop_campaign('rkc');
RESET ROLE;
SELECT customer_analytics.drop_rollup('rk');
DROP FUNCTION public.rk_differences(), public.rk_mark(), public.rk_fetched(), public.rk_mode(), public.rk_change(int),
    public.rk_round();
DROP TABLE public.rk_before;
DROP SCHEMA rk_bi CASCADE;
DROP SCHEMA rk CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_rk_analyst;
DROP ROLE ca_rk_analyst;
