-- The full recompute from the source tables (issue 25): target_customers()
-- without a customers filter reads the scoped orders (one row each), then
-- every line in one scan, totalled per listed order by the
-- _order_line_totals aggregate (each run of one order's lines looked for in
-- the sorted list of the orders' keys from where the previous run was
-- found, no index probe per order), and folds the orders per customer.
-- Its results must equal the per-order query's (still used with a
-- customers filter, given here every customer so that nothing is filtered)
-- to the last digit and display scale: orders without lines, lines with
-- NULL amounts, amounts beyond the exact int64 fast path (huge, with a
-- digit below 1e-8, NaN), negative amounts, lines stored out of order,
-- lines of unlisted orders, serial and parallel plans, and a source whose
-- orders hold a key twice (no unique index: the per-order query decides)
-- or too many for work_mem (the per-order query too).
-- Needs 00_setup (public.err).
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned

CREATE SCHEMA lsc;
CREATE TABLE lsc.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE lsc.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE lsc.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric,
    PRIMARY KEY (order_type, order_number, line_no));
INSERT INTO lsc.customers
SELECT lpad(c::text, 4, '0'), 'shop ' || c, (ARRAY['K1','K2','PS','X9'])[1 + c % 4], 'addr ' || c,
       CASE WHEN c % 9 = 0 THEN '20250301' END, '001'
  FROM generate_series(1, 30) c;
INSERT INTO lsc.sales_orders
SELECT (ARRAY['SA','SO'])[1 + o % 2], lpad(o::text, 8, '0'), lpad((1 + (o * 7) % 30)::text, 4, '0'),
       (ARRAY['K1','X9'])[1 + o % 5 / 4],
       to_char(date '2025-01-01' + (o * 13) % 372, 'YYYYMMDD'), CASE WHEN o % 11 = 0 THEN 'N' ELSE 'Y' END
  FROM generate_series(1, 3000) o;
-- the lines, 0 to 6 per order, in a shuffled order (not grouped by order)
INSERT INTO lsc.sales_order_lines
SELECT o.order_type, o.order_number, n, 'P' || n, 1,
       CASE WHEN (h + n) % 23 = 0 THEN NULL
            WHEN (h + n) % 29 = 0 THEN -round((h % 5000) / 100.0, 2)     -- negative
            WHEN (h + n) % 31 = 0 THEN round((h % 7000) / 1000.0, 3)     -- 3 decimals
            ELSE round(((h::bigint * n) % 90000) / 100.0, 2) END
  FROM (SELECT order_type, order_number, abs(hashtext(order_number)) AS h FROM lsc.sales_orders) o,
       generate_series(1, (o.h % 7)::int) n
 ORDER BY hashtext(o.order_number || n);
-- the slow path: a huge amount, a digit below 1e-8, NaN; a line of no order;
-- an order whose lines all have NULL amounts; one with a zero of scale 4
INSERT INTO lsc.sales_orders VALUES ('SO', 'big-1', '0002', 'K1', '20251001', 'Y'),
    ('SO', 'tiny-1', '0002', 'K1', '20251002', 'Y'), ('SO', 'nan-1', '0006', 'K1', '20251003', 'Y'),
    ('SO', 'null-1', '0010', 'K1', '20251004', 'Y'), ('SO', 'zero-1', '0010', 'K1', '20251005', 'Y');
INSERT INTO lsc.sales_order_lines VALUES ('SO', 'big-1', 1, 'P', 1, 123456789012345.67),
    ('SO', 'big-1', 2, 'P', 1, 9000000000000000.5), ('SO', 'tiny-1', 1, 'P', 1, 0.000000001),
    ('SO', 'tiny-1', 2, 'P', 1, 2.5), ('SO', 'nan-1', 1, 'P', 1, 'NaN'), ('SO', 'nan-1', 2, 'P', 1, 7),
    ('SO', 'null-1', 1, 'P', 1, NULL), ('SO', 'zero-1', 1, 'P', 1, 0.0000),
    ('SO', 'nosuch-1', 1, 'P', 1, 99);
