-- customer_features() on the fixture of 00_setup: the segmentation notebook's
-- customer single view.  Fixture lines have quantity 1.00 and product code
-- 'P' || line number, so an order with n lines has SKUs P1..Pn.  Every value
-- below was worked out by hand; days are counted as date - date.
SET customer_analytics.source_schema = 'fx';

-- Who gets a row, with the defaults: window 2025-01-01..2025-12-31.
--   0001001  1001 + 1002 + 1003 = (200+100) + 300 + 400  = 1000.00, 3 visits
--   0001002  3 x 333.33                                  =  999.99, 3
--   0001003  (1000+2000) + 2999.99 + 100 + 5000          = 11099.99, 4
--   0001004  1000 + 1000 + (600+400)                     = 3000.00, 3
--   0001005  1000 + 700 = 1700.00, 2;  0001006  10000 + 6999 = 16999.00, 2
--   0001007  only 1061 is confirmed ('N', NULL, 'N', 'N' for 1062..1065): 2000.00, 1
--   0001008  5000 + 0 (1072, no lines) + 0 (1073, NULL amounts) + 100 = 5100.00, 4
--   0001009  only 1082 (2025-12-31); 1081 (2024) and 1083..1085 (2026) are out: 1000.00, 1
--   0001010  3 x 1000 = 3000.00, 3;  0001011, 0001012  3 x 500 = 1500.00, 3
--   0001016  9000.00, 1;  0012  3 x 1000 = 3000.00, 3;  12  (not 0012) 50000.00, 1
-- Order 1131 has no customer_code: no row.  0001015 has no orders: no row.
-- Sorted bytewise: '0001016' < '0012' < '12'.
SELECT customer_code, visits, total_spend, is_repeat FROM customer_analytics.customer_features();

-- Four customers in full (as_of 2026-01-07):
--   0001001  first 2025-09-20, last 2025-11-10
--            recency 20 (rest of Nov) + 31 + 7 = 58; tenure 10 + 31 + 30 + 31 + 7 = 109
--            span 10 + 31 + 10 = 51; SKUs P1 (all three), P2 (1001) = 2; 4 lines: 4.00
--            ticket 1000.00 / 3 = 333.333...; per visit: 4/3, 51/3 = 17, 2/3; diff 4/3 - 2/3
--   0001003  first 2025-10-01, last 2025-11-05: recency 25 + 31 + 7 = 63, tenure 30 + 30 + 31 + 7 = 98,
--            span 35; SKUs P1, P2 (1021) = 2; 5 lines: 5.00; ticket 11099.99 / 4 = 2774.9975
--            per visit: 5/4 = 1.25, 35/4 = 8.75, 2/4 = 0.5; diff 0.75
--   0001007  one visit on 2025-03-01: recency = tenure = 30 + 30+31+30+31+31+30+31+30+31 + 7 = 312,
--            span 0, 1 SKU, 1.00; per visit 1, 0, 1; diff 0; not a repeat customer
--   0001008  2025-10-01..10-04: recency 27 + 30 + 31 + 7 = 95, tenure 98, span 3
--            1071 (P1), 1072 (no lines), 1073 and 1074 (P1, P2, amounts NULL or partly NULL):
--            SKUs 2; quantities 1 + 0 + 2 + 2 = 5.00; ticket 5100.00 / 4 = 1275
--            per visit: 1.25, 3/4 = 0.75, 0.5; diff 0.75
\x on
SELECT * FROM customer_analytics.customer_features()
 WHERE customer_code IN ('0001001', '0001003', '0001007', '0001008');
\x off

-- An order without lines is a visit with 0 spend and no SKUs: on 2025-10-02
-- 0001008 has only 1072 (no lines); 0001003 has 1022 (2999.99, P1).  1063 of
-- 0001007 is on that day too, but not confirmed (NULL).
SELECT customer_code, visits, total_spend, ticket_size, skus, total_quantity,
       recency_days, tenure_days, span_days, features
  FROM customer_analytics.customer_features('[2025-10-02,2025-10-02]', '2025-10-02');
