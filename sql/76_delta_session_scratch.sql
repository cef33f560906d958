-- The delta refresh's scratch tables kept for the session (issue 25):
-- _session_scratch_table makes pg_temp.customer_analytics_changed,
-- _targets and _long_keys once per session (ON COMMIT DELETE ROWS) when
-- the campaign's owner is the session's role, and empties them when asked
-- again, instead of a CREATE and DROP at every refresh; for another role
-- (a superuser refreshing an analyst's campaign) they are dropped at
-- commit as before, so that nothing of that role outlives the transaction
-- (DROP ROLE).  Two owners' campaigns refreshed in one session (SET
-- SESSION AUTHORIZATION): each takes the tables over from the other; a
-- refresh that fails mid-way (an unreadable date) and one rolled back
-- leave rows the next refresh never reads; another role's table of that
-- name is not taken over.  After each refresh the views equal a recompute.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_ss_a;
CREATE ROLE ca_ss_b;
-- 300 customers, half of them on the campaigns' routes K1/K2
SELECT public.erp_source('ss', 300, '{K1,T9,K2,T8}', '2025-06-03', 215, 3, 4);
GRANT USAGE ON SCHEMA ss TO ca_ss_a, ca_ss_b;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ss TO ca_ss_a, ca_ss_b;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_ss_a, ca_ss_b;
SELECT rollup_rows FROM customer_analytics.enable_rollup('ss', readers => '{ca_ss_a,ca_ss_b}');
CREATE SCHEMA ss_a AUTHORIZATION ca_ss_a;
CREATE SCHEMA ss_b AUTHORIZATION ca_ss_b;
SET ROLE ca_ss_a;
SELECT name FROM customer_analytics.create_campaign('ssa', 'ss_a', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'ss');
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
RESET ROLE;
SET ROLE ca_ss_b;
SELECT name FROM customer_analytics.create_campaign('ssb', 'ss_b', routes => '{K2,T9}',
    min_spend => 1500, low_ticket_below => 900, min_low_tickets => 2, source_schema => 'ss');
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
RESET ROLE;

-- the views of both against a recompute, each as its owner, and the modes
CREATE FUNCTION public.ss_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    a text;
    b text;
BEGIN
    SET LOCAL ROLE ca_ss_a;
    a := public.campaign_differences('ssa');
    SET LOCAL ROLE ca_ss_b;
    b := public.campaign_differences('ssb');
    RESET ROLE;
    RETURN format('ssa: %s (%s); ssb: %s (%s)', a,
                  (SELECT split_part(mode, ' (', 1) FROM customer_analytics.refresh_history
                    WHERE kind = 'campaign' AND name = 'ssa' ORDER BY id DESC LIMIT 1), b,
                  (SELECT split_part(mode, ' (', 1) FROM customer_analytics.refresh_history
                    WHERE kind = 'campaign' AND name = 'ssb' ORDER BY id DESC LIMIT 1));
END $$;
GRANT EXECUTE ON FUNCTION public.ss_check() TO PUBLIC;
-- this session's scratch tables of the delta: owner and rows
CREATE FUNCTION public.ss_scratch() RETURNS text LANGUAGE sql AS $$
    SELECT COALESCE(string_agg(format('%s %s', c.relname, pg_get_userbyid(c.relowner)), ', ' ORDER BY c.relname), 'none')
      FROM pg_class c
     WHERE c.relnamespace = pg_my_temp_schema()
       AND c.relname IN ('customer_analytics_changed', 'customer_analytics_targets', 'customer_analytics_long_keys')
$$;
-- a change to the orders of one customer in eight: on both campaigns' routes
CREATE FUNCTION public.ss_change(k int, by numeric) RETURNS void LANGUAGE sql AS $$
    UPDATE ss.sales_order_lines l SET pretax_subtotal = pretax_subtotal + by
      FROM ss.sales_orders o
     WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 8 = k
$$;

