-- Issue 14: sharded sources.  check_sharded_source() on coordinator schemas
-- built here without any shard to connect to (it only reads the catalogs),
-- its error, and the pushed-down queries over a locally partitioned copy of
-- the fixture (partitions are plain tables here: the queries are the
-- sharded ones, only nothing is remote), which must give the fixture's rows.
-- test/sharded.sh runs the real thing on three shard clusters.
\pset format unaligned
CREATE EXTENSION postgres_fdw;

-- a schema that does not exist: 3F000 with a hint
SELECT public.err($$SELECT * FROM customer_analytics.check_sharded_source('no_such_schema')$$);
-- NULL: the source_schema setting
SET customer_analytics.source_schema = 'no_such_schema';
SELECT public.err($$SELECT * FROM customer_analytics.check_sharded_source(NULL)$$);
RESET customer_analytics.source_schema;

-- the single-node fixture: nothing is partitioned
SELECT check_name, ok, detail, hint FROM customer_analytics.check_sharded_source('fx');

-- a coordinator schema: two shards, hash by customer_code, shard sx2
-- without the extensions option, fetch_size or a user mapping; the lines of
-- remainder 1 on the wrong server; order_totals partitioned by list
CREATE SERVER sx1 FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '/nonexistent', port '1', dbname 'x', extensions 'postgres_fdw, customer_analytics',
             use_remote_estimate 'true', async_capable 'on', fetch_size '10000');
CREATE SERVER sx2 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '/nonexistent', port '2', dbname 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER sx1;
CREATE SCHEMA "Shard X";
CREATE TABLE "Shard X".customers (customer_code varchar(12), trade_name text, delivery_route varchar(4),
    shipping_address text, closure_date varchar(8), csm varchar(8)) PARTITION BY HASH (customer_code);
CREATE TABLE "Shard X".sales_orders (order_type varchar(4), order_number varchar(12), customer_code varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1)) PARTITION BY HASH (customer_code);
CREATE TABLE "Shard X".sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    pretax_subtotal numeric(14,2), customer_code varchar(12)) PARTITION BY HASH (customer_code);
CREATE TABLE "Shard X".order_totals (customer_code varchar(12), order_type varchar(4), order_number varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1), order_total numeric)
    PARTITION BY LIST (customer_code);
CREATE FOREIGN TABLE "Shard X".customers_0 PARTITION OF "Shard X".customers FOR VALUES WITH (MODULUS 2, REMAINDER 0) SERVER sx1;
CREATE FOREIGN TABLE "Shard X".customers_1 PARTITION OF "Shard X".customers FOR VALUES WITH (MODULUS 2, REMAINDER 1) SERVER sx2;
CREATE FOREIGN TABLE "Shard X".sales_orders_0 PARTITION OF "Shard X".sales_orders FOR VALUES WITH (MODULUS 2, REMAINDER 0) SERVER sx1;
CREATE FOREIGN TABLE "Shard X".sales_orders_1 PARTITION OF "Shard X".sales_orders FOR VALUES WITH (MODULUS 2, REMAINDER 1) SERVER sx2
    OPTIONS (fetch_size '50', use_remote_estimate 'true');
CREATE FOREIGN TABLE "Shard X".lines_0 PARTITION OF "Shard X".sales_order_lines FOR VALUES WITH (MODULUS 2, REMAINDER 0) SERVER sx1;
CREATE TABLE "Shard X".lines_1 PARTITION OF "Shard X".sales_order_lines FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE FOREIGN TABLE "Shard X".totals_0 PARTITION OF "Shard X".order_totals FOR VALUES IN ('0') SERVER sx1;
SELECT check_name, ok, replace(detail, 'for ' || current_user, 'for CURRENT_USER') AS detail,
       replace(hint, 'FOR ' || quote_ident(current_user), 'FOR CURRENT_USER') AS hint
  FROM customer_analytics.check_sharded_source('Shard X');
-- per-shard rollups: rollup_changes, when present, must be partitioned,
-- have the columns of rollup_order_changes() and a partition on every
-- customers' server
CREATE TABLE "Shard X".rollup_changes (customer_code text, xid xid8);
SELECT check_name, ok, detail FROM customer_analytics.check_sharded_source('Shard X') WHERE check_name = 'per-shard rollups';
DROP TABLE "Shard X".rollup_changes;
CREATE TABLE "Shard X".rollup_changes (customer_code text, xid xid8, generation bigint) PARTITION BY HASH (customer_code);
SELECT check_name, ok, detail FROM customer_analytics.check_sharded_source('Shard X') WHERE check_name = 'per-shard rollups';
ALTER TABLE "Shard X".rollup_changes ADD COLUMN rollup_state text, ADD COLUMN snapshot pg_snapshot, ADD COLUMN campaigns bigint,
    ADD COLUMN system_identifier bigint;