-- Lines with NULL amounts still bring their products and quantities: on
-- 2025-10-03 0001008 has 1073 (two lines, both amounts NULL: P1, P2, 1 + 1);
-- 0001003 has 1023 (100, P1); 1064 of 0001007 is unconfirmed ('N').
-- as_of two days later: recency = tenure = 2.
SELECT customer_code, visits, total_spend, skus, total_quantity, recency_days, tenure_days
  FROM customer_analytics.customer_features('[2025-10-03,2025-10-03]', '2025-10-05');

-- Window edges, both ends included: 2025-12-31..2026-01-07 holds 1082
-- (12-31, 1000), 1083 (01-01, 500) and 1084 (01-07, 600) of 0001009; 1081
-- (2024-12-31) and 1085 (01-08) are out.  3 visits, 2100.00, ticket 700,
-- 1 SKU, 3.00; as_of the window's last day: recency 0, tenure 7, span 7;
-- per visit: 1, 7/3, 1/3; diff 1 - 1/3.
SELECT customer_code, visits, total_spend, ticket_size, skus, total_quantity, first_order,
       last_order, recency_days, tenure_days, span_days, quantity_per_visit, days_per_visit,
       skus_per_visit, diff, is_repeat
  FROM customer_analytics.customer_features('[2025-12-31,2026-01-07]', '2026-01-07');
-- the same window written half-open gives the same rows
SELECT count(*) AS differences FROM (
  (SELECT * FROM customer_analytics.customer_features('[2025-12-31,2026-01-07]', '2026-01-07')
   EXCEPT SELECT * FROM customer_analytics.customer_features('[2025-12-31,2026-01-08)', '2026-01-07'))
  UNION ALL
  (SELECT * FROM customer_analytics.customer_features('[2025-12-31,2026-01-08)', '2026-01-07')
   EXCEPT SELECT * FROM customer_analytics.customer_features('[2025-12-31,2026-01-07]', '2026-01-07'))) d;
-- a window without confirmed orders gives no rows (the NULL-code order 1131 counts for nobody)
SELECT count(*) AS rows FROM customer_analytics.customer_features('[2024-06-01,2024-06-30]', '2024-06-30');

-- Leading zeros matter: 0012 (1121..1123, 3 x 1000) and 12 (1124, 50000)
-- are two customers.  Default window, as_of 2026-01-07: 0012 last ordered on
-- 2025-11-03 (recency 27 + 31 + 7 = 65), 12 on 2025-11-04 (64).
SELECT customer_code, visits, total_spend, first_order, last_order, recency_days, span_days
  FROM customer_analytics.customer_features(source_schema => 'fx')
 WHERE customer_code IN ('0012', '12');

-- The features array is the columns in the documented order, as float8.
SELECT count(*) AS customers,
       count(*) FILTER (WHERE features = ARRAY[visits, total_spend, ticket_size, skus, total_quantity,
                                               recency_days, tenure_days, quantity_per_visit,
                                               days_per_visit, skus_per_visit, diff]::float8[]
                          AND array_length(features, 1) = 11) AS features_agree
  FROM customer_analytics.customer_features();

