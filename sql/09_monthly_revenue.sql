-- monthly_revenue() on the fixture.  By hand:
--   0001009: 20251231 1000 (Dec); 20260101 500 + 20260107 600 (Jan, 2 orders);
--            20260108 700 is one day past the window; 20241231 before it
--   0001008: the window starts 10-02, so 5000 on 10-01 is out: 0 (no lines)
--            + 0 (NULL amounts) + 100 = 100 from 3 orders
--   0001007: only unconfirmed orders after March: Sep..Jan all 0
--   0001015: no orders at all; 'nobody' is not a customer: rows of 0 anyway
--   0001003: 20251001..03 (3000, 2999.99, 100) but the window starts 10-02:
--            October is partial, 2 orders, 3099.99; November 5000
SELECT * FROM customer_analytics.monthly_revenue(
    '{0001009,0001008,0001007,0001015,nobody,0001003}', '[2025-10-02,2026-01-07]', 'fx');

-- a code listed twice still gets one row per month; an empty list gives none
SELECT count(*) AS rows FROM customer_analytics.monthly_revenue('{0012,0012}', '[2025-11-01,2025-11-30]', 'fx');
SELECT count(*) AS rows FROM customer_analytics.monthly_revenue('{}', '[2025-11-01,2025-11-30]', 'fx');

-- the default window is the notebook's Sep 2025 .. Jan 7 2026, and the
-- source schema comes from the GUC
SET customer_analytics.source_schema = 'fx';
SELECT month, revenue, orders FROM customer_analytics.monthly_revenue('{0001001}');
RESET customer_analytics.source_schema;

-- months add up to the campaign's own figures: recent_sales (Nov+Dec) of every target
SELECT count(*) AS targets_checked,
       count(*) FILTER (WHERE t.recent_sales = m.nov_dec) AS recent_sales_agree
  FROM customer_analytics.target_customers(source_schema => 'fx') t
  JOIN (SELECT customer_code, sum(revenue) AS nov_dec
          FROM customer_analytics.monthly_revenue(
                 ARRAY(SELECT customer_code FROM customer_analytics.target_customers(source_schema => 'fx')),
                 '[2025-11-01,2025-12-31]', 'fx')
         GROUP BY customer_code) m USING (customer_code);

-- errors
\set VERBOSITY terse
SELECT * FROM customer_analytics.monthly_revenue(NULL, '[2025-11-01,2025-11-30]', 'fx');
SELECT * FROM customer_analytics.monthly_revenue('{0012,NULL}', '[2025-11-01,2025-11-30]', 'fx');
SELECT * FROM customer_analytics.monthly_revenue('{0012}', '[2025-11-01,)', 'fx');
SELECT * FROM customer_analytics.monthly_revenue('{0012}', 'empty', 'fx');
SELECT * FROM customer_analytics.monthly_revenue('{0012}', '[2025-11-01,2025-11-30]', 'nowhere');
