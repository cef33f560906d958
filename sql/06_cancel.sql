-- A cancel (here statement_timeout) stops the scan mid-way and leaves the
-- session clean: the search_path pinned during the scan is restored and the
-- next call works.  The lines view sleeps 20 ms a row, so the scan of 50
-- lines cannot finish within the 200 ms timeout.
CREATE SCHEMA fx_slow;
CREATE FUNCTION fx_slow.nap() RETURNS boolean LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(0.02); RETURN true; END';
CREATE VIEW fx_slow.customers AS SELECT * FROM fx.customers;
CREATE VIEW fx_slow.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE VIEW fx_slow.sales_order_lines AS SELECT * FROM fx.sales_order_lines WHERE fx_slow.nap();
SET search_path = public, fx;
SET statement_timeout = '200ms';
\set VERBOSITY terse
\set SHOW_CONTEXT never
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'fx_slow');
\set VERBOSITY default
RESET statement_timeout;
SHOW search_path;
SELECT count(*) AS targets FROM customer_analytics.target_customers(source_schema => 'fx');
RESET search_path;