ANALYZE lsc.customers, lsc.sales_orders, lsc.sales_order_lines;

-- the per-order query (customers filter: every customer) against the line
-- scan, every column as text (so a display scale counts), both ways
CREATE TEMP TABLE lsc_old AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0,
    min_low_tickets => 1, customers => ARRAY(SELECT customer_code::text FROM lsc.customers)) t;
CREATE TEMP TABLE lsc_new AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0,
    min_low_tickets => 1) t;
SELECT 'targets', (SELECT count(*) FROM lsc_new),
       (SELECT count(*) FROM (SELECT r FROM lsc_new EXCEPT ALL SELECT r FROM lsc_old) d),
       (SELECT count(*) FROM (SELECT r FROM lsc_old EXCEPT ALL SELECT r FROM lsc_new) d);
-- the customers of the slow-path orders, as the line scan gives them
SELECT customer_code, total_spend, total_orders, low_ticket_count, base_sales, recent_sales
  FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0, min_low_tickets => 1)
 WHERE customer_code IN ('0002', '0006', '0010') ORDER BY 1;
-- exclude_closed, routes from the orders, the funnel
SELECT 'exclude_closed',
       (SELECT count(*) FROM (SELECT t::text FROM customer_analytics.target_customers(source_schema => 'lsc',
            min_spend => 0, min_low_tickets => 1, exclude_closed => true) t
        EXCEPT ALL SELECT t::text FROM customer_analytics.target_customers(source_schema => 'lsc',
            min_spend => 0, min_low_tickets => 1, exclude_closed => true,
            customers => ARRAY(SELECT customer_code::text FROM lsc.customers)) t) d);
SELECT 'route_source order',
       (SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0,
            min_low_tickets => 1, route_source => 'order')),
       (SELECT count(*) FROM (SELECT t::text FROM customer_analytics.target_customers(source_schema => 'lsc',
            min_spend => 0, min_low_tickets => 1, route_source => 'order') t
        EXCEPT ALL SELECT t::text FROM customer_analytics.target_customers(source_schema => 'lsc',
            min_spend => 0, min_low_tickets => 1, route_source => 'order',
            customers => ARRAY(SELECT customer_code::text FROM lsc.customers)) t) d);
SELECT 'funnel, routes from the orders', (SELECT count(*) FROM (
    SELECT f::text FROM customer_analytics.targeting_funnel(source_schema => 'lsc', route_source => 'order') f
    EXCEPT ALL SELECT f::text FROM customer_analytics.targeting_funnel(source_schema => 'lsc', route_source => 'order',
        customers => ARRAY(SELECT customer_code::text FROM lsc.customers)) f) d);
SELECT 'funnel', (SELECT count(*) FROM (
    SELECT f::text FROM customer_analytics.targeting_funnel(source_schema => 'lsc') f
    EXCEPT ALL SELECT f::text FROM customer_analytics.targeting_funnel(source_schema => 'lsc',
        customers => ARRAY(SELECT customer_code::text FROM lsc.customers)) f) d);

-- the lines are read by one sequential scan, never through their key index
-- (the per-order query probes it once per order where joins by hash or
-- merge are off; serial, so that the counters are this backend's)
SET max_parallel_workers_per_gather = 0;
SET enable_hashjoin = off;
SET enable_mergejoin = off;
-- (the counters of this transaction: differences, as counts of earlier
-- statements may not be flushed yet)
BEGIN;
CREATE TEMP TABLE lsc_scans AS
SELECT pg_stat_get_xact_numscans('lsc.sales_order_lines'::regclass) AS heap,
       pg_stat_get_xact_numscans('lsc.sales_order_lines_pkey'::regclass) AS pkey;
SELECT count(*) FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0, min_low_tickets => 1);
SELECT 'line scans', pg_stat_get_xact_numscans('lsc.sales_order_lines'::regclass) - heap,
       pg_stat_get_xact_numscans('lsc.sales_order_lines_pkey'::regclass) - pkey
  FROM lsc_scans;
