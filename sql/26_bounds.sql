-- Issue 12, parts 4 and 5: every C function refuses requests above its size
-- bound up front (54000, with the limit and the request), odd windows get an
-- answer or a proper error (never XX000), and a huge-but-allowed request
-- stops at statement_timeout.  One line per call: SQLSTATE | message |
-- DETAIL | HINT (public.err() of 00_setup).
\pset tuples_only on
\pset format unaligned
SET customer_analytics.source_schema = 'fx';

-- order_date_in_window() takes any non-NULL daterange (1.4 raised XX000 for
-- all but bounded ones): unbounded either side, infinite bounds, empty.
SELECT w, customer_analytics.order_date_in_window('20250101', w::daterange, 'SO', '1') AS text_jan1,
          customer_analytics.order_date_in_window('20241231', w::daterange, 'SO', '1') AS text_dec31,
          customer_analytics.order_date_in_window(date '2025-01-01', w::daterange, 'SO', '1') AS date_jan1,
          customer_analytics.order_date_in_window(date '2024-12-31', w::daterange, 'SO', '1') AS date_dec31
  FROM unnest(ARRAY['[2025-01-01,)', '(,2025-01-01)', '(,2025-01-01]', '(,)', '[-infinity,infinity]',
                    '[-infinity,2025-01-01)', '[2025-01-01,infinity]', 'empty',
                    '[2025-01-01,2025-01-01]']) AS w;
-- a NULL window is refused with a proper error, for both overloads
SELECT public.err($$SELECT customer_analytics.order_date_in_window('20250101', NULL, 'SO', '1')$$);
SELECT public.err($$SELECT customer_analytics.order_date_in_window(date '2025-01-01', NULL, 'SO', '1')$$);
-- the order's date is still checked under any window
SELECT public.err($$SELECT customer_analytics.order_date_in_window('2025-1-5', '(,)', 'SO', '7')$$);
SELECT public.err($$SELECT customer_analytics.order_date_in_window(date 'infinity', 'empty', 'SO', '8')$$);
SELECT public.err($$SELECT customer_analytics.order_date_in_window(NULL::text, '[2025-01-01,)', 'SO', '9')$$);
-- reversed bounds: daterange itself refuses them
SELECT public.err($$SELECT customer_analytics.order_date_in_window('20250101', '[2025-12-31,2025-01-01]', 'SO', '1')$$);
-- as a filter: an unbounded window over the fixture's confirmed, dated orders
SELECT count(*) FROM fx.sales_orders o
 WHERE o.confirmed_code = 'Y'
   AND customer_analytics.order_date_in_window(o.order_date::text, '[2025-11-01,)', o.order_type::text, o.order_number::text);

-- The other functions with dateranges: unbounded, empty, infinite, reversed, NULL.
CREATE TEMP TABLE odd(w text);
INSERT INTO odd VALUES ('[2025-01-01,)'), ('(,2025-12-31]'), ('empty'), ('[-infinity,infinity]'),
                       ('[2025-12-31,2025-01-01]'), (NULL);
SELECT public.err(format('SELECT * FROM customer_analytics.target_customers(spend_window => %L)', w)) FROM odd;
SELECT public.err(format('SELECT * FROM customer_analytics.targeting_funnel(recent_window => %L)', w)) FROM odd;
SELECT public.err(format('SELECT * FROM customer_analytics.monthly_revenue(''{0001001}'', %L)', w)) FROM odd;
SELECT public.err(format('SELECT * FROM customer_analytics.customer_features(%L)', w)) FROM odd;
SELECT public.err(format('SELECT customer_analytics.targeting_stats(date ''2025-03-01'', 1, ''[2025-01-01,2025-12-31]'', %L,'
                         ' ''[2025-08-31,2025-10-30]'', ''[2025-10-31,2025-12-31]'', 3000)', w)) FROM odd;
SELECT public.err(format('SELECT customer_analytics.monthly_revenue_stats(date ''2025-03-01'', 1, %L)', w)) FROM odd;

-- monthly_revenue / monthly_revenue_stats: at most 1200 months.  The
-- tester's call (20,000 codes over [0001-01-01,9999-12-31]) grew a backend
-- to 22 GB; now it is refused before anything is allocated.
SELECT public.err($$SELECT count(*) FROM customer_analytics.monthly_revenue(
    ARRAY(SELECT lpad(i::text, 7, '0') FROM generate_series(1, 20000) i), '[0001-01-01,9999-12-31]')$$);
