-- Rolling windows (issue 13, item 2): a campaign's windows relative to the
-- refresh date.  "Today" is pinned with customer_analytics.as_of_date so
-- that this suite never depends on the real date.
SET client_min_messages = warning;
CREATE SCHEMA rw;
CREATE ROLE ca_rw_reader;
SET customer_analytics.as_of_date = '2026-01-07';

-- spend in the last 12 months, low tickets in the last 4 months, base = the
-- 2 months before the last 2 full months, recent = the last 2 full months,
-- sheet = the last 4 full months plus the month to date
SELECT name, target_rows, monthly_rows FROM customer_analytics.create_campaign('roll', 'rw', source_schema => 'fx',
    readers => '{ca_rw_reader}', rolling => '{"as_of": "today",
      "spend_window":      {"from": "as_of -12 months +1 day",          "to": "as_of"},
      "low_ticket_window": {"from": "as_of -4 months +1 day",           "to": "as_of"},
      "base_window":       {"from": "month_start -4 months",            "to": "month_start -2 months -1 day"},
      "recent_window":     {"from": "month_start -2 months",            "to": "month_start -1 day"},
      "revenue_window":    {"from": "month_start -4 months",            "to": "as_of"}}');
-- a campaign with the notebook's fixed dates, unchanged
SELECT name, target_rows, monthly_rows FROM customer_analytics.create_campaign('fixd', 'rw', source_schema => 'fx');

-- the resolved windows
SELECT name, rolling IS NOT NULL AS rolling, as_of, spend_window, low_ticket_window, base_window, recent_window,
       revenue_window, monthly_long_view
  FROM customer_analytics.list_campaigns() WHERE view_schema = 'rw';

-- what each build made: materialized views, plain _v views, unique indexes
SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'rw'::regnamespace ORDER BY 1;
SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'rw' AND indexname LIKE '%long%' ORDER BY 1;
SELECT has_table_privilege('ca_rw_reader', 'rw.roll_monthly_long', 'SELECT') AS reader_long,
       has_table_privilege('ca_rw_reader', 'rw.roll_monthly_long_v', 'SELECT') AS reader_long_v;

-- the targets are target_customers() with the resolved windows (hand-checked
-- windows: spend 2025-01-08..2026-01-07, low tickets 2025-09-08..2026-01-07,
-- base 2025-09-01..2025-10-31, recent 2025-11-01..2025-12-31)
CREATE TEMP TABLE jan AS SELECT * FROM customer_analytics.target_customers(source_schema => 'fx',
    spend_window => '[2025-01-08,2026-01-07]', low_ticket_window => '[2025-09-08,2026-01-07]',
    base_window => '[2025-09-01,2025-10-31]', recent_window => '[2025-11-01,2025-12-31]');
SELECT (SELECT count(*) FROM (SELECT * FROM rw.roll_targets EXCEPT ALL SELECT * FROM jan) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM jan EXCEPT ALL SELECT * FROM rw.roll_targets) b) AS missing;
SELECT customer_code, total_spend, low_ticket_count, base_sales, recent_sales, target_reason
  FROM rw.roll_targets ORDER BY 1;
-- the fixed campaign is the notebook's
SELECT (SELECT count(*) FROM (SELECT * FROM rw.fixd_targets EXCEPT ALL
                              SELECT * FROM customer_analytics.target_customers(source_schema => 'fx')) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM customer_analytics.target_customers(source_schema => 'fx') EXCEPT ALL
                              SELECT * FROM rw.fixd_targets) b) AS missing;

-- the dated sheet and the long form: same cells
SELECT attname FROM pg_attribute WHERE attrelid = 'rw.roll_monthly'::regclass AND attnum > 0 ORDER BY attnum;
SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
  FROM pg_attribute a WHERE a.attrelid = 'rw.roll_monthly_long'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'rw.roll_monthly_long_v'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT count(*) AS cells, count(*) FILTER (WHERE l.revenue = CASE l.month WHEN '2025-09-01' THEN w.rev_2025_09
                                                   WHEN '2025-10-01' THEN w.rev_2025_10 WHEN '2025-11-01' THEN w.rev_2025_11
                                                   WHEN '2025-12-01' THEN w.rev_2025_12 WHEN '2026-01-01' THEN w.rev_2026_01 END) AS equal
  FROM rw.roll_monthly_long l JOIN rw.roll_monthly w USING (customer_code);
SELECT * FROM rw.roll_monthly_long WHERE customer_code = '0001009' ORDER BY month;

