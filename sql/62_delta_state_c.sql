-- A campaign's delta refresh adjusts its changed customers' state and
-- decides on it in one C pass (_campaign_delta_state_targets, issue 25):
-- the change rows read once, each changed customer's state row read once
-- (1.0 row fetched per changed customer, where the state update and the
-- decisions probed it 1.5 times when half of the change was on the
-- routes), the rows written back by their ctids.  After every refresh the
-- state equals one rebuilt from scratch from the source tables (EXCEPT ALL
-- both ways) and the targets view equals target_customers() recomputed:
-- random signed changes; a customer's latest order removed (its last order
-- looked up again); a customer emptied (its state row deleted); a new
-- customer (a row inserted); large totals (exact sums past float8's
-- digits); customers moved onto and off the routes, and a change to a
-- customer's own row alone (no order change); all by a campaign owner who
-- is no superuser, with row-level security on the source tables.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_dsc_analyst;
-- 1,600 customers, a quarter on the campaign's routes K1/K2; customer c has
-- 2 + c % 5 orders over 2025-06 .. 2026-01 (none when c % 40 = 0), two
-- lines each
SELECT public.erp_source('dsc', 1600, '{K1,T9,K2,T8}', '2025-06-03', 215, 2, 5);
UPDATE dsc.customers SET delivery_route = 'T7' WHERE customer_code::int % 8 IN (3, 5, 7);
DELETE FROM dsc.sales_order_lines WHERE order_number::bigint / 100 % 40 = 0;
DELETE FROM dsc.sales_orders WHERE order_number::bigint / 100 % 40 = 0;
-- row-level security on the source: a route rep sees the K2 customers and
-- orders alone; the analyst owns the tables (the policies do not apply to
-- it, so the rollup, which bypasses them, serves it: a role under them
-- would not get a delta refresh at all)
CREATE ROLE ca_dsc_rep;
ALTER TABLE dsc.customers OWNER TO ca_dsc_analyst;
ALTER TABLE dsc.sales_orders OWNER TO ca_dsc_analyst;
ALTER TABLE dsc.sales_order_lines OWNER TO ca_dsc_analyst;
ALTER TABLE dsc.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE dsc.sales_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY dsc_k2 ON dsc.customers TO ca_dsc_rep USING (delivery_route = 'K2');
CREATE POLICY dsc_k2 ON dsc.sales_orders TO ca_dsc_rep USING (delivery_route = 'K2');
GRANT USAGE ON SCHEMA dsc TO ca_dsc_analyst, ca_dsc_rep;
GRANT SELECT ON ALL TABLES IN SCHEMA dsc TO ca_dsc_rep;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_dsc_analyst;
SELECT rollup_rows FROM customer_analytics.enable_rollup('dsc', readers => '{ca_dsc_analyst}');
CREATE SCHEMA dsc_bi AUTHORIZATION ca_dsc_analyst;

