-- Trust (issue 12, part 2): the ERP's writers are never refused and never
-- make the rollup wrong.  Needs 00_setup (public.err).
--
-- The rollup's trigger runs as the rollup's owner: a writer needs only its
-- privileges on the ERP tables (no USAGE on customer_analytics, no grant on
-- the rollup tables), and a writer whose row-level security hides orders
-- still leaves every order exact.  A rollup whose owner could not see every
-- row is disabled with a warning at the next write, not used, and the write
-- goes through.
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned
CREATE SCHEMA rw;
CREATE TABLE rw.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE rw.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE rw.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    PRIMARY KEY (order_type, order_number, line_no));
INSERT INTO rw.customers VALUES ('0001', 'A', 'K1', 'a', NULL, '002'), ('0002', 'B', 'K2', 'b', NULL, '003');
INSERT INTO rw.sales_orders VALUES ('SO', '1', '0001', 'K1', '20251001', 'Y'), ('SO', '2', '0002', 'K2', '20251002', 'Y');
INSERT INTO rw.sales_order_lines VALUES ('SO', '1', 1, 'P1', 1, 100), ('SO', '2', 1, 'P1', 1, 200);
SELECT 'rollup rows: ' || rollup_rows FROM customer_analytics.enable_rollup('rw', writers => '{}');

-- the rollup's rows: order, customer, total, lines
CREATE FUNCTION rw_rollup() RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT order_number || '': '' || customer_code || '' '' || COALESCE(total::text, ''NULL'')'
        || ' || '' / '' || line_count FROM %s ORDER BY order_number',
        (SELECT customer_analytics._rollup_table(id) FROM customer_analytics.rollups WHERE source_schema = 'rw'));
END $$;

-- 1. a writer with exactly its ERP privileges: not even USAGE on the
-- extension's schema (a DBA may revoke PUBLIC's), nothing on the rollup
REVOKE USAGE ON SCHEMA customer_analytics FROM PUBLIC;
CREATE ROLE ca_erp_sync;
GRANT USAGE ON SCHEMA rw TO ca_erp_sync;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA rw TO ca_erp_sync;
SET ROLE ca_erp_sync;
SELECT 'writer has USAGE on customer_analytics: ' || has_schema_privilege('customer_analytics', 'USAGE');
INSERT INTO rw.sales_orders VALUES ('SO', '3', '0001', 'K1', '20251003', 'Y');
INSERT INTO rw.sales_order_lines VALUES ('SO', '3', 1, 'P2', 2, 300), ('SO', '3', 2, 'P3', 1, 50);
UPDATE rw.sales_order_lines SET pretax_subtotal = 150 WHERE order_number = '1';
DELETE FROM rw.sales_order_lines WHERE order_number = '2';
UPDATE rw.customers SET csm = '009' WHERE customer_code = '0002';
COPY rw.sales_order_lines FROM stdin;
SO	2	2	P9	1	75
\.
RESET ROLE;
SELECT * FROM rw_rollup();
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rw');

-- 2. a writer that sees only route K1's orders (row-level security) writes
-- lines of a K2 order it cannot see, and moves a line onto it
ALTER TABLE rw.sales_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY k1_only ON rw.sales_orders TO ca_erp_sync USING (delivery_route = 'K1');
SET ROLE ca_erp_sync;
SELECT 'orders the writer sees: ' || string_agg(order_number, ',' ORDER BY order_number) FROM rw.sales_orders;
INSERT INTO rw.sales_order_lines VALUES ('SO', '2', 3, 'P1', 1, 25);
UPDATE rw.sales_order_lines SET order_number = '2', line_no = 4 WHERE order_number = '3' AND line_no = 2;
UPDATE rw.sales_orders SET order_date = '20251004' WHERE order_number = '1';
RESET ROLE;
SELECT * FROM rw_rollup();
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rw');
SELECT 'rollup used by the owner: ' || usable_here FROM customer_analytics.list_rollups() WHERE source_schema = 'rw';
DROP POLICY k1_only ON rw.sales_orders;
ALTER TABLE rw.sales_orders DISABLE ROW LEVEL SECURITY;

-- 3. TRUNCATE and reload by the writer
SET ROLE ca_erp_sync;
TRUNCATE rw.sales_order_lines;
INSERT INTO rw.sales_order_lines VALUES ('SO', '1', 1, 'P1', 1, 100), ('SO', '3', 1, 'P2', 2, 300);
RESET ROLE;
SELECT * FROM rw_rollup();
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rw');

