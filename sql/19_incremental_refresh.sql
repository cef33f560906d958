-- Incremental campaign refresh: with a current rollup, a refresh recomputes
-- only the customers whose orders, lines or customer row changed since the
-- last refresh, and the views end up exactly as a full recompute would.
\set VERBOSITY terse

CREATE SCHEMA ir;
CREATE TABLE ir.customers (LIKE fx.customers);
CREATE TABLE ir.sales_orders (LIKE fx.sales_orders);
CREATE TABLE ir.sales_order_lines (LIKE fx.sales_order_lines);
-- customers 1..40 on K1/K2 (a few on T9), 6 orders each in the campaign's
-- windows; amounts vary with the customer so that some are targets
INSERT INTO ir.customers
SELECT lpad(c::text, 4, '0'), 'Customer ' || c, (ARRAY['K1', 'K2', 'T9'])[1 + c % 3], 'addr', NULL, '00' || c % 4
  FROM generate_series(1, 40) c;
INSERT INTO ir.sales_orders
SELECT 'SO', c * 100 + k, lpad(c::text, 4, '0'), 'K1',
       to_char(date '2025-09-01' + k * 20, 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 40) c, generate_series(0, 5) k;
INSERT INTO ir.sales_order_lines
SELECT 'SO', c * 100 + k, 1, 'P' || k, 1, CASE WHEN k < 3 THEN 500 + c * 40 ELSE 200 + c * 10 END
  FROM generate_series(1, 40) c, generate_series(0, 5) k;

SELECT rollup_rows FROM customer_analytics.enable_rollup('ir');
CREATE SCHEMA ir_bi;
SELECT name, target_rows, monthly_rows
  FROM customer_analytics.create_campaign('irc', 'ir_bi', routes => '{K1,K2}', source_schema => 'ir');

-- the views hold exactly what a full recompute from the source tables gives
CREATE FUNCTION ir_views_exact() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
    extra bigint;
    months bigint;
    long_rows bigint;
BEGIN
    PERFORM set_config('customer_analytics.use_rollup', 'off', true);
    CREATE TEMP TABLE ir_full ON COMMIT DROP AS
        SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'ir');
    SELECT count(*) INTO missing FROM (SELECT * FROM ir_full EXCEPT SELECT * FROM ir_bi.irc_targets) x;
    SELECT count(*) INTO extra FROM (SELECT * FROM ir_bi.irc_targets EXCEPT SELECT * FROM ir_full) x;
    SELECT count(*) INTO months FROM (
        SELECT m.customer_code, m.rev_2025_09, m.rev_2025_10, m.rev_2025_11, m.rev_2025_12, m.rev_2026_01
          FROM ir_bi.irc_monthly m
        EXCEPT
        SELECT customer_code,
               sum(revenue) FILTER (WHERE month = '2025-09-01'), sum(revenue) FILTER (WHERE month = '2025-10-01'),
               sum(revenue) FILTER (WHERE month = '2025-11-01'), sum(revenue) FILTER (WHERE month = '2025-12-01'),
               sum(revenue) FILTER (WHERE month = '2026-01-01')
          FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM ir_full),
                                                  '[2025-09-01,2026-01-07]', 'ir')
         GROUP BY customer_code) x;
    -- the long form (1.5), reused for unchanged targets like the sheet
    SELECT count(*) INTO long_rows FROM (
        (SELECT l.customer_code, l.month, l.revenue, l.orders FROM ir_bi.irc_monthly_long l
         EXCEPT ALL
         SELECT r.customer_code, r.month, r.revenue, r.orders
           FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM ir_full), '[2025-09-01,2026-01-07]', 'ir') r)
        UNION ALL
        (SELECT r.customer_code, r.month, r.revenue, r.orders
           FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM ir_full), '[2025-09-01,2026-01-07]', 'ir') r
         EXCEPT ALL
         SELECT l.customer_code, l.month, l.revenue, l.orders FROM ir_bi.irc_monthly_long l)) x;
    DROP TABLE ir_full;
    PERFORM set_config('customer_analytics.use_rollup', 'on', true);
    RETURN format('%s targets; %s missing, %s extra, %s monthly rows differ, %s long-form rows differ',
                  (SELECT count(*) FROM ir_bi.irc_targets), missing, extra, months, long_rows);
END $$;
SELECT ir_views_exact();
SELECT customer_code, target_reason, total_spend FROM ir_bi.irc_targets ORDER BY 1;

-- the first refresh has no state to start from; the second has nothing to do
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');

