-- Cross-check on the demo data (scale 1): a plain SQL transcription of the
-- notebook, written apart from the C code, must give the same targets with
-- the same numbers to the cent, and the same funnel.
\set scale 1
\i test/demo_data.sql

\i test/notebook_targets.sql

SELECT count(*) AS targets, sum(total_spend) AS spend, sum(total_orders) AS orders,
       count(*) FILTER (WHERE target_reason = '低客單') AS low_ticket_reason
  FROM customer_analytics.target_customers();
SELECT count(*) AS targets, sum(total_spend) AS spend, sum(total_orders) AS orders,
       count(*) FILTER (WHERE target_reason = '低客單') AS low_ticket_reason
  FROM notebook_targets;

-- row by row, every column: no row on one side only, no value that differs
SELECT count(*) AS mismatched_rows
  FROM customer_analytics.target_customers() c
  FULL JOIN notebook_targets n USING (customer_code)
 WHERE c.customer_code IS NULL OR n.customer_code IS NULL
    OR (c.trade_name, c.delivery_route, c.shipping_address, c.csm, c.total_spend, c.total_orders,
        c.low_ticket_count, c.base_sales, c.recent_sales, c.pct_change, c.target_reason,
        to_char(c.last_order_date, 'YYYYMMDD'))
       IS DISTINCT FROM
       (n.trade_name, n.delivery_route, n.shipping_address, n.csm, n.total_spend, n.total_orders,
        n.low_ticket_count, n.base_sales, n.recent_sales, n.pct_change, n.target_reason,
        n.last_order);

-- the funnel against the same transcription
WITH orders AS (
    SELECT so.customer_code, so.order_date, COALESCE(SUM(sol.pretax_subtotal), 0) AS t
      FROM cosmos_sync.sales_orders so
      LEFT JOIN cosmos_sync.sales_order_lines sol USING (order_type, order_number)
     WHERE so.confirmed_code = 'Y' AND so.order_date BETWEEN '20250101' AND '20260107'
     GROUP BY so.order_type, so.order_number, so.customer_code, so.order_date
), geo AS (
    SELECT customer_code FROM cosmos_sync.customers WHERE delivery_route IN ('K1', 'K2', 'PS')
), c AS (
    SELECT g.customer_code,
           count(o.*) AS n,
           count(o.*) FILTER (WHERE order_date <= '20251231') AS n_spend,
           COALESCE(sum(t) FILTER (WHERE order_date <= '20251231'), 0) AS spend,
           count(o.*) FILTER (WHERE order_date >= '20250915' AND t < 3000) AS low,
           COALESCE(sum(t) FILTER (WHERE order_date BETWEEN '20250831' AND '20251030'), 0) AS p1,
           COALESCE(sum(t) FILTER (WHERE order_date BETWEEN '20251031' AND '20251231'), 0) AS p2
      FROM geo g LEFT JOIN orders o USING (customer_code)
     GROUP BY g.customer_code
), f AS (
    SELECT *, n_spend > 0 AND spend >= 1000 AS s, low > 2 AS l,
           p1 > 0 AND (p2 - p1) / p1 * 100 < -30 AS d
      FROM c
)
SELECT x.step, x.customers = t.customers AND x.orders = t.orders AS agrees, t.customers, t.orders
  FROM (VALUES
    ('geo',        (SELECT count(*) FROM f),                     (SELECT sum(n) FROM f)),
    ('spend',      (SELECT count(*) FROM f WHERE s),             (SELECT sum(n) FROM f WHERE s)),
    ('low_ticket', (SELECT count(*) FROM f WHERE s AND l),       (SELECT sum(n) FROM f WHERE s AND l)),
    ('decline',    (SELECT count(*) FROM f WHERE s AND d),       (SELECT sum(n) FROM f WHERE s AND d)),
    ('either',     (SELECT count(*) FROM f WHERE s AND (l OR d)), (SELECT sum(n) FROM f WHERE s AND (l OR d))),
    ('both',       (SELECT count(*) FROM f WHERE s AND l AND d), (SELECT sum(n) FROM f WHERE s AND l AND d))
  ) AS x(step, customers, orders)
  JOIN customer_analytics.targeting_funnel() t USING (step)
 ORDER BY t.step_no;

-- parallel plans inside the scan give the same answer as serial ones
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
CREATE TEMP TABLE parallel_run AS SELECT * FROM customer_analytics.target_customers();
RESET ALL;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS differences FROM (
  (SELECT * FROM parallel_run EXCEPT SELECT * FROM customer_analytics.target_customers())
  UNION ALL
  (SELECT * FROM customer_analytics.target_customers() EXCEPT SELECT * FROM parallel_run)) d;
RESET max_parallel_workers_per_gather;

-- The same answers from the order rollup: every function, serial and with
-- parallel plans forced, against the source tables read serially.
SELECT rollup_rows FROM customer_analytics.enable_rollup('cosmos_sync');
SELECT count(*) AS rollup_differences FROM customer_analytics.check_rollup('cosmos_sync');
SET customer_analytics.use_rollup = off;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE source_targets AS SELECT * FROM customer_analytics.target_customers();
CREATE TEMP TABLE source_funnel AS SELECT * FROM customer_analytics.targeting_funnel(route_source => 'order');
CREATE TEMP TABLE source_monthly AS SELECT * FROM customer_analytics.monthly_revenue(
    ARRAY(SELECT customer_code FROM source_targets));
CREATE TEMP TABLE source_features AS SELECT * FROM customer_analytics.customer_features();
RESET customer_analytics.use_rollup;
CREATE FUNCTION rollup_matches_source() RETURNS TABLE (what text, rows bigint, differences bigint)
LANGUAGE sql AS $$
    SELECT 'target_customers', (SELECT count(*) FROM source_targets), count(*) FROM (
        (SELECT * FROM source_targets EXCEPT SELECT * FROM customer_analytics.target_customers())
        UNION ALL (SELECT * FROM customer_analytics.target_customers() EXCEPT SELECT * FROM source_targets)) d
    UNION ALL
    SELECT 'targeting_funnel', (SELECT count(*) FROM source_funnel), count(*) FROM (
        (SELECT * FROM source_funnel EXCEPT SELECT * FROM customer_analytics.targeting_funnel(route_source => 'order'))
        UNION ALL (SELECT * FROM customer_analytics.targeting_funnel(route_source => 'order') EXCEPT SELECT * FROM source_funnel)) d
    UNION ALL
    SELECT 'monthly_revenue', (SELECT count(*) FROM source_monthly), count(*) FROM (
        (SELECT * FROM source_monthly EXCEPT SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM source_targets)))
        UNION ALL (SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM source_targets)) EXCEPT SELECT * FROM source_monthly)) d
    UNION ALL
    SELECT 'customer_features', (SELECT count(*) FROM source_features), count(*) FROM (
        (SELECT * FROM source_features EXCEPT SELECT * FROM customer_analytics.customer_features())
        UNION ALL (SELECT * FROM customer_analytics.customer_features() EXCEPT SELECT * FROM source_features)) d
$$;
SELECT * FROM rollup_matches_source();
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT * FROM rollup_matches_source();
RESET ALL;
SELECT customer_analytics.drop_rollup('cosmos_sync');
