-- A campaign's state keeps what the delta refresh decides on of its route
-- customers (issue 25): whether each customer is one of the campaign's
-- route customers (on its routes, and open where it excludes closed ones)
-- and its trade name, route, address and CSM, so that a refresh after
-- order changes alone reads no row of the customers.  A change of the
-- customers still reaches the views exactly: the rollup's triggers list a
-- customer whose own row was added, updated (route, name, closure, ...)
-- or deleted, and the refresh reads those rows again (and those of
-- customers new to the state, and of rows kept without the attributes, as
-- 1.5 kept them); a TRUNCATE of the customers makes the refresh a full
-- one.  After each refresh the views equal a recompute
-- (campaign_differences) and the state's attributes equal the customers'.
-- The state's writes are one statement, its updates HOT (a fillfactor,
-- no indexed column changed).
\set VERBOSITY terse
SET client_min_messages = warning;
-- 400 customers on K1, T9, K2, T8 (the campaigns' routes K1 and K2); every
-- customer has 2 + c % 5 orders over 2025-06 .. 2026-01
SELECT public.erp_source('rat', 400, '{K1,T9,K2,T8}', '2025-06-03', 215, 2, 5);
SELECT 1 FROM customer_analytics.enable_rollup('rat');
CREATE SCHEMA rat_bi;
-- two campaigns on the same customers: closed customers excluded (the
-- default) and kept
SELECT name FROM customer_analytics.create_campaign('ratc', 'rat_bi', routes => '{K1,K2}', source_schema => 'rat');
SELECT name FROM customer_analytics.create_campaign('ratk', 'rat_bi', routes => '{K1,K2}', source_schema => 'rat',
                                                    exclude_closed => false);
SELECT 1 FROM customer_analytics.refresh_campaign('ratc');
SELECT 1 FROM customer_analytics.refresh_campaign('ratk');
SELECT c.reloptions FROM pg_class c WHERE c.oid = 'customer_analytics_state.campaign_state_ratc'::regclass;

-- the state's attributes against the customers: rows that differ, rows
-- whose attributes are unknown (NULL), route customers kept
CREATE FUNCTION public.rat_state(campaign text, OUT differ bigint, OUT unknown bigint, OUT route_customers bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c customer_analytics.campaigns := (SELECT x FROM customer_analytics.campaigns x WHERE x.name = campaign);
BEGIN
    EXECUTE format('SELECT count(*) FILTER (WHERE s.route_customer IS NOT NULL'
                   '   AND ROW(s.route_customer, s.trade_name, s.delivery_route, s.shipping_address, s.csm)'
                   '       IS DISTINCT FROM ROW(r.customer_code IS NOT NULL, r.trade_name, r.delivery_route::text,'
                   '                            r.shipping_address, r.csm::text)),'
                   ' count(*) FILTER (WHERE s.route_customer IS NULL), count(*) FILTER (WHERE s.route_customer)'
                   ' FROM customer_analytics_state.%I s'
                   ' LEFT JOIN rat.customers r ON r.customer_code::text = s.customer_code'
                   '  AND r.delivery_route::text = ANY (%L::text[])%s',
                   'campaign_state_' || c.name, c.routes,
                   CASE WHEN c.exclude_closed THEN ' AND COALESCE(btrim(r.closure_date), '''') = ''''' ELSE '' END)
      INTO differ, unknown, route_customers;
END $$;
-- both campaigns refreshed, each checked: its refresh's mode, its views
-- against a recompute, its state against the customers
CREATE FUNCTION public.rat_refresh() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    n text;
BEGIN
    FOREACH n IN ARRAY ARRAY['ratc', 'ratk'] LOOP
        PERFORM customer_analytics.refresh_campaign(n);
        RETURN NEXT format('%s %s: %s; state: %s', n,
                           (SELECT split_part(h.mode, ' (', 1) FROM customer_analytics.refresh_history h
                             WHERE h.kind = 'campaign' AND h.name = n ORDER BY h.id DESC LIMIT 1),
                           public.campaign_differences(n), public.rat_state(n));
    END LOOP;
END $$;
-- the customers' rows read, and the state's rows updated (HOT ones among
-- them), since rat_mark()
CREATE TABLE public.rat_before (customers_read bigint, updated bigint, hot bigint);
CREATE FUNCTION public.rat_counters(OUT customers_read bigint, OUT updated bigint, OUT hot bigint) LANGUAGE sql AS $$
    SELECT COALESCE(c.idx_tup_fetch, 0) + c.seq_tup_read, s.n_tup_upd, s.n_tup_hot_upd
      FROM pg_stat_user_tables c, pg_stat_user_tables s
     WHERE c.relid = 'rat.customers'::regclass AND s.relid = 'customer_analytics_state.campaign_state_ratc'::regclass
$$;
CREATE FUNCTION public.rat_mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM public.rat_before;
    INSERT INTO public.rat_before SELECT * FROM public.rat_counters();
$$;
CREATE FUNCTION public.rat_since(OUT customers_read bigint, OUT updated bigint, OUT all_hot boolean) LANGUAGE sql AS $$
    SELECT n.customers_read - b.customers_read, n.updated - b.updated, n.hot - b.hot = n.updated - b.updated
      FROM public.rat_before b, public.rat_counters() n
$$;
SELECT public.rat_state('ratc'), public.rat_state('ratk');

-- order changes alone (every order of 30 customers, on and off the
-- routes): no row of the customers read; the state's updates HOT
UPDATE rat.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 7
  FROM rat.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 13 = 0;
SELECT pg_stat_force_next_flush();
SELECT public.rat_mark();
SELECT customer_analytics.refresh_campaign('ratc') IS NOT NULL AS refreshed;
SELECT pg_stat_force_next_flush();
SELECT * FROM public.rat_since();
SELECT public.rat_refresh();

-- customers' own rows changed, no order: moved onto and off the routes,
-- renamed, a new address and CSM, one closed, one reopened; then the same
-- with order changes of the same customers in the same refresh.  The
-- customers are read for those (a keyed scan, or a scan of this small
-- table: the planner's choice).
UPDATE rat.customers SET closure_date = '20251101' WHERE customer_code = '00021';
SELECT public.rat_refresh();
UPDATE rat.customers SET delivery_route = 'K1' WHERE customer_code IN ('00003', '00007');
UPDATE rat.customers SET delivery_route = 'T9' WHERE customer_code IN ('00004', '00008');
UPDATE rat.customers SET trade_name = 'Renamed shop' WHERE customer_code = '00012';
UPDATE rat.customers SET shipping_address = 'new addr', csm = '009' WHERE customer_code = '00016';
UPDATE rat.customers SET closure_date = '20251201' WHERE customer_code = '00020';
UPDATE rat.customers SET closure_date = NULL WHERE customer_code = '00021';
SELECT pg_stat_force_next_flush();
SELECT public.rat_mark();
SELECT customer_analytics.refresh_campaign('ratc') IS NOT NULL AS refreshed;
SELECT pg_stat_force_next_flush();
SELECT customers_read > 0 AS customers_read FROM public.rat_since();
SELECT public.rat_refresh();
SELECT customer_code, trade_name, delivery_route, shipping_address, csm FROM rat_bi.ratc_targets
 WHERE customer_code IN ('00003', '00004', '00007', '00008', '00012', '00016', '00020', '00021') ORDER BY 1;
UPDATE rat.customers SET delivery_route = CASE delivery_route WHEN 'K1' THEN 'T8' ELSE 'K2' END, trade_name = trade_name || ' (moved)'
 WHERE customer_code IN ('00024', '00025', '00028', '00029');
UPDATE rat.sales_order_lines l SET pretax_subtotal = pretax_subtotal - 3
  FROM rat.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code IN ('00024', '00025', '00028', '00029');
SELECT public.rat_refresh();

-- a customer's row deleted (a target: it leaves the targets), then added
-- back by COPY; a customer whose orders come before its row; a new
-- customer with its first orders in the same transaction
DELETE FROM rat.customers WHERE customer_code = '00032';
INSERT INTO rat.sales_orders VALUES ('SO', 'N1', '09001', 'K1', '20251120', 'Y'), ('SO', 'N2', '09001', 'K1', '20251205', 'Y');
INSERT INTO rat.sales_order_lines VALUES ('SO', 'N1', 1, 'P1', 1, 150.10), ('SO', 'N2', 1, 'P1', 1, 400.05),
                                         ('SO', 'N1', 2, 'P1', 1, 120.00), ('SO', 'N2', 2, 'P1', 1, 300.00);
SELECT public.rat_refresh();
SELECT count(*) AS in_targets FROM rat_bi.ratc_targets WHERE customer_code IN ('00032', '09001');
COPY rat.customers FROM stdin;
00032	Customer 32 again	K1	addr	\N	001
09001	Late shop	K2	addr	\N	002
\.
BEGIN;
INSERT INTO rat.customers VALUES ('09002', 'New shop', 'K2', 'addr', NULL, '001');
INSERT INTO rat.sales_orders SELECT 'SO', 'M' || k, '09002', 'K2', to_char(date '2025-10-01' + k * 9, 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 8) k;
INSERT INTO rat.sales_order_lines SELECT 'SO', 'M' || k, 1, 'P1', 1, 200 FROM generate_series(1, 8) k;
COMMIT;
SELECT public.rat_refresh();
SELECT customer_code, trade_name, delivery_route FROM rat_bi.ratc_targets WHERE customer_code IN ('00032', '09001', '09002') ORDER BY 1;

-- rows kept without the attributes (as 1.5 kept them, and as the update
-- to 1.6 leaves them): read again from the customers when their customer
-- changes, and written; the others stay unknown, and are never decided on
-- before they change
UPDATE customer_analytics_state.campaign_state_ratc
   SET route_customer = NULL, trade_name = NULL, delivery_route = NULL, shipping_address = NULL, csm = NULL
 WHERE customer_code::int % 10 IN (1, 2);
UPDATE rat.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 1
  FROM rat.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 20 = 1;
SELECT public.rat_refresh();

-- a TRUNCATE of the customers: a full refresh; their rows back: exact again
CREATE TABLE public.rat_customers AS SELECT * FROM rat.customers;
TRUNCATE rat.customers;
SELECT public.rat_refresh();
INSERT INTO rat.customers SELECT * FROM public.rat_customers;
SELECT public.rat_refresh();

SELECT customer_analytics.drop_campaign('ratc'), customer_analytics.drop_campaign('ratk');
SELECT customer_analytics.drop_rollup('rat');
DROP TABLE public.rat_customers, public.rat_before;
DROP FUNCTION public.rat_state(text), public.rat_refresh(), public.rat_counters(), public.rat_mark(), public.rat_since();
DROP SCHEMA rat_bi;
DROP SCHEMA rat CASCADE;
