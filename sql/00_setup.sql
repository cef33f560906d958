-- Extension install and the hand-built fixture shared by the targeting suites.
-- Every customer below exists to pin one rule of the notebook's funnel; the
-- expected results in the later suites were worked out by hand from this data.
\set VERBOSITY terse
CREATE EXTENSION customer_analytics;
SELECT extname, extversion, nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'customer_analytics';

-- err(statement): run a statement and report what it raised, on one line:
-- SQLSTATE | message | DETAIL | HINT (or 'no error').  The error suites use it.
CREATE FUNCTION public.err(statement text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    state text; message text; detail text; hint text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN state || ' | ' || message
        || CASE WHEN detail <> '' THEN ' | DETAIL: ' || detail ELSE '' END
        || CASE WHEN hint <> '' THEN ' | HINT: ' || hint ELSE '' END;
END $$;

-- erp_source(target, customers, routes, first_day, days, orders, extra):
-- a generated ERP source for the suites that need volume (the delta
-- refresh's proportionality suites): the three tables shaped as fx's, with
-- their primary keys; customer c (codes '00001'..) on routes[1 + c % n],
-- with orders + c % extra orders (numbered c * 100 + k) spread over days
-- days from first_day, two lines each, amounts between 150 and 1,950.
CREATE FUNCTION public.erp_source(target text, customers int, routes text[], first_day date, days int,
                                  orders int, extra int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE SCHEMA %I', target);
    EXECUTE format('CREATE TABLE %1$I.customers (LIKE fx.customers, PRIMARY KEY (customer_code));'
                   'CREATE TABLE %1$I.sales_orders (LIKE fx.sales_orders, PRIMARY KEY (order_type, order_number));'
                   'CREATE TABLE %1$I.sales_order_lines (LIKE fx.sales_order_lines, PRIMARY KEY (order_type, order_number, line_no))',
                   target);
    EXECUTE format('INSERT INTO %I.customers'
                   ' SELECT lpad(c::text, 5, ''0''), ''Customer '' || c, ($1)[1 + c %% cardinality($1)], ''addr'', NULL, ''00'' || c %% 4'
                   '   FROM generate_series(1, $2) c', target)
      USING routes, customers;
    EXECUTE format('INSERT INTO %I.sales_orders'
                   ' SELECT ''SO'', (c * 100 + k)::text, lpad(c::text, 5, ''0''), ''K1'','
                   '        to_char($1 + ((k * 37 + c * 11) %% $2), ''YYYYMMDD''), ''Y'''
                   '   FROM generate_series(1, $3) c, generate_series(0, $4 - 1 + c %% $5) k', target)
      USING first_day, days, customers, orders, extra;
    EXECUTE format('INSERT INTO %1$I.sales_order_lines'
                   ' SELECT o.order_type, o.order_number, l, ''P'' || l, 1,'
                   '        round((150 + (o.order_number::bigint * 7919 %% 1800) + l * 0.25)::numeric, 2)'
                   '   FROM %1$I.sales_orders o, generate_series(1, 2) l', target);
END $$;

-- campaign_differences(campaign): a campaign's views against a recompute
-- from its source tables (row text, EXCEPT ALL both ways), with its stored
-- parameters: the targets view against target_customers(), the long form
-- against monthly_revenue() of those targets, the sheet against its own
-- definition (which reads the targets view).  Run as the campaign's owner.
-- The delta refresh suites use it after each refresh.
CREATE FUNCTION public.campaign_differences(campaign text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    c customer_analytics.campaigns := (SELECT x FROM customer_analytics.campaigns x WHERE x.name = campaign);
    targets text := format('%I.%I', c.view_schema, c.name || '_targets');
    t bigint; l bigint; s bigint;
BEGIN
    SET LOCAL customer_analytics.use_rollup = off;
    CREATE TEMP TABLE campaign_differences_full ON COMMIT DROP AS
    SELECT * FROM customer_analytics.target_customers(routes => c.routes, spend_window => c.spend_window,
        min_spend => c.min_spend, low_ticket_window => c.low_ticket_window, low_ticket_below => c.low_ticket_below,
        min_low_tickets => c.min_low_tickets, base_window => c.base_window, recent_window => c.recent_window,
        decline_pct => c.decline_pct, exclude_closed => c.exclude_closed, route_source => c.route_source,
        source_schema => c.source_schema);
    CREATE TEMP TABLE campaign_differences_months ON COMMIT DROP AS
    SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM campaign_differences_full),
                                                     c.revenue_window, c.source_schema);
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM %1$s x EXCEPT ALL SELECT x::text FROM campaign_differences_full x)'
                   ' UNION ALL (SELECT x::text FROM campaign_differences_full x EXCEPT ALL SELECT x::text FROM %1$s x)) d',
                   targets) INTO t;
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM %1$I.%2$I x EXCEPT ALL SELECT x::text FROM campaign_differences_months x)'
                   ' UNION ALL (SELECT x::text FROM campaign_differences_months x EXCEPT ALL SELECT x::text FROM %1$I.%2$I x)) d',
                   c.view_schema, c.name || '_monthly_long') INTO l;
    EXECUTE format('SELECT count(*) FROM ((SELECT x::text FROM %1$I.%2$I x EXCEPT ALL SELECT x::text FROM (%3$s) x)'
                   ' UNION ALL (SELECT x::text FROM (%3$s) x EXCEPT ALL SELECT x::text FROM %1$I.%2$I x)) d',
                   c.view_schema, c.name || '_monthly',
                   rtrim(pg_get_viewdef(format('%I.%I', c.view_schema, c.name || '_monthly')::regclass), ';')) INTO s;
    DROP TABLE campaign_differences_full, campaign_differences_months;
    EXECUTE format('SELECT format(''%%s targets; rows differing: targets %%s, long form %%s, sheet %%s'', count(*), $1, $2, $3)'
                   ' FROM %s', targets) INTO STRICT targets USING t, l, s;
    RETURN targets;