-- Real SKU sets and quantities (rolled back afterwards), for 0001004:
--   1031 (2025-11-01): A, quantity 2.5           amount 1000
--   1032 (2025-11-15): no product code, 3         amount 1000
--   1033 (2025-12-01): A 4 (600), B with NULL quantity (400), A again 1 (NULL amount)
-- visits 3, spend 3000.00, ticket 1000; SKUs {A, B} = 2 (A counted once,
-- across orders and within 1033); quantity 2.5 + 3 + 4 + 1 = 10.50
-- recency 30 + 7 = 37, tenure 30 + 37 = 67, span 30
-- per visit: 10.5 / 3 = 3.5, 30 / 3 = 10, 2 / 3; diff 3.5 - 2/3 = 2.8333...
-- 0001010 buys A too (1091) besides P1 (1092, 1093): its own 2 SKUs.
BEGIN;
UPDATE fx.sales_order_lines SET product_code = 'A', quantity = 2.5 WHERE order_number = '1031';
UPDATE fx.sales_order_lines SET product_code = NULL, quantity = 3 WHERE order_number = '1032';
UPDATE fx.sales_order_lines SET product_code = 'A', quantity = 4 WHERE order_number = '1033' AND line_no = 1;
UPDATE fx.sales_order_lines SET product_code = 'B', quantity = NULL WHERE order_number = '1033' AND line_no = 2;
INSERT INTO fx.sales_order_lines VALUES ('SO', '1033', 3, 'A', 1, NULL);
UPDATE fx.sales_order_lines SET product_code = 'A' WHERE order_number = '1091';
\x on
SELECT * FROM customer_analytics.customer_features() WHERE customer_code IN ('0001004', '0001010');
\x off
ROLLBACK;

-- The same columns computed independently in plain SQL, straight from the
-- tables: every row agrees, text for text (numeric scales and float8 bits
-- included), over several windows; and again after changing lines: product
-- codes shared across customers, NULL codes, NULL and fractional quantities,
-- a NULL-amount line and an extra line on an existing order.
CREATE FUNCTION pg_temp.features_sql(w daterange, as_of date)
RETURNS TABLE (customer_code text, visits bigint, total_spend numeric, ticket_size numeric,
               skus bigint, total_quantity numeric, first_order date, last_order date,
               recency_days int, tenure_days int, span_days int, quantity_per_visit float8,
               days_per_visit float8, skus_per_visit float8, diff float8, is_repeat boolean,
               features float8[])
LANGUAGE sql STABLE AS $$
    WITH confirmed AS (
        SELECT o.order_type, o.order_number, o.customer_code::text AS code,
               -- CASE: unconfirmed order 1065's '2025-1-5' is never converted
               CASE WHEN o.confirmed_code = 'Y' THEN to_date(o.order_date, 'YYYYMMDD') END AS d
          FROM fx.sales_orders o
         WHERE o.confirmed_code = 'Y' AND o.customer_code IS NOT NULL
    ), orders AS (
        SELECT c.code, c.d, COALESCE(sum(l.pretax_subtotal), 0) AS total,
               COALESCE(sum(l.quantity), 0) AS quantity
          FROM confirmed c LEFT JOIN fx.sales_order_lines l USING (order_type, order_number)
         WHERE c.d <@ w
         GROUP BY c.order_type, c.order_number, c.code, c.d
    ), per_customer AS (
        SELECT code, count(*) AS visits, sum(total) AS spend, sum(quantity) AS quantity,
               min(d) AS first_order, max(d) AS last_order
          FROM orders GROUP BY code
    ), sku_counts AS (
        SELECT c.code, count(DISTINCT l.product_code) AS skus
          FROM confirmed c JOIN fx.sales_order_lines l USING (order_type, order_number)
         WHERE c.d <@ w
         GROUP BY c.code
    ), f AS (
        SELECT p.*, COALESCE(s.skus, 0) AS skus,
               p.quantity::float8 / p.visits AS qpv,
               (p.last_order - p.first_order)::float8 / p.visits AS dpv,
               COALESCE(s.skus, 0)::float8 / p.visits AS spv
          FROM per_customer p LEFT JOIN sku_counts s USING (code)
    )
    SELECT code, visits, spend, spend / visits, skus, quantity, first_order, last_order,
           as_of - last_order, as_of - first_order, last_order - first_order,
           qpv, dpv, spv, qpv - spv, visits >= 2,
           ARRAY[visits::float8, spend::float8, (spend / visits)::float8, skus::float8,
                 quantity::float8, (as_of - last_order)::float8, (as_of - first_order)::float8,
                 qpv, dpv, spv, qpv - spv]
      FROM f