COMMIT;
-- past the memory a hash table may take (64 bytes per listed order and
-- process against work_mem times hash_mem_multiplier), the per-order query
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
BEGIN;
CREATE TEMP TABLE lsc_scans2 AS
SELECT pg_stat_get_xact_numscans('lsc.sales_order_lines_pkey'::regclass) AS pkey;
CREATE TEMP TABLE lsc_small AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0,
    min_low_tickets => 1) t;
SELECT 'small work_mem', pg_stat_get_xact_numscans('lsc.sales_order_lines_pkey'::regclass) - pkey > 0,
       (SELECT count(*) FROM (SELECT r FROM lsc_small EXCEPT ALL SELECT r FROM lsc_old) d)
  FROM lsc_scans2;
COMMIT;
RESET work_mem;
RESET hash_mem_multiplier;
-- serial equals parallel
CREATE TEMP TABLE lsc_serial AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0,
    min_low_tickets => 1) t;
RESET enable_hashjoin;
RESET enable_mergejoin;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
CREATE TEMP TABLE lsc_parallel AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'lsc', min_spend => 0,
    min_low_tickets => 1) t;
SELECT 'serial / parallel',
       (SELECT count(*) FROM (SELECT r FROM lsc_serial EXCEPT ALL SELECT r FROM lsc_old) d),
       (SELECT count(*) FROM (SELECT r FROM lsc_parallel EXCEPT ALL SELECT r FROM lsc_old) d),
       (SELECT count(*) FROM (SELECT r FROM lsc_old EXCEPT ALL SELECT r FROM lsc_parallel) d);
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- orders that share a key (no primary key on the headers): the per-order
-- query's answer, whatever the line scan would have summed
CREATE SCHEMA lsd;
CREATE TABLE lsd.customers AS SELECT * FROM lsc.customers;
CREATE TABLE lsd.sales_orders AS SELECT * FROM lsc.sales_orders;
CREATE TABLE lsd.sales_order_lines AS SELECT * FROM lsc.sales_order_lines;
INSERT INTO lsd.sales_orders VALUES ('SO', 'big-1', '0005', 'K1', '20251101', 'Y'),
    ('SO', 'tiny-1', '0002', 'K1', '20251002', 'Y');
SELECT 'shared keys',
       (SELECT count(*) FROM (SELECT t::text FROM customer_analytics.target_customers(source_schema => 'lsd',
            min_spend => 0, min_low_tickets => 1) t
        EXCEPT ALL SELECT t::text FROM customer_analytics.target_customers(source_schema => 'lsd',
            min_spend => 0, min_low_tickets => 1,
            customers => ARRAY(SELECT customer_code::text FROM lsd.customers)) t) d),
       (SELECT total_orders || ' ' || total_spend FROM customer_analytics.target_customers(source_schema => 'lsd',
            min_spend => 0, min_low_tickets => 1) WHERE customer_code = '0005');

