-- Renamed source columns (issue 24, item 8): the ERP may rename a column
-- of the data contract that a current rollup reads.  The rename goes
-- through; the rollup is disabled at once, in the renaming transaction,
-- with a reason and a warning naming the column and saying what to run;
-- the next write goes through; the reading functions read the source
-- tables and raise the contract's error naming the column (not an internal
-- query's 42703); renaming back and rebuild_rollup() restore the rollup.
-- Needs 00_setup (public.err).
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned
CREATE ROLE ca_rn_erp;
CREATE SCHEMA rn AUTHORIZATION ca_rn_erp;
SET ROLE ca_rn_erp;
CREATE TABLE rn.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE rn.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE rn.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    PRIMARY KEY (order_type, order_number, line_no));
INSERT INTO rn.customers VALUES ('0001', 'A', 'K1', 'a', NULL, '002'), ('0002', 'B', 'K2', 'b', NULL, '003');
INSERT INTO rn.sales_orders VALUES ('SO', '1', '0001', 'K1', '20251001', 'Y'), ('SO', '2', '0002', 'K2', '20251002', 'Y');
INSERT INTO rn.sales_order_lines VALUES ('SO', '1', 1, 'P1', 1, 100), ('SO', '2', 1, 'P1', 1, 200);
RESET ROLE;
SELECT 'rollup rows: ' || rollup_rows FROM customer_analytics.enable_rollup('rn');

-- the rollup's state and reason, and the differences check_rollup finds
CREATE FUNCTION rn_state() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'state: ' || state || COALESCE(' | reason: ' || disabled_reason, '')
      FROM customer_analytics.rollups WHERE source_schema = 'rn'
$$;
-- the reading functions: their result, or their error, on one line
CREATE FUNCTION rn_readers() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'target_customers: ' || public.err($q$SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'rn')$q$)
    UNION ALL
    SELECT 'customer_features: ' || public.err($q$SELECT count(*) FROM customer_analytics.customer_features(source_schema => 'rn')$q$)
$$;
SELECT * FROM rn_state();
SELECT * FROM rn_readers();

-- each column in turn: renamed by the ERP (the tables' owner, not a
-- superuser), written in the next transaction, the readers, renamed back,
-- rebuilt
CREATE FUNCTION rn_writes() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT 'write: ' || public.err($q$INSERT INTO rn.sales_orders VALUES ('SO', '9', '0001', 'K1', '20251009', 'Y')$q$)
    UNION ALL
    SELECT 'write: ' || public.err($q$UPDATE rn.customers SET csm = '004' WHERE customer_code = '0001'$q$)
    UNION ALL
    SELECT 'write: ' || public.err($q$DELETE FROM rn.sales_orders WHERE order_number = '9'$q$)
$$;

-- sales_order_lines.quantity
SET ROLE ca_rn_erp;
SELECT 'rename: ' || public.err('ALTER TABLE rn.sales_order_lines RENAME COLUMN quantity TO quantity_v2');
RESET ROLE;
SELECT * FROM rn_state();
SET ROLE ca_rn_erp;
SELECT * FROM rn_writes();
RESET ROLE;
SELECT * FROM rn_state();
-- (quantity is read by customer_features() only: target_customers() reads
-- the source tables without it)
SELECT * FROM rn_readers();
-- rebuild_rollup() checks the contract before it reads
SELECT public.err($$SELECT customer_analytics.rebuild_rollup('rn')$$);
SET ROLE ca_rn_erp;
ALTER TABLE rn.sales_order_lines RENAME COLUMN quantity_v2 TO quantity;
RESET ROLE;
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('rn');
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rn');
SELECT * FROM rn_readers();

