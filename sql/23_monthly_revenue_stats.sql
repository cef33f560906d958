-- monthly_revenue_stats(): the per-customer aggregate behind
-- monthly_revenue(), checked by hand and, in parallel and partitionwise,
-- against the same rules in plain SQL; then monthly_revenue() with and
-- without it.
CREATE TEMP TABLE mr_orders (customer text, order_date date, total numeric);
INSERT INTO mr_orders VALUES
  ('A', '2025-09-15', 100.50),      -- the window's first day
  ('A', '2025-09-30', 20),
  ('A', '2025-09-14', 999),         -- a day before the window
  ('A', '2025-11-30', 0.25),        -- the window's last day
  ('A', '2025-12-01', 999),         -- a day after it
  ('A', '2025-10-10', NULL),        -- no total: an order with revenue 0
  ('A', NULL,         999),         -- no date: nothing
  ('A', 'infinity',   999),         -- outside every window
  ('B', '2025-10-31', -5),          -- a credit note lowers the month
  ('B', '2025-10-01', 5.125),
  ('C', '2024-10-15', 50),          -- only rows outside the window
  ('C', NULL,         NULL);
-- by hand, window [2025-09-15, 2025-11-30]: months Sep, Oct, Nov
--   A: Sep 100.50 + 20 = 120.50 (2 orders), Oct 0 (1 order), Nov 0.25 (1)
--   B: Sep 0 (0), Oct 5.125 - 5 = 0.125 (2), Nov 0 (0)
--   C: rows, none counted: three months of 0
SELECT customer, (s).months, (s).revenue, (s).orders
  FROM (SELECT customer,
               customer_analytics.monthly_revenue_stats(order_date, total, '[2025-09-15,2025-11-30]') AS s
          FROM mr_orders GROUP BY customer) x
 ORDER BY customer;
-- long form, as a BI tool would read it: one row per customer and month
SELECT x.customer, m.month, m.revenue, m.orders
  FROM (SELECT customer,
               customer_analytics.monthly_revenue_stats(order_date, total, '[2025-10-31,2025-11-01]') AS s
          FROM mr_orders WHERE customer = 'B' GROUP BY customer) x,
       unnest((x.s).months, (x.s).revenue, (x.s).orders) AS m(month, revenue, orders);
-- no rows: NULL, as sum()
SELECT customer_analytics.monthly_revenue_stats(order_date, total, '[2025-09-15,2025-11-30]') IS NULL AS is_null
  FROM mr_orders WHERE false;

-- errors
\set VERBOSITY terse
SELECT customer_analytics.monthly_revenue_stats(order_date, total, NULL) FROM mr_orders;
SELECT customer_analytics.monthly_revenue_stats(order_date, total, 'empty') FROM mr_orders;
SELECT customer_analytics.monthly_revenue_stats(order_date, total, '[2025-01-01,)') FROM mr_orders;
-- the window must be the same for every row of a group
SELECT customer_analytics.monthly_revenue_stats(order_date, total,
           CASE WHEN total > 100 THEN '[2025-09-01,2025-09-30]' ELSE '[2025-09-01,2025-10-31]' END::daterange)
  FROM mr_orders;
\set VERBOSITY default

-- Parallel: partial states built in workers, serialized, combined by the
-- leader, against count() and sum() per customer and month in plain SQL.
-- 200,000 orders of 1,000 customers over 600 days, every 97th total NULL,
-- every 211th date NULL; the window [2024-08-10, 2025-06-20] cuts the
-- first and last month.
CREATE TABLE mr_many AS
  SELECT 'c' || (g % 1000) AS customer,
         CASE WHEN g % 211 = 0 THEN NULL ELSE date '2024-06-01' + (g * 7919 % 600) END AS order_date,
         CASE WHEN g % 97 = 0 THEN NULL ELSE (g * 31 % 500000) / 100.0 - 100 END AS total
    FROM generate_series(1, 200000) g;
ANALYZE mr_many;
CREATE TEMP TABLE mr_plain AS
  SELECT c.customer, m.month::date AS month,
         COALESCE(sum(o.total), 0) AS revenue, count(o.order_date) AS orders
    FROM (SELECT DISTINCT customer FROM mr_many) c
    CROSS JOIN generate_series('2024-08-01'::date, '2025-06-01', '1 month') m(month)
    LEFT JOIN mr_many o ON o.customer = c.customer
         AND o.order_date BETWEEN '2024-08-10' AND '2025-06-20'
         AND date_trunc('month', o.order_date) = m.month
   GROUP BY c.customer, m.month;
CREATE VIEW mr_agg AS
  SELECT x.customer, m.month, m.revenue, m.orders
    FROM (SELECT customer,
                 customer_analytics.monthly_revenue_stats(order_date, total, '[2024-08-10,2025-06-20]') AS s
            FROM mr_many GROUP BY customer) x,
         unnest((x.s).months, (x.s).revenue, (x.s).orders) AS m(month, revenue, orders);
-- 1,000 customers x 11 months; 200,000 orders less the undated ones
-- (947) less those outside the window, as plain SQL counts them
SELECT count(*) AS rows, sum(orders) AS orders,
       (SELECT count(*) FROM mr_many WHERE order_date BETWEEN '2024-08-10' AND '2025-06-20') AS in_window
  FROM mr_plain;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT * FROM mr_agg;