-- keys longer than the aggregate's 16-byte codes (order_type padded to
-- the longest listed one, then order_number): every listed number shares
-- its first 20 bytes, so equal codes are told apart by the full keys; types
-- of one, two and three bytes; a number that is a prefix of others; lines
-- of unlisted orders between, before and after the listed keys, and longer
-- than any listed key; an order without lines, one with NULL amounts only,
-- one past the int64 fast path.  The lines stored in key order (the cursor
-- moves forward), then in reverse key order (it moves back), then both,
-- serial and parallel: every way equal to the per-order query.
CREATE SCHEMA lse;
CREATE TABLE lse.customers AS SELECT * FROM lsc.customers;
CREATE TABLE lse.sales_orders (order_type text, order_number text, customer_code varchar(12),
    delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
INSERT INTO lse.sales_orders
SELECT (ARRAY['S','SO','SOX'])[1 + o % 3], 'ORDER-NUMBER-PREFIX-' || lpad(o::text, 5, '0'),
       lpad((1 + (o * 7) % 30)::text, 4, '0'), 'K1',
       to_char(date '2025-01-01' + (o * 13) % 372, 'YYYYMMDD'), CASE WHEN o % 13 = 0 THEN 'N' ELSE 'Y' END
  FROM generate_series(1, 600) o;
INSERT INTO lse.sales_orders VALUES ('SO', 'ORDER-NUMBER-PREFIX-', '0002', 'K1', '20251001', 'Y'),
    ('SO', 'ORDER', '0002', 'K1', '20251001', 'Y'), ('SO', 'ORDER-NUMBER-PREFIX-00001-X', '0005', 'K1', '20251002', 'Y'),
    ('SO', 'no-lines', '0005', 'K1', '20251003', 'Y'), ('SO', 'null-lines', '0005', 'K1', '20251004', 'Y'),
    ('SOX', 'huge', '0005', 'K1', '20251005', 'Y');
CREATE TABLE lse.lines_all (order_type text, order_number text, line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric);
INSERT INTO lse.lines_all
SELECT o.order_type, o.order_number, n, 'P', 1,
       CASE WHEN (h + n) % 17 = 0 THEN NULL ELSE round(((h::bigint * n) % 90000) / 100.0, 2) END
  FROM (SELECT order_type, order_number, abs(hashtext(order_number || order_type)) AS h
          FROM lse.sales_orders WHERE order_number LIKE 'ORDER%') o,
       generate_series(1, (o.h % 5)::int) n;
INSERT INTO lse.lines_all VALUES ('SO', 'null-lines', 1, 'P', 1, NULL), ('SO', 'null-lines', 2, 'P', 1, NULL),
    ('SOX', 'huge', 1, 'P', 1, 9000000000000000.5), ('SOX', 'huge', 2, 'P', 1, 9000000000000000.25),
    ('A', 'before everything', 1, 'P', 1, 1000), ('SO', 'ORDER-NUMBER-PREFIX-00002-unlisted', 1, 'P', 1, 1000),
    ('SOXX', 'ORDER-NUMBER-PREFIX-00001', 1, 'P', 1, 1000), ('SO', 'ORDER-NUMBER-PREFIX-000011', 1, 'P', 1, 1000),
    ('SO', 'ORDER-NUMBER-PREFIX-00002-and-longer-than-any-listed-order-number', 1, 'P', 1, 1000),
    ('ZZ', 'after everything', 1, 'P', 1, 1000);
CREATE TABLE lse.sales_order_lines AS SELECT * FROM lse.lines_all
 ORDER BY order_type COLLATE "C", order_number COLLATE "C", line_no;
ANALYZE lse.customers, lse.sales_orders, lse.sales_order_lines;
CREATE TEMP TABLE lse_old AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'lse', min_spend => 0,
    min_low_tickets => 1, customers => ARRAY(SELECT customer_code::text FROM lse.customers)) t;
CREATE TEMP TABLE lse_runs (way text, r text);
INSERT INTO lse_runs SELECT 'key order', t::text FROM customer_analytics.target_customers(source_schema => 'lse',
    min_spend => 0, min_low_tickets => 1) t;
-- customer 0005's total by the line scan against a plain SQL sum of its
-- confirmed orders' lines (all of them in the data window, the
-- 18000000000000000.75 of order 'huge' included): true
SELECT total_orders, total_spend,
       total_spend = (SELECT sum(l.pretax_subtotal) FROM lse.sales_orders o
                        JOIN lse.lines_all l USING (order_type, order_number)
                       WHERE o.customer_code = '0005' AND o.confirmed_code = 'Y'),
       total_orders = (SELECT count(*) FROM lse.sales_orders o WHERE o.customer_code = '0005' AND o.confirmed_code = 'Y')
  FROM customer_analytics.target_customers(source_schema => 'lse', min_spend => 0, min_low_tickets => 1)
 WHERE customer_code = '0005';
