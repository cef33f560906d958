-- The data contract's type variants give identical answers: order_date as
-- char(8) or date, codes as char/text, amounts as integers, and views as the
-- source (the documented way to adapt a different schema).
CREATE SCHEMA fx_typed;
CREATE TABLE fx_typed.customers AS
  SELECT customer_code::char(12) AS customer_code, trade_name, delivery_route::char(2) AS delivery_route,
         shipping_address, closure_date::char(8) AS closure_date, csm
    FROM fx.customers;
CREATE TABLE fx_typed.sales_orders AS
  SELECT order_type::char(2) AS order_type, order_number::int AS order_number, customer_code::text AS customer_code,
         delivery_route::text AS delivery_route, order_date::char(8) AS order_date, confirmed_code::text AS confirmed_code
    FROM fx.sales_orders WHERE order_date ~ '^\d{8}$';
CREATE TABLE fx_typed.sales_order_lines AS
  SELECT order_type::char(2) AS order_type, order_number::int AS order_number,
         pretax_subtotal
    FROM fx.sales_order_lines;

-- char(12) codes compare without their padding, as the notebook's text did
SELECT count(*) AS targets,
       count(*) FILTER (WHERE customer_code = '0012') AS short_code_kept
  FROM customer_analytics.target_customers(source_schema => 'fx_typed');
SELECT count(*) AS differences FROM (
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx')
   EXCEPT SELECT * FROM customer_analytics.target_customers(source_schema => 'fx_typed'))
  UNION ALL
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx_typed')
   EXCEPT SELECT * FROM customer_analytics.target_customers(source_schema => 'fx'))) d;

-- order_date as a real date column
ALTER TABLE fx_typed.sales_orders ALTER COLUMN order_date TYPE date USING to_date(order_date, 'YYYYMMDD');
SELECT count(*) AS differences FROM (
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx')
   EXCEPT SELECT * FROM customer_analytics.target_customers(source_schema => 'fx_typed'))
  UNION ALL
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx_typed')
   EXCEPT SELECT * FROM customer_analytics.target_customers(source_schema => 'fx'))) d;
SELECT step, customers, orders FROM customer_analytics.targeting_funnel(source_schema => 'fx_typed');

-- a NULL date on a confirmed order is refused for date columns too
BEGIN;
UPDATE fx_typed.sales_orders SET order_date = NULL WHERE order_number = 1002;
\set VERBOSITY terse
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'fx_typed');
\set VERBOSITY default
ROLLBACK;

-- integer amounts (whole units) are exact too: cents dropped on purpose here
ALTER TABLE fx_typed.sales_order_lines ALTER COLUMN pretax_subtotal TYPE bigint USING round(pretax_subtotal);
SELECT customer_code, total_spend, base_sales, recent_sales, target_reason
  FROM customer_analytics.target_customers(source_schema => 'fx_typed');

-- views as the source, with a domain over text for the code
CREATE DOMAIN public.code_text AS text;
CREATE SCHEMA fx_views;
CREATE VIEW fx_views.customers AS SELECT customer_code::public.code_text AS customer_code, trade_name,
       delivery_route, shipping_address, closure_date, csm FROM fx.customers;
CREATE VIEW fx_views.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE VIEW fx_views.sales_order_lines AS SELECT * FROM fx.sales_order_lines;
SELECT count(*) AS differences FROM (
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx')
   EXCEPT SELECT * FROM customer_analytics.target_customers(source_schema => 'fx_views'))
  UNION ALL
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx_views')
   EXCEPT SELECT * FROM customer_analytics.target_customers(source_schema => 'fx'))) d;

-- mixed-case and quoted schema names are quoted, never pasted
CREATE SCHEMA "Fx Mixed; --";
CREATE VIEW "Fx Mixed; --".customers AS SELECT * FROM fx.customers;
CREATE VIEW "Fx Mixed; --".sales_orders AS SELECT * FROM fx.sales_orders;
CREATE VIEW "Fx Mixed; --".sales_order_lines AS SELECT * FROM fx.sales_order_lines;
SELECT count(*) AS targets FROM customer_analytics.target_customers(source_schema => 'Fx Mixed; --');
