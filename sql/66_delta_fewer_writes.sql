-- A campaign's delta refresh, fewer writes per changed customer (issue 25):
-- the list of changed customers that the guard writes is a scratch table
-- without an index (every statement reads it whole: an array of keys or a
-- hashed join; a key index written row by row cost as much as the guard's
-- read of the changes), and the sheet's months are pivoted with max() over
-- their one row per customer and month (month_state's key), without sum()'s
-- numeric accumulator per customer and month.  The scratch tables' indexes
-- are seen by an event trigger during a refresh; after each delta (targets
-- added, dropped, their months changed) every view equals a recompute.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_cm_analyst;
-- 200 customers, half of them on the campaign's routes K1/K2; customer c
-- has 3 + c % 4 orders over 2025-06 .. 2026-01, two lines each
SELECT public.erp_source('cm', 200, '{K1,T9,K2,T8}', '2025-06-03', 215, 3, 4);
GRANT USAGE ON SCHEMA cm TO ca_cm_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA cm TO ca_cm_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_cm_analyst;
SELECT rollup_rows FROM customer_analytics.enable_rollup('cm', readers => '{ca_cm_analyst}');
CREATE SCHEMA cm_bi AUTHORIZATION ca_cm_analyst;

-- the views against a recompute from the source tables (00_setup)
CREATE FUNCTION public.cm_check() RETURNS text LANGUAGE sql AS $$ SELECT public.campaign_differences('cmc') $$;
CREATE FUNCTION public.cm_mode() RETURNS text LANGUAGE sql AS $$
    SELECT split_part(mode, ' (', 1) FROM customer_analytics.refresh_history
     WHERE kind = 'campaign' AND name = 'cmc' ORDER BY id DESC LIMIT 1;
$$;
-- the indexes created on temporary tables while the event trigger is on
CREATE TABLE public.cm_temp_indexes (name text);
CREATE FUNCTION public.cm_watch() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO public.cm_temp_indexes
    SELECT regexp_replace(c.object_identity, '^pg_temp_[0-9]+\.', 'pg_temp.')
      FROM pg_event_trigger_ddl_commands() c
     WHERE c.object_type = 'index' AND c.schema_name LIKE 'pg_temp%';
END $$;

SET ROLE ca_cm_analyst;
SELECT name FROM customer_analytics.create_campaign('cmc', 'cm_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'cm');
SELECT target_rows FROM customer_analytics.refresh_campaign('cmc');
SELECT public.cm_check();
RESET ROLE;

-- the sheet's months: max() over their one row, no sum()
SELECT strpos(s, 'max(m.revenue) FILTER') > 0 AS pivot_max, strpos(s, 'sum(') = 0 AS no_sum
  FROM customer_analytics._campaign_sheet_rows_sql(
           (SELECT x FROM customer_analytics.campaigns x WHERE x.name = 'cmc'), 'pg_temp.t', 'pg_temp.r') s;

-- a change on the routes, seen by the event trigger: the scratch tables'
-- indexes are the long form's keys' only (its ON CONFLICT needs it)
CREATE EVENT TRIGGER cm_watch ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'CREATE INDEX')
    EXECUTE FUNCTION public.cm_watch();
SET ROLE ca_cm_analyst;
UPDATE cm.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 3
  FROM cm.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 8 = 2;
SELECT target_rows FROM customer_analytics.refresh_campaign('cmc');
RESET ROLE;
DROP EVENT TRIGGER cm_watch;
SELECT name FROM public.cm_temp_indexes ORDER BY name;
SELECT public.cm_mode();
SET ROLE ca_cm_analyst;
SELECT public.cm_check();
RESET ROLE;

-- targets dropped: every order of some targets' customers on K1 removed
SET ROLE ca_cm_analyst;
DELETE FROM cm.sales_order_lines l USING cm.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 20 = 0;
SELECT target_rows FROM customer_analytics.refresh_campaign('cmc');
RESET ROLE;
SELECT public.cm_mode();
SET ROLE ca_cm_analyst;
SELECT public.cm_check();
RESET ROLE;

-- targets added: two more low-ticket orders for some route customers,
-- months changed for others
SET ROLE ca_cm_analyst;
INSERT INTO cm.sales_orders
SELECT 'SO', (900000 + c * 10 + k)::text, lpad(c::text, 5, '0'), 'K1', '2025121' || k, 'Y'
  FROM generate_series(1, 200) c, generate_series(1, 2) k WHERE c % 4 IN (0, 2) AND c % 3 = 1;
INSERT INTO cm.sales_order_lines
SELECT 'SO', (900000 + c * 10 + k)::text, 1, 'P1', 1, 150.50
  FROM generate_series(1, 200) c, generate_series(1, 2) k WHERE c % 4 IN (0, 2) AND c % 3 = 1;
UPDATE cm.sales_order_lines l SET pretax_subtotal = pretax_subtotal * 2
  FROM cm.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 7 = 3;
SELECT target_rows FROM customer_analytics.refresh_campaign('cmc');
RESET ROLE;
SELECT public.cm_mode();
SET ROLE ca_cm_analyst;
SELECT public.cm_check();
RESET ROLE;

SET ROLE ca_cm_analyst;
SELECT customer_analytics.drop_campaign('cmc');
RESET ROLE;
SELECT customer_analytics.drop_rollup('cm');
DROP TABLE public.cm_temp_indexes;
DROP FUNCTION public.cm_check(), public.cm_mode(), public.cm_watch();
DROP SCHEMA cm_bi CASCADE;
DROP SCHEMA cm CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_cm_analyst;
DROP ROLE ca_cm_analyst;
