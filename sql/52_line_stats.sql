-- targeting_line_stats (issue 25, the full recompute): target_customers()
-- from the source tables reads the lines of the orders into this aggregate,
-- which sums each order's lines itself, so that the planner can join the
-- headers to their lines and fold them per customer in parallel workers
-- (the order totals as correlated subqueries ran in the leader alone).
-- Its result must equal targeting_stats over the order totals whatever the
-- order in which the lines arrive: one order after another, shuffled
-- across orders, split between parallel workers.  Then target_customers()
-- and targeting_funnel() over source tables against the same reference.
-- Needs 00_setup (public.err).
\set VERBOSITY terse
\pset tuples_only on
\pset format unaligned

-- 40 customers, 3,000 orders of 0 to 7 lines (deterministic)
CREATE SCHEMA ls;
CREATE TABLE ls.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE ls.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1),
    PRIMARY KEY (order_type, order_number));
CREATE TABLE ls.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2),
    PRIMARY KEY (order_type, order_number, line_no));
INSERT INTO ls.customers
SELECT lpad(c::text, 4, '0'), 'shop ' || c, (ARRAY['K1','K2','PS','X9'])[1 + c % 4], 'addr ' || c, NULL, '001'
  FROM generate_series(1, 40) c;
INSERT INTO ls.sales_orders
SELECT (ARRAY['SA','SO'])[1 + o % 2], lpad(o::text, 8, '0'), lpad((1 + (o * 7) % 40)::text, 4, '0'), 'K1',
       to_char(date '2025-01-01' + (o * 13) % 372, 'YYYYMMDD'), CASE WHEN o % 11 = 0 THEN 'N' ELSE 'Y' END
  FROM generate_series(1, 3000) o;
INSERT INTO ls.sales_order_lines
SELECT o.order_type, o.order_number, n, 'P' || n, 1,
       CASE WHEN (h + n) % 23 = 0 THEN NULL ELSE ((h::bigint * n) % 90000) / 100.0 END
  FROM (SELECT order_type, order_number, abs(hashtext(order_number)) AS h FROM ls.sales_orders) o,
       generate_series(1, (o.h % 8)::int) n;
ANALYZE ls.customers, ls.sales_orders, ls.sales_order_lines;

-- the rows of the order query (a table, not a temporary one, so that
-- parallel workers can scan it)
CREATE TABLE ls.lines AS
SELECT o.customer_code::text AS customer_code, o.order_type::text AS order_type,
       o.order_number::text AS order_number,
       customer_analytics.checked_order_date(o.order_date::text, o.order_type::text, o.order_number::text) AS order_date,
       l.pretax_subtotal::numeric AS amount, l.line_no
  FROM ls.sales_orders o
  LEFT JOIN ls.sales_order_lines l ON l.order_type = o.order_type AND l.order_number = o.order_number
 WHERE o.confirmed_code = 'Y';
-- an order without lines, one whose amounts are all NULL, a NULL key, a NULL date
INSERT INTO ls.lines VALUES ('LS1', 'SO', 'ls-1', '2025-10-01', NULL, NULL),
    ('LS1', 'SO', 'ls-2', '2025-10-02', NULL, 1), ('LS1', 'SO', 'ls-2', '2025-10-02', NULL, 2),
    ('LS1', 'SO', 'ls-3', '2025-10-03', 10, 1), ('LS1', NULL, 'ls-4', '2025-10-04', 20, 1),
    ('LS1', NULL, 'ls-4', '2025-10-04', 20, 2), ('LS1', 'SO', 'ls-5', NULL, 30, 1);
ANALYZE ls.lines;

-- the reference: targeting_stats over one row per order (its total the sum
-- of its lines); an order without a key is each of its rows
CREATE TEMP TABLE ls_expected AS
SELECT customer_code, customer_analytics.targeting_stats(order_date, total,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000) AS st
  FROM (SELECT customer_code, order_type, order_number, order_date, sum(amount) AS total
          FROM ls.lines WHERE order_type IS NOT NULL GROUP BY 1, 2, 3, 4
        UNION ALL
        SELECT customer_code, order_type, order_number, order_date, amount
          FROM ls.lines WHERE order_type IS NULL) o
 GROUP BY customer_code;
