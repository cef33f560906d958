-- Plain views for BI tools (issue 13, item 4): beside each campaign and
-- segmentation materialized view, <view>_v is a plain view that drivers
-- listing only tables and views find, with numeric(18,2) money, and an ASCII
-- reason code that a WIN1252 client can read.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE SCHEMA bv;
CREATE ROLE ca_bv_reader;
CREATE ROLE ca_bv_other;
SELECT name, target_rows, monthly_rows
  FROM customer_analytics.create_campaign('p29', 'bv', source_schema => 'fx', readers => '{ca_bv_reader}');

-- what a JDBC driver lists: information_schema.tables has only the plain
-- views ('VIEW'); pgjdbc's getTables() reads pg_class.relkind, and asking for
-- {"TABLE","VIEW"} finds the plain views only
SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'bv' ORDER BY 1;
SELECT c.relname,
       CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                      WHEN 'i' THEN 'INDEX' END AS table_type,
       obj_description(c.oid, 'pg_class') LIKE 'For BI tools: %' AS bi_comment
  FROM pg_class c WHERE c.relnamespace = 'bv'::regnamespace ORDER BY 1;

-- the columns with their typmods, as getColumns() reports COLUMN_SIZE and
-- DECIMAL_DIGITS (information_schema: numeric_precision / numeric_scale)
SELECT column_name, data_type, numeric_precision, numeric_scale
  FROM information_schema.columns WHERE table_schema = 'bv' AND table_name = 'p29_targets_v' ORDER BY ordinal_position;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'bv.p29_monthly_v'::regclass AND a.attnum > 0 ORDER BY a.attnum;
-- the materialized views are unchanged: unconstrained numeric, Chinese label
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'bv.p29_targets'::regclass
   AND a.attname IN ('total_spend', 'pct_change', 'target_reason') ORDER BY a.attnum;