-- the fingerprint holds the resolved windows: it moves with as_of for the
-- rolling campaign only, so the incremental refresh starts over in full
SELECT string_agg(c.name || '=' || customer_analytics._campaign_fingerprint(c), ',' ORDER BY c.name) AS jan_fp
  FROM customer_analytics.campaigns c WHERE c.view_schema = 'rw' \gset
SET customer_analytics.as_of_date = '2026-02-10';
SELECT c.name, position(c.name || '=' || customer_analytics._campaign_fingerprint(c) IN :'jan_fp') > 0 AS same_fingerprint
  FROM customer_analytics.campaigns c WHERE c.view_schema = 'rw' ORDER BY 1;

-- a month later: users built on the long form and on the sheet
CREATE VIEW rw.my_long AS SELECT customer_code, month, revenue FROM rw.roll_monthly_long;
CREATE VIEW rw.my_sheet AS SELECT customer_code, rev_2025_12 FROM rw.roll_monthly;
-- a plain REFRESH of the sheet cannot change its columns: refused
REFRESH MATERIALIZED VIEW rw.roll_targets;
SELECT public.err('REFRESH MATERIALIZED VIEW rw.roll_monthly');
-- refresh_campaign would rebuild it: refused while my_sheet depends on it, nothing changed
SELECT public.err($$SELECT customer_analytics.refresh_campaign('roll')$$);
SELECT count(*) AS sheet_columns FROM pg_attribute WHERE attrelid = 'rw.roll_monthly'::regclass AND attname LIKE 'rev%';
-- the way through: build on the long form (or drop the view), then refresh
DROP VIEW rw.my_sheet;
SET client_min_messages = notice;
SELECT target_rows, monthly_rows FROM customer_analytics.refresh_campaign('roll');
SET client_min_messages = warning;
SELECT name, as_of, spend_window, low_ticket_window, base_window, recent_window, revenue_window
  FROM customer_analytics.list_campaigns() WHERE view_schema = 'rw';
-- the sheet has the new months; its plain view and grants are back
SELECT attname FROM pg_attribute WHERE attrelid = 'rw.roll_monthly'::regclass AND attname LIKE 'rev%' ORDER BY attnum;
SELECT attname FROM pg_attribute WHERE attrelid = 'rw.roll_monthly_v'::regclass AND attname LIKE 'rev%' ORDER BY attnum;
SELECT col_description('rw.roll_monthly'::regclass, 10) AS last_month_comment;
SELECT has_table_privilege('ca_rw_reader', 'rw.roll_monthly', 'SELECT') AS reader_sheet,
       has_table_privilege('ca_rw_reader', 'rw.roll_monthly_v', 'SELECT') AS reader_sheet_v;
-- the long form kept its columns, and the view on it works, with the new months
SELECT attname FROM pg_attribute WHERE attrelid = 'rw.roll_monthly_long'::regclass AND attnum > 0 ORDER BY attnum;
SELECT min(month), max(month), count(DISTINCT month) AS months FROM rw.my_long;
-- targets with the windows of 2026-02-10: spend 2025-02-11..2026-02-10, low
-- tickets 2025-10-11..2026-02-10, base 2025-10-01..2025-11-30, recent 2025-12-01..2026-01-31
CREATE TEMP TABLE feb AS SELECT * FROM customer_analytics.target_customers(source_schema => 'fx',
    spend_window => '[2025-02-11,2026-02-10]', low_ticket_window => '[2025-10-11,2026-02-10]',
    base_window => '[2025-10-01,2025-11-30]', recent_window => '[2025-12-01,2026-01-31]');
SELECT (SELECT count(*) FROM (SELECT * FROM rw.roll_targets EXCEPT ALL SELECT * FROM feb) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM feb EXCEPT ALL SELECT * FROM rw.roll_targets) b) AS missing;
SELECT customer_code, total_spend, low_ticket_count, base_sales, recent_sales, target_reason
  FROM rw.roll_targets ORDER BY 1;
SELECT count(*) AS cells, count(*) FILTER (WHERE l.revenue = CASE l.month WHEN '2025-10-01' THEN w.rev_2025_10
                                                   WHEN '2025-11-01' THEN w.rev_2025_11 WHEN '2025-12-01' THEN w.rev_2025_12
                                                   WHEN '2026-01-01' THEN w.rev_2026_01 WHEN '2026-02-01' THEN w.rev_2026_02 END) AS equal
  FROM rw.roll_monthly_long l JOIN rw.roll_monthly w USING (customer_code);