SELECT public.err($$SELECT count(*) FROM customer_analytics.monthly_revenue('{0001001}', '[1900-01-01,2000-01-01]')$$);
SELECT count(*) AS rows_1200_months FROM customer_analytics.monthly_revenue('{0001001}', '[1900-01-01,2000-01-01)');
SELECT public.err($$SELECT customer_analytics.monthly_revenue_stats(date '2025-03-01', 1, '[1900-01-01,2000-01-01]')$$);
SELECT cardinality((customer_analytics.monthly_revenue_stats(date '2025-03-01', 1, '[1900-01-01,2000-01-01)')).months) AS months;
-- customer codes: at most 1,000,000; cells (codes x months): at most 5,000,000
SELECT public.err($$SELECT count(*) FROM customer_analytics.monthly_revenue(array_fill('x'::text, ARRAY[1000001]), '[2025-01-01,2025-01-31]')$$);
SELECT public.err($$SELECT count(*) FROM customer_analytics.monthly_revenue(array_fill('x'::text, ARRAY[5000]), '[1900-01-01,2000-01-01)')$$);
SELECT count(*) AS rows_5m_cells FROM customer_analytics.monthly_revenue(array_fill('0001001'::text, ARRAY[4166]), '[1900-01-01,2000-01-01)');
-- ... and NULL elements
SELECT public.err($$SELECT count(*) FROM customer_analytics.monthly_revenue('{0001001,NULL}', '[2025-01-01,2025-01-31]')$$);

-- target_customers / targeting_funnel: routes at most 10,000, customers at most 1,000,000
SELECT public.err($$SELECT * FROM customer_analytics.target_customers(routes => array_fill('K1'::text, ARRAY[10001]))$$);
SELECT public.err($$SELECT * FROM customer_analytics.targeting_funnel(customers => array_fill('x'::text, ARRAY[1000001]))$$);
SELECT public.err($$SELECT * FROM customer_analytics.targeting_funnel(customers => '{0001001,NULL}')$$);
-- 10,000 routes are allowed: the same targets as routes => '{K1}'
SELECT (SELECT count(*) FROM customer_analytics.target_customers(routes => array_fill('K1'::text, ARRAY[10000])))
     = (SELECT count(*) FROM customer_analytics.target_customers(routes => '{K1}')) AS same_targets;

-- customer_feature_stats: one row's product_codes at most 1,000,000
SELECT public.err($$SELECT customer_analytics.customer_feature_stats(date '2025-03-01', 1, 1, array_fill('P'::text, ARRAY[1000001]))$$);
SELECT (customer_analytics.customer_feature_stats(date '2025-03-01', 1, 1, array_fill('P'::text, ARRAY[1000000]))).skus;

-- kmeans_fit: k, n_init, max_iter, seed, features
CREATE TEMP TABLE pts AS SELECT ARRAY[i % 7, i % 3]::float8[] AS f FROM generate_series(1, 50) i;
SELECT public.err($$SELECT customer_analytics.kmeans_fit(f, 1001) FROM pts$$);
SELECT public.err($$SELECT customer_analytics.kmeans_fit(f, 2, '{"n_init": 1001}') FROM pts$$);
SELECT public.err($$SELECT customer_analytics.kmeans_fit(f, 2, '{"n_init": 1e12}') FROM pts$$);
SELECT public.err($$SELECT customer_analytics.kmeans_fit(f, 2, '{"max_iter": 100001}') FROM pts$$);
SELECT public.err($$SELECT customer_analytics.kmeans_fit(f, 2, '{"max_iter": 3e9}') FROM pts$$);
SELECT public.err($$SELECT customer_analytics.kmeans_fit(f, 2, '{"seed": 1e30}') FROM pts$$);
-- the largest options are accepted
SELECT m->'n_init', m->'max_iter', m->'seed'
  FROM (SELECT customer_analytics.kmeans_fit(f, 2, '{"n_init": 1000, "max_iter": 100000, "seed": 9e18}') AS m FROM pts) s;