-- comments on every column (getColumns' REMARKS), all ASCII
SELECT c.relname, count(*) AS columns, count(col_description(c.oid, a.attnum)) AS commented,
       bool_and(col_description(c.oid, a.attnum) ~ '^[\x20-\x7e]*$') AS ascii_comments,
       obj_description(c.oid, 'pg_class') ~ '^[\x20-\x7e]*$' AS ascii_view_comment
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'bv'::regnamespace AND c.relkind = 'v' GROUP BY c.oid, c.relname ORDER BY 1;
SELECT col_description('bv.p29_targets_v'::regclass, 12) AS reason_code_comment;
SELECT col_description('bv.p29_targets_v'::regclass, 6) AS total_spend_comment;
SELECT col_description('bv.p29_monthly_v'::regclass, 6) AS first_month_comment;

-- same rows: money equal (the fixture's amounts have 2 decimals), pct_change
-- rounded to 2 decimals, the reason code beside each Chinese label
SELECT count(*) AS targets, count(*) FILTER (WHERE v.total_spend = m.total_spend AND v.base_sales = m.base_sales
                                             AND v.recent_sales = m.recent_sales
                                             AND v.avg_ticket_size = m.avg_ticket_size) AS money_equal,
       count(*) FILTER (WHERE v.pct_change IS NOT DISTINCT FROM round(m.pct_change, 2)) AS pct_rounded
  FROM bv.p29_targets m JOIN bv.p29_targets_v v USING (customer_code);
SELECT m.target_reason, v.target_reason_code, count(*)
  FROM bv.p29_targets m JOIN bv.p29_targets_v v USING (customer_code) GROUP BY 1, 2 ORDER BY 2;
SELECT customer_code, pct_change, target_reason_code FROM bv.p29_targets_v ORDER BY 1;
SELECT (SELECT count(*) FROM bv.p29_monthly m NATURAL JOIN bv.p29_monthly_v v) AS sheet_rows_equal,
       (SELECT count(*) FROM bv.p29_monthly) AS sheet_rows;

-- a reader named in readers reads the plain views; another role does not
SELECT v, has_table_privilege('ca_bv_reader', v, 'SELECT') AS reader,
       has_table_privilege('ca_bv_other', v, 'SELECT') AS other
  FROM unnest(ARRAY['bv.p29_targets_v', 'bv.p29_monthly_v']) v;
SET ROLE ca_bv_reader;
SELECT count(*) AS reader_targets FROM bv.p29_targets_v;
SELECT count(*) AS reader_sheet FROM bv.p29_monthly_v;
RESET ROLE;
-- not a reader: no USAGE on the schema, no SELECT on the views
SET ROLE ca_bv_other;
SELECT count(*) FROM bv.p29_targets_v;
RESET ROLE;

-- a WIN1252 client: the Chinese label cannot be sent, the plain view can
SET client_encoding = 'WIN1252';
SELECT customer_code, target_reason FROM bv.p29_targets ORDER BY 1;
SELECT * FROM bv.p29_targets_v ORDER BY customer_code;
SELECT customer_code, trade_name, rev_2025_09, rev_2026_01 FROM bv.p29_monthly_v ORDER BY 1;
SELECT a.attname, col_description(a.attrelid, a.attnum) IS NOT NULL AS remark
  FROM pg_attribute a WHERE a.attrelid = 'bv.p29_targets_v'::regclass AND a.attnum IN (1, 12);
RESET client_encoding;

-- a refresh goes through the plain views (they read the materialized views)
SELECT target_rows FROM customer_analytics.refresh_campaign('p29');
SELECT count(*) AS plain_targets FROM bv.p29_targets_v;

-- a new revenue_window rebuilds the sheet and its plain view: new columns,
-- comments and grants; readers changed: grants follow on the plain views
SELECT monthly_rows FROM customer_analytics.alter_campaign('p29', revenue_window => '[2025-10-01,2025-12-31]',
                                                           readers => '{ca_bv_other}');
SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
  FROM pg_attribute a WHERE a.attrelid = 'bv.p29_monthly_v'::regclass AND a.attname LIKE 'rev%' ORDER BY a.attnum;
SELECT v, has_table_privilege('ca_bv_reader', v, 'SELECT') AS old_reader,
       has_table_privilege('ca_bv_other', v, 'SELECT') AS new_reader
  FROM unnest(ARRAY['bv.p29_targets_v', 'bv.p29_monthly_v']) v;
SELECT (SELECT count(*) FROM bv.p29_monthly m NATURAL JOIN bv.p29_monthly_v v) AS sheet_rows_equal;

-- add_bi_views() (for campaigns built before 1.5) recreates a missing one
DROP VIEW bv.p29_targets_v;
SELECT customer_analytics.add_bi_views();
SELECT customer_analytics.add_bi_views();
SELECT has_table_privilege('ca_bv_other', 'bv.p29_targets_v', 'SELECT') AS regranted;

-- segmentations: four plain views
SELECT name, member_rows FROM customer_analytics.create_segmentation('s29', 'bv', k => 2, segment => 'all', k_to => 3,
                                                  silhouette_sample => 0, readers => '{ca_bv_reader}',
                                                  source_schema => 'fx');
SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'bv' AND table_name LIKE 's29%' ORDER BY 1;
SELECT c.relname, count(*) AS columns, count(col_description(c.oid, a.attnum)) AS commented,
       has_table_privilege('ca_bv_reader', c.oid, 'SELECT') AS reader
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'bv'::regnamespace AND c.relkind = 'v' AND c.relname LIKE 's29%' GROUP BY c.oid, c.relname ORDER BY 1;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'bv.s29_members_v'::regclass AND a.attname IN ('cluster', 'total_spend', 'ticket_size')
 ORDER BY a.attnum;
SELECT count(*) AS members, count(*) FILTER (WHERE v.cluster = m.cluster AND v.total_spend = m.total_spend
                                             AND v.ticket_size = round(m.ticket_size, 2)) AS equal
  FROM bv.s29_members m JOIN bv.s29_members_v v USING (customer_code);
SELECT customer_analytics.drop_segmentation('s29');

-- drop: a user's view on a plain view stops it (RESTRICT, as on the
-- materialized views); then the plain views go with the campaign
CREATE VIEW bv.my_dashboard AS SELECT customer_code FROM bv.p29_targets_v;
SELECT customer_analytics.drop_campaign('p29');
DROP VIEW bv.my_dashboard;
SELECT customer_analytics.drop_campaign('p29');
SELECT count(*) AS relations_in_bv FROM pg_class WHERE relnamespace = 'bv'::regnamespace;
DROP SCHEMA bv;
DROP ROLE ca_bv_reader;
DROP ROLE ca_bv_other;
