-- A campaign's delta refresh writes only what changed (issue 25): a row of
-- a view that is the same after the change stays where it is (no delete
-- and insert), and the state is probed for the customers left with no
-- order alone, not for every changed customer.  Counted with the tables'
-- pg_stat_user_tables counters (n_tup_ins, n_tup_del, idx_tup_fetch) over
-- one refresh; the views still equal a full recompute, including after
-- changes that remove a customer's last order and that add and remove a
-- new customer's order between two refreshes.
\set VERBOSITY terse

-- 3,000 customers on K1/K2/T9 (as suite 53: enough for the planner to
-- choose at scale); customer c has 4 + c % 3 orders over
-- 2025-06 .. 2026-01 (several months each), two lines each
SELECT public.erp_source('dlx', 3000, '{K1,K2,T9}', '2025-06-03', 215, 4, 3);
SELECT rollup_rows FROM customer_analytics.enable_rollup('dlx');
CREATE SCHEMA dlx_bi;
SELECT name FROM customer_analytics.create_campaign('dlc', 'dlx_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dlx');
-- (the first refresh builds the state)
SELECT target_rows FROM customer_analytics.refresh_campaign('dlc');
ANALYZE dlx.customers, customer_analytics_state.campaign_state_dlc, customer_analytics_state.campaign_months_dlc, dlx_bi.dlc_targets,
        dlx_bi.dlc_monthly, dlx_bi.dlc_monthly_long;

-- the counters of the state and the three views, before and after one refresh
CREATE TEMP TABLE dl_watched AS
SELECT c.oid AS relid, c.relname::text AS relname FROM pg_class c
 WHERE c.oid IN ('customer_analytics_state.campaign_state_dlc'::regclass, 'dlx_bi.dlc_targets'::regclass,
                 'dlx_bi.dlc_monthly'::regclass, 'dlx_bi.dlc_monthly_long'::regclass);
CREATE TEMP TABLE dl_before (relname text, ins bigint, del bigint, fetched bigint, seq bigint, upd bigint);
-- (each read of the counters follows a statement of its own that flushes
-- the previous ones: SELECT pg_stat_force_next_flush())
CREATE FUNCTION pg_temp.dl_mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM dl_before;
    INSERT INTO dl_before
    SELECT w.relname, s.n_tup_ins, s.n_tup_del, COALESCE(s.idx_tup_fetch, 0), s.seq_scan, s.n_tup_upd
      FROM dl_watched w JOIN pg_stat_user_tables s ON s.relid = w.relid;
$$;
CREATE FUNCTION pg_temp.dl_written(OUT relname text, OUT inserted bigint, OUT deleted bigint, OUT fetched bigint,
                                   OUT seq_scans bigint, OUT updated bigint)
RETURNS SETOF record LANGUAGE sql AS $$
    SELECT b.relname, s.n_tup_ins - b.ins, s.n_tup_del - b.del, COALESCE(s.idx_tup_fetch, 0) - b.fetched,
           s.seq_scan - b.seq, s.n_tup_upd - b.upd
      FROM dl_before b JOIN dl_watched w USING (relname) JOIN pg_stat_user_tables s ON s.relid = w.relid
     ORDER BY b.relname;
$$;
-- the views against a full recompute from the source tables (row text)
CREATE FUNCTION pg_temp.dl_differences(OUT targets bigint, OUT targets_differ bigint, OUT long_rows_differ bigint,
                                       OUT sheet_rows_missing bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL customer_analytics.use_rollup = off;
    CREATE TEMP TABLE dl_full ON COMMIT DROP AS
    SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', min_spend => 2000,
        low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dlx');
    CREATE TEMP TABLE dl_months ON COMMIT DROP AS
    SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM dl_full), '[2025-09-01,2026-01-07]', 'dlx');
    targets := (SELECT count(*) FROM dl_full);
    targets_differ := (SELECT count(*) FROM ((SELECT x::text FROM dlx_bi.dlc_targets x EXCEPT ALL SELECT x::text FROM dl_full x)
                           UNION ALL (SELECT x::text FROM dl_full x EXCEPT ALL SELECT x::text FROM dlx_bi.dlc_targets x)) d);
    long_rows_differ := (SELECT count(*) FROM ((SELECT x::text FROM dlx_bi.dlc_monthly_long x EXCEPT ALL SELECT x::text FROM dl_months x)
                             UNION ALL (SELECT x::text FROM dl_months x EXCEPT ALL SELECT x::text FROM dlx_bi.dlc_monthly_long x)) d);
    sheet_rows_missing := (SELECT count(*) FROM dlx_bi.dlc_monthly) - targets;
    DROP TABLE dl_full, dl_months;
