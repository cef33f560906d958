-- The order rollup: kept exact under every kind of write, read instead of
-- the source tables only when that is safe, same answers either way.
\set VERBOSITY terse

CREATE SCHEMA ru;
CREATE TABLE ru.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE ru.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE ru.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    PRIMARY KEY (order_type, order_number, line_no));
INSERT INTO ru.customers VALUES
 ('0001', 'A', 'K1', 'addr A', NULL, '002'),
 ('0002', 'B', 'K1', 'addr B', NULL, '002'),
 ('0003', 'C', 'K2', 'addr C', NULL, '003'),
 ('0004', 'D', 'T9', 'addr D', NULL, '009');
INSERT INTO ru.sales_orders VALUES
 ('SO', '1', '0001', 'K1', '20250920', 'Y'),
 ('SO', '2', '0001', 'K1', '20251005', 'Y'),
 ('SO', '3', '0002', 'K1', '20251110', 'N'),  -- unconfirmed: not in the rollup
 ('SO', '4', '0002', 'K1', '20251001', 'Y'),  -- no lines: total NULL, 0 lines
 ('SO', '5', '0003', 'K2', '20251201', 'Y');
INSERT INTO ru.sales_order_lines VALUES
 ('SO', '1', 1, 'P1', 2, 500), ('SO', '1', 2, 'P2', 1, 600),
 ('SO', '2', 1, 'P1', 4, 1000),
 ('SO', '3', 1, 'P3', 1, 5000),
 ('SO', '5', 1, NULL, 1, NULL), ('SO', '5', 2, 'P2', 3, 200);

SELECT source_schema, id, order_date_is_date, state, rollup_rows
  FROM customer_analytics.enable_rollup('ru');
SELECT customer_analytics._rollup_table(id) AS rt, customer_analytics._rollup_dirty_table(id) AS dt
  FROM customer_analytics.rollups WHERE source_schema = 'ru' \gset

-- the rollup's rows, product codes sorted (array_agg keeps the plan's order)
CREATE FUNCTION ru_rollup() RETURNS TABLE (o text, customer text, route text, order_date date,
    raw text, total numeric, lines int, quantity numeric, products text[])
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT order_type || ''-'' || order_number, customer_code, delivery_route,'
        ' order_date, order_date_raw, total, line_count, quantity,'
        ' ARRAY(SELECT p FROM unnest(product_codes) p ORDER BY 1) FROM %s ORDER BY 1',
        (SELECT customer_analytics._rollup_table(id) FROM customer_analytics.rollups WHERE source_schema = 'ru'));
END $$;
-- the customers marked changed since the last look, then forget them
CREATE FUNCTION ru_dirty() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    dt text := (SELECT customer_analytics._rollup_dirty_table(id) FROM customer_analytics.rollups WHERE source_schema = 'ru');
    codes text;
BEGIN
    EXECUTE format('SELECT string_agg(DISTINCT COALESCE(customer_code, ''<all>''), '','' ORDER BY COALESCE(customer_code, ''<all>'')) FROM %s', dt) INTO codes;
    EXECUTE format('DELETE FROM %s', dt);
    RETURN COALESCE(codes, '');
END $$;
-- does a query give the same rows with and without the rollup?
CREATE FUNCTION rollup_agrees(query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    with_rollup text[];
    without text[];
BEGIN
    PERFORM set_config('customer_analytics.use_rollup', 'on', true);
    EXECUTE format('SELECT array_agg(x::text ORDER BY x::text) FROM (%s) x', query) INTO with_rollup;
    PERFORM set_config('customer_analytics.use_rollup', 'off', true);
    EXECUTE format('SELECT array_agg(x::text ORDER BY x::text) FROM (%s) x', query) INTO without;
    PERFORM set_config('customer_analytics.use_rollup', 'on', true);
    RETURN CASE WHEN with_rollup IS NOT DISTINCT FROM without
                THEN 'same ' || COALESCE(cardinality(with_rollup), 0) || ' rows'
                ELSE 'DIFFERENT: ' || COALESCE(with_rollup::text, '{}') || ' vs ' || COALESCE(without::text, '{}') END;
END $$;
-- after every write: the rollup equals the source, and every function agrees
CREATE FUNCTION ru_verify() RETURNS TABLE (what text, result text)
LANGUAGE sql AS $$
    SELECT 'check_rollup differences', count(*)::text FROM customer_analytics.check_rollup('ru')
    UNION ALL SELECT 'target_customers', rollup_agrees($q$SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}',
        min_spend => 100, low_ticket_window => '[2025-09-01,2025-12-31]', low_ticket_below => 2000, min_low_tickets => 2,
        source_schema => 'ru')$q$)
    UNION ALL SELECT 'targeting_funnel', rollup_agrees($q$SELECT * FROM customer_analytics.targeting_funnel(routes => '{K1,K2}',
        min_spend => 100, route_source => 'order', source_schema => 'ru')$q$)
    UNION ALL SELECT 'monthly_revenue', rollup_agrees($q$SELECT * FROM customer_analytics.monthly_revenue('{0001,0002,0003}',
        '[2025-09-01,2025-12-31]', 'ru')$q$)
    UNION ALL SELECT 'customer_features', rollup_agrees($q$SELECT * FROM customer_analytics.customer_features(
        '[2025-01-01,2025-12-31]', '2026-01-01', 'ru')$q$)
