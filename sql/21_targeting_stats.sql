-- targeting_stats(): the per-customer aggregate behind target_customers(),
-- checked by hand and, in parallel, against the same rules in plain SQL.
-- Windows: spend 2025, low tickets from 2025-09-15 to 2026-01-07 below
-- 3000, base the first half of 2025, recent the second half.
CREATE TEMP TABLE ts_orders (customer text, order_date date, total numeric);
INSERT INTO ts_orders VALUES
  ('A', '2025-02-01', 1000),  -- spend, base
  ('A', '2025-10-01', 2500),  -- spend, low ticket, recent
  ('A', '2026-01-05', 500),   -- low ticket only
  ('A', '2025-11-11', NULL),  -- total 0: spend, low ticket, recent
  ('A', NULL, 700),           -- no date: skipped
  ('B', '2024-12-31', 100),   -- in no window
  ('B', '2025-09-15', 3000),  -- spend, recent; 3000 is not below 3000
  ('C', NULL, 5);             -- only a row without date
-- by hand:
--   A: 4 orders, total 4000, last 2026-01-05, 3 in spend (3500), 3 low tickets,
--      base 1000, recent 2500
--   B: 2 orders, total 3100, last 2025-09-15, 1 in spend (3000), 0 low tickets,
--      base 0, recent 3000
--   C: nothing counted, no last order
SELECT customer, (s).*
  FROM (SELECT customer,
               customer_analytics.targeting_stats(order_date, total,
                   '[2025-01-01,2025-12-31]', '[2025-09-15,2026-01-07]',
                   '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000) AS s
          FROM ts_orders GROUP BY customer) x
 ORDER BY customer;
-- no rows: NULL, as sum()
SELECT customer_analytics.targeting_stats(order_date, total, '[2025-01-01,2025-12-31]',
           '[2025-09-15,2026-01-07]', '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000) IS NULL AS is_null
  FROM ts_orders WHERE false;

-- Parallel: partial states built in workers, serialized, combined by the
-- leader, against the rules written with FILTER.  200,000 orders of 1,000
-- customers over 600 days, every 97th total NULL.
CREATE TABLE ts_many AS
  SELECT 'c' || (g % 1000) AS customer,
         date '2024-06-01' + (g * 7919 % 600) AS order_date,
         CASE WHEN g % 97 = 0 THEN NULL ELSE (g * 31 % 500000) / 100.0 END AS total
    FROM generate_series(1, 200000) g;
ANALYZE ts_many;
CREATE VIEW ts_plain AS
  SELECT customer, count(*) AS orders, COALESCE(sum(total), 0) AS total, max(order_date) AS last_order,
         count(*) FILTER (WHERE order_date <@ daterange('2025-01-01', '2025-12-31', '[]')) AS spend_orders,
         COALESCE(sum(total) FILTER (WHERE order_date <@ daterange('2025-01-01', '2025-12-31', '[]')), 0) AS spend,
         count(*) FILTER (WHERE order_date <@ daterange('2025-09-15', '2026-01-07', '[]')
                          AND COALESCE(total, 0) < 3000) AS low_tickets,
         COALESCE(sum(total) FILTER (WHERE order_date <@ daterange('2025-01-01', '2025-06-30', '[]')), 0) AS base,
         COALESCE(sum(total) FILTER (WHERE order_date <@ daterange('2025-07-01', '2025-12-31', '[]')), 0) AS recent
    FROM ts_many GROUP BY customer;
CREATE VIEW ts_agg AS
  SELECT customer, (s).*
    FROM (SELECT customer,
                 customer_analytics.targeting_stats(order_date, total,
                     '[2025-01-01,2025-12-31]', '[2025-09-15,2026-01-07]',
                     '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000) AS s
            FROM ts_many GROUP BY customer) x;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT * FROM ts_agg;
CREATE TEMP TABLE ts_parallel AS SELECT * FROM ts_agg;
RESET enable_sort;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS customers, sum(orders) AS orders FROM ts_parallel;
SELECT count(*) AS differences FROM (
    (SELECT * FROM ts_parallel EXCEPT SELECT * FROM ts_plain)
    UNION ALL (SELECT * FROM ts_plain EXCEPT SELECT * FROM ts_parallel)) d;
SELECT count(*) AS serial_differences FROM (
    (SELECT * FROM ts_agg EXCEPT SELECT * FROM ts_plain)
    UNION ALL (SELECT * FROM ts_plain EXCEPT SELECT * FROM ts_agg)) d;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- errors: the windows and the bar are checked like target_customers()'s
SELECT err($$SELECT customer_analytics.targeting_stats(order_date, total, NULL,
    '[2025-09-15,2026-01-07]', '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000) FROM ts_orders$$);
SELECT err($$SELECT customer_analytics.targeting_stats(order_date, total, 'empty',
    '[2025-09-15,2026-01-07]', '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000) FROM ts_orders$$);
SELECT err($$SELECT customer_analytics.targeting_stats(order_date, total, '[2025-01-01,)',
    '[2025-09-15,2026-01-07]', '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000) FROM ts_orders$$);
SELECT err($$SELECT customer_analytics.targeting_stats(order_date, total, '[2025-01-01,2025-12-31]',
    '[2025-09-15,2026-01-07]', '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', -1) FROM ts_orders$$);
-- windows that change from row to row would mix two questions in one answer
SELECT err($$SELECT customer_analytics.targeting_stats(order_date, total,
    daterange(order_date, order_date + 30), '[2025-09-15,2026-01-07]',
    '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000) FROM ts_orders WHERE order_date IS NOT NULL$$);
SELECT err($$SELECT customer_analytics.targeting_stats(order_date, total, '[2025-01-01,2025-12-31]',
    '[2025-09-15,2026-01-07]', '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', total) FROM ts_orders$$);
-- the same window computed per row is fine
SELECT (customer_analytics.targeting_stats(order_date, total,
           daterange('2025-01-01', (date '2025-12-31' + length(customer) - 1), '[]'),
           '[2025-09-15,2026-01-07]', '[2025-01-01,2025-06-30]', '[2025-07-01,2025-12-31]', 3000)).spend
  FROM ts_orders WHERE customer = 'A';
DROP VIEW ts_agg, ts_plain;
DROP TABLE ts_many;