SELECT check_name, ok, detail FROM customer_analytics.check_sharded_source('Shard X') WHERE check_name = 'per-shard rollups';
-- (the order rows, which a campaign's refresh applies as a delta)
ALTER TABLE "Shard X".rollup_changes ADD COLUMN order_date date, ADD COLUMN total numeric, ADD COLUMN quantity numeric,
    ADD COLUMN sign smallint;
CREATE FOREIGN TABLE "Shard X".rollup_changes_0 PARTITION OF "Shard X".rollup_changes FOR VALUES WITH (MODULUS 2, REMAINDER 0) SERVER sx1;
SELECT check_name, ok, detail, hint FROM customer_analytics.check_sharded_source('Shard X') WHERE check_name = 'per-shard rollups';
CREATE FOREIGN TABLE "Shard X".rollup_changes_1 PARTITION OF "Shard X".rollup_changes FOR VALUES WITH (MODULUS 2, REMAINDER 1) SERVER sx2;
SELECT check_name, ok, detail FROM customer_analytics.check_sharded_source('Shard X') WHERE check_name = 'per-shard rollups';
-- the pushdown switched off is reported
SET customer_analytics.shard_pushdown = off;
SELECT check_name, ok, detail FROM customer_analytics.check_sharded_source('Shard X') WHERE check_name = 'pushdown';
RESET customer_analytics.shard_pushdown;
-- a rollup on a schema with foreign partitions would miss the shards'
-- own writes: refused, 0A000 with a hint
SELECT public.err($$SELECT customer_analytics.enable_rollup('Shard X')$$);
DROP SCHEMA "Shard X" CASCADE;
DROP SERVER sx1, sx2 CASCADE;

-- the fixture partitioned by customer_code in local tables, order_totals
-- one row per order: the sharded queries give the fixture's rows
CREATE SCHEMA fxp;
CREATE TABLE fxp.customers (LIKE fx.customers) PARTITION BY HASH (customer_code);
CREATE TABLE fxp.sales_orders (LIKE fx.sales_orders) PARTITION BY HASH (customer_code);
CREATE TABLE fxp.sales_order_lines (LIKE fx.sales_order_lines, customer_code varchar(12)) PARTITION BY HASH (customer_code);
CREATE TABLE fxp.order_totals (customer_code varchar(12), order_type varchar(4), order_number varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1), order_total numeric,
    quantity numeric, product_codes varchar[]) PARTITION BY HASH (customer_code);
DO $$
DECLARE
    t text;
BEGIN
    FOR r IN 0..2 LOOP
        FOREACH t IN ARRAY ARRAY['customers', 'sales_orders', 'sales_order_lines', 'order_totals'] LOOP
            EXECUTE format('CREATE TABLE fxp.%I PARTITION OF fxp.%I FOR VALUES WITH (MODULUS 3, REMAINDER %s)',
                           t || '_' || r, t, r);
        END LOOP;
    END LOOP;
END $$;
INSERT INTO fxp.customers SELECT * FROM fx.customers;
INSERT INTO fxp.sales_orders SELECT * FROM fx.sales_orders;
INSERT INTO fxp.sales_order_lines
    SELECT l.*, o.customer_code FROM fx.sales_order_lines l
      JOIN fx.sales_orders o USING (order_type, order_number);
INSERT INTO fxp.order_totals
    SELECT o.customer_code, o.order_type, o.order_number, o.delivery_route, o.order_date, o.confirmed_code,
           (SELECT sum(l.pretax_subtotal) FROM fx.sales_order_lines l
             WHERE l.order_type = o.order_type AND l.order_number = o.order_number),
           (SELECT sum(l.quantity) FROM fx.sales_order_lines l
             WHERE l.order_type = o.order_type AND l.order_number = o.order_number),
           (SELECT array_agg(l.product_code) FILTER (WHERE l.product_code IS NOT NULL) FROM fx.sales_order_lines l
             WHERE l.order_type = o.order_type AND l.order_number = o.order_number)
      FROM fx.sales_orders o;
-- the query is grouped per partition (the aggregate under the Append)
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'fxp');
RESET client_min_messages;
CREATE FUNCTION pg_temp.differ(a text, b text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT (SELECT count(*) FROM (SELECT * FROM %1$s EXCEPT ALL SELECT * FROM %2$s) x)'
                   ' + (SELECT count(*) FROM (SELECT * FROM %2$s EXCEPT ALL SELECT * FROM %1$s) y)', a, b) INTO n;
    RETURN n;