SELECT 'customers: ' || count(*) || ', orders: ' || sum((st).orders) || ', low tickets: ' || sum((st).low_tickets)
       || ', total: ' || sum((st).total) FROM ls_expected;

CREATE FUNCTION pg_temp.ls_diff(query text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((SELECT * FROM ls_expected EXCEPT ALL SELECT * FROM (%1$s) a)
                    UNION ALL (SELECT * FROM (%1$s) b EXCEPT ALL SELECT * FROM ls_expected)) d', query) INTO n;
    RETURN n;
END $$;
CREATE FUNCTION pg_temp.ls_plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT line;
    END LOOP;
END $$;

-- each order's lines one after another, as the order query's nested loop delivers them
SELECT 'in order, rows differing: ' || pg_temp.ls_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000 ORDER BY order_type, order_number, line_no) FROM ls.lines GROUP BY 1 $q$);
-- the lines shuffled, so that an order arrives in several pieces
SELECT 'shuffled, rows differing: ' || pg_temp.ls_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000 ORDER BY hashtext(order_number || line_no)) FROM ls.lines GROUP BY 1 $q$);
-- in parallel workers: each worker scans some of the rows, so the lines of
-- an order are spread over the workers' partial states, which the leader
-- combines (through serialize and deserialize)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT 'partial aggregate in workers: ' || count(*) FROM pg_temp.ls_plan($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000) FROM ls.lines GROUP BY 1 $q$) p WHERE p LIKE '%Partial%Aggregate%';
SELECT 'parallel, rows differing: ' || pg_temp.ls_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000) FROM ls.lines GROUP BY 1 $q$);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

-- windows computed per row (not constants) are compared row by row: the
-- same values pass, a different one in the group is refused
SELECT 'computed windows, rows differing: ' || pg_temp.ls_diff($q$
  SELECT customer_code, customer_analytics.targeting_line_stats(order_type, order_number, order_date, amount,
           daterange(date '2025-01-01' + (line_no IS NULL)::int * 0, '2026-01-01'), '[2025-09-15,2026-01-08)',
           '[2025-08-31,2025-10-31)', '[2025-10-31,2026-01-01)', 3000) FROM ls.lines GROUP BY 1 $q$);
SELECT public.err($q$
  SELECT customer_analytics.targeting_line_stats('SO', n::text, date '2025-10-01', 1,
           daterange('2025-01-01', date '2026-01-01' + n), '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000) FROM generate_series(1, 3) n $q$);
SELECT public.err($q$
  SELECT customer_analytics.targeting_line_stats('SO', '1', date '2025-10-01', 1,
           NULL, '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)', '[2025-10-31,2026-01-01)', 3000) $q$);
-- no rows: NULL, as targeting_stats
SELECT 'no rows: ' || coalesce(customer_analytics.targeting_line_stats('SO', '1', date '2025-10-01', 1,
           '[2025-01-01,2026-01-01)', '[2025-09-15,2026-01-08)', '[2025-08-31,2025-10-31)',
           '[2025-10-31,2026-01-01)', 3000)::text, 'NULL') FROM generate_series(1, 0);

-- target_customers() and targeting_funnel() over these source tables (no
-- rollup): the same numbers as the reference, per route customer
SELECT 'targets: ' || count(*) || ', numbers differing from the reference: '
       || count(*) FILTER (WHERE (t.total_spend, t.total_orders, t.low_ticket_count, t.base_sales, t.recent_sales,
                                  t.last_order_date)
                     IS DISTINCT FROM ((e.st).spend, (e.st).spend_orders, (e.st).low_tickets, (e.st).base,
                                       (e.st).recent, (e.st).last_order))
  FROM customer_analytics.target_customers(source_schema => 'ls', min_spend => 0, min_low_tickets => 1) t
  LEFT JOIN ls_expected e USING (customer_code);
SELECT 'reference customers on the routes with an order in the spend window and a low ticket: ' || count(*)
  FROM ls_expected e JOIN ls.customers c ON c.customer_code = e.customer_code
 WHERE c.delivery_route IN ('K1', 'K2', 'PS') AND (e.st).spend_orders > 0 AND (e.st).low_tickets >= 1;
SELECT step || ': ' || customers || ' customers, ' || orders || ' orders'
  FROM customer_analytics.targeting_funnel(source_schema => 'ls');

DROP SCHEMA ls CASCADE;