END $$;

-- a target with five months in the long form: one line of its order 1600
-- (2025-11) changes; only that month's row is replaced in the long form,
-- and its row in the targets view and the sheet (one each), each updated
-- in place (one row of the customer on each side); the state's row is
-- updated (neither inserted nor deleted)
SELECT t.customer_code, count(*) AS months
  FROM dlx_bi.dlc_targets t JOIN dlx_bi.dlc_monthly_long m USING (customer_code)
 WHERE t.customer_code = '00016' GROUP BY 1;
SELECT o.order_number, o.order_date FROM dlx.sales_orders o WHERE o.order_number = '1600';
SELECT pg_stat_force_next_flush();
SELECT pg_temp.dl_mark();
UPDATE dlx.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number = '1600' AND line_no = 1;
SELECT target_rows FROM customer_analytics.refresh_campaign('dlc');
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'dlc' ORDER BY id DESC LIMIT 1;
SELECT pg_stat_force_next_flush();
SELECT relname, inserted, deleted, updated FROM pg_temp.dl_written();

-- a change that changes no row of any view (a line rewritten with its own
-- amount): the customer is among the changes, but nothing in the views is
-- written
SELECT pg_stat_force_next_flush();
SELECT pg_temp.dl_mark();
UPDATE dlx.sales_order_lines SET pretax_subtotal = pretax_subtotal WHERE order_number = '1600';
SELECT target_rows FROM customer_analytics.refresh_campaign('dlc');
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'dlc' ORDER BY id DESC LIMIT 1;
SELECT pg_stat_force_next_flush();
SELECT relname, inserted, deleted FROM pg_temp.dl_written();
SELECT * FROM pg_temp.dl_differences();

-- one customer in ten (300) changes every order: the state is read once
-- for each of them by the one pass that updates it and decides for the 200
-- on the campaign's routes (K1, K2) (1.0 row fetched per changed customer;
-- 1.7 when the decisions probed the state again; the rows are written back
-- by their ctids), and never read in full
SELECT pg_stat_force_next_flush();
SELECT pg_temp.dl_mark();
UPDATE dlx.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 7
  FROM dlx.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 10 = 3;
SELECT target_rows FROM customer_analytics.refresh_campaign('dlc');
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'dlc' ORDER BY id DESC LIMIT 1;
SELECT pg_stat_force_next_flush();
SELECT relname, round(fetched / 300.0, 1) AS fetched_per_changed_customer, seq_scans
  FROM pg_temp.dl_written() WHERE relname = 'campaign_state_dlc';
SELECT * FROM pg_temp.dl_differences();

-- a target loses all its orders (gone from the state and the views); a new
-- customer's order is added and removed between two refreshes (never in
-- the state); another new customer's order stays (in the state)
INSERT INTO dlx.customers VALUES ('09001', 'New one', 'K1', 'addr', NULL, '001'),
                                 ('09002', 'New two', 'K2', 'addr', NULL, '002');
INSERT INTO dlx.sales_orders VALUES ('SO', '900101', '09001', 'K1', '20251203', 'Y'),
                                    ('SO', '900201', '09002', 'K2', '20251204', 'Y');
INSERT INTO dlx.sales_order_lines VALUES ('SO', '900101', 1, 'P1', 1, 2500.00), ('SO', '900201', 1, 'P1', 1, 900.00);
DELETE FROM dlx.sales_order_lines WHERE order_number = '900101';
DELETE FROM dlx.sales_orders WHERE order_number = '900101';
DELETE FROM dlx.sales_order_lines l USING dlx.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code = '00016';
DELETE FROM dlx.sales_orders WHERE customer_code = '00016';
SELECT target_rows FROM customer_analytics.refresh_campaign('dlc');
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'dlc' ORDER BY id DESC LIMIT 1;
SELECT customer_code, orders FROM customer_analytics_state.campaign_state_dlc WHERE customer_code IN ('00016', '09001', '09002') ORDER BY 1;
SELECT * FROM pg_temp.dl_differences();

SELECT customer_analytics.drop_campaign('dlc');
SELECT customer_analytics.drop_rollup('dlx');
DROP SCHEMA dlx_bi CASCADE;
DROP SCHEMA dlx CASCADE;
