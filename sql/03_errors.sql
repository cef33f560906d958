-- Every documented error: SQLSTATE, message and hint, one line each.
\pset tuples_only on
\pset format unaligned
SET customer_analytics.source_schema = 'fx';

-- NULL arguments
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(routes => NULL)$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(spend_window => NULL)$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(min_spend => NULL)$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(min_low_tickets => NULL)$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(exclude_closed => NULL)$$);
SELECT public.err($$SELECT * FROM customer_analytics.targeting_funnel(route_source => NULL)$$);

-- windows: empty, unbounded, infinite, reversed (refused by daterange itself)
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(spend_window => 'empty')$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(low_ticket_window => '[2025-09-15,2025-09-15)')$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(base_window => '[2025-08-31,)')$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(recent_window => '[-infinity,2025-12-31]')$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(spend_window => '[2025-12-31,2025-01-01]')$$);

-- thresholds
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(min_spend => -1)$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(low_ticket_below => -0.01)$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(min_spend => 'NaN')$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(min_low_tickets => 0)$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(decline_pct => -5)$$);
SELECT public.err($$SELECT * FROM customer_analytics.targeting_funnel(decline_pct => 100.5)$$);

-- routes
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(routes => '{}')$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(routes => '{K1,NULL}')$$);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(route_source => 'orders')$$);

-- the source: schema, tables, columns, types
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'no_such_schema')$$);
SET customer_analytics.source_schema = '';
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);
RESET customer_analytics.source_schema;
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);  -- default cosmos_sync is absent here
SET customer_analytics.source_schema = 'fx';

CREATE SCHEMA bad;
CREATE TABLE bad.customers (LIKE fx.customers);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'bad')$$);
CREATE TABLE bad.sales_orders (LIKE fx.sales_orders);
ALTER TABLE bad.sales_orders DROP COLUMN confirmed_code;
CREATE TABLE bad.sales_order_lines (LIKE fx.sales_order_lines);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'bad')$$);
ALTER TABLE bad.sales_orders ADD COLUMN confirmed_code boolean;
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'bad')$$);
ALTER TABLE bad.sales_orders DROP COLUMN confirmed_code, ADD COLUMN confirmed_code text;
ALTER TABLE bad.sales_orders ALTER COLUMN order_date TYPE integer USING order_date::integer;
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'bad')$$);
ALTER TABLE bad.sales_orders ALTER COLUMN order_date TYPE text;
ALTER TABLE bad.sales_order_lines ALTER COLUMN pretax_subtotal TYPE float8;
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'bad')$$);
ALTER TABLE bad.sales_order_lines ALTER COLUMN pretax_subtotal TYPE numeric;
-- now it fits the contract, and is empty
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'bad');
SELECT step, customers, orders FROM customer_analytics.targeting_funnel(source_schema => 'bad') WHERE step_no = 1;

-- malformed order dates of confirmed orders: table, key and value in the message
BEGIN;
UPDATE fx.sales_orders SET order_date = '' WHERE order_number = '1002';
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);
ROLLBACK;
BEGIN;
UPDATE fx.sales_orders SET order_date = '2025-1-5' WHERE order_number = '1002';
SELECT public.err($$SELECT * FROM customer_analytics.targeting_funnel()$$);
ROLLBACK;
BEGIN;
UPDATE fx.sales_orders SET order_date = '20251340' WHERE order_number = '1002';
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);
ROLLBACK;
BEGIN;
UPDATE fx.sales_orders SET order_date = '20250229' WHERE order_number = '1002';  -- 2025 is no leap year
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);
ROLLBACK;
BEGIN;
UPDATE fx.sales_orders SET order_date = NULL WHERE order_number = '1002';
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);
ROLLBACK;
-- a malformed date far outside every window is still reported, not skipped
BEGIN;
UPDATE fx.sales_orders SET order_date = '19991301' WHERE order_number = '1081';
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);
ROLLBACK;
-- ... but unconfirmed orders are never read (order 1065 has '2025-1-5')
SELECT order_date, confirmed_code FROM fx.sales_orders WHERE order_number = '1065';

-- a duplicated customer would make every figure ambiguous
BEGIN;
INSERT INTO fx.customers VALUES ('0001004', 'duplicate', 'PS', 'x', NULL, NULL);
SELECT public.err($$SELECT * FROM customer_analytics.target_customers()$$);
ROLLBACK;

-- the date checker on its own
SELECT customer_analytics.checked_order_date('20240229', 'SO', '1'),
       customer_analytics.checked_order_date(date '2025-01-31', 'SO', '1');
SELECT public.err($$SELECT customer_analytics.checked_order_date('2025013', 'SO', '1')$$);
SELECT public.err($$SELECT customer_analytics.checked_order_date('infinity'::date, 'SO', '1')$$);