-- The state rebuilt from scratch from the source tables (the campaign's
-- default windows; an order's total is the sum of its lines, 0 without),
-- against the state kept (both ways, EXCEPT ALL); and the targets view
-- against target_customers() over the source tables, as the analyst.
CREATE FUNCTION public.dsc_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    kept bigint;
    state_differ bigint;
    targets bigint;
    targets_differ bigint;
BEGIN
    CREATE TEMP TABLE dsc_fresh ON COMMIT DROP AS
    WITH o AS (
        SELECT o.customer_code::text AS customer_code, to_date(o.order_date, 'YYYYMMDD') AS d,
               COALESCE((SELECT sum(l.pretax_subtotal) FROM dsc.sales_order_lines l
                          WHERE l.order_type = o.order_type AND l.order_number = o.order_number), 0) AS amount
          FROM dsc.sales_orders o WHERE o.confirmed_code = 'Y' AND o.customer_code IS NOT NULL)
    SELECT customer_code, count(*) AS orders, sum(amount) AS total, max(d) AS last_order,
           count(*) FILTER (WHERE d <@ '[2025-01-01,2026-01-01)'::daterange) AS spend_orders,
           sum(amount) FILTER (WHERE d <@ '[2025-01-01,2026-01-01)'::daterange) AS spend,
           count(*) FILTER (WHERE d <@ '[2025-09-15,2026-01-08)'::daterange AND amount < 3000) AS low_tickets,
           count(*) FILTER (WHERE d <@ '[2025-08-31,2025-10-31)'::daterange) AS base_orders,
           sum(amount) FILTER (WHERE d <@ '[2025-08-31,2025-10-31)'::daterange) AS base,
           count(*) FILTER (WHERE d <@ '[2025-10-31,2026-01-01)'::daterange) AS recent_orders,
           sum(amount) FILTER (WHERE d <@ '[2025-10-31,2026-01-01)'::daterange) AS recent
      FROM o WHERE d <@ '[2025-01-01,2026-01-08)'::daterange GROUP BY customer_code;
    CREATE TEMP TABLE dsc_kept ON COMMIT DROP AS
    SELECT customer_code, orders, total, last_order, spend_orders, spend, low_tickets, base_orders, base,
           recent_orders, recent
      FROM customer_analytics_state.campaign_state_dscc;
    kept := (SELECT count(*) FROM dsc_kept);
    state_differ := (SELECT count(*) FROM ((SELECT * FROM dsc_kept EXCEPT ALL SELECT * FROM dsc_fresh)
                                           UNION ALL (SELECT * FROM dsc_fresh EXCEPT ALL SELECT * FROM dsc_kept)) d);
    SET LOCAL ROLE ca_dsc_analyst;
    SET LOCAL customer_analytics.use_rollup = off;
    CREATE TEMP TABLE dsc_full ON COMMIT DROP AS
    SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'dsc');
    targets := (SELECT count(*) FROM dsc_full);
    targets_differ := (SELECT count(*) FROM ((SELECT x::text FROM dsc_bi.dscc_targets x EXCEPT ALL SELECT x::text FROM dsc_full x)
                           UNION ALL (SELECT x::text FROM dsc_full x EXCEPT ALL SELECT x::text FROM dsc_bi.dscc_targets x)) d);
    RETURN format('%s: state %s rows, %s differ; %s targets, %s differ',
                  (SELECT split_part(h.mode, ' (', 1) FROM customer_analytics.refresh_history h
                    WHERE h.kind = 'campaign' AND h.name = 'dscc' ORDER BY h.id DESC LIMIT 1),
                  kept, state_differ, CASE WHEN targets > 0 THEN 'some' ELSE 'no' END, targets_differ);
END $$;
-- the state's counters before one refresh, and the rows fetched since
CREATE TABLE public.dsc_before (fetched bigint, seq bigint);
CREATE FUNCTION public.dsc_mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM public.dsc_before;
    INSERT INTO public.dsc_before
    SELECT COALESCE(s.idx_tup_fetch, 0), s.seq_scan FROM pg_stat_user_tables s
     WHERE s.relid = to_regclass('customer_analytics_state.campaign_state_dscc');
$$;
CREATE FUNCTION public.dsc_fetched(OUT fetched bigint, OUT seq_scans bigint) LANGUAGE sql AS $$
    SELECT COALESCE(s.idx_tup_fetch, 0) - b.fetched, s.seq_scan - b.seq
      FROM public.dsc_before b, pg_stat_user_tables s
     WHERE s.relid = to_regclass('customer_analytics_state.campaign_state_dscc');
$$;

SET ROLE ca_dsc_analyst;
SELECT name FROM customer_analytics.create_campaign('dscc', 'dsc_bi', routes => '{K1,K2}', source_schema => 'dsc');
-- (the first refresh builds the state)
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
ANALYZE dsc.customers, customer_analytics_state.campaign_state_dscc;
SELECT public.dsc_check();

