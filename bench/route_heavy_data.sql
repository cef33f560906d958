\set rh_saved_echo :ECHO
\set rh_saved_quiet :QUIET
\set ECHO none
-- bench/route_heavy_data.sql
--
-- The benchmark's second realistic shape, applied on top of the demo data
-- (test/demo_data.sql, run first at the same scale): about a quarter of
-- the customers are on the demo campaign's routes (K1/K2/PS, as in the demo
-- data), and they hold most of the orders, so that a change to 1 % of the
-- orders reaches several thousand of them (~7,000 at scale 10) rather than
-- the ~2,700 it reaches in the demo data, where orders are spread over all
-- customers.  This is the shape of a distributor whose promo routes are its
-- busiest: the delta refresh then has many changed targets and months, and
-- every statement that is not keyed by the changed customers shows.
--
-- Two thirds of the orders of customers off those routes are moved to an
-- open customer on them (chosen by a hash of the order number; the order's
-- delivery_route follows the new customer).  Lines stay with their orders.
-- Deterministic: hashtext() of the order keys, never random().
--
-- Usage (from the repository root, after test/demo_data.sql):
--     psql -X -v ON_ERROR_STOP=1 -f bench/route_heavy_data.sql DBNAME

\set QUIET on
BEGIN;
SET LOCAL client_min_messages = warning;
SET LOCAL synchronous_commit = off;
SET LOCAL work_mem = '64MB';
SET LOCAL jit = off;

CREATE TEMP TABLE rh_route_customers ON COMMIT DROP AS
SELECT c.customer_code, c.delivery_route, (row_number() OVER (ORDER BY c.customer_code) - 1)::int AS i
  FROM cosmos_sync.customers c
 WHERE c.delivery_route IN ('K1', 'K2', 'PS') AND c.customer_code IS NOT NULL
   AND COALESCE(btrim(c.closure_date::text), '') = '';
CREATE UNIQUE INDEX ON rh_route_customers (i);
ANALYZE rh_route_customers;

UPDATE cosmos_sync.sales_orders o
   SET customer_code = r.customer_code, delivery_route = r.delivery_route
  FROM rh_route_customers r
 WHERE r.i = abs(hashtext(o.order_type || '/' || o.order_number || '/rh')) % (SELECT count(*) FROM rh_route_customers)
   AND abs(hashtext(o.order_number || '/move')) % 3 < 2
   AND NOT EXISTS (SELECT 1 FROM cosmos_sync.customers c
                    WHERE c.customer_code = o.customer_code AND c.delivery_route IN ('K1', 'K2', 'PS'));
COMMIT;
VACUUM ANALYZE cosmos_sync.sales_orders;

\set QUIET :rh_saved_quiet
\unset rh_saved_quiet
\set ECHO :rh_saved_echo
SELECT count(*) FILTER (WHERE c.delivery_route IN ('K1', 'K2', 'PS')) AS orders_of_route_customers, count(*) AS orders
  FROM cosmos_sync.sales_orders o LEFT JOIN cosmos_sync.customers c ON c.customer_code = o.customer_code;
