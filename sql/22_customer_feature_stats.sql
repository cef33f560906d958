-- customer_feature_stats(): the per-customer aggregate behind
-- customer_features(), checked by hand and, in parallel, against the same
-- rules in plain SQL; then customer_features() with and without it.
CREATE TEMP TABLE fs_orders (customer text, order_date date, total numeric,
                             quantity numeric, codes text[]);
INSERT INTO fs_orders VALUES
  ('A', '2025-03-01', 100.50, 2,     '{P1,P2,P1}'),         -- P1 twice in one order
  ('A', '2025-01-15', NULL,   1.5,   '{P2,NULL,P3}'),       -- no total; P2 again, a NULL code
  ('A', '2025-06-30', 20,     NULL,  NULL),                 -- no quantity, no codes
  ('A', NULL,         999,    99,    '{P9}'),               -- no date: skipped, P9 too
  ('B', '2025-02-02', NULL,   NULL,  '{}'),                 -- no codes
  ('B', '2025-02-01', NULL,   NULL,  '{NULL,NULL}'),        -- only NULL codes
  ('C', NULL,         5,      1,     '{X}'),                -- only a row without date
  ('D', '2024-12-31', 0.25,   0.125, '{P1,p1," P1",P1}'),   -- codes compared byte for byte
  ('E', NULL,         1,      1,     '{Y}'),                -- skipped before any counted row
  ('E', '2025-05-05', 7,      NULL,  '{Z}');
-- by hand:
--   A: 3 visits, spend 100.50 + 20 = 120.50, quantity 2 + 1.5 = 3.5,
--      SKUs {P1, P2, P3} = 3, first 2025-01-15, last 2025-06-30
--   B: 2 visits, spend 0 and quantity 0 (all NULL), no SKUs, 2025-02-01..02-02
--   C: nothing counted: NULL, every column empty
--   D: 1 visit, 0.25, 0.125, SKUs {P1, p1, ' P1'} = 3, 2024-12-31 twice
--   E: 1 visit, 7, quantity 0, SKUs {Z} = 1, 2025-05-05 twice
SELECT customer, (s).*, s IS NULL AS is_null
  FROM (SELECT customer,
               customer_analytics.customer_feature_stats(order_date, total, quantity, codes) AS s
          FROM fs_orders GROUP BY customer) x
 ORDER BY customer;
-- all rows as one group: 3 + 2 + 1 + 1 = 7 visits, 120.50 + 0.25 + 7 = 127.75,
-- 3.5 + 0.125 = 3.625, SKUs {P1, P2, P3, p1, ' P1', Z} = 6 (X, Y and P9
-- only on rows without date), 2024-12-31..2025-06-30
SELECT (customer_analytics.customer_feature_stats(order_date, total, quantity, codes)).*
  FROM fs_orders;
-- no rows, or no row with a date: NULL, as sum()
SELECT customer_analytics.customer_feature_stats(order_date, total, quantity, codes) IS NULL AS is_null
  FROM fs_orders WHERE false;
SELECT customer_analytics.customer_feature_stats(order_date, total, quantity, codes) IS NULL AS is_null
  FROM fs_orders WHERE order_date IS NULL;

-- Parallel: partial states (SKU sets included) built in workers, serialized,
-- combined by the leader, against count(*), sum(), min(), max() and
-- count(DISTINCT) over unnest() in plain SQL.  200,000 orders of 1,000
-- customers over 600 days; every 97th total, 89th quantity and 83rd array
-- NULL; every 211th date NULL.  A customer's codes come from s0 to s83,
-- how many depends on the customer; each array repeats its first code, its
-- third is NULL for every 7th order, its fourth is 'undated' on the orders
-- without date and NULL on the others.  The 198 orders of customer "nodate"
-- (every 1009th) have no date.
CREATE TABLE fs_many AS
  SELECT CASE WHEN g % 1009 = 0 THEN 'nodate' ELSE 'c' || (g % 1000) END AS customer,
         CASE WHEN g % 1009 = 0 OR g % 211 = 0 THEN NULL
              ELSE date '2024-06-01' + (g * 7919 % 600) END AS order_date,
         CASE WHEN g % 97 = 0 THEN NULL ELSE (g * 31 % 500000) / 100.0 END AS total,
         CASE WHEN g % 89 = 0 THEN NULL ELSE (g % 13) / 4.0 END AS quantity,
         CASE WHEN g % 83 = 0 THEN NULL
              ELSE ARRAY['s' || (g / 1000 * 7 % (5 + g % 1000 % 80)), 's' || (g / 3000 % 25),
                         CASE WHEN g % 7 <> 0 THEN 's' || (g % 50) END,
                         CASE WHEN g % 211 = 0 THEN 'undated' END,
                         's' || (g / 1000 * 7 % (5 + g % 1000 % 80))] END AS codes
    FROM generate_series(1, 200000) g;
