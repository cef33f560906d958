-- The full recompute's route test (issue 25): target_customers() from the
-- source tables without a customers filter reads the scoped orders with
-- _code_listed(customer_code, codes), codes the route customers the
-- customers query found, instead of a semi-join with the customers (one
-- scan of the customers fewer).  Its results must equal the per-order
-- query's (a customers filter naming every customer, which keeps the
-- semi-join): codes that differ only by case, a trailing space or a
-- prefix, an empty code, NULL codes, orders of unknown customers, closed
-- customers (exclude_closed both ways), serial and parallel plans; past
-- work_mem the semi-join runs instead (the same results).  A malformed
-- date of a confirmed order off the routes still stops the query.  Then
-- _code_listed itself, lists built with int4send().
-- Needs 00_setup (public.err).
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned

CREATE SCHEMA rcs;
CREATE TABLE rcs.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE rcs.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE rcs.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    PRIMARY KEY (order_type, order_number, line_no));
INSERT INTO rcs.customers
SELECT lpad(c::text, 5, '0'), 'shop ' || c, (ARRAY['K1','K2','PS','X9','X8'])[1 + c % 5], 'addr ' || c,
       CASE WHEN c % 9 = 0 THEN '20250301' WHEN c % 9 = 1 THEN '' END, '001'
  FROM generate_series(1, 200) c;
-- codes the route test must tell apart bytewise: case, a trailing space, a
-- prefix, the empty code; a customer without a code
INSERT INTO rcs.customers VALUES ('AB', 'upper', 'K1', 'a', NULL, '001'), ('ab', 'lower', 'X9', 'a', NULL, '001'),
    ('C1', 'c1', 'K2', 'a', NULL, '001'), ('C1 ', 'c1 space', 'X9', 'a', NULL, '001'),
    ('C10', 'c10', 'X9', 'a', NULL, '001'), ('C', 'c', 'X9', 'a', NULL, '001'),
    ('', 'empty', 'PS', 'a', NULL, '001'), (NULL, 'no code', 'K1', 'a', NULL, '001');
INSERT INTO rcs.sales_orders
SELECT (ARRAY['SA','SO'])[1 + o % 2], lpad(o::text, 8, '0'),
       CASE WHEN o % 97 = 0 THEN NULL                                -- no customer
            WHEN o % 89 = 0 THEN 'ZZ' || (o % 7)                     -- unknown customer
            WHEN o % 13 < 7 THEN (ARRAY['AB','ab','C1','C1 ','C10','C',''])[1 + o % 13]
            ELSE lpad((1 + (o * 7) % 200)::text, 5, '0') END,
       'K1', to_char(date '2025-01-01' + (o * 13) % 372, 'YYYYMMDD'),
       CASE WHEN o % 11 = 0 THEN 'N' ELSE 'Y' END
  FROM generate_series(1, 3000) o;
INSERT INTO rcs.sales_order_lines
SELECT o.order_type, o.order_number, n, 'P' || n, 1, round(((h::bigint * n) % 90000) / 100.0, 2)
  FROM (SELECT order_type, order_number, abs(hashtext(order_number)) AS h FROM rcs.sales_orders) o,
       generate_series(1, (o.h % 5)::int) n;
ANALYZE rcs.customers, rcs.sales_orders, rcs.sales_order_lines;
SET max_parallel_workers_per_gather = 0;

-- the per-order query (customers filter: every customer; the semi-join)
-- against the full recompute, every column as text, both ways, for both
-- closure settings; the full recompute reads the customers once
CREATE TEMP TABLE rcs_old AS
SELECT c, t::text AS r FROM (VALUES (false), (true)) x(c),
       customer_analytics.target_customers(source_schema => 'rcs', min_spend => 0, min_low_tickets => 1,
           exclude_closed => c, customers => ARRAY(SELECT customer_code::text FROM rcs.customers
                                                    WHERE customer_code IS NOT NULL)) t;
BEGIN;
CREATE TEMP TABLE rcs_scans AS
SELECT pg_stat_get_xact_numscans('rcs.customers'::regclass) AS n;
CREATE TEMP TABLE rcs_new AS
SELECT c, t::text AS r FROM (VALUES (false), (true)) x(c),
       customer_analytics.target_customers(source_schema => 'rcs', min_spend => 0, min_low_tickets => 1,
           exclude_closed => c) t;
SELECT 'scans of the customers per recompute', (pg_stat_get_xact_numscans('rcs.customers'::regclass) - n) / 2
  FROM rcs_scans;