CREATE TEMP TABLE mr_parallel AS SELECT * FROM mr_agg;
RESET enable_sort;
SET max_parallel_workers_per_gather = 0;
-- row for row, as text (numeric scales included)
SELECT count(*) AS differences FROM (
    (SELECT x::text FROM mr_parallel x EXCEPT SELECT x::text FROM mr_plain x)
    UNION ALL (SELECT x::text FROM mr_plain x EXCEPT SELECT x::text FROM mr_parallel x)) d;
SELECT count(*) AS serial_differences FROM (
    (SELECT x::text FROM mr_agg x EXCEPT SELECT x::text FROM mr_plain x)
    UNION ALL (SELECT x::text FROM mr_plain x EXCEPT SELECT x::text FROM mr_agg x)) d;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- Partitionwise partial aggregation: the orders split by date, so a
-- customer's months come from two partitions' partial states, combined.
CREATE TABLE mr_many_parts (LIKE mr_many) PARTITION BY RANGE (order_date);
CREATE TABLE mr_many_early PARTITION OF mr_many_parts FOR VALUES FROM (MINVALUE) TO ('2025-01-01');
CREATE TABLE mr_many_late PARTITION OF mr_many_parts DEFAULT;
INSERT INTO mr_many_parts SELECT * FROM mr_many;
ANALYZE mr_many_parts;
CREATE VIEW mr_agg_parts AS
  SELECT x.customer, m.month, m.revenue, m.orders
    FROM (SELECT customer,
                 customer_analytics.monthly_revenue_stats(order_date, total, '[2024-08-10,2025-06-20]') AS s
            FROM mr_many_parts GROUP BY customer) x,
         unnest((x.s).months, (x.s).revenue, (x.s).orders) AS m(month, revenue, orders);
SET enable_partitionwise_aggregate = on;
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT customer, customer_analytics.monthly_revenue_stats(order_date, total, '[2024-08-10,2025-06-20]')
  FROM mr_many_parts GROUP BY customer;
SELECT count(*) AS partitionwise_differences FROM (
    (SELECT x::text FROM mr_agg_parts x EXCEPT SELECT x::text FROM mr_plain x)
    UNION ALL (SELECT x::text FROM mr_plain x EXCEPT SELECT x::text FROM mr_agg_parts x)) d;
RESET enable_partitionwise_aggregate;
RESET max_parallel_workers_per_gather;
DROP VIEW mr_agg, mr_agg_parts;
DROP TABLE mr_many, mr_plain, mr_parallel, mr_many_parts;

-- monthly_revenue() on the fixture of 00_setup (checked by hand in
-- 09_monthly_revenue) gives the same rows through the aggregate and through
-- the per-order fold that SQL objects without it (1.0 to 1.3) still use:
-- the aggregate is dropped in a transaction that is rolled back.  Every
-- fixture customer, two windows (the notebook's and one cutting months at
-- both ends); then over the order rollup.
CREATE TEMP VIEW mr_revenue AS
  SELECT w, r::text AS r
    FROM unnest(ARRAY['[2025-09-01,2026-01-07]', '[2025-10-02,2025-12-15]']::daterange[]) w,
         customer_analytics.monthly_revenue(ARRAY(SELECT customer_code::text FROM fx.customers), w, 'fx') r;
CREATE TEMP TABLE mr_with_aggregate (w daterange, r text);
CREATE FUNCTION pg_temp.without_aggregate() RETURNS TABLE (aggregate_dropped boolean, compared bigint, differing bigint)
LANGUAGE plpgsql AS $$
BEGIN
    ALTER EXTENSION customer_analytics
        DROP AGGREGATE customer_analytics.monthly_revenue_stats(date, numeric, daterange);
    DROP AGGREGATE customer_analytics.monthly_revenue_stats(date, numeric, daterange);
    RETURN QUERY
    SELECT to_regprocedure('customer_analytics.monthly_revenue_stats(date, numeric, daterange)') IS NULL,
           (SELECT count(*) FROM mr_with_aggregate),
           (SELECT count(*) FROM ((TABLE mr_revenue EXCEPT ALL TABLE mr_with_aggregate)
                                  UNION ALL (TABLE mr_with_aggregate EXCEPT ALL TABLE mr_revenue)) d);
END $$;
-- (the row count is fixture customers x (5 + 3) months)
SELECT count(*) * 8 AS expected_rows FROM fx.customers;
BEGIN;
INSERT INTO mr_with_aggregate SELECT * FROM mr_revenue;
SELECT * FROM pg_temp.without_aggregate();
ROLLBACK;
BEGIN;
SET LOCAL client_min_messages = warning;  -- the notice names the rollup's table
SELECT rollup_rows > 0 AS rollup_enabled FROM customer_analytics.enable_rollup('fx');
INSERT INTO mr_with_aggregate SELECT * FROM mr_revenue;
SELECT * FROM pg_temp.without_aggregate();
ROLLBACK;
DROP VIEW mr_revenue;