-- every order of 40 customers changes, 20 on the routes and 20 off them:
-- the one pass reads each of their state rows once
SELECT pg_stat_force_next_flush();
SELECT public.dsc_mark();
SET track_functions = 'all';
SET ROLE ca_dsc_analyst;
CREATE TEMP TABLE dsc_forty AS
(SELECT c.customer_code FROM dsc.customers c WHERE c.delivery_route IN ('K1', 'K2') AND c.customer_code::int % 40 <> 0
  ORDER BY c.customer_code LIMIT 20 OFFSET 10)
UNION ALL
(SELECT c.customer_code FROM dsc.customers c WHERE c.delivery_route NOT IN ('K1', 'K2') AND c.customer_code::int % 40 <> 0
  ORDER BY c.customer_code LIMIT 20 OFFSET 10);
UPDATE dsc.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 5
  FROM dsc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number
   AND o.customer_code IN (SELECT customer_code FROM dsc_forty);
DROP TABLE dsc_forty;
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT pg_stat_force_next_flush();
SELECT round(fetched / 40.0, 2) AS fetched_per_changed_customer, seq_scans FROM public.dsc_fetched();
SELECT calls FROM pg_stat_user_functions WHERE funcname = '_campaign_delta_state_targets';
RESET track_functions;
SELECT public.dsc_check();

-- a customer's latest order removed (it has others): its last order is
-- looked up again (its lines deleted first, then the order: its row
-- changed, then removed, the change rows of the same date -1, +1, -1); a
-- customer emptied: its state row deleted
SELECT customer_code, orders, last_order FROM customer_analytics_state.campaign_state_dscc
 WHERE customer_code IN ('00001', '00006') ORDER BY 1;
SET ROLE ca_dsc_analyst;
CREATE TEMP TABLE dsc_gone AS
SELECT order_type, order_number FROM (
    SELECT o.order_type, o.order_number FROM dsc.sales_orders o WHERE o.customer_code = '00001'
     ORDER BY o.order_date DESC LIMIT 1) a
UNION ALL
SELECT o.order_type, o.order_number FROM dsc.sales_orders o WHERE o.customer_code = '00006';
DELETE FROM dsc.sales_order_lines l USING dsc_gone g WHERE l.order_type = g.order_type AND l.order_number = g.order_number;
DELETE FROM dsc.sales_orders o USING dsc_gone g WHERE o.order_type = g.order_type AND o.order_number = g.order_number;
DROP TABLE dsc_gone;
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT customer_code, orders, last_order FROM customer_analytics_state.campaign_state_dscc
 WHERE customer_code IN ('00001', '00006') ORDER BY 1;
SELECT public.dsc_check();

-- a new customer on the routes with two orders (a state row inserted), and
-- large totals: lines near numeric(14,2)'s limit, whose sums have 16
-- significant digits (more than a float8 holds exactly)
SET ROLE ca_dsc_analyst;
INSERT INTO dsc.customers VALUES ('09999', 'New shop', 'K2', 'addr', NULL, '001');
INSERT INTO dsc.sales_orders VALUES ('SO', 'N1', '09999', 'K2', '20251120', 'Y'), ('SO', 'N2', '09999', 'K2', '20251205', 'Y');
INSERT INTO dsc.sales_order_lines VALUES ('SO', 'N1', 1, 'P1', 1, 150.10), ('SO', 'N2', 1, 'P1', 1, 2400.05);
UPDATE dsc.sales_order_lines l SET pretax_subtotal = 999999999999.99 - l.line_no * 0.01
  FROM dsc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code IN ('00002', '00010');
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT customer_code, orders, total, spend FROM customer_analytics_state.campaign_state_dscc
 WHERE customer_code IN ('00002', '09999') ORDER BY 1;
SELECT public.dsc_check();

-- customers moved onto and off the routes, one renamed, one closed: their
-- own rows change, no order (sign NULL in the changes)
SET ROLE ca_dsc_analyst;
UPDATE dsc.customers SET delivery_route = 'K1' WHERE customer_code IN ('00003', '00005', '00007');
UPDATE dsc.customers SET delivery_route = 'T9' WHERE customer_code IN ('00004', '00008');
UPDATE dsc.customers SET trade_name = 'Renamed shop' WHERE customer_code = '00012';
UPDATE dsc.customers SET closure_date = '20251201' WHERE customer_code = '00016';
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT customer_code, trade_name, delivery_route FROM dsc_bi.dscc_targets
 WHERE customer_code IN ('00003', '00004', '00005', '00007', '00008', '00012') ORDER BY 1;