$$;

-- the initial build: SO-3 (unconfirmed) absent, SO-4 without lines, SO-5 with a NULL amount
SELECT * FROM ru_rollup();
SELECT * FROM ru_verify();
SELECT ru_dirty();

-- every function says which it reads, at DEBUG1
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'ru', min_spend => 0);
SET customer_analytics.use_rollup = off;
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'ru', min_spend => 0);
RESET customer_analytics.use_rollup;
RESET client_min_messages;

-- 1. new orders and lines, one statement each (SO-6 confirmed, SO-7 not)
INSERT INTO ru.sales_orders VALUES ('SO', '6', '0002', 'K1', '20251020', 'Y'), ('SO', '7', '0003', 'K2', '20251020', 'N');
INSERT INTO ru.sales_order_lines VALUES ('SO', '6', 1, 'P4', 1, 300), ('SO', '6', 2, 'P4', 1, 350), ('SO', '7', 1, 'P1', 1, 999);
SELECT * FROM ru_rollup() WHERE o IN ('SO-6', 'SO-7');
SELECT ru_dirty();
-- 2. an amount changes: SO-1 1100 -> 1150
UPDATE ru.sales_order_lines SET pretax_subtotal = 550 WHERE order_number = '1' AND line_no = 1;
SELECT o, total FROM ru_rollup() WHERE o = 'SO-1';
SELECT ru_dirty();
-- 3. the confirmation flag flips both ways: SO-3 joins, SO-2 leaves
UPDATE ru.sales_orders SET confirmed_code = CASE confirmed_code WHEN 'Y' THEN 'N' ELSE 'Y' END
 WHERE order_number IN ('2', '3');
SELECT o, customer, total FROM ru_rollup() WHERE o IN ('SO-2', 'SO-3');
SELECT ru_dirty();
-- 4. a line moves to another order: SO-6 loses 350, SO-4 gains it
UPDATE ru.sales_order_lines SET order_number = '4', line_no = 1 WHERE order_number = '6' AND line_no = 2;
SELECT o, total, lines, products FROM ru_rollup() WHERE o IN ('SO-4', 'SO-6');
SELECT ru_dirty();
-- 5. an order moves to another customer: both are dirty
UPDATE ru.sales_orders SET customer_code = '0004', delivery_route = 'T9' WHERE order_number = '5';
SELECT o, customer, route FROM ru_rollup() WHERE o = 'SO-5';
SELECT ru_dirty();
-- 6. deletes: a line, then a whole order (its lines stay behind, as the ERP may leave them)
DELETE FROM ru.sales_order_lines WHERE order_number = '1' AND line_no = 2;
DELETE FROM ru.sales_orders WHERE order_number = '6';
SELECT o, total, lines FROM ru_rollup() WHERE o IN ('SO-1', 'SO-6');
SELECT ru_dirty();
SELECT * FROM ru_verify();

-- 7. a malformed date does not stop the ERP's write; every reader raises,
-- with or without the rollup, naming the order
UPDATE ru.sales_orders SET order_date = '20251301' WHERE order_number = '4';
SELECT o, order_date, raw FROM ru_rollup() WHERE o = 'SO-4';
SELECT err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'ru')$$);
SET customer_analytics.use_rollup = off;
SELECT err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'ru')$$);
RESET customer_analytics.use_rollup;
UPDATE ru.sales_orders SET order_date = '20251001' WHERE order_number = '4';
SELECT ru_dirty();

-- 8. COPY fires the statement triggers too
COPY ru.sales_order_lines FROM stdin;
SO	2	2	P9	1	75
SO	5	3	P9	2	25
\.
SELECT o, total, lines FROM ru_rollup() WHERE o IN ('SO-2', 'SO-5');
SELECT ru_dirty();

-- 9. a rolled-back write leaves nothing behind
BEGIN;
UPDATE ru.sales_order_lines SET pretax_subtotal = 0;
ROLLBACK;
SELECT ru_dirty();
SELECT * FROM ru_verify();

-- 10. customers: a route change makes the customer dirty (the rollup keeps no customer data)
UPDATE ru.customers SET delivery_route = 'K2' WHERE customer_code = '0002';
INSERT INTO ru.customers VALUES ('0005', 'E', 'K1', 'addr E', NULL, '002');
SELECT ru_dirty();

-- 11. TRUNCATE: the rollup follows and every customer is dirty
TRUNCATE ru.sales_order_lines;
SELECT o, total, lines, quantity, products FROM ru_rollup();
SELECT ru_dirty();
SELECT * FROM ru_verify();
INSERT INTO ru.sales_order_lines VALUES
 ('SO', '1', 1, 'P1', 2, 500), ('SO', '3', 1, 'P3', 1, 5000), ('SO', '4', 1, 'P2', 1, 2500),
 ('SO', '5', 1, 'P2', 3, 200);
SELECT ru_dirty();
SELECT * FROM ru_verify();