END $$;

CREATE SCHEMA fx;
-- a raw sync table: no primary key, as the ERP sync delivers it
CREATE TABLE fx.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE fx.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1));
CREATE TABLE fx.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2));

INSERT INTO fx.customers VALUES
 ('0001001', 'C1 spend exactly 1000',      'K1', 'addr 1',  NULL,       '002'),
 ('0001002', 'C2 spend 999.99',            'K1', 'addr 2',  NULL,       '002'),
 ('0001003', 'C3 order of exactly 3000',   'K2', 'addr 3',  NULL,       '003'),
 ('0001004', 'C4 no base sales',           'PS', 'addr 4',  NULL,       '005'),
 ('0001005', 'C5 decline exactly 30%',     'K1', 'addr 5',  NULL,       NULL),
 ('0001006', 'C6 decline 30.01%',          'K1', 'addr 6',  '',         '002'),
 ('0001007', 'C7 unconfirmed orders',      'K2', 'addr 7',  NULL,       '003'),
 ('0001008', 'C8 orders without amounts',  'PS', 'addr 8',  NULL,       '005'),
 ('0001009', 'C9 window edges',            'K1', 'addr 9',  NULL,       '002'),
 ('0001010', 'C10 orders on route K1',     'T1', 'addr 10', NULL,       '007'),
 ('0001011', 'C11 closed',                 'K1', 'addr 11', '20251215', '002'),
 ('0001012', 'C12 closure_date empty',     'K2', 'addr 12', '',         '003'),
 ('0012',    'C14 short code 0012',        'K1', 'addr 14', NULL,       '002'),
 ('0001015', 'C15 no orders',              'K1', 'addr 15', NULL,       '002'),
 ('0001016', 'C16 other route',            'T2', 'addr 16', NULL,       '009');