TRUNCATE lse.sales_order_lines;
INSERT INTO lse.sales_order_lines SELECT * FROM lse.lines_all
 ORDER BY order_type COLLATE "C" DESC, order_number COLLATE "C" DESC, line_no;
INSERT INTO lse_runs SELECT 'reverse key order', t::text FROM customer_analytics.target_customers(source_schema => 'lse',
    min_spend => 0, min_low_tickets => 1) t;
-- both orders, twice over the blocks: parallel workers jump back and forth
INSERT INTO lse.sales_order_lines SELECT * FROM lse.lines_all
 ORDER BY order_type COLLATE "C", order_number COLLATE "C", line_no;
UPDATE lse.sales_order_lines SET pretax_subtotal = pretax_subtotal / 2;
ANALYZE lse.sales_order_lines;
CREATE TEMP TABLE lse_twice AS
SELECT t::text AS r FROM customer_analytics.target_customers(source_schema => 'lse', min_spend => 0,
    min_low_tickets => 1, customers => ARRAY(SELECT customer_code::text FROM lse.customers)) t;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
INSERT INTO lse_runs SELECT 'both, parallel', t::text FROM customer_analytics.target_customers(source_schema => 'lse',
    min_spend => 0, min_low_tickets => 1) t;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
SELECT way, count(*),
       (SELECT count(*) FROM (SELECT r FROM lse_runs x WHERE x.way = w.way
                              EXCEPT ALL SELECT r FROM (SELECT r FROM lse_old WHERE w.way <> 'both, parallel'
                                                        UNION ALL SELECT r FROM lse_twice WHERE w.way = 'both, parallel') o) d),
       (SELECT count(*) FROM (SELECT r FROM (SELECT r FROM lse_old WHERE w.way <> 'both, parallel'
                                             UNION ALL SELECT r FROM lse_twice WHERE w.way = 'both, parallel') o
                              EXCEPT ALL SELECT r FROM lse_runs x WHERE x.way = w.way) d)
  FROM lse_runs w GROUP BY way ORDER BY way;

-- the aggregate refuses a list it did not build
SELECT public.err($$SELECT customer_analytics._order_line_totals(order_type, order_number, pretax_subtotal, '\x01'::bytea) FROM lsc.sales_order_lines$$);
-- (an int32 count, the longest order_type and order_number, then the keys:
-- here out of order, then twice, then one longer than the header says)
SELECT public.err($$SELECT customer_analytics._order_line_totals(order_type, order_number, pretax_subtotal,
    '\x0200000002000000030000000200000053410300000030303202000000534103000000303031'::bytea) FROM lsc.sales_order_lines$$);
SELECT public.err($$SELECT customer_analytics._order_line_totals(order_type, order_number, pretax_subtotal,
    '\x0200000002000000030000000200000053410300000030303102000000534103000000303031'::bytea) FROM lsc.sales_order_lines$$);
SELECT public.err($$SELECT customer_analytics._order_line_totals(order_type, order_number, pretax_subtotal,
    '\x0100000002000000030000000200000053410400000030303031'::bytea) FROM lsc.sales_order_lines$$);
-- a well-formed list of three orders, the first without lines: the count
-- of orders, then the count of sums (the other two, two lines each)
SELECT substr(customer_analytics._order_line_totals(order_type, order_number, pretax_subtotal,
    '\x03000000020000000800000002000000534108000000303030303030303602000000534108000000303030303030313202000000534f080000003030303030303033'::bytea), 1, 8)
  FROM lsc.sales_order_lines;

DROP SCHEMA lsc CASCADE;
DROP SCHEMA lsd CASCADE;
DROP SCHEMA lse CASCADE;