-- 4. the rollup's owner must see every row: enable_rollup refuses a source
-- where row-level security applies to it (here: a role made owner of the
-- rollup tables), and a rollup whose owner stops seeing every row is
-- disabled at the next write, which goes through
CREATE ROLE ca_rollup_keeper;
GRANT USAGE ON SCHEMA rw, customer_analytics TO ca_rollup_keeper;
GRANT SELECT ON ALL TABLES IN SCHEMA rw TO ca_rollup_keeper;
SELECT format('ALTER TABLE %s OWNER TO ca_rollup_keeper', t)
  FROM customer_analytics.rollups,
       unnest(ARRAY[customer_analytics._rollup_table(id), customer_analytics._rollup_dirty_table(id),
                    customer_analytics._rollup_keys_table(id)]) t
 WHERE source_schema = 'rw' \gexec
UPDATE customer_analytics.rollups SET owner = 'ca_rollup_keeper' WHERE source_schema = 'rw';
-- the rollup's owner, not a superuser, forgets its recorded changes
-- (reset_rollup_changes): a new generation, none left
SELECT generation AS rw_generation FROM customer_analytics.rollups WHERE source_schema = 'rw' \gset
SET ROLE ca_rollup_keeper;
SELECT customer_analytics.reset_rollup_changes('rw') >= 0 AS reset;
RESET ROLE;
SELECT generation > :rw_generation AS new_generation FROM customer_analytics.rollups WHERE source_schema = 'rw';
SELECT (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', customer_analytics._rollup_dirty_table(id)),
                                             false, true, '')))[1]::text AS recorded_left
  FROM customer_analytics.rollups WHERE source_schema = 'rw';
ALTER TABLE rw.sales_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY k1_only ON rw.sales_orders TO ca_rollup_keeper, ca_erp_sync USING (delivery_route = 'K1');
SET ROLE ca_erp_sync;
INSERT INTO rw.sales_order_lines VALUES ('SO', '1', 2, 'P5', 1, 1);
RESET ROLE;
SELECT 'state: ' || state FROM customer_analytics.rollups WHERE source_schema = 'rw';
SELECT 'reason: ' || reason FROM customer_analytics.list_rollups() WHERE source_schema = 'rw';
SET ROLE ca_rollup_keeper;
SELECT public.err($$SELECT customer_analytics._require_rollup_source('rw')$$);
RESET ROLE;
DROP POLICY k1_only ON rw.sales_orders;
ALTER TABLE rw.sales_orders DISABLE ROW LEVEL SECURITY;
SELECT format('ALTER TABLE %s OWNER TO CURRENT_USER', t)
  FROM customer_analytics.rollups,
       unnest(ARRAY[customer_analytics._rollup_table(id), customer_analytics._rollup_dirty_table(id),
                    customer_analytics._rollup_keys_table(id)]) t
 WHERE source_schema = 'rw' \gexec
UPDATE customer_analytics.rollups SET owner = CURRENT_USER WHERE source_schema = 'rw';
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('rw');
SELECT 'differences: ' || count(*) FROM customer_analytics.check_rollup('rw');

-- 5. the rollup's management is its owner's
SET ROLE ca_erp_sync;
SELECT public.err($$SELECT customer_analytics.rebuild_rollup('rw')$$);
RESET ROLE;
GRANT USAGE ON SCHEMA customer_analytics TO ca_erp_sync;
SET ROLE ca_erp_sync;
SELECT public.err($$SELECT customer_analytics.rebuild_rollup('rw')$$);
SELECT public.err($$SELECT customer_analytics.drop_rollup('rw')$$);
SELECT public.err($$SELECT customer_analytics.disable_rollup('rw')$$);
RESET ROLE;

SELECT customer_analytics.drop_rollup('rw');
GRANT USAGE ON SCHEMA customer_analytics TO PUBLIC;
DROP FUNCTION rw_rollup();
DROP SCHEMA rw CASCADE;
REVOKE ALL ON SCHEMA customer_analytics FROM ca_erp_sync, ca_rollup_keeper;
DROP ROLE ca_erp_sync;
DROP ROLE ca_rollup_keeper;