-- orders: (number, customer, route, date, confirmed)
INSERT INTO fx.sales_orders
SELECT 'SO', n, c, r, d, y FROM (VALUES
 ('1001', '0001001', 'K1', '20250920', 'Y'), ('1002', '0001001', 'K1', '20251005', 'Y'),
 ('1003', '0001001', 'T9', '20251110', 'Y'),
 ('1011', '0001002', 'K1', '20250920', 'Y'), ('1012', '0001002', 'K1', '20251005', 'Y'),
 ('1013', '0001002', 'K1', '20251110', 'Y'),
 ('1021', '0001003', 'K2', '20251001', 'Y'), ('1022', '0001003', 'K2', '20251002', 'Y'),
 ('1023', '0001003', 'K2', '20251003', 'Y'), ('1024', '0001003', 'K2', '20251105', 'Y'),
 ('1031', '0001004', 'PS', '20251101', 'Y'), ('1032', '0001004', 'PS', '20251115', 'Y'),
 ('1033', '0001004', 'PS', '20251201', 'Y'),
 ('1041', '0001005', 'K1', '20250901', 'Y'), ('1042', '0001005', 'K1', '20251101', 'Y'),
 ('1051', '0001006', 'K1', '20250901', 'Y'), ('1052', '0001006', 'K1', '20251101', 'Y'),
 ('1061', '0001007', 'K2', '20250301', 'Y'), ('1062', '0001007', 'K2', '20251001', 'N'),
 ('1063', '0001007', 'K2', '20251002', NULL), ('1064', '0001007', 'K2', '20251003', 'N'),
 ('1065', '0001007', 'K2', '2025-1-5', 'N'),  -- malformed but unconfirmed: never read
 ('1071', '0001008', 'PS', '20251001', 'Y'), ('1072', '0001008', 'PS', '20251002', 'Y'),
 ('1073', '0001008', 'PS', '20251003', 'Y'), ('1074', '0001008', 'PS', '20251004', 'Y'),
 ('1081', '0001009', 'K1', '20241231', 'Y'), ('1082', '0001009', 'K1', '20251231', 'Y'),
 ('1083', '0001009', 'K1', '20260101', 'Y'), ('1084', '0001009', 'K1', '20260107', 'Y'),
 ('1085', '0001009', 'K1', '20260108', 'Y'),
 ('1091', '0001010', 'K1', '20251101', 'Y'), ('1092', '0001010', 'K1', '20251102', 'Y'),
 ('1093', '0001010', 'K1', '20251103', 'Y'),
 ('1101', '0001011', 'K1', '20251101', 'Y'), ('1102', '0001011', 'K1', '20251102', 'Y'),
 ('1103', '0001011', 'K1', '20251103', 'Y'),
 ('1111', '0001012', 'K2', '20251101', 'Y'), ('1112', '0001012', 'K2', '20251102', 'Y'),
 ('1113', '0001012', 'K2', '20251103', 'Y'),
 ('1121', '0012',    'K1', '20251101', 'Y'), ('1122', '0012',    'K1', '20251102', 'Y'),
 ('1123', '0012',    'K1', '20251103', 'Y'),
 ('1124', '12',      'K1', '20251104', 'Y'),  -- not customer 0012
 ('1131', NULL,      'K1', '20251001', 'Y'),  -- no customer at all
 ('1141', '0001016', 'T2', '20251001', 'Y')
) AS o(n, c, r, d, y);

-- lines: (number, amounts in line order); 1072 has no lines at all
INSERT INTO fx.sales_order_lines
SELECT 'SO', n, ord, 'P' || ord, 1, amt
  FROM (VALUES
 ('1001', ARRAY[200, 100]), ('1002', ARRAY[300]), ('1003', ARRAY[400]),
 ('1011', ARRAY[333.33]), ('1012', ARRAY[333.33]), ('1013', ARRAY[333.33]),
 ('1021', ARRAY[1000, 2000]), ('1022', ARRAY[2999.99]), ('1023', ARRAY[100]), ('1024', ARRAY[5000]),
 ('1031', ARRAY[1000]), ('1032', ARRAY[1000]), ('1033', ARRAY[600, 400]),
 ('1041', ARRAY[1000]), ('1042', ARRAY[700]),
 ('1051', ARRAY[10000]), ('1052', ARRAY[6999]),
 ('1061', ARRAY[2000]), ('1062', ARRAY[500]), ('1063', ARRAY[500]), ('1064', ARRAY[500]), ('1065', ARRAY[10]),
 ('1071', ARRAY[5000]), ('1073', ARRAY[NULL, NULL]::numeric[]), ('1074', ARRAY[100, NULL]),
 ('1081', ARRAY[5000]), ('1082', ARRAY[1000]), ('1083', ARRAY[500]), ('1084', ARRAY[600]), ('1085', ARRAY[700]),
 ('1091', ARRAY[1000]), ('1092', ARRAY[1000]), ('1093', ARRAY[1000]),
 ('1101', ARRAY[500]), ('1102', ARRAY[500]), ('1103', ARRAY[500]),
 ('1111', ARRAY[500]), ('1112', ARRAY[500]), ('1113', ARRAY[500]),
 ('1121', ARRAY[1000]), ('1122', ARRAY[1000]), ('1123', ARRAY[1000]), ('1124', ARRAY[50000]),
 ('1131', ARRAY[100]), ('1141', ARRAY[9000])
) AS l(n, amounts), unnest(amounts) WITH ORDINALITY AS u(amt, ord);

SELECT count(*) AS customers FROM fx.customers;
SELECT count(*) AS orders FROM fx.sales_orders;
SELECT count(*) AS lines, count(pretax_subtotal) AS lines_with_amount FROM fx.sales_order_lines;
