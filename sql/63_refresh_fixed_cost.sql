-- The fixed cost of a campaign's delta refresh (issue 25).  With no change
-- since the state's snapshot, none of the delta's statements is planned or
-- run (the guard's second column: nothing to do) and only the scratch table
-- of the changed customers is created; a refresh's scratch tables do not
-- set off the rollup's DDL watch (its catalog queries); the recorded row
-- counts of the targets view and the sheet are kept from the last refresh
-- plus what _matview_apply added, not counted again, and equal count(*) of
-- the views after deltas that add and remove targets, after a REFRESH by
-- hand (which writes a new version of the view's catalog row: counted
-- again) and after a refresh rolled back to a savepoint.  Calls are
-- counted with pg_stat_get_xact_function_calls (track_functions = all) in
-- the refresh's own transaction.  After each refresh every view equals a
-- recompute from the source tables.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_fc_analyst;
-- 400 customers, half of them on the campaign's routes K1/K2; customer c
-- has 3 + c % 4 orders over 2025-06 .. 2026-01, two lines each
SELECT public.erp_source('fc', 400, '{K1,T9,K2,T8}', '2025-06-03', 215, 3, 4);
GRANT USAGE ON SCHEMA fc TO ca_fc_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fc TO ca_fc_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_fc_analyst;
SELECT rollup_rows FROM customer_analytics.enable_rollup('fc', readers => '{ca_fc_analyst}');
CREATE SCHEMA fc_bi AUTHORIZATION ca_fc_analyst;

-- the views against a recompute from the source tables (00_setup's
-- campaign_differences), and the recorded row counts against count(*) of
-- the views
CREATE FUNCTION public.fc_check() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    c customer_analytics.campaigns := (SELECT x FROM customer_analytics.campaigns x WHERE x.name = 'fcc');
BEGIN
    RETURN public.campaign_differences('fcc') || '; recorded counts ' ||
           CASE WHEN c.target_rows = (SELECT count(*) FROM fc_bi.fcc_targets)
                 AND c.monthly_rows = (SELECT count(*) FROM fc_bi.fcc_monthly)
                THEN 'equal count(*)'
                ELSE format('DIFFER: %s / %s recorded, %s / %s counted', c.target_rows, c.monthly_rows,
                            (SELECT count(*) FROM fc_bi.fcc_targets), (SELECT count(*) FROM fc_bi.fcc_monthly)) END;
END $$;
-- the calls to the functions that tell the fixed cost (_scratch_table:
-- the scratch tables asked for, either kind), since fc_mark() in
-- the same transaction (track_functions = all: the backend's counts not yet
-- reported)
CREATE FUNCTION public.fc_counted() RETURNS bigint[] LANGUAGE sql AS $$
    SELECT ARRAY[COALESCE(pg_stat_get_xact_function_calls('customer_analytics._matview_apply(regclass,text[],text)'::regprocedure), 0),
                 COALESCE(pg_stat_get_xact_function_calls('customer_analytics._scratch_table(text,text)'::regprocedure), 0)
                 + COALESCE(pg_stat_get_xact_function_calls('customer_analytics._session_scratch_table(text,text)'::regprocedure), 0),
                 COALESCE(pg_stat_get_xact_function_calls('customer_analytics._count_rows(text,text)'::regprocedure), 0),
                 COALESCE(pg_stat_get_xact_function_calls('customer_analytics._rollup_lost_table(customer_analytics.rollups,oid)'::regprocedure), 0)]
$$;
CREATE TABLE public.fc_marks (calls bigint[]);
GRANT ALL ON public.fc_marks TO ca_fc_analyst;
CREATE FUNCTION public.fc_mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM public.fc_marks;
    INSERT INTO public.fc_marks SELECT public.fc_counted();
$$;
CREATE FUNCTION public.fc_calls() RETURNS text LANGUAGE sql AS $$
    SELECT format('_matview_apply %s, _scratch_table %s, _count_rows %s, _rollup_lost_table %s',
                  n[1] - m.calls[1], n[2] - m.calls[2], n[3] - m.calls[3], n[4] - m.calls[4])
      FROM public.fc_marks m, public.fc_counted() n
$$;
CREATE FUNCTION public.fc_mode() RETURNS text LANGUAGE sql AS $$
    SELECT mode FROM customer_analytics.refresh_history WHERE kind = 'campaign' AND name = 'fcc' ORDER BY id DESC LIMIT 1;
$$;

SET ROLE ca_fc_analyst;
SELECT name FROM customer_analytics.create_campaign('fcc', 'fc_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'fc');
-- (the first refresh builds the state; the second counts the views once
-- more: the first recorded no version of them)
SELECT target_rows FROM customer_analytics.refresh_campaign('fcc');
SELECT target_rows FROM customer_analytics.refresh_campaign('fcc');
RESET ROLE;
SET ROLE ca_fc_analyst;
SELECT public.fc_check();
RESET ROLE;

-- no change: no statement of the delta is run, no view touched or counted,
-- one scratch table (the changed customers'), no DDL watch query
BEGIN;
SET LOCAL track_functions = 'all';
SELECT public.fc_mark();
SET ROLE ca_fc_analyst;
SELECT target_rows FROM customer_analytics.refresh_campaign('fcc');
RESET ROLE;
SELECT public.fc_calls();
COMMIT;
SELECT public.fc_mode();

-- a change on the routes: the three views applied, three scratch tables,
-- no view counted again
SET ROLE ca_fc_analyst;
UPDATE fc.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 3
  FROM fc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 8 = 2;
RESET ROLE;
BEGIN;
SET LOCAL track_functions = 'all';
SELECT public.fc_mark();
SET ROLE ca_fc_analyst;
SELECT target_rows FROM customer_analytics.refresh_campaign('fcc');
RESET ROLE;
SELECT public.fc_calls();
COMMIT;
SELECT split_part(public.fc_mode(), ' (', 1);
SET ROLE ca_fc_analyst;
SELECT public.fc_check();
RESET ROLE;

-- changes that remove targets (every order of a third of the route
-- customers cut to a tenth) and then add them back: the kept counts follow
CREATE TABLE public.fc_counts (step text, targets bigint);
INSERT INTO public.fc_counts SELECT 'before', count(*) FROM fc_bi.fcc_targets;
SET ROLE ca_fc_analyst;
UPDATE fc.sales_order_lines l SET pretax_subtotal = round(pretax_subtotal / 10, 2)
  FROM fc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 3 = 0;
RESET ROLE;
BEGIN;
SET LOCAL track_functions = 'all';
SELECT public.fc_mark();
SET ROLE ca_fc_analyst;
SELECT 1 FROM customer_analytics.refresh_campaign('fcc');
RESET ROLE;
SELECT public.fc_calls();
COMMIT;
INSERT INTO public.fc_counts SELECT 'cut', count(*) FROM fc_bi.fcc_targets;
SET ROLE ca_fc_analyst;
SELECT public.fc_check();
RESET ROLE;
SET ROLE ca_fc_analyst;
UPDATE fc.sales_order_lines l SET pretax_subtotal = pretax_subtotal * 10
  FROM fc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 3 = 0;
SELECT 1 FROM customer_analytics.refresh_campaign('fcc');
RESET ROLE;
INSERT INTO public.fc_counts SELECT 'restored', count(*) FROM fc_bi.fcc_targets;
SET ROLE ca_fc_analyst;
SELECT public.fc_check();
RESET ROLE;
SELECT (SELECT targets FROM public.fc_counts WHERE step = 'cut') < (SELECT targets FROM public.fc_counts WHERE step = 'before') AS targets_removed,
       (SELECT targets FROM public.fc_counts WHERE step = 'restored') > (SELECT targets FROM public.fc_counts WHERE step = 'cut') AS targets_added;
SELECT split_part(public.fc_mode(), ' (', 1);

-- a REFRESH of the targets view by hand after a change (that removes
-- targets): the next refresh counts that view again (its catalog row has a
-- new version), not the sheet
SET ROLE ca_fc_analyst;
UPDATE fc.sales_order_lines l SET pretax_subtotal = round(pretax_subtotal / 10, 2)
  FROM fc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 3 = 1;
REFRESH MATERIALIZED VIEW CONCURRENTLY fc_bi.fcc_targets;
RESET ROLE;
BEGIN;
SET LOCAL track_functions = 'all';
SELECT public.fc_mark();
SET ROLE ca_fc_analyst;
SELECT 1 FROM customer_analytics.refresh_campaign('fcc');
RESET ROLE;
SELECT public.fc_calls();
COMMIT;
SELECT split_part(public.fc_mode(), ' (', 1);
SET ROLE ca_fc_analyst;
SELECT public.fc_check();
RESET ROLE;

-- a refresh rolled back to a savepoint, then done again in the same
-- transaction (after a change that adds targets back): the rows the
-- rolled-back one applied are not counted
SET ROLE ca_fc_analyst;
UPDATE fc.sales_order_lines l SET pretax_subtotal = pretax_subtotal * 10
  FROM fc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 3 = 1;
BEGIN;
SAVEPOINT before_refresh;
SELECT 1 FROM customer_analytics.refresh_campaign('fcc');
ROLLBACK TO SAVEPOINT before_refresh;
SELECT 1 FROM customer_analytics.refresh_campaign('fcc');
COMMIT;
RESET ROLE;
SELECT split_part(public.fc_mode(), ' (', 1);
SET ROLE ca_fc_analyst;
SELECT public.fc_check();
RESET ROLE;

-- a kept count that the campaign's catalog row does not hold (counts
-- recorded by something that kept none, an older version of the extension
-- say) is not used: the view is counted again
UPDATE customer_analytics.campaign_refresh_state SET view_rows = jsonb_set(view_rows, '{targets,rows}', '1')
 WHERE campaign = 'fcc';
SET ROLE ca_fc_analyst;
UPDATE fc.sales_order_lines l SET pretax_subtotal = round(pretax_subtotal / 10, 2)
  FROM fc.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 3 = 2;
RESET ROLE;
BEGIN;
SET LOCAL track_functions = 'all';
SELECT public.fc_mark();
SET ROLE ca_fc_analyst;
SELECT 1 FROM customer_analytics.refresh_campaign('fcc');
RESET ROLE;
SELECT public.fc_calls();
COMMIT;
SET ROLE ca_fc_analyst;
SELECT public.fc_check();
RESET ROLE;

-- _matview_applied: what _matview_apply added, read once; a read or an
-- apply rolled back with its subtransaction is undone.  A customer with one
-- row left on each side is written as an update of its row
CREATE MATERIALIZED VIEW public.fc_mv AS SELECT customer_code::text AS customer_code, delivery_route::text AS delivery_route FROM fc.customers;
CREATE UNIQUE INDEX ON public.fc_mv (customer_code);
BEGIN;
SELECT customer_analytics._matview_apply('public.fc_mv', '{00001,00002,00003}',
    $$SELECT v.* FROM (VALUES ('00001', 'K9'), ('00002', 'K9')) v(customer_code, delivery_route)$$) AS inserted;
-- (the two customers with a row on each side: updated in place)
SELECT pg_stat_get_xact_tuples_updated('public.fc_mv'::regclass) AS updated;
SAVEPOINT a;
SELECT customer_analytics._matview_applied('public.fc_mv') AS read_in_savepoint;
ROLLBACK TO SAVEPOINT a;
SELECT customer_analytics._matview_applied('public.fc_mv') AS read_again, customer_analytics._matview_applied('public.fc_mv') AS then;
SAVEPOINT b;
SELECT customer_analytics._matview_apply('public.fc_mv', '{00004}', $$SELECT '00005'::text, 'K9'::text WHERE false$$) AS inserted;
ROLLBACK TO SAVEPOINT b;
SELECT customer_analytics._matview_applied('public.fc_mv') AS after_rolled_back_apply;
COMMIT;
SELECT count(*) FROM public.fc_mv;
SELECT * FROM public.fc_mv WHERE customer_code IN ('00001', '00002', '00003') ORDER BY 1;
SELECT customer_analytics._matview_applied(NULL);
-- several rows of a customer on each side (the long form's months): no
-- update, which could take a key another old row still holds
CREATE MATERIALIZED VIEW public.fc_mv2 AS
SELECT c.customer_code::text AS customer_code, m AS month, 1 AS v FROM fc.customers c, generate_series(1, 2) m;
CREATE UNIQUE INDEX ON public.fc_mv2 (customer_code, month);
BEGIN;
SELECT customer_analytics._matview_apply('public.fc_mv2', '{00001}',
    $$SELECT v.* FROM (VALUES ('00001', 2, 5), ('00001', 3, 5)) v(customer_code, month, v)$$) AS written,
       pg_stat_get_xact_tuples_updated('public.fc_mv2'::regclass) AS updated;
COMMIT;
SELECT * FROM public.fc_mv2 WHERE customer_code = '00001' ORDER BY month;
DROP MATERIALIZED VIEW public.fc_mv2;

-- _at_one_snapshot's guard: (stop, nothing to do)
CREATE TABLE public.fc_log (n int);
SELECT customer_analytics._at_one_snapshot('SELECT false, true', ARRAY['INSERT INTO public.fc_log VALUES (1)']) IS NOT NULL AS snapshot_returned,
       (SELECT count(*) FROM public.fc_log) AS statements_run;
SELECT customer_analytics._at_one_snapshot('SELECT false, false', ARRAY['INSERT INTO public.fc_log VALUES (2)']) IS NOT NULL AS snapshot_returned;
SELECT customer_analytics._at_one_snapshot('SELECT false, NULL::boolean', ARRAY['INSERT INTO public.fc_log VALUES (3)']) IS NOT NULL AS snapshot_returned;
SELECT customer_analytics._at_one_snapshot('SELECT true, true', ARRAY['INSERT INTO public.fc_log VALUES (4)']) IS NULL AS refused;
SELECT array_agg(n ORDER BY n) AS run FROM public.fc_log;
SELECT customer_analytics._at_one_snapshot('SELECT false, 1', '{}');
SELECT customer_analytics._at_one_snapshot('SELECT false, true, true', '{}');

SET ROLE ca_fc_analyst;
SELECT customer_analytics.drop_campaign('fcc');
RESET ROLE;
SELECT customer_analytics.drop_rollup('fc');
DROP MATERIALIZED VIEW public.fc_mv;
DROP TABLE public.fc_log, public.fc_counts, public.fc_marks;
DROP FUNCTION public.fc_check(), public.fc_calls(), public.fc_mode(), public.fc_mark(), public.fc_counted();
DROP SCHEMA fc_bi CASCADE;
DROP SCHEMA fc CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_fc_analyst;
DROP ROLE ca_fc_analyst;
