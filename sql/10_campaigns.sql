-- Campaigns: catalog, builder, refresh, alter, drop.
CREATE SCHEMA bi;
CREATE ROLE ca_bi_reader;
CREATE ROLE ca_bi_other;

-- the notebook's campaign on the fixture
SELECT name, view_schema, source_schema, routes, revenue_window, readers, target_rows, monthly_rows
  FROM customer_analytics.create_campaign('promo2', 'bi', source_schema => 'fx', readers => '{ca_bi_reader}');
SELECT name, view_schema, targets_view, monthly_view, schedule, target_rows, monthly_rows
  FROM customer_analytics.list_campaigns();

-- the catalog survives pg_dump
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'customer_analytics';

-- the targets view holds exactly what target_customers() returns
SELECT count(*) AS differences FROM (
  (SELECT * FROM bi.promo2_targets EXCEPT SELECT * FROM customer_analytics.target_customers(source_schema => 'fx'))
  UNION ALL
  (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx') EXCEPT SELECT * FROM bi.promo2_targets)) d;

-- the monthly sheet: notebook columns, one numeric column per month, January partial
-- (materialized views are not in information_schema: BI drivers read pg_attribute)
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'bi.promo2_monthly'::regclass AND attnum > 0 ORDER BY attnum;
SELECT * FROM bi.promo2_monthly ORDER BY customer_code;

-- the sheet is the pivot of campaign_monthly_revenue(): same cells, long form
SELECT count(*) AS cells,
       count(*) FILTER (WHERE l.revenue = CASE l.month WHEN '2025-09-01' THEN w.rev_2025_09
                                                        WHEN '2025-10-01' THEN w.rev_2025_10
                                                        WHEN '2025-11-01' THEN w.rev_2025_11
                                                        WHEN '2025-12-01' THEN w.rev_2025_12
                                                        WHEN '2026-01-01' THEN w.rev_2026_01 END) AS equal
  FROM customer_analytics.campaign_monthly_revenue('promo2') l JOIN bi.promo2_monthly w USING (customer_code);

-- comments on the views and on every column, for BI tools
SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
 WHERE c.relnamespace = 'bi'::regnamespace AND c.relkind = 'm' ORDER BY 1;
SELECT a.attname, col_description(a.attrelid, a.attnum)
  FROM pg_attribute a WHERE a.attrelid = 'bi.promo2_monthly'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT count(*) AS columns, count(col_description(a.attrelid, a.attnum)) AS commented
  FROM pg_attribute a WHERE a.attrelid = 'bi.promo2_targets'::regclass AND a.attnum > 0;

-- unique indexes, so REFRESH ... CONCURRENTLY works
SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'bi' ORDER BY 1;

-- SELECT for the readers only
SELECT has_schema_privilege('ca_bi_reader', 'bi', 'USAGE') AS reader_schema,
       has_table_privilege('ca_bi_reader', 'bi.promo2_monthly', 'SELECT') AS reader_monthly,
       has_table_privilege('ca_bi_reader', 'bi.promo2_targets', 'SELECT') AS reader_targets,
       has_table_privilege('ca_bi_other', 'bi.promo2_monthly', 'SELECT') AS other_monthly;

-- refresh picks up new data; CONCURRENTLY by default, plain on request
INSERT INTO fx.sales_orders VALUES ('SO', '2001', '0001015', 'K1', '20251201', 'Y'),
                                   ('SO', '2002', '0001015', 'K1', '20251202', 'Y'),
                                   ('SO', '2003', '0001015', 'K1', '20251203', 'Y');
INSERT INTO fx.sales_order_lines VALUES ('SO', '2001', 1, 'P1', 1, 900), ('SO', '2002', 1, 'P1', 1, 900),
                                        ('SO', '2003', 1, 'P1', 1, 900);
SELECT count(*) AS before_refresh FROM bi.promo2_targets;
SELECT target_rows, monthly_rows FROM customer_analytics.refresh_campaign('promo2');
SELECT customer_code, avg_ticket_size, rev_2025_12 FROM bi.promo2_monthly WHERE customer_code = '0001015';
SELECT target_rows FROM customer_analytics.refresh_campaign('promo2', concurrently => false);
SELECT refreshed_at IS NOT NULL AS recorded, refresh_ms >= 0 AS timed FROM customer_analytics.campaigns;
-- a plain REFRESH from any client reads the stored definition too
DELETE FROM fx.sales_order_lines WHERE order_number IN ('2001', '2002', '2003');
DELETE FROM fx.sales_orders WHERE order_number IN ('2001', '2002', '2003');
REFRESH MATERIALIZED VIEW CONCURRENTLY bi.promo2_targets;
REFRESH MATERIALIZED VIEW CONCURRENTLY bi.promo2_monthly;
SELECT count(*) AS after_plain_refresh FROM bi.promo2_monthly;

-- alter: a new pivot window rebuilds the monthly view, and says what changed
SELECT target_rows, monthly_rows FROM customer_analytics.alter_campaign('promo2',
    revenue_window => '[2025-10-15,2025-12-31]', min_spend => 1500, readers => '{ca_bi_other}');
SELECT attname FROM pg_attribute
 WHERE attrelid = 'bi.promo2_monthly'::regclass AND attname LIKE 'rev%' ORDER BY attnum;
SELECT col_description('bi.promo2_monthly'::regclass, 6) AS first_month_comment;
SELECT has_table_privilege('ca_bi_reader', 'bi.promo2_monthly', 'SELECT') AS old_reader,
       has_table_privilege('ca_bi_other', 'bi.promo2_monthly', 'SELECT') AS new_reader,
       has_table_privilege('ca_bi_other', 'bi.promo2_targets', 'SELECT') AS new_reader_targets;
SELECT indexname FROM pg_indexes WHERE schemaname = 'bi' AND tablename = 'promo2_monthly';
SELECT customer_code, rev_2025_10, rev_2025_11, rev_2025_12 FROM bi.promo2_monthly ORDER BY 1;
SELECT min_spend, revenue_window FROM customer_analytics.campaigns WHERE name = 'promo2';
-- nothing to change
SELECT target_rows FROM customer_analytics.alter_campaign('promo2', min_spend => 1500);

-- a second campaign in the same schema, with a quoted schema name
CREATE SCHEMA "BI Sheets; v2";
SELECT target_rows FROM customer_analytics.create_campaign('promo_k2', 'BI Sheets; v2', routes => '{K2}', source_schema => 'fx');
SELECT customer_code FROM "BI Sheets; v2".promo_k2_targets ORDER BY 1;

-- drop removes only the campaign's own views; a user's view on top stops it
CREATE VIEW bi.my_report AS SELECT customer_code FROM bi.promo2_monthly;
CREATE TABLE bi.unrelated (x int);
\set VERBOSITY terse
SELECT customer_analytics.drop_campaign('promo2');
\set VERBOSITY default
DROP VIEW bi.my_report;
SELECT customer_analytics.drop_campaign('promo2');
SELECT relname FROM pg_class WHERE relnamespace = 'bi'::regnamespace ORDER BY 1;
SELECT name FROM customer_analytics.list_campaigns();
SELECT customer_analytics.drop_campaign('promo_k2');
DROP SCHEMA "BI Sheets; v2";
DROP TABLE bi.unrelated;
REVOKE USAGE ON SCHEMA bi FROM ca_bi_reader, ca_bi_other;
DROP ROLE ca_bi_reader;
DROP ROLE ca_bi_other;