-- sales_order_lines.pretax_subtotal
SET ROLE ca_rn_erp;
SELECT 'rename: ' || public.err('ALTER TABLE rn.sales_order_lines RENAME COLUMN pretax_subtotal TO pretax_subtotal_v2');
RESET ROLE;
SELECT * FROM rn_state();
SET ROLE ca_rn_erp;
SELECT * FROM rn_writes();
RESET ROLE;
SELECT * FROM rn_state();
SELECT * FROM rn_readers();
SET ROLE ca_rn_erp;
ALTER TABLE rn.sales_order_lines RENAME COLUMN pretax_subtotal_v2 TO pretax_subtotal;
RESET ROLE;
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('rn');
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rn');
SELECT * FROM rn_readers();

-- customers.delivery_route
SET ROLE ca_rn_erp;
SELECT 'rename: ' || public.err('ALTER TABLE rn.customers RENAME COLUMN delivery_route TO delivery_route_v2');
RESET ROLE;
SELECT * FROM rn_state();
SET ROLE ca_rn_erp;
SELECT * FROM rn_writes();
RESET ROLE;
SELECT * FROM rn_state();
SELECT * FROM rn_readers();
SET ROLE ca_rn_erp;
ALTER TABLE rn.customers RENAME COLUMN delivery_route_v2 TO delivery_route;
RESET ROLE;
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('rn');
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rn');
SELECT * FROM rn_readers();

-- the warning and its hint, in the renaming transaction
\set VERBOSITY default
SET ROLE ca_rn_erp;
BEGIN;
ALTER TABLE rn.sales_order_lines RENAME COLUMN quantity TO qty;
SELECT * FROM rn_state();
ROLLBACK;
RESET ROLE;
\set VERBOSITY terse
SELECT * FROM rn_state();

-- a column outside the contract: renamed, the rollup stays current
SET ROLE ca_rn_erp;
ALTER TABLE rn.sales_order_lines RENAME COLUMN line_no TO line_number;
INSERT INTO rn.sales_order_lines VALUES ('SO', '2', 2, 'P2', 1, 50);
RESET ROLE;
SELECT * FROM rn_state();
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rn');

-- a whole source table renamed (or moved to another schema) under the
-- current rollup (issue 24, item 8): the rename goes through, the rollup is
-- disabled at once, saying what to run; the writes on the renamed table go
-- through and are not lost (rebuild_rollup() recomputes from the tables);
-- the readers name the missing table
SET ROLE ca_rn_erp;
SELECT 'rename: ' || public.err('ALTER TABLE rn.sales_orders RENAME TO sales_orders_v2');
RESET ROLE;
SELECT * FROM rn_state();
SET ROLE ca_rn_erp;
SELECT 'write: ' || public.err($q$INSERT INTO rn.sales_orders_v2 VALUES ('SO', '7', '0002', 'K2', '20251007', 'Y')$q$);
SELECT 'write: ' || public.err($q$INSERT INTO rn.sales_order_lines VALUES ('SO', '7', 1, 'P1', 1, 700)$q$);
RESET ROLE;
SELECT * FROM rn_state();
SELECT * FROM rn_readers();
SELECT public.err($$SELECT customer_analytics.rebuild_rollup('rn')$$);
SET ROLE ca_rn_erp;
ALTER TABLE rn.sales_orders_v2 RENAME TO sales_orders;
RESET ROLE;
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('rn');
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rn');
-- moved to another schema (the warning and its hint), written there, and
-- moved back: the rollup stays disabled until it is rebuilt
CREATE SCHEMA rn_old AUTHORIZATION ca_rn_erp;
\set VERBOSITY default
SET ROLE ca_rn_erp;
ALTER TABLE rn.customers SET SCHEMA rn_old;
\set VERBOSITY terse
UPDATE rn_old.customers SET delivery_route = 'K9' WHERE customer_code = '0001';
ALTER TABLE rn_old.customers SET SCHEMA rn;
RESET ROLE;
SELECT * FROM rn_state();
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('rn');
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rn');
DROP SCHEMA rn_old;

SELECT customer_analytics.drop_rollup('rn');
DROP SCHEMA rn CASCADE;
DROP OWNED BY ca_rn_erp;
DROP ROLE ca_rn_erp;
DROP FUNCTION rn_state(), rn_readers(), rn_writes();