-- A disabled trigger is noticed: the functions fall back to the source
-- tables, check_rollup() reports the drift, rebuild_rollup() repairs it.
ALTER TABLE ru.sales_order_lines DISABLE TRIGGER customer_analytics_rollup_update;
UPDATE ru.sales_order_lines SET pretax_subtotal = 700 WHERE order_number = '1';
SELECT source_schema, state, usable_here, reason FROM customer_analytics.list_rollups();
SELECT * FROM customer_analytics.check_rollup('ru');
SELECT state, rollup_rows FROM customer_analytics.rebuild_rollup('ru');
SELECT source_schema, state, usable_here, reason, dirty_rows FROM customer_analytics.list_rollups();
SELECT * FROM ru_verify();

-- The documented bulk load: disable, load, rebuild
SELECT state FROM customer_analytics.disable_rollup('ru');
SELECT usable_here, reason FROM customer_analytics.list_rollups();
INSERT INTO ru.sales_orders SELECT 'BL', g::text, '0001', 'K1', '20251115', 'Y' FROM generate_series(1, 50) g;
INSERT INTO ru.sales_order_lines SELECT 'BL', g::text, 1, 'P1', 1, g FROM generate_series(1, 50) g;
SELECT count(*) FROM customer_analytics.check_rollup('ru');
SELECT state, rollup_rows FROM customer_analytics.rebuild_rollup('ru');
SELECT * FROM ru_verify();

-- Privileges and row-level security: the rollup is read only by a caller
-- who could read the same rows in the source tables.
CREATE ROLE ru_analyst;
GRANT USAGE ON SCHEMA ru, customer_analytics TO ru_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA ru TO ru_analyst;
SET ROLE ru_analyst;
SELECT usable_here, reason FROM customer_analytics.list_rollups();
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'ru', min_spend => 0);
RESET client_min_messages;
RESET ROLE;
SELECT customer_analytics.drop_rollup('ru');
SELECT source_schema, id, rollup_rows FROM customer_analytics.enable_rollup('ru', readers => '{ru_analyst}');
SET ROLE ru_analyst;
SELECT usable_here, reason FROM customer_analytics.list_rollups();
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'ru', min_spend => 0);
RESET client_min_messages;
RESET ROLE;
-- with a policy on the orders the rollup would show too much: not read
ALTER TABLE ru.sales_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_0001 ON ru.sales_orders TO ru_analyst USING (customer_code = '0001');
SET ROLE ru_analyst;
SELECT usable_here, reason FROM customer_analytics.list_rollups();
SET client_min_messages = debug1;
SELECT customer_code, sum(orders) AS orders
  FROM customer_analytics.monthly_revenue('{0001,0002}', '[2025-09-01,2025-12-31]', 'ru') GROUP BY 1 ORDER BY 1;
RESET client_min_messages;
RESET ROLE;
SELECT customer_code, sum(orders) AS orders
  FROM customer_analytics.monthly_revenue('{0001,0002}', '[2025-09-01,2025-12-31]', 'ru') GROUP BY 1 ORDER BY 1;
DROP POLICY only_0001 ON ru.sales_orders;
ALTER TABLE ru.sales_orders DISABLE ROW LEVEL SECURITY;

-- Errors
SELECT err($$SELECT customer_analytics.enable_rollup('ru')$$);
SELECT err($$SELECT customer_analytics.enable_rollup('no_such_schema')$$);
SELECT err($$SELECT customer_analytics.enable_rollup('fx', readers => '{no_such_role}')$$);
SELECT err($$SELECT customer_analytics.rebuild_rollup('fx')$$);
SELECT err($$SELECT customer_analytics.check_rollup('fx')$$);
SELECT err($$SELECT customer_analytics.disable_rollup('fx')$$);
SELECT err($$SELECT customer_analytics.drop_rollup('fx')$$);
CREATE SCHEMA ru_views;
CREATE VIEW ru_views.customers AS SELECT * FROM ru.customers;
CREATE VIEW ru_views.sales_orders AS SELECT * FROM ru.sales_orders;
CREATE VIEW ru_views.sales_order_lines AS SELECT * FROM ru.sales_order_lines;
SELECT err($$SELECT customer_analytics.enable_rollup('ru_views')$$);
-- a source without the line-item columns cannot have a rollup
CREATE SCHEMA ru_narrow;
CREATE TABLE ru_narrow.customers (LIKE ru.customers);
CREATE TABLE ru_narrow.sales_orders (LIKE ru.sales_orders);
CREATE TABLE ru_narrow.sales_order_lines (order_type text, order_number text, pretax_subtotal numeric);
SELECT err($$SELECT customer_analytics.enable_rollup('ru_narrow')$$);
SELECT count(*) AS rollups_left FROM customer_analytics.rollups;

-- drop_rollup removes the triggers and tables
SELECT customer_analytics.drop_rollup('ru');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'customer_analytics_rollup_%';
SELECT to_regclass(:'rt') AS rollup_table, to_regclass(:'dt') AS dirty_table;
DROP OWNED BY ru_analyst;
DROP ROLE ru_analyst;
