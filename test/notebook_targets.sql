-- test/notebook_targets.sql: the promo notebook's campaign as one plain SQL
-- query, transcribed from the notebook (not from the C code).  Used as the
-- independent cross-check in the regression suite and as "the best plain SQL"
-- in the benchmark.  Creates the temporary view notebook_targets.
CREATE TEMP VIEW notebook_targets AS
WITH orders AS (          -- the notebook's extract: confirmed orders with their totals
    SELECT so.customer_code, so.order_date,
           COALESCE(SUM(sol.pretax_subtotal), 0) AS order_total
      FROM cosmos_sync.sales_orders so
      LEFT JOIN cosmos_sync.sales_order_lines sol
        ON so.order_type = sol.order_type AND so.order_number = sol.order_number
     WHERE so.confirmed_code = 'Y' AND so.order_date >= '20250101' AND so.order_date <= '20260107'
     GROUP BY so.order_type, so.order_number, so.customer_code, so.delivery_route, so.order_date
), geo AS (
    SELECT * FROM cosmos_sync.customers WHERE delivery_route IN ('K1', 'K2', 'PS')
), per_customer AS (
    SELECT o.customer_code,
           sum(order_total) FILTER (WHERE order_date <= '20251231') AS total_spend,
           count(*) FILTER (WHERE order_date <= '20251231') AS total_orders,
           count(*) FILTER (WHERE order_date >= '20250915' AND order_total < 3000) AS low_ticket_count,
           COALESCE(sum(order_total) FILTER (WHERE order_date BETWEEN '20250831' AND '20251030'), 0) AS base_sales,
           COALESCE(sum(order_total) FILTER (WHERE order_date BETWEEN '20251031' AND '20251231'), 0) AS recent_sales,
           max(order_date) AS last_order
      FROM orders o
     WHERE o.customer_code IN (SELECT customer_code FROM geo)
     GROUP BY o.customer_code
)
SELECT g.customer_code, g.trade_name, g.delivery_route, g.shipping_address, g.csm,
       p.total_spend, p.total_orders, p.low_ticket_count, p.base_sales, p.recent_sales,
       CASE WHEN p.base_sales > 0 THEN (p.recent_sales - p.base_sales) / p.base_sales * 100 END AS pct_change,
       CASE WHEN p.low_ticket_count > 2 THEN '低客單' ELSE '業績下滑' END AS target_reason,
       p.last_order
  FROM geo g JOIN per_customer p USING (customer_code)
 WHERE p.total_orders > 0 AND p.total_spend >= 1000
   AND (p.low_ticket_count > 2
        OR (p.base_sales > 0 AND (p.recent_sales - p.base_sales) / p.base_sales * 100 < -30));
