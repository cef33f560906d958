-- The functions run with the caller's rights (SECURITY INVOKER): table
-- privileges and row-level security of the calling role decide what is read.
SELECT proname, prosecdef, provolatile, proparallel
  FROM pg_proc WHERE pronamespace = 'customer_analytics'::regnamespace ORDER BY proname, oid;

CREATE ROLE ca_analyst;
CREATE ROLE ca_k2_rep;
GRANT USAGE ON SCHEMA customer_analytics, fx TO ca_analyst, ca_k2_rep;
GRANT SELECT ON fx.customers, fx.sales_orders TO ca_analyst;
GRANT SELECT ON fx.customers, fx.sales_orders, fx.sales_order_lines TO ca_k2_rep;

-- no SELECT on the lines: refused, not answered from the owner's view
SET ROLE ca_analyst;
\set VERBOSITY terse
\set SHOW_CONTEXT never
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'fx');
\set VERBOSITY default
RESET ROLE;

-- row-level security: a rep sees only route K2's customers and orders
ALTER TABLE fx.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE fx.sales_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY k2_customers ON fx.customers TO ca_k2_rep USING (delivery_route = 'K2');
CREATE POLICY k2_orders ON fx.sales_orders TO ca_k2_rep USING (delivery_route = 'K2');
SET ROLE ca_k2_rep;
SELECT customer_code, target_reason FROM customer_analytics.target_customers(source_schema => 'fx');
SELECT step, customers, orders FROM customer_analytics.targeting_funnel(source_schema => 'fx') WHERE step_no <= 2;
RESET ROLE;
-- the owner still sees everything
SELECT count(*) AS targets FROM customer_analytics.target_customers(source_schema => 'fx');
ALTER TABLE fx.customers DISABLE ROW LEVEL SECURITY;
ALTER TABLE fx.sales_orders DISABLE ROW LEVEL SECURITY;
DROP POLICY k2_customers ON fx.customers;
DROP POLICY k2_orders ON fx.sales_orders;

-- a caller's search_path cannot redirect the generated SQL: an operator
-- shadowing text = text in the caller's schema is never used
CREATE SCHEMA trap;
CREATE FUNCTION trap.always_true(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.always_true);
SET search_path = trap, pg_catalog, public;
SELECT count(*) AS targets FROM customer_analytics.target_customers(source_schema => 'fx');
RESET search_path;

REVOKE ALL ON SCHEMA customer_analytics, fx FROM ca_analyst, ca_k2_rep;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_analyst, ca_k2_rep;
DROP ROLE ca_analyst;
DROP ROLE ca_k2_rep;