COMMIT;
SELECT 'targets', c, (SELECT count(*) FROM rcs_new n WHERE n.c = x.c),
       (SELECT count(*) FROM (SELECT r FROM rcs_new n WHERE n.c = x.c
                              EXCEPT ALL SELECT r FROM rcs_old o WHERE o.c = x.c) d),
       (SELECT count(*) FROM (SELECT r FROM rcs_old o WHERE o.c = x.c
                              EXCEPT ALL SELECT r FROM rcs_new n WHERE n.c = x.c) d)
  FROM (VALUES (false), (true)) x(c) ORDER BY 2;
-- the customers whose codes differ only bytewise: those on a route alone
SELECT customer_code, trade_name, total_orders
  FROM customer_analytics.target_customers(source_schema => 'rcs', min_spend => 0, min_low_tickets => 1)
 WHERE customer_code IN ('AB', 'ab', 'C1', 'C1 ', 'C10', 'C', '') ORDER BY 1;
-- the same orders, counted here by a join: every route customer's confirmed
-- orders in the data window (2025, the default)
SELECT 'orders of the route customers', sum(total_orders),
       (SELECT count(*) FROM rcs.sales_orders o JOIN rcs.customers c USING (customer_code)
         WHERE c.delivery_route IN ('K1', 'K2', 'PS') AND o.confirmed_code = 'Y'
           AND o.order_date >= '20250101' AND o.order_date <= '20251231'
           AND o.customer_code IN (SELECT customer_code FROM customer_analytics.target_customers(
                   source_schema => 'rcs', min_spend => 0, min_low_tickets => 1)))
  FROM customer_analytics.target_customers(source_schema => 'rcs', min_spend => 0, min_low_tickets => 1);

-- serial equals parallel (the codes reach the workers as a parameter)
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT 'parallel',
       (SELECT count(*) FROM (SELECT t::text FROM customer_analytics.target_customers(source_schema => 'rcs',
            min_spend => 0, min_low_tickets => 1) t
        EXCEPT ALL SELECT r FROM rcs_old WHERE NOT c) d),
       (SELECT count(*) FROM (SELECT r FROM rcs_old WHERE NOT c EXCEPT ALL
        SELECT t::text FROM customer_analytics.target_customers(source_schema => 'rcs',
            min_spend => 0, min_low_tickets => 1) t) d);
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;

-- a malformed date of a confirmed order of a customer off the routes: the
-- window test still reads it (the route test comes after it)
INSERT INTO rcs.sales_orders VALUES ('SO', 'bad-date', 'ab', 'X9', '20251345', 'Y');
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(source_schema => 'rcs')$$);
DELETE FROM rcs.sales_orders WHERE order_number = 'bad-date';

-- past work_mem (each process's table of the route customers' codes, about
-- 21 bytes per code, against work_mem times hash_mem_multiplier) the
-- semi-join runs: the customers read twice, the same results.  6,000 route
-- customers without orders, a few with: the list of orders stays small.
CREATE SCHEMA rcs2;
CREATE TABLE rcs2.customers (LIKE rcs.customers);
CREATE TABLE rcs2.sales_orders (LIKE rcs.sales_orders INCLUDING ALL);
CREATE TABLE rcs2.sales_order_lines (LIKE rcs.sales_order_lines INCLUDING ALL);
INSERT INTO rcs2.customers
SELECT 'R' || c, 'shop ' || c, 'K1', 'addr', NULL, '001' FROM generate_series(1, 6000) c;
INSERT INTO rcs2.sales_orders
SELECT 'SO', lpad(o::text, 8, '0'), 'R' || (1 + o * 37 % 6000), 'K1',
       to_char(date '2025-01-01' + (o * 13) % 372, 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 40) o;
INSERT INTO rcs2.sales_order_lines
SELECT order_type, order_number, n, 'P', 1, 10 * n + length(order_number)
  FROM rcs2.sales_orders, generate_series(1, 3) n;
ANALYZE rcs2.customers, rcs2.sales_orders, rcs2.sales_order_lines;
CREATE TEMP TABLE rcs2_old AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'rcs2', min_spend => 0,
    min_low_tickets => 1, customers => ARRAY(SELECT customer_code::text FROM rcs2.customers)) t;
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
BEGIN;
CREATE TEMP TABLE rcs2_scans AS
SELECT pg_stat_get_xact_numscans('rcs2.customers'::regclass) AS n;
CREATE TEMP TABLE rcs2_small AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'rcs2', min_spend => 0,
    min_low_tickets => 1) t;