ANALYZE fs_many;
-- (a table: computed once for both comparisons)
CREATE TEMP TABLE fs_plain AS
  SELECT o.customer, o.visits, o.spend, o.quantity, COALESCE(s.skus, 0) AS skus,
         o.first_order, o.last_order
    FROM (SELECT customer, count(*) AS visits, COALESCE(sum(total), 0) AS spend,
                 COALESCE(sum(quantity), 0) AS quantity,
                 min(order_date) AS first_order, max(order_date) AS last_order
            FROM fs_many WHERE order_date IS NOT NULL GROUP BY customer) o
    LEFT JOIN (SELECT customer, count(DISTINCT code) AS skus
                 FROM fs_many, unnest(codes) AS code
                WHERE order_date IS NOT NULL GROUP BY customer) s USING (customer);
CREATE VIEW fs_agg AS
  SELECT customer, (s).*
    FROM (SELECT customer,
                 customer_analytics.customer_feature_stats(order_date, total, quantity, codes) AS s
            FROM fs_many GROUP BY customer) x;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT * FROM fs_agg;
CREATE TEMP TABLE fs_parallel AS SELECT * FROM fs_agg;
RESET enable_sort;
SET max_parallel_workers_per_gather = 0;
-- 1,000 customers with 200,000 - 198 (nodate) - 947 (every 211th; none of
-- them every 1009th, as 211 * 1009 > 200,000) = 198,855 visits, and nodate
-- with NULL
SELECT count(*) AS customers, sum(visits) AS visits,
       string_agg(customer, ',') FILTER (WHERE visits IS NULL) AS no_visits
  FROM fs_parallel;
-- row for row, as text (numeric scales included)
SELECT count(*) AS differences FROM (
    (SELECT x::text FROM fs_parallel x WHERE visits IS NOT NULL EXCEPT SELECT x::text FROM fs_plain x)
    UNION ALL (SELECT x::text FROM fs_plain x EXCEPT SELECT x::text FROM fs_parallel x)) d;
SELECT count(*) AS serial_differences FROM (
    (SELECT x::text FROM fs_agg x WHERE visits IS NOT NULL EXCEPT SELECT x::text FROM fs_plain x)
    UNION ALL (SELECT x::text FROM fs_plain x EXCEPT SELECT x::text FROM fs_agg x)) d;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- Partitionwise partial aggregation: the same orders split by order date
-- (the rows without date in the default partition), grouped by customer, so
-- each partition's Partial HashAggregate folds with its own transition
-- function and code interner.  PostgreSQL 15 serializes partial states here
-- too (no workers), so the Finalize aggregate's states come from its
-- deserialize function's interner and combine by pointer.  Against the same
-- plain SQL.
CREATE TABLE fs_many_parts (LIKE fs_many) PARTITION BY RANGE (order_date);
CREATE TABLE fs_many_early PARTITION OF fs_many_parts FOR VALUES FROM (MINVALUE) TO ('2025-01-01');
CREATE TABLE fs_many_late PARTITION OF fs_many_parts DEFAULT;
INSERT INTO fs_many_parts SELECT * FROM fs_many;
ANALYZE fs_many_parts;
CREATE VIEW fs_agg_parts AS
  SELECT customer, (s).*
    FROM (SELECT customer,
                 customer_analytics.customer_feature_stats(order_date, total, quantity, codes) AS s
            FROM fs_many_parts GROUP BY customer) x;
