-- targeting_line_stats's per-order sums (issue 25, the shards' fold): each
-- order's lines are added in an int64 of units of 1e-8 while their amounts
-- are exact there (no Numeric addition and allocation per line, the path
-- each shard runs for its route customers' lines), else in a Numeric, the
-- two added at the end.  The result must be targeting_stats over the order
-- totals that numeric addition gives, to the last digit and display scale
-- (compared as text: numeric equality ignores the scale): amounts of
-- several scales in one order, amounts beyond the int64 (huge, a digit below
-- 1e-8, NaN, Infinity) alone and mixed with exact ones in one order,
-- negative amounts, an order whose lines arrive in pieces (its entries
-- merged by the final function) and parallel workers (partial states
-- through serialize, deserialize and combine).  Needs 00_setup.
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned

CREATE SCHEMA lss;
-- customer c's orders: order o has lines n = 1..(o % 5); each line's
-- amount from a list of kinds, chosen by (c, o, n)
CREATE TABLE lss.lines AS
SELECT 'C' || c AS customer_code, 'SO' AS order_type, c || '-' || o AS order_number,
       date '2025-01-01' + (c * 37 + o * 11) % 365 AS order_date,
       CASE (c * 7 + o * 3 + n) % 13
            WHEN 0 THEN NULL
            WHEN 1 THEN 1.5                              -- scale 1
            WHEN 2 THEN 2.25                             -- scale 2
            WHEN 3 THEN 3                                -- scale 0
            WHEN 4 THEN -7.125                           -- negative, scale 3
            WHEN 5 THEN 0.00000001                       -- the int64's unit
            WHEN 6 THEN 12345678.12345678                -- scale 8, exact in units
            ELSE ((c * 131 + o * 17 + n) % 9000) / 100.0 -- an ordinary amount
       END::numeric AS amount, n AS line_no
  FROM generate_series(1, 12) c, generate_series(1, 40) o, generate_series(1, 4) n
 WHERE n <= 1 + o % 5;
-- customers whose orders hold amounts the int64 cannot: alone and mixed
-- with exact amounts in one order (before and after them)
INSERT INTO lss.lines VALUES
    ('H1', 'SO', 'h-1', '2025-10-01', 99999999999999999999.5, 1),   -- huge
    ('H1', 'SO', 'h-1', '2025-10-01', 1.25, 2),
    ('H1', 'SO', 'h-2', '2025-10-02', 0.000000001, 1),               -- below 1e-8
    ('H1', 'SO', 'h-2', '2025-10-02', 2.5, 2),
    ('H1', 'SO', 'h-2', '2025-10-02', 0.0000000001, 3),
    ('H1', 'SO', 'h-3', '2025-10-03', 5, 1),
    ('H1', 'SO', 'h-3', '2025-10-03', 92233720368.54775807, 2),     -- the int64's largest
    ('H1', 'SO', 'h-3', '2025-10-03', 92233720368.54775807, 3),     -- the sum past it
    ('H1', 'SO', 'h-4', '2025-10-04', -92233720368.54775808, 1),
    ('H1', 'SO', 'h-4', '2025-10-04', -1, 2),
    ('H2', 'SO', 'h-5', '2025-10-05', 1.5, 1),
    ('H2', 'SO', 'h-5', '2025-10-05', 'NaN', 2),
    ('H2', 'SO', 'h-6', '2025-11-06', 3000.000000000001, 1),
    ('H2', 'SO', 'h-6', '2025-11-06', -0.000000000001, 2),
    ('H3', 'SO', 'h-7', '2025-10-07', 1, 1),
    ('H3', 'SO', 'h-7', '2025-10-07', 'Infinity', 2),
    ('H3', 'SO', 'h-8', '2025-10-08', 0.10, 1),
    ('H3', 'SO', 'h-8', '2025-10-08', -0.1, 2);
ANALYZE lss.lines;

-- the reference: targeting_stats over one row per order, its total the
-- sum() of its lines (numeric addition)
CREATE TEMP TABLE lss_expected AS
SELECT customer_code, customer_analytics.targeting_stats(order_date, total,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000)::text AS st
  FROM (SELECT customer_code, order_type, order_number, order_date, sum(amount) AS total
          FROM lss.lines GROUP BY 1, 2, 3, 4) o
 GROUP BY customer_code;
SELECT 'customers: ' || count(*) FROM lss_expected;
-- what the reference says of the customers with amounts past the int64
SELECT customer_code || ': ' || st FROM lss_expected WHERE customer_code LIKE 'H%' ORDER BY 1;

CREATE FUNCTION pg_temp.lss_diff(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE n bigint; ex text;
BEGIN
    EXECUTE format('SELECT count(*), min(coalesce(e.customer_code, a.customer_code))
                      FROM lss_expected e FULL JOIN (SELECT customer_code, st::text AS st FROM (%s) q(customer_code, st)) a
                        ON a.customer_code = e.customer_code
                     WHERE a.st IS DISTINCT FROM e.st', query) INTO n, ex;
    RETURN n || CASE WHEN n > 0 THEN ' (e.g. ' || ex || ')' ELSE '' END;
END $$;

-- each order's lines one after another
SELECT 'in order, customers differing: ' || pg_temp.lss_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000 ORDER BY order_number, line_no) FROM lss.lines GROUP BY 1 $q$);
-- in reverse line order (the exact amounts after the others)
SELECT 'reversed, customers differing: ' || pg_temp.lss_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000 ORDER BY order_number, line_no DESC) FROM lss.lines GROUP BY 1 $q$);
-- shuffled: an order arrives in pieces, merged by the final function
SELECT 'shuffled, customers differing: ' || pg_temp.lss_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000 ORDER BY hashtext(order_number || line_no)) FROM lss.lines GROUP BY 1 $q$);
-- the windows as parameters (the order query's form: the same pointers row
-- after row) rather than constants
PREPARE lss_param(daterange, daterange, daterange, daterange, numeric) AS
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           $1, $2, $3, $4, $5) FROM lss.lines GROUP BY 1;
CREATE TEMP TABLE lss_param AS
  EXECUTE lss_param('[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
                    '[2025-10-31,2026-01-01)', 3000);
SELECT 'parameters, customers differing: ' || pg_temp.lss_diff('SELECT * FROM lss_param');
-- in parallel workers: the partial states (fast and Numeric parts) through
-- serialize and deserialize, added by the combine function
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
CREATE FUNCTION pg_temp.lss_plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT line;
    END LOOP;
END $$;
SELECT 'partial aggregate in workers: ' || count(*) FROM pg_temp.lss_plan($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000) FROM lss.lines GROUP BY 1 $q$) p WHERE p LIKE '%Partial%Aggregate%';
SELECT 'parallel, customers differing: ' || pg_temp.lss_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000) FROM lss.lines GROUP BY 1 $q$);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

-- one order's total alone, by hand: 1.5 + 2.25 + 3 - 7.125 = -0.375 (scale 3)
SELECT 'one order: ' || customer_analytics.targeting_line_stats('SO', '1', date '2025-10-01', a,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000)::text
  FROM (VALUES (1.5), (2.25), (3), (-7.125)) v(a);

DROP SCHEMA lss CASCADE;