$$;
CREATE TEMP TABLE feature_cases (w daterange, as_of date);
INSERT INTO feature_cases VALUES
    ('[2025-01-01,2025-12-31]', '2026-01-07'), ('[2024-01-01,2026-12-31]', '2027-03-01'),
    ('[2025-09-15,2026-01-07]', '2026-01-07'), ('[2025-10-01,2025-10-31]', '2025-11-30'),
    ('[2025-11-01,2025-11-03]', '2025-11-03');
CREATE FUNCTION pg_temp.features_disagree() RETURNS TABLE (compared bigint, differing bigint)
LANGUAGE sql AS $$
    WITH ours AS (
        SELECT c.w, f::text AS r FROM feature_cases c,
               customer_analytics.customer_features(c.w, c.as_of, 'fx') f
    ), plain AS (
        SELECT c.w, s::text AS r FROM feature_cases c, pg_temp.features_sql(c.w, c.as_of) s
    )
    SELECT (SELECT count(*) FROM ours),
           (SELECT count(*) FROM ((TABLE ours EXCEPT ALL TABLE plain)
                                  UNION ALL (TABLE plain EXCEPT ALL TABLE ours)) d)
$$;
SELECT * FROM pg_temp.features_disagree();
BEGIN;
UPDATE fx.sales_order_lines SET product_code = 'A', quantity = 2.5 WHERE order_number = '1031';
UPDATE fx.sales_order_lines SET product_code = NULL, quantity = 3 WHERE order_number = '1032';
UPDATE fx.sales_order_lines SET product_code = 'B', quantity = NULL WHERE order_number = '1033' AND line_no = 2;
INSERT INTO fx.sales_order_lines VALUES ('SO', '1033', 3, 'A', 1, NULL), ('SO', '1001', 3, 'C', 0.25, 10.10);
UPDATE fx.sales_order_lines SET product_code = 'A' WHERE order_number = '1091';
SELECT * FROM pg_temp.features_disagree();
ROLLBACK;

-- The data contract's type variants give the same rows: product_code as
-- char(6) (padding ignored), quantity as an integer, order_date as a date.
CREATE SCHEMA fx_features_typed;
CREATE VIEW fx_features_typed.customers AS SELECT * FROM fx.customers;
CREATE VIEW fx_features_typed.sales_orders AS
  SELECT order_type, order_number, customer_code, delivery_route,
         CASE WHEN confirmed_code = 'Y' THEN to_date(order_date, 'YYYYMMDD') END AS order_date,
         confirmed_code
    FROM fx.sales_orders;
CREATE VIEW fx_features_typed.sales_order_lines AS
  SELECT order_type, order_number, product_code::char(6) AS product_code,
         quantity::int AS quantity, pretax_subtotal
    FROM fx.sales_order_lines;
SELECT count(*) AS differences FROM (
  (SELECT * FROM customer_analytics.customer_features(source_schema => 'fx')
   EXCEPT SELECT * FROM customer_analytics.customer_features(source_schema => 'fx_features_typed'))
  UNION ALL
  (SELECT * FROM customer_analytics.customer_features(source_schema => 'fx_features_typed')
   EXCEPT SELECT * FROM customer_analytics.customer_features(source_schema => 'fx'))) d;

-- SECURITY INVOKER: a role without SELECT on the lines is refused
CREATE ROLE ca_features_reader;
GRANT USAGE ON SCHEMA customer_analytics, fx TO ca_features_reader;
GRANT SELECT ON fx.customers, fx.sales_orders TO ca_features_reader;
SET ROLE ca_features_reader;
\set VERBOSITY terse
\set SHOW_CONTEXT never
SELECT count(*) FROM customer_analytics.customer_features();
\set VERBOSITY default
\unset SHOW_CONTEXT
RESET ROLE;
REVOKE ALL ON SCHEMA customer_analytics, fx FROM ca_features_reader;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_features_reader;
DROP ROLE ca_features_reader;

