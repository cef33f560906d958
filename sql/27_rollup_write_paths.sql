-- No write unseen by the rollup (issue 16).  Needs 00_setup (public.err).
--
-- A month-partitioned source: writes that name a partition, a partition
-- created, attached, detached, truncated, a column rewritten with USING,
-- session_replication_role = replica, a foreign-key cascade and COPY.  After
-- each, check_rollup() finds no difference (rollup_ok prints the count of
-- differences and whether the functions read the rollup).  Then a rollup
-- dropped and enabled again: the next campaign refresh is a full one.
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned
CREATE SCHEMA wp;
CREATE TABLE wp.customers (customer_code varchar(12) PRIMARY KEY, trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE wp.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number, order_date))
    PARTITION BY RANGE (order_date);
CREATE TABLE wp.sales_orders_2025_09 PARTITION OF wp.sales_orders FOR VALUES FROM ('20250901') TO ('20251001');
CREATE TABLE wp.sales_orders_2025_10 PARTITION OF wp.sales_orders FOR VALUES FROM ('20251001') TO ('20251101');
CREATE TABLE wp.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2))
    PARTITION BY RANGE (order_number);
CREATE TABLE wp.sales_order_lines_a PARTITION OF wp.sales_order_lines FOR VALUES FROM ('1') TO ('5');
CREATE TABLE wp.sales_order_lines_b PARTITION OF wp.sales_order_lines FOR VALUES FROM ('5') TO ('9');
INSERT INTO wp.customers VALUES ('0001', 'A', 'K1', 'a', NULL, '002'), ('0002', 'B', 'K2', 'b', NULL, '003');
INSERT INTO wp.sales_orders VALUES ('SO', '1', '0001', 'K1', '20250915', 'Y'), ('SO', '2', '0002', 'K2', '20251002', 'Y'),
                                   ('SO', '5', '0001', 'K1', '20251003', 'Y');
INSERT INTO wp.sales_order_lines VALUES ('SO', '1', 1, 'P1', 1, 100), ('SO', '2', 1, 'P1', 1, 200), ('SO', '5', 1, 'P2', 1, 500);
SELECT 'rollup rows: ' || rollup_rows FROM customer_analytics.enable_rollup('wp');

CREATE FUNCTION rollup_ok() RETURNS text LANGUAGE sql AS $$
    SELECT 'differences: ' || (SELECT count(*) FROM customer_analytics.check_rollup('wp'))
        || ', read by the functions: ' || (SELECT usable_here FROM customer_analytics.list_rollups() WHERE source_schema = 'wp')
        || COALESCE(' (' || (SELECT reason FROM customer_analytics.list_rollups() WHERE source_schema = 'wp') || ')', '')