SELECT public.dsc_check();

-- random rounds (a fixed seed): order totals changed up and down, orders
-- added, removed and moved in time, customers moved between routes
CREATE FUNCTION public.dsc_change(r int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dsc.sales_order_lines l SET pretax_subtotal = greatest(0, pretax_subtotal + round((random() * 1600 - 800)::numeric, 2))
     WHERE l.pretax_subtotal < 1000000 AND (l.order_type, l.order_number) IN (SELECT o.order_type, o.order_number FROM dsc.sales_orders o
                                              ORDER BY random() LIMIT 25);
    CREATE TEMP TABLE dsc_gone ON COMMIT DROP AS
    SELECT o.order_type, o.order_number FROM dsc.sales_orders o ORDER BY random() LIMIT 5;
    DELETE FROM dsc.sales_order_lines l USING dsc_gone g WHERE l.order_type = g.order_type AND l.order_number = g.order_number;
    DELETE FROM dsc.sales_orders o USING dsc_gone g WHERE o.order_type = g.order_type AND o.order_number = g.order_number;
    UPDATE dsc.sales_orders SET order_date = to_char(date '2025-08-01' + floor(random() * 150)::int, 'YYYYMMDD')
     WHERE (order_type, order_number) IN (SELECT o.order_type, o.order_number FROM dsc.sales_orders o ORDER BY random() LIMIT 5);
    INSERT INTO dsc.sales_orders
    SELECT 'SO', 'R' || r || '-' || i, lpad((1 + floor(random() * 1600))::int::text, 5, '0'), 'K1',
           to_char(date '2025-09-01' + floor(random() * 125)::int, 'YYYYMMDD'), 'Y'
      FROM generate_series(1, 6) i;
    INSERT INTO dsc.sales_order_lines
    SELECT 'SO', 'R' || r || '-' || i, 1, 'P1', 1, round((100 + random() * 3000)::numeric, 2)
      FROM generate_series(1, 6) i;
    UPDATE dsc.customers SET delivery_route = CASE WHEN delivery_route LIKE 'K%' THEN 'T8' ELSE 'K2' END
     WHERE customer_code IN (SELECT customer_code FROM dsc.customers ORDER BY random() LIMIT 4);
END $$;
GRANT EXECUTE ON FUNCTION public.dsc_change(int) TO ca_dsc_analyst;
SELECT setseed(0.62);
SET ROLE ca_dsc_analyst;
SELECT public.dsc_change(1);
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT public.dsc_check();
SET ROLE ca_dsc_analyst;
SELECT public.dsc_change(2);
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT public.dsc_check();
SET ROLE ca_dsc_analyst;
SELECT public.dsc_change(3);
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT public.dsc_check();
SET ROLE ca_dsc_analyst;
SELECT public.dsc_change(4);
SELECT 1 FROM customer_analytics.refresh_campaign('dscc');
RESET ROLE;
SELECT public.dsc_check();

-- the pass's own argument checks
SELECT * FROM customer_analytics._campaign_delta_state_targets('{K1}', '[2025-01-01,2026-01-01)', 1000,
    '[2025-09-15,2026-01-08)', 3000, 3, '[2025-08-31,2025-10-31)', '[2025-10-31,2026-01-01)', 30, false,
    'customer', 'dsc', NULL, 'customer_analytics_state.campaign_state_dscc', 'pg_temp.none', 'pg_temp.none', NULL, NULL, NULL);
SELECT * FROM customer_analytics._campaign_delta_state_targets('{K1}', '[2025-01-01,2026-01-01)', 1000,
    '[2025-09-15,2026-01-08)', 3000, 3, '[2025-08-31,2025-10-31)', '[2025-10-31,2026-01-01)', 30, false,
    'customer', 'dsc', '{}', 'customer_analytics_state.campaign_state_dscc', NULL, 'pg_temp.none', NULL, NULL, NULL);
SELECT * FROM customer_analytics._campaign_delta_state_targets('{K1}', '[2025-01-01,2026-01-01)', 1000,
    '[2025-09-15,2026-01-08)', 3000, 3, '[2025-08-31,2025-10-31)', '[2025-10-31,2026-01-01)', 30, false,
    'order', 'dsc', '{}', 'customer_analytics_state.campaign_state_dscc', 'pg_temp.none', 'pg_temp.none', NULL, NULL, NULL);
-- (a month state without its revenue window and long form's keys)
SELECT * FROM customer_analytics._campaign_delta_state_targets('{K1}', '[2025-01-01,2026-01-01)', 1000,
    '[2025-09-15,2026-01-08)', 3000, 3, '[2025-08-31,2025-10-31)', '[2025-10-31,2026-01-01)', 30, false,
    'customer', 'dsc', '{}', 'customer_analytics_state.campaign_state_dscc', 'pg_temp.none', 'pg_temp.none',
    'customer_analytics_state.campaign_state_dscc', NULL, NULL);
-- (not the owner of the state table)
SET ROLE ca_dsc_analyst;
SELECT * FROM customer_analytics._campaign_delta_state_targets('{K1}', '[2025-01-01,2026-01-01)', 1000,
    '[2025-09-15,2026-01-08)', 3000, 3, '[2025-08-31,2025-10-31)', '[2025-10-31,2026-01-01)', 30, false,
    'customer', 'dsc', '{}', 'public.dsc_before', 'pg_temp.none', 'pg_temp.none', NULL, NULL, NULL);
RESET ROLE;

SET ROLE ca_dsc_analyst;
SELECT customer_analytics.drop_campaign('dscc');
RESET ROLE;
SELECT customer_analytics.drop_rollup('dsc');
DROP FUNCTION public.dsc_check(), public.dsc_mark(), public.dsc_fetched(), public.dsc_change(int);
DROP TABLE public.dsc_before;
DROP SCHEMA dsc_bi CASCADE;
DROP SCHEMA dsc CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_dsc_analyst;
DROP ROLE ca_dsc_analyst, ca_dsc_rep;

-- the rule "must the last order be looked up again" as SQL calls it (the
-- sharded landing): (the state's last order, the latest added date and how
-- many added on it, the latest removed date and how many removed on it)
SELECT x.case_, customer_analytics._campaign_last_order_unknown(x.state_last, x.added_last, x.added_at, x.removed_last, x.removed_at) AS unknown
  FROM (VALUES ('the last order removed, nothing added', '2025-10-01'::date, NULL::date, NULL::bigint, '2025-10-01'::date, 1::bigint),
               ('an earlier order removed', '2025-10-01', NULL, NULL, '2025-09-01', 1),
               ('the last order changed (removed, added again)', '2025-10-01', '2025-10-01', 1, '2025-10-01', 1),
               ('two removed on the last date, one added back', '2025-10-01', '2025-10-01', 1, '2025-10-01', 2),
               ('no state row: added and removed on one date', NULL, '2025-11-01', 1, '2025-11-01', 1),
               ('no state row, nothing added', NULL, NULL, NULL, '2025-11-01', 1),
               ('the last order removed, a later one added', '2025-10-01', '2025-12-01', 1, '2025-10-01', 1),
               ('two removed on the latest added date, one added', '2025-10-01', '2025-12-01', 1, '2025-12-01', 2),
               ('nothing removed', '2025-10-01', '2025-12-01', 1, NULL, NULL)) x(case_, state_last, added_last, added_at, removed_last, removed_at);
-- counts past bigint: an error, not a wrapped sum
SELECT customer_analytics._campaign_last_order_unknown('2025-10-01', '2025-10-01', 9223372036854775807, '2025-10-01', -1);
SELECT customer_analytics._campaign_last_order_unknown(NULL, '2025-10-01', 1, '2025-10-01', -9223372036854775808);