-- 1. each owner's refreshes in its own session role, one transaction
-- each: the tables are kept (the same OIDs), empty after each commit; the
-- other owner's refresh makes them again as its own
SELECT public.ss_change(1, 40);
SET SESSION AUTHORIZATION ca_ss_a;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
SELECT 'pg_temp.customer_analytics_changed'::regclass::oid AS changed_a \gset
SELECT (SELECT count(*) FROM pg_temp.customer_analytics_changed) AS changed_rows_after_commit;
RESET SESSION AUTHORIZATION;
SELECT public.ss_scratch();
SELECT public.ss_change(2, -25);
SET SESSION AUTHORIZATION ca_ss_a;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
SELECT 'pg_temp.customer_analytics_changed'::regclass::oid = :changed_a AS same_table;
RESET SESSION AUTHORIZATION;
SELECT public.ss_check();
SET SESSION AUTHORIZATION ca_ss_b;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
SELECT 'pg_temp.customer_analytics_changed'::regclass::oid = :changed_a AS same_table;
RESET SESSION AUTHORIZATION;
SELECT public.ss_scratch();
SELECT public.ss_check();

-- 2. one transaction: the two owners, then one owner twice (the second
-- refresh finds the first one's rows and empties them)
SELECT public.ss_change(3, 55);
BEGIN;
SET LOCAL SESSION AUTHORIZATION ca_ss_a;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
SET LOCAL SESSION AUTHORIZATION ca_ss_b;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
COMMIT;
SELECT public.ss_check();
SELECT public.ss_change(4, 7);
SET SESSION AUTHORIZATION ca_ss_b;
BEGIN;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
UPDATE ss.sales_order_lines SET pretax_subtotal = pretax_subtotal + 9 WHERE order_number IN ('501', '1302');
COMMIT;
BEGIN;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
SELECT public.ss_change(5, 9);
COMMIT;
RESET SESSION AUTHORIZATION;
SELECT public.ss_check();
SET SESSION AUTHORIZATION ca_ss_a;
BEGIN;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
SELECT count(*) > 0 AS changed_listed FROM pg_temp.customer_analytics_changed;
COMMIT;
RESET SESSION AUTHORIZATION;
SELECT public.ss_change(4, 2);
SET SESSION AUTHORIZATION ca_ss_a;
BEGIN;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
SELECT count(*) AS changed_listed_by_the_second FROM pg_temp.customer_analytics_changed;
COMMIT;
RESET SESSION AUTHORIZATION;
SELECT public.ss_check();

-- 3. a refresh that fails mid-way (an order of customer 00006 without a
-- readable date: the guard has listed the changed customers, the check
-- raises), then the date fixed and a refresh in the same session
SELECT public.ss_change(6, 12);
UPDATE ss.sales_orders SET order_date = 'x' WHERE order_number = '601';
SET SESSION AUTHORIZATION ca_ss_a;
SELECT public.err($$SELECT customer_analytics.refresh_campaign('ssa')$$);
RESET SESSION AUTHORIZATION;
UPDATE ss.sales_orders SET order_date = '20251015' WHERE order_number = '601';
SET SESSION AUTHORIZATION ca_ss_a;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION ca_ss_b;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
RESET SESSION AUTHORIZATION;
SELECT public.ss_check();

-- 4. a refresh rolled back (its rows in the kept tables are dead), and
-- one rolled back to a savepoint, then refreshes
SELECT public.ss_change(7, 31);
SET SESSION AUTHORIZATION ca_ss_b;
BEGIN;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
ROLLBACK;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
RESET SESSION AUTHORIZATION;
SELECT public.ss_change(0, -14);
SET SESSION AUTHORIZATION ca_ss_b;
BEGIN;
SAVEPOINT s;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
ROLLBACK TO SAVEPOINT s;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
COMMIT;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION ca_ss_a;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
RESET SESSION AUTHORIZATION;
SELECT public.ss_check();

-- 5. the superuser's session refreshing the analysts' campaigns: the kept
-- tables (ca_ss_a's) are made again for the refresh and dropped at commit
SELECT public.ss_change(1, 3);
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
SELECT public.ss_scratch();
SELECT public.ss_change(2, 3);
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
SELECT public.ss_scratch();
SELECT public.ss_check();

-- 6. a table of that name the session made otherwise: the current role's
-- own is dropped and made again (as the refresh always did); another
-- role's is not taken over (the refresh fails, as a CREATE of it would)
SELECT public.ss_change(3, 3);
SET SESSION AUTHORIZATION ca_ss_a;
CREATE TEMP TABLE customer_analytics_changed (customer_code text, changes bigint) ON COMMIT PRESERVE ROWS;
INSERT INTO pg_temp.customer_analytics_changed VALUES ('00001', 99);
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
RESET SESSION AUTHORIZATION;
SELECT public.ss_check();
SET SESSION AUTHORIZATION ca_ss_a;
DROP TABLE pg_temp.customer_analytics_changed;
CREATE TEMP TABLE customer_analytics_changed (customer_code text, changes bigint);
RESET SESSION AUTHORIZATION;
SELECT public.ss_change(2, 3);
SET SESSION AUTHORIZATION ca_ss_b;
SELECT public.err($$SELECT customer_analytics.refresh_campaign('ssb')$$);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION ca_ss_a;
DROP TABLE pg_temp.customer_analytics_changed;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION ca_ss_b;
SELECT 1 FROM customer_analytics.refresh_campaign('ssb');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION ca_ss_a;
SELECT 1 FROM customer_analytics.refresh_campaign('ssa');
RESET SESSION AUTHORIZATION;
SELECT public.ss_check();

-- 7. _session_scratch_table checks what _scratch_table checks
SELECT public.err($$SELECT customer_analytics._session_scratch_table('x', '(a int)')$$);
SELECT public.err($$SELECT customer_analytics._session_scratch_table('customer_analytics_t', '(a int DEFAULT 1)')$$);
SELECT public.err($$SELECT customer_analytics._session_scratch_table('customer_analytics_t', '(a int); DROP TABLE ss.customers')$$);
-- kept: the same OID at the next call, emptied
-- (in one transaction: a commit empties it anyway)
SELECT customer_analytics._session_scratch_table('customer_analytics_t', '(a int)') AS t1 \gset
BEGIN;
INSERT INTO pg_temp.customer_analytics_t VALUES (1), (2);
SELECT count(*) AS rows_before FROM pg_temp.customer_analytics_t;
SELECT customer_analytics._session_scratch_table('customer_analytics_t', '(a int)') = :'t1'::regclass AS same_table;
SELECT count(*) AS rows_left FROM pg_temp.customer_analytics_t;
COMMIT;
-- another definition: made again
SELECT customer_analytics._session_scratch_table('customer_analytics_t', '(a int, b text)') = :'t1'::regclass AS same_table;
SELECT count(*) AS columns FROM pg_attribute WHERE attrelid = 'pg_temp.customer_analytics_t'::regclass AND attnum > 0;

SET ROLE ca_ss_a;
SELECT customer_analytics.drop_campaign('ssa');
RESET ROLE;
SET ROLE ca_ss_b;
SELECT customer_analytics.drop_campaign('ssb');
RESET ROLE;
SELECT customer_analytics.drop_rollup('ss');
DROP FUNCTION public.ss_check(), public.ss_scratch(), public.ss_change(int, numeric);
DROP SCHEMA ss_a CASCADE;
DROP SCHEMA ss_b CASCADE;
DROP SCHEMA ss CASCADE;
DROP TABLE IF EXISTS pg_temp.customer_analytics_changed, pg_temp.customer_analytics_targets,
           pg_temp.customer_analytics_long_keys, pg_temp.customer_analytics_t;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_ss_a, ca_ss_b;
DROP ROLE ca_ss_a;
DROP ROLE ca_ss_b;