SELECT 'small work_mem', pg_stat_get_xact_numscans('rcs2.customers'::regclass) - n,
       (SELECT count(*) FROM rcs2_small),
       (SELECT count(*) FROM (SELECT r FROM rcs2_small EXCEPT ALL SELECT r FROM rcs2_old) d),
       (SELECT count(*) FROM (SELECT r FROM rcs2_old EXCEPT ALL SELECT r FROM rcs2_small) d)
  FROM rcs2_scans;
COMMIT;
RESET work_mem;
RESET hash_mem_multiplier;
BEGIN;
CREATE TEMP TABLE rcs2_scans2 AS
SELECT pg_stat_get_xact_numscans('rcs2.customers'::regclass) AS n;
CREATE TEMP TABLE rcs2_big AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'rcs2', min_spend => 0,
    min_low_tickets => 1) t;
SELECT 'default work_mem', pg_stat_get_xact_numscans('rcs2.customers'::regclass) - n,
       (SELECT count(*) FROM (SELECT r FROM rcs2_big EXCEPT ALL SELECT r FROM rcs2_old) d),
       (SELECT count(*) FROM (SELECT r FROM rcs2_old EXCEPT ALL SELECT r FROM rcs2_big) d)
  FROM rcs2_scans2;
COMMIT;
RESET max_parallel_workers_per_gather;

-- _code_listed itself: a list of 'AB', 'C1', '' and 'AB' again
CREATE TEMP TABLE rcs_list AS
SELECT int4send(4) || int4send(2) || '\x4142'::bytea || int4send(2) || '\x4331'::bytea
       || int4send(0) || int4send(2) || '\x4142'::bytea AS codes;
SELECT code, customer_analytics._code_listed(code, codes)
  FROM rcs_list, (VALUES ('AB'), ('ab'), ('C1'), ('C1 '), ('C'), (''), ('A'), ('ABC')) v(code) ORDER BY 1;
SELECT customer_analytics._code_listed(NULL, codes) IS NULL,
       customer_analytics._code_listed('AB', NULL) IS NULL FROM rcs_list;
-- an empty list; a list for each row (compared with the last row's, rebuilt)
SELECT customer_analytics._code_listed('AB', int4send(0));
SELECT v.code, customer_analytics._code_listed(v.code, v.codes)
  FROM (VALUES (1, 'AB', int4send(1) || int4send(2) || '\x4142'::bytea),
               (2, 'AB', int4send(1) || int4send(2) || '\x4331'::bytea),
               (3, 'C1', int4send(1) || int4send(2) || '\x4331'::bytea),
               (4, 'C1', int4send(1) || int4send(2) || '\x4142'::bytea)) v(i, code, codes) ORDER BY v.i;
-- many codes: each listed one found, none of the others
SELECT count(*) FILTER (WHERE customer_analytics._code_listed('K' || i, l.codes)),
       count(*) FILTER (WHERE customer_analytics._code_listed('M' || i, l.codes))
  FROM (SELECT int4send(5000) || string_agg(int4send(length('K' || i)) || convert_to('K' || i, 'UTF8'), ''::bytea) AS codes
          FROM generate_series(1, 5000) i) l, generate_series(1, 6000) i;
-- the same list past work_mem times hash_mem_multiplier: refused
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
SELECT public.err($$SELECT customer_analytics._code_listed('K1', (SELECT int4send(5000) || string_agg(int4send(length('K' || i)) || convert_to('K' || i, 'UTF8'), ''::bytea) FROM generate_series(1, 5000) i))$$);
RESET work_mem;
RESET hash_mem_multiplier;
-- malformed lists: too short, a count past the bytes, a negative length, a
-- length past the end, bytes after the last code
SELECT public.err($$SELECT customer_analytics._code_listed('AB', '\x0000'::bytea)$$);
SELECT public.err($$SELECT customer_analytics._code_listed('AB', int4send(1000000))$$);
SELECT public.err($$SELECT customer_analytics._code_listed('AB', int4send(1) || int4send(-1))$$);
SELECT public.err($$SELECT customer_analytics._code_listed('AB', int4send(1) || int4send(3) || '\x4142'::bytea)$$);
SELECT public.err($$SELECT customer_analytics._code_listed('AB', int4send(1) || int4send(2) || '\x414243'::bytea)$$);

DROP SCHEMA rcs CASCADE;
DROP SCHEMA rcs2 CASCADE;