END $$;
SELECT c.call, pg_temp.differ(replace(c.call, '@', 'fx'), replace(c.call, '@', 'fxp')) AS rows_differing
  FROM (VALUES
    ($$customer_analytics.target_customers(source_schema => '@')$$),
    ($$customer_analytics.target_customers(source_schema => '@', min_spend => 0, exclude_closed => true)$$),
    ($$customer_analytics.target_customers(source_schema => '@', route_source => 'order', exclude_closed => true)$$),
    ($$customer_analytics.target_customers(source_schema => '@', customers => '{0001001,0001003}')$$),
    ($$customer_analytics.targeting_funnel(source_schema => '@')$$),
    ($$customer_analytics.targeting_funnel(source_schema => '@', route_source => 'order')$$),
    ($$customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', '@')$$),
    ($$customer_analytics.customer_features(source_schema => '@')$$),
    ($$customer_analytics.customer_features('[2025-06-01,2025-09-30]', '2025-10-01', '@')$$)
  ) c(call);
-- monthly_revenue() (issue 25): one branch per partition of order_totals,
-- each with only the codes that partition can hold (hashed as tuple
-- routing does: the same split as the customers' rows, whose partitions
-- have the same bounds); a code listed twice and one nobody has still get
-- their one row a month, with the fixture's figures
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxp');
RESET client_min_messages;
SELECT tableoid::regclass AS partition, count(*) FROM fxp.customers GROUP BY 1 ORDER BY 1;
SELECT pg_temp.differ(
    $$customer_analytics.monthly_revenue(ARRAY['0001003', 'NOSUCH', '0001003'] || ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fx')$$,
    $$customer_analytics.monthly_revenue(ARRAY['0001003', 'NOSUCH', '0001003'] || ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxp')$$) AS rows_differing;
SELECT count(*), count(DISTINCT customer_code) FROM customer_analytics.monthly_revenue(ARRAY['0001003', 'NOSUCH', '0001003'], '[2025-01-01,2026-01-07]', 'fxp');
-- row security on a partition (its policies would apply if it were read on
-- its own): the parent with the whole list, no per-partition branches
ALTER TABLE fxp.order_totals_1 ENABLE ROW LEVEL SECURITY;
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxp');
RESET client_min_messages;
ALTER TABLE fxp.order_totals_1 DISABLE ROW LEVEL SECURITY;
-- partitions of different moduli (2, 4, 4): a code goes where routing puts it
CREATE SCHEMA fxq;
CREATE TABLE fxq.customers (LIKE fx.customers) PARTITION BY HASH (customer_code);
CREATE TABLE fxq.customers_all PARTITION OF fxq.customers FOR VALUES WITH (MODULUS 1, REMAINDER 0);
CREATE TABLE fxq.sales_orders (LIKE fx.sales_orders) PARTITION BY HASH (customer_code);
CREATE TABLE fxq.sales_orders_all PARTITION OF fxq.sales_orders FOR VALUES WITH (MODULUS 1, REMAINDER 0);
CREATE TABLE fxq.sales_order_lines (LIKE fxp.sales_order_lines) PARTITION BY HASH (customer_code);
CREATE TABLE fxq.sales_order_lines_all PARTITION OF fxq.sales_order_lines FOR VALUES WITH (MODULUS 1, REMAINDER 0);
CREATE TABLE fxq.order_totals (LIKE fxp.order_totals) PARTITION BY HASH (customer_code);
CREATE TABLE fxq.order_totals_2_0 PARTITION OF fxq.order_totals FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE fxq.order_totals_4_1 PARTITION OF fxq.order_totals FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE fxq.order_totals_4_3 PARTITION OF fxq.order_totals FOR VALUES WITH (MODULUS 4, REMAINDER 3);
INSERT INTO fxq.customers SELECT * FROM fx.customers;
INSERT INTO fxq.sales_orders SELECT * FROM fx.sales_orders;
INSERT INTO fxq.sales_order_lines SELECT * FROM fxp.sales_order_lines;
INSERT INTO fxq.order_totals SELECT * FROM fxp.order_totals;
SELECT count(*) FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxq');
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxq');
RESET client_min_messages;
SELECT tableoid::regclass AS partition, count(DISTINCT customer_code) FROM fxq.order_totals GROUP BY 1 ORDER BY 1;
SELECT pg_temp.differ(
    $$customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fx')$$,
    $$customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxq')$$) AS rows_differing;
-- not hash-partitioned on customer_code alone: the whole list, same rows
ALTER TABLE fxq.order_totals RENAME TO order_totals_hash;
CREATE TABLE fxq.order_totals (LIKE fxp.order_totals) PARTITION BY LIST (order_type);
CREATE TABLE fxq.order_totals_any PARTITION OF fxq.order_totals DEFAULT;
INSERT INTO fxq.order_totals SELECT * FROM fxp.order_totals;
SELECT count(*) FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxq');
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxq');
RESET client_min_messages;
SELECT pg_temp.differ(
    $$customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fx')$$,
    $$customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM fx.customers), '[2025-01-01,2026-01-07]', 'fxq')$$) AS rows_differing;
SET client_min_messages = warning;
DROP SCHEMA fxq CASCADE;
RESET client_min_messages;
-- customer_features() groups customer_feature_stats per partition too
SET client_min_messages = debug1;
SELECT count(*) FROM customer_analytics.customer_features(source_schema => 'fxp');
RESET client_min_messages;
-- the caller's settings are left as they were
SHOW enable_partitionwise_aggregate;
SHOW enable_partitionwise_join;
-- a column order_totals lacks is reported like the source tables' columns
ALTER TABLE fxp.order_totals RENAME COLUMN order_total TO total;
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'fxp')$$);
-- and product_codes, which only customer_features() reads, with its type
ALTER TABLE fxp.order_totals RENAME COLUMN total TO order_total;
ALTER TABLE fxp.order_totals RENAME COLUMN product_codes TO codes;
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'fxp');
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'fxp')$$);
SELECT check_name, ok, detail FROM customer_analytics.check_sharded_source('fxp') WHERE check_name = 'order_totals columns';
ALTER TABLE fxp.order_totals RENAME COLUMN codes TO product_codes;
ALTER TABLE fxp.order_totals ALTER COLUMN product_codes TYPE int[] USING NULL;
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'fxp')$$);
ALTER TABLE fxp.order_totals ALTER COLUMN product_codes TYPE text[];
-- with the pushdown off the tables are read as on one server
SET customer_analytics.shard_pushdown = off;
SELECT pg_temp.differ($$customer_analytics.target_customers(source_schema => 'fx')$$,
                      $$customer_analytics.target_customers(source_schema => 'fxp')$$) AS rows_differing;
