-- A refresh after an aborted bulk write (issue 25): the rollup's triggers
-- wrote a dirty row per changed order, dead to everyone once the write
-- rolled back.  The refresh after it steps over them once; the next ones
-- must not visit them again (the prune of the dirty rows marks their index
-- entries dead by scanning the index, not the heap), whatever autovacuum
-- does (off here, so nothing else removes them).  Needs 00_setup (fx).
\set VERBOSITY terse
SET client_min_messages = warning;
-- 600 customers on route K1, four orders each over 2025, two lines each
SELECT public.erp_source('pd', 600, '{K1}', '2025-02-03', 300, 4, 1);
SELECT rollup_rows FROM customer_analytics.enable_rollup('pd');
DO $$ BEGIN
    EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = off)',
                   (SELECT customer_analytics._rollup_dirty_table(r.id) FROM customer_analytics.rollups r WHERE r.source_schema = 'pd'));
END $$;
CREATE SCHEMA pd_bi;
SELECT name FROM customer_analytics.create_campaign('pdc', 'pd_bi', routes => '{K1}', min_spend => 500,
    source_schema => 'pd');
SELECT target_rows FROM customer_analytics.refresh_campaign('pdc');

-- heap pages of the dirty table read since the mark
CREATE TEMP TABLE pd_mark (pages bigint);
CREATE FUNCTION pg_temp.pd_pages() RETURNS bigint LANGUAGE sql AS $$
    SELECT COALESCE(s.heap_blks_hit, 0) + COALESCE(s.heap_blks_read, 0)
      FROM pg_statio_user_tables s, customer_analytics.rollups r
     WHERE r.source_schema = 'pd' AND s.relid = customer_analytics._rollup_dirty_table(r.id)::regclass
$$;

-- the aborted bulk write: every line's amount, then ROLLBACK (2,400 dead
-- dirty rows, two per order)
BEGIN;
UPDATE pd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1;
ROLLBACK;
SELECT pg_relation_size(customer_analytics._rollup_dirty_table(r.id)) > 0 AS dead_rows_take_pages
  FROM customer_analytics.rollups r WHERE r.source_schema = 'pd';
-- the refresh after it: nothing changed for the campaign
SELECT target_rows FROM customer_analytics.refresh_campaign('pdc');
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'pdc' ORDER BY id DESC LIMIT 1;
-- the next refreshes read none of the dead rows' heap pages (a sequential
-- or bitmap scan of the prune read every one of them, at every refresh)
SELECT pg_stat_force_next_flush();
INSERT INTO pd_mark SELECT pg_temp.pd_pages();
SELECT target_rows FROM customer_analytics.refresh_campaign('pdc');
SELECT target_rows FROM customer_analytics.refresh_campaign('pdc');
SELECT pg_stat_force_next_flush();
SELECT pg_temp.pd_pages() - m.pages AS dirty_heap_pages_read FROM pd_mark m;
-- and what the prune must delete it still deletes: a committed change,
-- refreshed, leaves no dirty row behind
UPDATE pd.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number = '100';
SELECT target_rows FROM customer_analytics.refresh_campaign('pdc');
SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'pdc' ORDER BY id DESC LIMIT 1;
CREATE FUNCTION pg_temp.pd_dirty_rows() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s',
                   (SELECT customer_analytics._rollup_dirty_table(r.id) FROM customer_analytics.rollups r WHERE r.source_schema = 'pd'))
       INTO n;
    RETURN n;
END $$;
SELECT pg_temp.pd_dirty_rows() AS dirty_rows_left;

SELECT customer_analytics.drop_campaign('pdc');
SELECT customer_analytics.drop_rollup('pd');
DROP SCHEMA pd_bi CASCADE;
DROP SCHEMA pd CASCADE;
