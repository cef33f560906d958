\set skew_saved_echo :ECHO
\set skew_saved_quiet :QUIET
\set ECHO none
-- bench/skewed_data.sql
--
-- Synthetic ERP data for the cosmos_sync schema in a distributor's shape:
-- a minority of customers place most of the orders.
--
-- (Re)creates schema cosmos_sync with the same three tables and column types
-- as test/demo_data.sql (customers, sales_orders, sales_order_lines) and
-- fills them so that about 20 % of the customers ("breakfast shops,
-- canteens") hold 80-90 % of the orders: they order several times a week
-- (1.5 to 4.5 orders a week) over the whole date range, 20240101..20260131.
-- The others order rarely (a handful of orders in two years; some not at
-- all).  Used by the benchmark's "realistic shape" (bench/bench.py), where
-- a change to 1 % of the orders reaches most of the big customers and so
-- most of the order history, unlike in the demo data.
--
-- Usage (from the repository root):
--     psql -X -v ON_ERROR_STOP=1 [-v scale=10] -f bench/skewed_data.sql DBNAME
--
-- The psql variable "scale" (numeric, default 1) is the scale factor, as for
-- test/demo_data.sql, and gives about the same number of orders and lines:
-- scale 1 gives ~1,900 customers, ~115k orders (~105k confirmed) and
-- ~880k order lines; scale 10 ten times that.  There are fewer customers
-- than in the demo data (~10k at scale 1) because the frequent orderers are
-- fewer for the same number of orders.
--
-- Taken from test/demo_data.sql unchanged: the customer codes, names,
-- routes (~25 % on K1/K2/PS), addresses, closures (~5 %, no orders after
-- the closure date) and CSMs; the decliners (~7 %, most orders after
-- 20251030 dropped); the order types, numbering, confirmation flag ('Y'
-- ~92 %, 'N' ~5 %, NULL ~3 %) and the ~3 % of orders on another route; the
-- lines (3..12 per order, ~1 % of orders without lines), products, prices,
-- quantities and amounts.  The demo campaign (create_campaign() with its
-- defaults) therefore finds targets of both kinds in this data too.
--
-- The output is deterministic: every pseudo-random number is derived from
-- hashint8extended() of a row id and a per-attribute seed (never random()),
-- so the data does not depend on plan, parallelism or previous runs.  The
-- script is entirely set-based (INSERT ... SELECT over generate_series).
-- It prints nothing but a final row-count summary (the three lines above
-- this header keep psql from echoing the script); psql's ECHO and QUIET
-- settings and all server settings are restored afterwards.

\set QUIET on
\if :{?scale}
\else
\set scale 1
\endif

BEGIN;
SET LOCAL client_min_messages = warning;
SET LOCAL synchronous_commit = off;
SET LOCAL work_mem = '64MB';
SET LOCAL maintenance_work_mem = '256MB';
-- the planner's guess of 1,000 lines per order makes the lines' statement
-- look expensive enough to compile; compiling costs more than it saves here
SET LOCAL jit = off;

-- skew_u01(id, seed): deterministic pseudo-random float8 in [0,1) (53 bits of
-- hashint8extended), as demo_u01 in test/demo_data.sql.
CREATE OR REPLACE FUNCTION pg_temp.skew_u01(bigint, bigint) RETURNS float8
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT (hashint8extended($1, $2) & 9007199254740991)::float8 / 9007199254740992.0';

DROP SCHEMA IF EXISTS cosmos_sync CASCADE;
CREATE SCHEMA cosmos_sync;
CREATE TABLE cosmos_sync.customers (customer_code varchar(12), trade_name text, delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE cosmos_sync.sales_orders (order_type varchar(4) NOT NULL, order_number varchar(12) NOT NULL, customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1));
-- sales_order_lines (order_type varchar(4) NOT NULL, order_number varchar(12) NOT NULL,
--                   line_no int NOT NULL, product_code varchar(16), quantity numeric(12,2),
--                   pretax_subtotal numeric(14,2)) is created below by CREATE TABLE AS.

-------------------------------------------------------------------------------
-- customers
--
-- ~1,900 x scale customers, coded, named, routed and closed as in
-- test/demo_data.sql (same seeds: customer i here is customer i there).
--
-- Hidden per-customer behaviour (kept in a temp table, not in the schema):
--   heavy   - 20 %: orders 1.5 .. 4.5 times a week (breakfast shops, canteens)
--   n       - orders over the 762 days 20240101..20260131: heavy customers
--             ~160 .. ~490, evenly spread; the others 0 (10 %) or 1 .. ~30
--   qf      - typical quantity per line (drives the ticket size), as in
--             the demo data
--   decline - orders after 20251030 are strongly thinned, as in the demo data
-------------------------------------------------------------------------------
CREATE TEMP TABLE skew_cust ON COMMIT DROP AS
WITH base AS (
    SELECT i,
           pg_temp.skew_u01(i, 3) < 0.245 AS on_geo,  -- route K1/K2/PS
           pg_temp.skew_u01(i, 6) < 0.05  AS closed,
           pg_temp.skew_u01(i, 50) < 0.20 AS heavy,
           pg_temp.skew_u01(i, 51) AS u_rate,
           pg_temp.skew_u01(i, 13) AS u_qf
    FROM generate_series(1, round(1900 * :scale)::int) AS i
)
SELECT i,
       (ARRAY['02','03','05','07','10','11','12','15'])[1 + floor(8 * pg_temp.skew_u01(i, 1))::int]
         || lpad(i::text,
                 greatest(length(i::text), CASE WHEN pg_temp.skew_u01(i, 2) < 0.45 THEN 6 ELSE 5 END),
                 '0') AS customer_code,
       CASE WHEN on_geo
            THEN (ARRAY['K1','K1','K1','K1','K2','K2','K2','PS','PS','PS'])[1 + floor(10 * pg_temp.skew_u01(i, 4))::int]
            ELSE (ARRAY['K3','K3','K5','K5','T1','T1','T2','T2','PT','PT',
                        'TN','TN','KH','KH','KH','PD','PD','FS','TT', NULL])[1 + floor(20 * pg_temp.skew_u01(i, 4))::int]
       END AS delivery_route,
       CASE WHEN closed THEN date '2024-01-01' + floor(731 * pg_temp.skew_u01(i, 7))::int END AS closure,
       heavy,
       -- orders over the 762 days (108.9 weeks)
       CASE WHEN heavy THEN floor((1.5 + 3 * power(u_rate, 2)) * 762 / 7.0 + pg_temp.skew_u01(i, 52))::int
            WHEN u_rate < 0.10 THEN 0
            ELSE floor(1 + 30 * power((u_rate - 0.10) / 0.90, 1.6) + pg_temp.skew_u01(i, 52))::int
       END AS n,
       -- quantity factor: log-uniform ~1.1 .. 7
       exp(ln(1.1) + ln(7.0 / 1.1) * power(u_qf, 1.3)) AS qf,
       pg_temp.skew_u01(i, 14) < 0.07 AS decline
FROM base;

INSERT INTO cosmos_sync.customers
SELECT customer_code,
       (ARRAY['Golden','Lucky','Happy','Fresh','Royal','Ocean','Sunny','Jade',
              'Harbor','Lotus','Dragon','Phoenix','Bamboo','Formosa','Pearl','Liberty'])[1 + floor(16 * pg_temp.skew_u01(i, 40))::int]
         || ' ' ||
       (ARRAY['Wok','Noodle','Dumpling','Bento','Hotpot','Grill','Kitchen','Tea',
              'Rice','Seafood','Bistro','Bakery','BBQ','Cafe','Diner','Canteen'])[1 + floor(16 * pg_temp.skew_u01(i, 41))::int]
         || CASE WHEN pg_temp.skew_u01(i, 42) < 0.3 THEN ' ' || (1 + floor(9 * pg_temp.skew_u01(i, 43))::int)::text || 'F' ELSE '' END
         AS trade_name,
       delivery_route,
       'No. ' || (1 + floor(400 * pg_temp.skew_u01(i, 44))::int)::text || ', '
         || (ARRAY['Zhongzheng','Minzu','Jianguo','Ziyou','Zhonghua','Boai','Heping','Jiuru',
                   'Qixian','Wufu','Sanduo','Chenggong'])[1 + floor(12 * pg_temp.skew_u01(i, 45))::int]
         || ' Rd., '
         || (ARRAY['Sanmin','Lingya','Qianzhen','Xinxing','Gushan','Zuoying','Nanzi','Fengshan',
                   'Qianjin','Xiaogang','Gangshan','Pingtung'])[1 + floor(12 * pg_temp.skew_u01(i, 46))::int]
         || ' Dist., Kaohsiung City' AS shipping_address,
       CASE WHEN closure IS NOT NULL THEN to_char(closure, 'YYYYMMDD')
            WHEN pg_temp.skew_u01(i, 8) < 0.5 THEN NULL
            ELSE '' END AS closure_date,
       (ARRAY['002','002','003','003','003','005','005','007','011', NULL])[1 + floor(10 * pg_temp.skew_u01(i, 9))::int] AS csm
FROM skew_cust
ORDER BY i;

-------------------------------------------------------------------------------
-- sales_orders
--
-- ~110,000 x scale orders dated 20240101..20260131; ~85 % of them from the
-- heavy customers.  A heavy customer's k-th of n orders falls in the k-th
-- of n equal slices of the date range (regular ordering); the others'
-- orders fall anywhere in it.  Closed customers have no orders after their
-- closure date; decliners lose ~80 % of their orders after 20251030.
-- order_type 'SO' (85 %) or 'SA'; order_number is numbered per type in date
-- order.  confirmed_code 'Y' ~92 %, 'N' ~5 %, NULL ~3 %.  ~3 % of orders go
-- on another route.
-------------------------------------------------------------------------------
-- A plain (unlogged) table, not a temporary one: parallel workers read it
-- when the lines are generated below.  Dropped before COMMIT.
CREATE UNLOGGED TABLE cosmos_sync.skew_ord AS
WITH gen AS (
    SELECT c.i, c.customer_code, c.delivery_route, c.qf,
           c.i::bigint * 1000 + k AS oid,
           date '2024-01-01'
             + floor(CASE WHEN c.heavy THEN (k - 1 + pg_temp.skew_u01(c.i * 1000 + k, 20)) * 762 / c.n
                          ELSE 762 * pg_temp.skew_u01(c.i * 1000 + k, 20) END)::int AS odate,
           c.closure, c.decline
    FROM skew_cust c, generate_series(1, c.n) AS k
), kept AS (
    SELECT *,
           CASE WHEN pg_temp.skew_u01(oid, 22) < 0.85 THEN 'SO' ELSE 'SA' END AS order_type
    FROM gen
    WHERE (closure IS NULL OR odate <= closure)
      AND NOT (decline AND odate > date '2025-10-30' AND pg_temp.skew_u01(oid, 21) < 0.8)
)
SELECT oid, order_type,
       lpad((row_number() OVER (PARTITION BY order_type ORDER BY odate, oid))::text, 10, '0') AS order_number,
       customer_code,
       CASE WHEN pg_temp.skew_u01(oid, 24) < 0.03
            THEN (ARRAY['K1','K2','PS','K3','K5','T1','T2','PT','TN','KH'])[1 + floor(10 * pg_temp.skew_u01(oid, 25))::int]
            ELSE delivery_route END AS delivery_route,
       to_char(odate, 'YYYYMMDD') AS order_date,
       CASE WHEN pg_temp.skew_u01(oid, 23) < 0.92 THEN 'Y'
            WHEN pg_temp.skew_u01(oid, 23) < 0.97 THEN 'N' END AS confirmed_code,
       qf * (0.6 + 0.8 * pg_temp.skew_u01(oid, 26)) AS qf      -- this order's quantity factor
FROM kept
ORDER BY order_type, odate, oid;                      -- = (order_type, order_number)

INSERT INTO cosmos_sync.sales_orders
SELECT order_type, order_number, customer_code, delivery_route, order_date, confirmed_code
FROM cosmos_sync.skew_ord;
ANALYZE cosmos_sync.skew_ord;

-------------------------------------------------------------------------------
-- sales_order_lines
--
-- As in test/demo_data.sql: 3..12 lines per order (~1 % of orders have
-- none), ~850,000 x scale lines.  Products from a fixed catalogue of 800
-- SKUs with skewed popularity and a per-product unit price of 20..400 (15 %
-- sold by weight, with fractional quantities).  Quantity 1..20 (3 % of
-- lines are bulk buys); pretax_subtotal is quantity x unit price with an
-- occasional 10 % discount; ~0.5 % of lines have it NULL.
-------------------------------------------------------------------------------
-- CREATE TABLE AS rather than INSERT: its query may run in parallel workers
-- (the hashing and arithmetic are most of the time); the casts give the
-- columns the types of test/demo_data.sql, the primary key below their
-- NOT NULL.
CREATE TABLE cosmos_sync.sales_order_lines AS
SELECT order_type::varchar(4) AS order_type, order_number::varchar(12) AS order_number, line_no,
       -- SKU codes are a permutation of the popularity rank
       ('FS' || lpad((10000 + 7 * ((p * 379) % 801))::text, 6, '0'))::varchar(16) AS product_code,
       qty::numeric(12,2) AS quantity,
       CASE WHEN pg_temp.skew_u01(lid, 35) < 0.005 THEN NULL
            ELSE round(qty * price * CASE WHEN pg_temp.skew_u01(lid, 36) < 0.15 THEN 0.9 ELSE 1 END, 2)
       END::numeric(14,2) AS pretax_subtotal
FROM (
    SELECT o.order_type, o.order_number, l.line_no, l.lid, l.p,
           round((20 + 380 * power(pg_temp.skew_u01(l.p, 33), 2))::numeric, 0) AS price,
           CASE WHEN pg_temp.skew_u01(l.p, 34) < 0.15      -- sold by weight
                THEN round(least(20, greatest(0.5, l.q))::numeric, 2)
                ELSE least(20, greatest(1, round(l.q)))::numeric
           END AS qty
    FROM cosmos_sync.skew_ord o,
         LATERAL (
             SELECT n AS line_no, o.oid * 16 + n AS lid,
                    1 + floor(800 * power(pg_temp.skew_u01(o.oid * 16 + n, 32), 2.0))::int AS p,
                    -- raw quantity; 3% of lines are bulk buys
                    o.qf * (0.4 + 1.2 * pg_temp.skew_u01(o.oid * 16 + n, 31))
                         * CASE WHEN pg_temp.skew_u01(o.oid * 16 + n, 37) < 0.03 THEN 2.5 ELSE 1 END AS q
             FROM generate_series(1, CASE WHEN pg_temp.skew_u01(o.oid, 27) < 0.01 THEN 0
                                          ELSE 3 + floor(10 * power(pg_temp.skew_u01(o.oid, 28), 0.9))::int
                                     END) AS n
         ) l
) s;
DROP TABLE cosmos_sync.skew_ord;

-------------------------------------------------------------------------------
-- keys and statistics
-------------------------------------------------------------------------------
ALTER TABLE cosmos_sync.customers ADD PRIMARY KEY (customer_code);
ALTER TABLE cosmos_sync.sales_orders ADD PRIMARY KEY (order_type, order_number);
ALTER TABLE cosmos_sync.sales_order_lines ADD PRIMARY KEY (order_type, order_number, line_no);
ANALYZE cosmos_sync.customers;
ANALYZE cosmos_sync.sales_orders;
ANALYZE cosmos_sync.sales_order_lines;
DROP FUNCTION pg_temp.skew_u01(bigint, bigint);
COMMIT;

\set QUIET :skew_saved_quiet
\unset skew_saved_quiet
\set ECHO :skew_saved_echo
SELECT 'customers' AS table_name, count(*) AS row_count FROM cosmos_sync.customers
UNION ALL
SELECT 'sales_orders', count(*) FROM cosmos_sync.sales_orders
UNION ALL
SELECT 'sales_order_lines', count(*) FROM cosmos_sync.sales_order_lines;