RESET customer_analytics.shard_pushdown;
DROP SCHEMA fxp CASCADE;

-- rollup_changes(), what a shard exposes of its rollup: a status row
-- (customer_code and xid NULL), then the changes its triggers recorded
CREATE SCHEMA rcx;
CREATE TABLE rcx.customers (LIKE fx.customers INCLUDING ALL);
CREATE TABLE rcx.sales_orders (LIKE fx.sales_orders INCLUDING ALL);
CREATE TABLE rcx.sales_order_lines (LIKE fx.sales_order_lines INCLUDING ALL);
INSERT INTO rcx.customers SELECT * FROM fx.customers;
INSERT INTO rcx.sales_orders SELECT * FROM fx.sales_orders;
INSERT INTO rcx.sales_order_lines SELECT * FROM fx.sales_order_lines;
SELECT customer_code, xid IS NULL AS status, generation, rollup_state, snapshot IS NOT NULL AS has_snapshot, campaigns
  FROM customer_analytics.rollup_changes('rcx');
SET client_min_messages = warning;
SELECT rollup_rows > 0 AS rollup_enabled FROM customer_analytics.enable_rollup('rcx');
RESET client_min_messages;
-- the snapshot is the caller's, the system identifier this cluster's
SELECT customer_code, xid IS NULL AS status, generation IS NOT NULL AS has_generation, rollup_state,
       snapshot::text = pg_current_snapshot()::text AS callers_snapshot, campaigns,
       system_identifier = (SELECT c.system_identifier FROM pg_control_system() c) AS this_cluster
  FROM customer_analytics.rollup_changes('rcx');
UPDATE rcx.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1
 WHERE (order_type, order_number) = (SELECT order_type, order_number FROM rcx.sales_orders ORDER BY 1, 2 LIMIT 1);
-- the order's customer, once per recorded row (the old and the new one)
SELECT x.customer_code, x.xid IS NULL AS status, count(*)
  FROM customer_analytics.rollup_changes('rcx') x GROUP BY 1, 2 ORDER BY 1;
-- rollup_order_changes(): the same rows with the order's row before (-1)
-- and after (+1): the total one more
SELECT x.customer_code, x.sign, x.order_date, x.total, x.quantity
  FROM customer_analytics.rollup_order_changes('rcx') x WHERE x.xid IS NOT NULL ORDER BY x.sign;
SET client_min_messages = warning;
SELECT count(*) FROM customer_analytics.disable_rollup('rcx');
RESET client_min_messages;
SELECT customer_code, xid IS NULL AS status, rollup_state FROM customer_analytics.rollup_changes('rcx');
SELECT customer_analytics.drop_rollup('rcx');
DROP SCHEMA rcx CASCADE;
DROP EXTENSION postgres_fdw;
