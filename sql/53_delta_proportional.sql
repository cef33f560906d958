-- A campaign's delta refresh works in proportion to the change (issue 25):
-- no statement of it reads a whole state table, the customers or a view.
-- On 3,000 customers, after a change to the orders of one customer in ten,
-- the refresh reads the state tables, the customers and the three views
-- through their customer keys only: their seq_scan counters
-- (pg_stat_user_tables) do not move, while a plan chosen by the estimates
-- alone (a Const array of 300 codes, a join on the scratch tables) scans
-- them.  (The row counts recorded in the catalog are the last refresh's
-- plus what the delta applied: the targets view and the sheet are not
-- counted either.)  The views still equal a full recompute.
\set VERBOSITY terse

-- 3,000 customers on K1/K2/T9; customer c has 4 + c % 3 orders over
-- 2025-06 .. 2026-01, two lines each
SELECT public.erp_source('dpx', 3000, '{K1,K2,T9}', '2025-06-03', 215, 4, 3);
SELECT rollup_rows FROM customer_analytics.enable_rollup('dpx');
CREATE SCHEMA dpx_bi;
SELECT name FROM customer_analytics.create_campaign('dpc', 'dpx_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dpx');
-- (the first refresh builds the state)
SELECT target_rows FROM customer_analytics.refresh_campaign('dpc');
ANALYZE dpx.customers, customer_analytics_state.campaign_state_dpc, customer_analytics_state.campaign_months_dpc, dpx_bi.dpc_targets,
        dpx_bi.dpc_monthly, dpx_bi.dpc_monthly_long;

-- the tables and views a delta refresh must not scan in full
CREATE TEMP TABLE dp_watched AS
SELECT c.oid AS relid, c.relname::text AS relname FROM pg_class c
 WHERE c.oid IN ('dpx.customers'::regclass, 'customer_analytics_state.campaign_state_dpc'::regclass, 'customer_analytics_state.campaign_months_dpc'::regclass,
                 'dpx_bi.dpc_targets'::regclass, 'dpx_bi.dpc_monthly'::regclass, 'dpx_bi.dpc_monthly_long'::regclass);
SELECT pg_stat_force_next_flush();
CREATE TEMP TABLE dp_before AS
SELECT w.relname, s.seq_scan FROM dp_watched w JOIN pg_stat_user_tables s ON s.relid = w.relid;

-- one customer in ten: 300 customers, ~1,500 orders
UPDATE dpx.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 7
  FROM dpx.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 10 = 3;
SELECT target_rows FROM customer_analytics.refresh_campaign('dpc');
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'dpc' ORDER BY id DESC LIMIT 1;
SELECT pg_stat_force_next_flush();
SELECT b.relname, s.seq_scan - b.seq_scan AS seq_scans_by_the_refresh
  FROM dp_before b JOIN dp_watched w USING (relname) JOIN pg_stat_user_tables s ON s.relid = w.relid
 ORDER BY b.relname;

-- the views against a full recompute from the source tables (row text)
SET customer_analytics.use_rollup = off;
CREATE TEMP TABLE dp_full AS
SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', min_spend => 2000,
    low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dpx');
CREATE TEMP TABLE dp_months AS
SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM dp_full), '[2025-09-01,2026-01-07]', 'dpx');
RESET customer_analytics.use_rollup;
SELECT (SELECT count(*) FROM dp_full) AS targets,
       (SELECT count(*) FROM ((SELECT x::text FROM dpx_bi.dpc_targets x EXCEPT ALL SELECT x::text FROM dp_full x)
                              UNION ALL (SELECT x::text FROM dp_full x EXCEPT ALL SELECT x::text FROM dpx_bi.dpc_targets x)) d)
           AS targets_differ,
       (SELECT count(*) FROM ((SELECT x::text FROM dpx_bi.dpc_monthly_long x EXCEPT ALL SELECT x::text FROM dp_months x)
                              UNION ALL (SELECT x::text FROM dp_months x EXCEPT ALL SELECT x::text FROM dpx_bi.dpc_monthly_long x)) d)
           AS long_rows_differ,
       (SELECT count(*) FROM dpx_bi.dpc_monthly) - (SELECT count(*) FROM dp_full) AS sheet_rows_missing;

SELECT customer_analytics.drop_campaign('dpc');
SELECT customer_analytics.drop_rollup('dpx');
DROP SCHEMA dpx_bi CASCADE;
DROP SCHEMA dpx CASCADE;