-- one customer's line changes: 0039 stops being a low-ticket target
-- (its orders from November on rise above 3000)
UPDATE ir.sales_order_lines SET pretax_subtotal = 5000 WHERE order_number::int / 100 = 39 AND order_number::int % 100 >= 3;
-- and a new customer on K1 with three small orders appears
INSERT INTO ir.customers VALUES ('0041', 'Customer 41', 'K1', 'addr', NULL, '001');
INSERT INTO ir.sales_orders VALUES ('SO', '4100', '0041', 'K1', '20251001', 'Y'),
    ('SO', '4101', '0041', 'K1', '20251101', 'Y'), ('SO', '4102', '0041', 'K1', '20251201', 'Y');
INSERT INTO ir.sales_order_lines VALUES ('SO', '4100', 1, 'P1', 1, 400), ('SO', '4101', 1, 'P1', 1, 400),
    ('SO', '4102', 1, 'P1', 1, 400);
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT ir_views_exact();
SELECT customer_code, target_reason, total_spend FROM ir_bi.irc_targets WHERE customer_code IN ('0039', '0041');
-- everything the triggers recorded has been seen by the only campaign
SELECT dirty_rows FROM customer_analytics.list_rollups() WHERE source_schema = 'ir';

-- a plain REFRESH (as a scheduler or BI admin would run) is incremental too
UPDATE ir.sales_orders SET confirmed_code = 'N' WHERE order_number = '4100';
REFRESH MATERIALIZED VIEW CONCURRENTLY ir_bi.irc_targets;
REFRESH MATERIALIZED VIEW ir_bi.irc_monthly;
REFRESH MATERIALIZED VIEW ir_bi.irc_monthly_long;
SELECT ir_views_exact();
SELECT customer_code FROM ir_bi.irc_targets WHERE customer_code = '0041';
-- non-concurrent refresh_campaign
SELECT target_rows FROM customer_analytics.refresh_campaign('irc', concurrently => false);

-- unchanged targets keep the rows the views hold, in both views: a change
-- no trigger records (made to the rollup table itself; a disabled trigger
-- now disables the whole rollup) stays out of an incremental refresh,
-- while the customer of a seen write is recomputed.  Both add 1 to a
-- September order: 0010's 1800 and 3600 stay, 0012's 1960 and 3900 become
-- 1961 and 3901.
SELECT customer_analytics._rollup_table(id) AS ir_rollup FROM customer_analytics.rollups WHERE source_schema = 'ir' \gset
UPDATE :ir_rollup SET total = total + 1 WHERE order_number = '1001';
UPDATE ir.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number = '1201';
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT t.customer_code, t.total_spend, m.rev_2025_09
  FROM ir_bi.irc_targets t JOIN ir_bi.irc_monthly m USING (customer_code)
 WHERE customer_code IN ('0010', '0012') ORDER BY 1;
-- the unseen change undone, the same way
UPDATE :ir_rollup SET total = total - 1 WHERE order_number = '1001';
SELECT ir_views_exact();

-- two campaigns on one source: the dirty set is kept until both have seen it
CREATE SCHEMA ir_bi2;
SELECT target_rows FROM customer_analytics.create_campaign('irc2', 'ir_bi2', routes => '{K2}', source_schema => 'ir');
SELECT target_rows FROM customer_analytics.refresh_campaign('irc2');
UPDATE ir.sales_order_lines SET pretax_subtotal = 100 WHERE order_number = '202';
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT dirty_rows FROM customer_analytics.list_rollups() WHERE source_schema = 'ir';
SELECT target_rows FROM customer_analytics.refresh_campaign('irc2');
SELECT dirty_rows FROM customer_analytics.list_rollups() WHERE source_schema = 'ir';
SELECT customer_analytics.drop_campaign('irc2');

-- whatever could make the kept rows wrong forces a full recompute:
-- the campaign's parameters change
SELECT name FROM customer_analytics.alter_campaign('irc', min_spend => 2000);
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
-- the rollup is rebuilt
SELECT state FROM customer_analytics.rebuild_rollup('ir');
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
-- a source table is truncated
CREATE TABLE ir.lines_copy AS SELECT * FROM ir.sales_order_lines;
TRUNCATE ir.sales_order_lines;
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
INSERT INTO ir.sales_order_lines SELECT * FROM ir.lines_copy;
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
-- the rollup is disabled: full recompute from the source tables
SELECT state FROM customer_analytics.disable_rollup('ir');
UPDATE ir.sales_order_lines SET pretax_subtotal = 5000 WHERE order_number::int / 100 = 38;
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT state FROM customer_analytics.rebuild_rollup('ir');
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT name FROM customer_analytics.alter_campaign('irc', min_spend => 1000);
SELECT target_rows FROM customer_analytics.refresh_campaign('irc');
SELECT ir_views_exact();

-- the state is per campaign and goes with it
SELECT campaign, generation > 0 AS has_generation FROM customer_analytics.campaign_refresh_state ORDER BY 1;
SELECT customer_analytics.drop_campaign('irc');
SELECT count(*) FROM customer_analytics.campaign_refresh_state;
SELECT customer_analytics.drop_rollup('ir');