SET enable_partitionwise_aggregate = on;
SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT * FROM fs_agg_parts;
SELECT count(*) AS partitionwise_differences FROM (
    (SELECT x::text FROM fs_agg_parts x WHERE visits IS NOT NULL EXCEPT SELECT x::text FROM fs_plain x)
    UNION ALL (SELECT x::text FROM fs_plain x EXCEPT SELECT x::text FROM fs_agg_parts x)) d;
RESET enable_partitionwise_aggregate;
RESET max_parallel_workers_per_gather;
DROP VIEW fs_agg, fs_agg_parts;
DROP TABLE fs_many, fs_plain, fs_many_parts;

-- customer_features() on the fixture of 00_setup (checked by hand in
-- 13_customer_features) gives the same rows, in the same order, through the
-- aggregate and through the per-order fold that SQL objects without the
-- aggregate (1.0 to 1.2) still use: the aggregate is dropped in a
-- transaction that is rolled back.  Windows as in 13; then again with the
-- SKU sets of 13 (codes shared across customers and repeated within an
-- order, NULL codes and quantities), and over the order rollup.  56 rows
-- each time: the five windows' rows, as 13 counts them against plain SQL.
CREATE TEMP TABLE fs_cases (w daterange, as_of date);
INSERT INTO fs_cases VALUES
    ('[2025-01-01,2025-12-31]', '2026-01-07'), ('[2024-01-01,2026-12-31]', '2027-03-01'),
    ('[2025-09-15,2026-01-07]', '2026-01-07'), ('[2025-10-01,2025-10-31]', '2025-11-30'),
    ('[2025-11-01,2025-11-03]', '2025-11-03');
CREATE TEMP VIEW fs_features AS
  SELECT c.w, f::text AS r
    FROM fs_cases c, customer_analytics.customer_features(c.w, c.as_of, 'fx') WITH ORDINALITY f;
CREATE TEMP TABLE fs_with_aggregate (w daterange, r text);
CREATE FUNCTION pg_temp.without_aggregate() RETURNS TABLE (aggregate_dropped boolean, compared bigint, differing bigint)
LANGUAGE plpgsql AS $$
BEGIN
    ALTER EXTENSION customer_analytics
        DROP AGGREGATE customer_analytics.customer_feature_stats(date, numeric, numeric, text[]);
    DROP AGGREGATE customer_analytics.customer_feature_stats(date, numeric, numeric, text[]);
    RETURN QUERY
    SELECT to_regprocedure('customer_analytics.customer_feature_stats(date, numeric, numeric, text[])') IS NULL,
           (SELECT count(*) FROM fs_with_aggregate),
           (SELECT count(*) FROM ((TABLE fs_features EXCEPT ALL TABLE fs_with_aggregate)
                                  UNION ALL (TABLE fs_with_aggregate EXCEPT ALL TABLE fs_features)) d);
END $$;
BEGIN;
INSERT INTO fs_with_aggregate SELECT * FROM fs_features;
SELECT * FROM pg_temp.without_aggregate();
ROLLBACK;
BEGIN;
UPDATE fx.sales_order_lines SET product_code = 'A', quantity = 2.5 WHERE order_number = '1031';
UPDATE fx.sales_order_lines SET product_code = NULL, quantity = 3 WHERE order_number = '1032';
UPDATE fx.sales_order_lines SET product_code = 'B', quantity = NULL WHERE order_number = '1033' AND line_no = 2;
INSERT INTO fx.sales_order_lines VALUES ('SO', '1033', 3, 'A', 1, NULL), ('SO', '1001', 3, 'C', 0.25, 10.10);
UPDATE fx.sales_order_lines SET product_code = 'A' WHERE order_number = '1091';
INSERT INTO fs_with_aggregate SELECT * FROM fs_features;
SELECT * FROM pg_temp.without_aggregate();
ROLLBACK;
BEGIN;
SET LOCAL client_min_messages = warning;  -- the notice names the rollup's table
SELECT rollup_rows > 0 AS rollup_enabled FROM customer_analytics.enable_rollup('fx');
INSERT INTO fs_with_aggregate SELECT * FROM fs_features;
SELECT * FROM pg_temp.without_aggregate();
ROLLBACK;