-- Errors: SQLSTATE, message and hint, one line each.
\pset tuples_only on
\pset format unaligned

-- NULL arguments (source_schema NULL means the GUC)
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(feature_window => NULL)$$);
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(as_of => NULL)$$);
-- windows: empty, unbounded, infinite
SELECT public.err($$SELECT * FROM customer_analytics.customer_features('empty')$$);
SELECT public.err($$SELECT * FROM customer_analytics.customer_features('[2025-01-01,2025-01-01)')$$);
SELECT public.err($$SELECT * FROM customer_analytics.customer_features('[2025-01-01,)')$$);
SELECT public.err($$SELECT * FROM customer_analytics.customer_features('[-infinity,2025-12-31]')$$);
-- as_of: not before the window's last day (recency would be negative), finite
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(as_of => '2025-12-30')$$);
SELECT public.err($$SELECT * FROM customer_analytics.customer_features('[2025-10-01,2025-11-01)', '2025-10-30')$$);
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(as_of => 'infinity')$$);
SELECT count(*) AS as_of_on_last_day FROM customer_analytics.customer_features(as_of => '2025-12-31');

-- the source: schema, table, and the line-item columns only this function reads
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'no_such_schema')$$);
CREATE SCHEMA fx_features_bad;
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'fx_features_bad')$$);
CREATE VIEW fx_features_bad.customers AS SELECT * FROM fx.customers;
CREATE VIEW fx_features_bad.sales_orders AS SELECT * FROM fx.sales_orders;
CREATE VIEW fx_features_bad.sales_order_lines AS
  SELECT order_type, order_number, pretax_subtotal FROM fx.sales_order_lines;
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'fx_features_bad')$$);
-- the targeting functions do not need these columns: same 8 targets as on fx
SELECT count(*) AS targets,
       count(*) FILTER (WHERE t IN (SELECT x FROM customer_analytics.target_customers(source_schema => 'fx') x)) AS same_as_fx
  FROM customer_analytics.target_customers(source_schema => 'fx_features_bad') t;
DROP VIEW fx_features_bad.sales_order_lines;
CREATE VIEW fx_features_bad.sales_order_lines AS
  SELECT order_type, order_number, line_no AS product_code, pretax_subtotal FROM fx.sales_order_lines;
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'fx_features_bad')$$);
DROP VIEW fx_features_bad.sales_order_lines;
CREATE VIEW fx_features_bad.sales_order_lines AS
  SELECT order_type, order_number, product_code, pretax_subtotal FROM fx.sales_order_lines;
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'fx_features_bad')$$);
DROP VIEW fx_features_bad.sales_order_lines;
CREATE VIEW fx_features_bad.sales_order_lines AS
  SELECT order_type, order_number, product_code, quantity::float8 AS quantity, pretax_subtotal
    FROM fx.sales_order_lines;
SELECT public.err($$SELECT * FROM customer_analytics.customer_features(source_schema => 'fx_features_bad')$$);

-- a confirmed order's malformed or NULL date, even outside the window
BEGIN;
UPDATE fx.sales_orders SET order_date = '20251340' WHERE order_number = '1002';
SELECT public.err($$SELECT * FROM customer_analytics.customer_features()$$);
ROLLBACK;
BEGIN;
UPDATE fx.sales_orders SET order_date = '19991301' WHERE order_number = '1081';
SELECT public.err($$SELECT * FROM customer_analytics.customer_features()$$);
ROLLBACK;
BEGIN;
UPDATE fx.sales_orders SET order_date = NULL WHERE order_number = '1002';
SELECT public.err($$SELECT * FROM customer_analytics.customer_features()$$);
ROLLBACK;
\pset tuples_only off
\pset format aligned

DROP SCHEMA fx_features_typed, fx_features_bad CASCADE;
RESET customer_analytics.source_schema;