SELECT public.err($$SELECT customer_analytics.kmeans_fit(array_fill(1.0::float8, ARRAY[1001]), 1)$$);
SELECT public.err($$SELECT customer_analytics.kmeans_fit(array_fill(1.0::float8, ARRAY[10000000]), 1)$$);
SELECT public.err($$SELECT customer_analytics.kmeans_fit(array_fill(1.0::float8, ARRAY[1001]), 1, '{"init": [[1]]}')$$);
SELECT customer_analytics.kmeans_fit(array_fill(1.0::float8, ARRAY[1000]), 1)->'features';
-- rows x features kept: at most 16,000,000 values (16,001 rows of 1,000 features)
SELECT public.err($$SELECT customer_analytics.kmeans_fit(array_fill(i::float8, ARRAY[1000]), 2)
                      FROM generate_series(1, 16001) i$$);
-- a model with more features than a fit can have is not a model
SELECT public.err($$SELECT customer_analytics.kmeans_predict('{"k": 1, "features": 200000000, "mean": [], "scale": [], "centroids": []}', '{1}')$$);

-- silhouette: exact at most 100,000 points, sample_size at most 100,000
SELECT public.err($$SELECT customer_analytics.silhouette(ARRAY[i]::float8[], i % 2) FROM generate_series(1, 100001) i$$);
SELECT public.err($$SELECT customer_analytics.silhouette(ARRAY[i]::float8[], i % 2, 100001, 0) FROM generate_series(1, 10) i$$);
SELECT round(customer_analytics.silhouette(ARRAY[i]::float8[], i % 2, 1000, 0)::numeric, 3) FROM generate_series(1, 100001) i;
SELECT public.err($$SELECT customer_analytics.silhouette(array_fill(1.0::float8, ARRAY[1001]), 1)$$);

-- (the aggregates' support functions cannot be called outside their
-- aggregates: SQL has no value of type internal to pass them)
SELECT public.err($$SELECT customer_analytics._point_buffer_combine(NULL::internal, NULL::internal)$$);

-- A huge but allowed request stops at statement_timeout (57014): 4,166
-- codes x 1,200 months (5.0 million rows, seconds of work), and an exact
-- silhouette of 100,000 points (10^10 distances).
CREATE TEMP TABLE many_codes AS SELECT array_agg(lpad(i::text, 7, '0')) AS codes FROM generate_series(1, 4166) i;
CREATE TEMP TABLE many_points AS SELECT ARRAY[i % 1000, i % 7]::float8[] AS f, i % 3 AS c FROM generate_series(1, 100000) i;
\set VERBOSITY sqlstate
SET statement_timeout = '100ms';
SELECT count(*) FROM customer_analytics.monthly_revenue((SELECT codes FROM many_codes), '[1900-01-01,2000-01-01)');
SELECT customer_analytics.silhouette(f, c) FROM many_points;
SELECT customer_analytics.kmeans_fit(f, 1000, '{"n_init": 1000, "max_iter": 100000, "tol": 0}') FROM many_points;
RESET statement_timeout;
\set VERBOSITY terse
SELECT count(*) AS after_cancel FROM customer_analytics.monthly_revenue('{0001001}', '[2025-01-01,2025-12-31]');
RESET customer_analytics.source_schema;

-- pivot_months(): infinite bounds are refused (the month series never
-- ended), and so is a campaign built on them; more than 1,200 months too
SELECT public.err($$SELECT count(*) FROM customer_analytics.pivot_months('[-infinity,2025-01-01]')$$);
SELECT public.err($$SELECT count(*) FROM customer_analytics.pivot_months('[2025-01-01,infinity]')$$);
SELECT public.err($$SELECT count(*) FROM customer_analytics.pivot_months('[1900-01-01,2025-01-01]')$$);
SELECT count(*) AS months FROM customer_analytics.pivot_months('[1925-02-01,2025-01-31]');
SELECT public.err($$SELECT customer_analytics.create_campaign('inf1', 'public', revenue_window => '[-infinity,-infinity]', source_schema => 'fx')$$);
-- months before 1 BC start on the first of the month (year 0 is 1 BC)
SELECT (customer_analytics.monthly_revenue_stats(d, n, '[4000-01-01 BC,4000-04-01 BC]')).months
  FROM (VALUES ('4000-02-03 BC'::date, 1::numeric)) t(d, n);