-- the fixed campaign did not move
SELECT attname FROM pg_attribute WHERE attrelid = 'rw.fixd_monthly'::regclass AND attname LIKE 'rev%' ORDER BY attnum;
SELECT target_rows FROM customer_analytics.refresh_campaign('fixd');
SELECT name, rolling, as_of, spend_window, revenue_window FROM customer_analytics.list_campaigns() WHERE name = 'fixd';

-- the same month again: no rebuild (same sheet), a plain REFRESH works
SELECT 'rw.roll_monthly'::regclass::oid AS sheet_oid \gset
SET customer_analytics.as_of_date = '2026-02-20';
SELECT target_rows FROM customer_analytics.refresh_campaign('roll');
SELECT 'rw.roll_monthly'::regclass::oid = :sheet_oid AS same_sheet;
REFRESH MATERIALIZED VIEW CONCURRENTLY rw.roll_monthly;
SELECT col_description('rw.roll_monthly'::regclass, 10) AS last_month_comment;

-- a pinned as_of: the windows stop moving, whatever the date
SELECT target_rows FROM customer_analytics.alter_campaign('roll',
    rolling => (SELECT rolling FROM customer_analytics.campaigns WHERE name = 'roll') || '{"as_of": "2026-01-07"}');
SET customer_analytics.as_of_date = '2026-06-01';
SELECT name, as_of, spend_window, revenue_window FROM customer_analytics.list_campaigns() WHERE name = 'roll';
SELECT attname FROM pg_attribute WHERE attrelid = 'rw.roll_monthly'::regclass AND attname LIKE 'rev%' ORDER BY attnum;
SELECT (SELECT count(*) FROM (SELECT * FROM rw.roll_targets EXCEPT ALL SELECT * FROM jan) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM jan EXCEPT ALL SELECT * FROM rw.roll_targets) b) AS missing;
-- alter refuses too when the months change while a view depends on the sheet
CREATE VIEW rw.my_sheet AS SELECT customer_code, rev_2025_09 FROM rw.roll_monthly;
SELECT public.err($$SELECT customer_analytics.alter_campaign('roll',
    rolling => (SELECT rolling FROM customer_analytics.campaigns WHERE name = 'roll') || '{"as_of": "2026-02-10"}')$$);
SELECT rolling ->> 'as_of' AS still_pinned_to FROM customer_analytics.campaigns WHERE name = 'roll';
-- back to fixed windows ('null'): the notebook's, the same months: the sheet
-- and the view on it are kept
SELECT target_rows FROM customer_analytics.alter_campaign('roll', rolling => 'null');
SELECT name, rolling, as_of, revenue_window FROM customer_analytics.list_campaigns() WHERE name = 'roll';
SELECT count(*) AS my_sheet_rows FROM rw.my_sheet;
DROP VIEW rw.my_sheet;

-- bad specs are refused, each with a hint
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '[]')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"as_of": "today"}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend": {"from": "as_of", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"as_of": "yesterday", "spend_window": {"from": "as_of", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"as_of": "2026-02-30", "spend_window": {"from": "as_of", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend_window": "last 12 months"}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend_window": {"from": "now -1 day", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend_window": {"from": "as_of -12 parsecs", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend_window": {"from": "as_of -3 hours", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend_window": {"from": "as_of", "to": "as_of -1 day"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"revenue_window": {"from": "month_start -20 years", "to": "as_of"}}')$$);
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend_window": {"from": "as_of -100000 years", "to": "as_of"}}')$$);
SET customer_analytics.as_of_date = 'soon';
SELECT public.err($$SELECT customer_analytics.create_campaign('bad', 'rw', source_schema => 'fx', rolling => '{"spend_window": {"from": "as_of", "to": "as_of"}}')$$);
RESET customer_analytics.as_of_date;
SELECT count(*) AS bad_campaigns FROM customer_analytics.campaigns WHERE name = 'bad';

-- drop removes the long form and its plain view too; the user's view on it stops the drop
SELECT public.err($$SELECT customer_analytics.drop_campaign('roll')$$);
DROP VIEW rw.my_long;
SELECT customer_analytics.drop_campaign('roll');
SELECT customer_analytics.drop_campaign('fixd');
SELECT relname FROM pg_class WHERE relnamespace = 'rw'::regnamespace ORDER BY 1;
DROP SCHEMA rw;
DROP ROLE ca_rw_reader;
RESET client_min_messages;