$$;
CREATE FUNCTION rollup_total(o text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
    EXECUTE format('SELECT COALESCE(string_agg(COALESCE(total::text, ''NULL'') || ''/'' || line_count, '',''), ''none'') FROM %s WHERE order_number = $1',
                   (SELECT customer_analytics._rollup_table(id) FROM customer_analytics.rollups WHERE source_schema = 'wp'))
        INTO t USING o;
    RETURN 'SO-' || o || ': ' || t;
END $$;
-- every partition carries the statement triggers, and the row trigger for
-- logical replication is cloned onto each (ENABLE REPLICA: R)
SELECT c.relname || ': ' || string_agg(replace(t.tgname, 'customer_analytics_rollup_', '') || '=' || t.tgenabled::text, ' ' ORDER BY t.tgname)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'wp'::regnamespace AND t.tgname LIKE 'customer_analytics_rollup_%'
 GROUP BY c.relname ORDER BY c.relname;

-- 1. writes that name a partition
INSERT INTO wp.sales_order_lines_a VALUES ('SO', '1', 2, 'P2', 1, 50);
UPDATE wp.sales_order_lines_b SET pretax_subtotal = 550 WHERE order_number = '5';
INSERT INTO wp.sales_orders_2025_10 VALUES ('SO', '3', '0002', 'K2', '20251020', 'Y');
INSERT INTO wp.sales_order_lines_a VALUES ('SO', '3', 1, 'P3', 2, 300);
UPDATE wp.sales_orders_2025_09 SET confirmed_code = 'N' WHERE order_number = '1';
DELETE FROM wp.sales_order_lines_a WHERE order_number = '2';
SELECT rollup_total('1'), rollup_total('2'), rollup_total('3'), rollup_total('5');
SELECT rollup_ok();
-- a row moved across partitions by an UPDATE through the parent
UPDATE wp.sales_orders SET order_date = '20250930', confirmed_code = 'Y' WHERE order_number = '3';
SELECT rollup_ok();

-- 2. TRUNCATE of one partition
TRUNCATE wp.sales_order_lines_b;
SELECT rollup_total('5');
SELECT rollup_ok();

-- 3. a new partition: created with the triggers, then written directly
CREATE TABLE wp.sales_orders_2025_11 PARTITION OF wp.sales_orders FOR VALUES FROM ('20251101') TO ('20251201');
SELECT 'triggers on the new partition: ' || count(*) FROM pg_trigger
 WHERE tgrelid = 'wp.sales_orders_2025_11'::regclass AND tgname LIKE 'customer_analytics_rollup_%';
INSERT INTO wp.sales_orders_2025_11 VALUES ('SO', '4', '0001', 'K1', '20251105', 'Y');
INSERT INTO wp.sales_order_lines_a VALUES ('SO', '4', 1, 'P1', 1, 40);
SELECT rollup_total('4');
SELECT rollup_ok();

-- the same by a non-superuser who owns the table and has no USAGE on the
-- extension's schema: the event trigger reads the rollup catalog as its
-- owner and gives the partition the triggers as the rollup's owner
CREATE ROLE ca_wp_owner;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_wp_owner;  -- the state of its definitions
GRANT CREATE, USAGE ON SCHEMA wp TO ca_wp_owner;
ALTER TABLE wp.sales_orders OWNER TO ca_wp_owner;
REVOKE USAGE ON SCHEMA customer_analytics FROM PUBLIC;
SET ROLE ca_wp_owner;
CREATE TABLE wp.sales_orders_2026_02 PARTITION OF wp.sales_orders FOR VALUES FROM ('20260201') TO ('20260301');
INSERT INTO wp.sales_orders_2026_02 VALUES ('SO', '7', '0001', 'K1', '20260205', 'Y');
RESET ROLE;
GRANT USAGE ON SCHEMA customer_analytics TO PUBLIC;
SELECT 'triggers on the owner''s new partition: ' || count(*) FROM pg_trigger
 WHERE tgrelid = 'wp.sales_orders_2026_02'::regclass AND tgname LIKE 'customer_analytics_rollup_%';
SELECT rollup_total('7');
SELECT rollup_ok();
ALTER TABLE wp.sales_orders OWNER TO CURRENT_USER;
ALTER TABLE wp.sales_orders_2026_02 OWNER TO CURRENT_USER;

-- 4. ATTACH a filled table, DETACH a partition, then write the detached table
CREATE TABLE wp.sales_orders_2025_12 (LIKE wp.sales_orders);
INSERT INTO wp.sales_orders_2025_12 VALUES ('SO', '6', '0002', 'K2', '20251210', 'Y');
INSERT INTO wp.sales_order_lines VALUES ('SO', '6', 1, 'P1', 3, 600);
SELECT rollup_total('6');
ALTER TABLE wp.sales_orders ATTACH PARTITION wp.sales_orders_2025_12 FOR VALUES FROM ('20251201') TO ('20260101');
SELECT rollup_total('6');
SELECT rollup_ok();
ALTER TABLE wp.sales_orders DETACH PARTITION wp.sales_orders_2025_09;
SELECT rollup_total('3');
SELECT rollup_ok();
UPDATE wp.sales_orders_2025_09 SET confirmed_code = 'Y';
SELECT rollup_ok();

-- 5. a rewrite that changes values: ALTER COLUMN TYPE ... USING
ALTER TABLE wp.sales_order_lines ALTER COLUMN pretax_subtotal TYPE numeric(14,2) USING pretax_subtotal * 2;
SELECT rollup_total('4');
SELECT rollup_ok();

-- 6. session_replication_role = replica, COPY into a partition
SET session_replication_role = replica;
UPDATE wp.sales_order_lines SET pretax_subtotal = 1 WHERE order_number = '4';
RESET session_replication_role;
COPY wp.sales_order_lines_b FROM stdin;
SO	6	2	P9	1	7
\.
SELECT rollup_total('4'), rollup_total('6');
SELECT rollup_ok();

-- MERGE, and an upsert
MERGE INTO wp.sales_order_lines l
USING (VALUES ('SO', '4', 1, 9.00), ('SO', '4', 2, 11.00)) v(t, n, line, amount)
   ON l.order_type = v.t AND l.order_number = v.n AND l.line_no = v.line
 WHEN MATCHED THEN UPDATE SET pretax_subtotal = v.amount
 WHEN NOT MATCHED THEN INSERT VALUES (v.t, v.n, v.line, 'P7', 1, v.amount);
INSERT INTO wp.customers VALUES ('0002', 'B2', 'K1', 'b', NULL, '003')
    ON CONFLICT (customer_code) DO UPDATE SET delivery_route = excluded.delivery_route;
SELECT rollup_total('4');
SELECT rollup_ok();

-- 7. a foreign-key cascade deletes lines
CREATE TABLE wp.order_keys (order_type varchar(4), order_number varchar(12), PRIMARY KEY (order_type, order_number));
INSERT INTO wp.order_keys SELECT DISTINCT order_type, order_number FROM wp.sales_order_lines;
ALTER TABLE wp.sales_order_lines ADD FOREIGN KEY (order_type, order_number) REFERENCES wp.order_keys ON DELETE CASCADE;
DELETE FROM wp.order_keys WHERE order_number = '6';
SELECT rollup_total('6');
SELECT rollup_ok();

-- 8. triggers switched off by hand: the event trigger disables the rollup
-- at once, and it stays unused after they are switched on again (writes
-- made meanwhile were not seen) until rebuild_rollup
ALTER TABLE wp.sales_order_lines_b DISABLE TRIGGER customer_analytics_rollup_insert;
SELECT rollup_ok();
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('wp');
SELECT rollup_ok();
ALTER TABLE wp.sales_orders DISABLE TRIGGER ALL;
UPDATE wp.sales_orders SET confirmed_code = 'N' WHERE order_number = '4';
ALTER TABLE wp.sales_orders ENABLE TRIGGER ALL;
SELECT rollup_ok();
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('wp');
SELECT rollup_ok();
UPDATE wp.sales_orders SET confirmed_code = 'Y' WHERE order_number = '4';
-- a statement trigger set to fire in replica sessions only
ALTER TABLE wp.sales_orders_2025_10 ENABLE REPLICA TRIGGER customer_analytics_rollup_update;
SELECT rollup_ok();
SELECT 'rebuilt: ' || state FROM customer_analytics.rebuild_rollup('wp');
SELECT rollup_ok();
-- enabling a trigger of one's own, or adding a column, changes nothing
CREATE FUNCTION wp.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER mine AFTER INSERT ON wp.customers FOR EACH STATEMENT EXECUTE FUNCTION wp.noop();
ALTER TABLE wp.customers DISABLE TRIGGER mine;
ALTER TABLE wp.customers ADD COLUMN note text;
SELECT rollup_ok();

-- 9. a rollup dropped and enabled again: a campaign's incremental state of
-- the old one is gone with it, and generations never repeat
CREATE SCHEMA wp_bi;
SELECT 'targets: ' || target_rows FROM customer_analytics.create_campaign('wpc', 'wp_bi', source_schema => 'wp',
    spend_window => '[2025-09-01,2025-12-31]', min_spend => 1, low_ticket_window => '[2025-09-01,2025-12-31]',
    min_low_tickets => 1, revenue_window => '[2025-09-01,2025-12-31]');
SET client_min_messages = warning;
SELECT 'refreshed: ' || target_rows FROM customer_analytics.refresh_campaign('wpc');
RESET client_min_messages;
SELECT generation AS old_generation FROM customer_analytics.rollups WHERE source_schema = 'wp' \gset
SELECT 'states before drop: ' || count(*) FROM customer_analytics.campaign_refresh_state WHERE campaign = 'wpc';
SELECT customer_analytics.drop_rollup('wp');
SELECT 'states after drop: ' || count(*) FROM customer_analytics.campaign_refresh_state WHERE campaign = 'wpc';
INSERT INTO wp.sales_order_lines VALUES ('SO', '4', 9, 'P1', 1, 5000);
SELECT 'rollup rows: ' || rollup_rows FROM customer_analytics.enable_rollup('wp');
SELECT 'new generation is new: ' || (generation > :old_generation) FROM customer_analytics.rollups WHERE source_schema = 'wp';
SELECT (customer_analytics.refresh_campaign('wpc')).name IS NOT NULL AS refreshed;
SET customer_analytics.use_rollup = off;
SELECT 'view rows not in a recompute: ' || count(*) FROM (
    SELECT customer_code, total_spend FROM wp_bi.wpc_targets
    EXCEPT SELECT customer_code, total_spend FROM customer_analytics.campaign_targets('wpc')) d;
RESET customer_analytics.use_rollup;
SELECT customer_analytics.drop_campaign('wpc');

SELECT customer_analytics.drop_rollup('wp');
DROP FUNCTION rollup_ok();
DROP FUNCTION rollup_total(text);
DROP SCHEMA wp, wp_bi CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_wp_owner;
DROP ROLE ca_wp_owner;
