-- The order scan's date filter is estimated from order_date's statistics
-- (support function), not guessed: on 2025-11-01 the fixture has exactly 7
-- orders (0001004, 0001005, 0001006, 0001010, 0001011, 0001012, 0012); an
-- opaque expression would get a default guess instead.
CREATE FUNCTION pg_temp.estimated_rows(query text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::int;
END $$;
ANALYZE fx.sales_orders;
ANALYZE fx_typed.sales_orders;
SELECT count(*) AS actual FROM fx.sales_orders WHERE order_date = '20251101';
-- varchar column, through the ::text the order query writes
SELECT pg_temp.estimated_rows($$
  SELECT 1 FROM fx.sales_orders o
   WHERE customer_analytics.order_date_in_window(o.order_date::text, '[2025-11-01,2025-11-02)',
                                                 o.order_type::text, o.order_number::text)$$) AS varchar_column;
-- date column (fx_typed, from 04_source_types)
SELECT pg_temp.estimated_rows($$
  SELECT 1 FROM fx_typed.sales_orders o
   WHERE customer_analytics.order_date_in_window(o.order_date, '[2025-11-01,2025-11-02)',
                                                 o.order_type::text, o.order_number::text)$$) AS date_column;
-- an opaque expression gets a default guess (here 1 row), far from the 7
SELECT pg_temp.estimated_rows($$
  SELECT 1 FROM fx.sales_orders o
   WHERE customer_analytics.checked_order_date(o.order_date::text, o.order_type::text, o.order_number::text)
         BETWEEN '2025-11-01' AND '2025-11-01'$$) AS without_support;

-- the filter itself: window bounds are [lo, hi), and bad dates are refused
SELECT customer_analytics.order_date_in_window('20251101', '[2025-11-01,2025-11-02)', 'SO', '1') AS first_day,
       customer_analytics.order_date_in_window('20251102', '[2025-11-01,2025-11-02)', 'SO', '1') AS day_after,
       customer_analytics.order_date_in_window(date '2025-10-31', '[2025-11-01,2025-11-02)', 'SO', '1') AS day_before;
\set VERBOSITY terse
SELECT customer_analytics.order_date_in_window('2025111', '[2025-11-01,2025-11-02)', 'SO', '9');
