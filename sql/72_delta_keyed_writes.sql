-- A campaign's delta refresh writes its state and month rows through the
-- table AM and the indexes (keyed_write.c) instead of UPDATE/INSERT/DELETE
-- statements over arrays (issue 25).  After every kind of change the views
-- equal a recompute and the state equals a freshly built one; an update
-- that cannot be HOT (full pages) gets its index entries (an index scan
-- finds every row a sequential scan does), and so does an index the owner
-- added on the state; a trigger on the state makes the refresh write it by
-- its statements, as before; an ERROR part way (a CHECK constraint a row
-- breaks, in the state or in the months written after it) leaves the
-- state, the months and the views as they were.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_kw_analyst;
SELECT public.erp_source('kw', 200, '{K1,T9,K2,T8}', '2025-06-03', 215, 3, 4);
GRANT USAGE ON SCHEMA kw TO ca_kw_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA kw TO ca_kw_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_kw_analyst;
SELECT rollup_rows FROM customer_analytics.enable_rollup('kw', readers => '{ca_kw_analyst}');
CREATE SCHEMA kw_bi AUTHORIZATION ca_kw_analyst;

-- (the state tables do not exist yet)
SET check_function_bodies = off;
CREATE FUNCTION public.kw_mode() RETURNS text LANGUAGE sql AS $$
    SELECT split_part(mode, ' (', 1) FROM customer_analytics.refresh_history
     WHERE kind = 'campaign' AND name = 'kwc' ORDER BY id DESC LIMIT 1;
$$;
-- the state, the months and the views as one digest each (row text, sorted)
CREATE FUNCTION public.kw_digest() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' ',
        (SELECT md5(string_agg(s::text, ',' ORDER BY s.customer_code)) FROM customer_analytics_state.campaign_state_kwc s),
        (SELECT md5(string_agg(m::text, ',' ORDER BY m.customer_code, m.month)) FROM customer_analytics_state.campaign_months_kwc m),
        (SELECT md5(string_agg(t::text, ',' ORDER BY t.customer_code)) FROM kw_bi.kwc_targets t),
        (SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM kw_bi.kwc_monthly_long t))
$$;
-- the rows an index scan of the state's key finds against those a
-- sequential scan does (a row without its index entry would be missing)
CREATE FUNCTION public.kw_index_rows(OUT by_index bigint, OUT by_scan bigint, OUT same boolean) LANGUAGE plpgsql AS $$
DECLARE
    a text; b text;
BEGIN
    SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
    SELECT count(*), md5(string_agg(s.customer_code || ':' || s.orders, ',' ORDER BY s.customer_code))
      INTO by_index, a FROM customer_analytics_state.campaign_state_kwc s WHERE s.customer_code >= '';
    SET LOCAL enable_seqscan = on; SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off;
    SELECT count(*), md5(string_agg(s.customer_code || ':' || s.orders, ',' ORDER BY s.customer_code))
      INTO by_scan, b FROM customer_analytics_state.campaign_state_kwc s;
    same := a = b;
END $$;
-- the state against one built from scratch for the same campaign (kwf),
-- by value (a sum the deltas brought back to zero reads 0.00 where a build
-- reads 0: numeric's display scale, as the statements wrote it too)
CREATE FUNCTION public.kw_state_vs_fresh() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        (SELECT s.* FROM customer_analytics_state.campaign_state_kwc s
         EXCEPT ALL SELECT f.* FROM customer_analytics_state.campaign_state_kwf f)
        UNION ALL
        (SELECT f.* FROM customer_analytics_state.campaign_state_kwf f
         EXCEPT ALL SELECT s.* FROM customer_analytics_state.campaign_state_kwc s)) d
$$;
-- a change of some customers' lines (those whose number % m = r)
CREATE FUNCTION public.kw_change(m int, r int, by numeric) RETURNS void LANGUAGE sql AS $$
    UPDATE kw.sales_order_lines l SET pretax_subtotal = pretax_subtotal + by
      FROM kw.sales_orders o
     WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % m = r;
$$;

RESET check_function_bodies;
-- what a trigger on the state counts (below): the rows it saw
CREATE SEQUENCE public.kw_fired;
GRANT USAGE ON SEQUENCE public.kw_fired TO PUBLIC;
CREATE FUNCTION public.kw_note() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    n bigint;
BEGIN
    n := nextval('public.kw_fired');
    RETURN NEW;
END $$;

SET ROLE ca_kw_analyst;
SELECT name FROM customer_analytics.create_campaign('kwc', 'kw_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'kw');
SELECT target_rows FROM customer_analytics.refresh_campaign('kwc');
SELECT public.campaign_differences('kwc');

-- order changes: amounts, orders removed (some customers left with none),
-- orders added (new customers in the state): HOT updates, deletes, inserts
SELECT public.kw_change(8, 2, 3);
DELETE FROM kw.sales_order_lines l USING kw.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number AND o.customer_code::int % 20 = 0;
INSERT INTO kw.customers VALUES ('00201', 'Customer 201', 'K1', 'addr', NULL, '001');
INSERT INTO kw.sales_orders
SELECT 'SO', (900000 + c * 10 + k)::text, lpad(c::text, 5, '0'), 'K1', '2025121' || k, 'Y'
  FROM generate_series(1, 201) c, generate_series(1, 2) k WHERE c % 4 IN (0, 2) AND c % 3 = 1 OR c = 201;
INSERT INTO kw.sales_order_lines
SELECT 'SO', (900000 + c * 10 + k)::text, 1, 'P1', 1, 150.50
  FROM generate_series(1, 201) c, generate_series(1, 2) k WHERE c % 4 IN (0, 2) AND c % 3 = 1 OR c = 201;
BEGIN;
SELECT target_rows FROM customer_analytics.refresh_campaign('kwc');
-- the state's updates: all HOT (its fillfactor leaves room)
SELECT n_tup_upd > 0 AS updated, n_tup_hot_upd = n_tup_upd AS all_hot, n_tup_ins > 0 AS inserted, n_tup_del > 0 AS deleted
  FROM pg_stat_xact_user_tables WHERE relid = 'customer_analytics_state.campaign_state_kwc'::regclass;
COMMIT;
SELECT public.kw_mode(), public.campaign_differences('kwc');
SELECT * FROM public.kw_index_rows();

-- full pages: the state rewritten at fillfactor 100, so that updates
-- cannot stay on their page (new index entries)
ALTER TABLE customer_analytics_state.campaign_state_kwc SET (fillfactor = 100);
VACUUM FULL customer_analytics_state.campaign_state_kwc;
SELECT public.kw_change(3, 1, 5);
BEGIN;
SELECT target_rows FROM customer_analytics.refresh_campaign('kwc');
SELECT n_tup_upd > 0 AS updated, n_tup_hot_upd < n_tup_upd AS some_not_hot
  FROM pg_stat_xact_user_tables WHERE relid = 'customer_analytics_state.campaign_state_kwc'::regclass;
COMMIT;
SELECT public.kw_mode(), public.campaign_differences('kwc');
SELECT * FROM public.kw_index_rows();

-- an index of the owner's on an updated column: its entries written too
CREATE INDEX kw_state_orders ON customer_analytics_state.campaign_state_kwc (orders, customer_code);
SELECT public.kw_change(5, 4, 7);
DELETE FROM kw.sales_order_lines l USING kw.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number
   AND o.customer_code::int % 11 = 6 AND l.line_no = 2 AND o.order_number::bigint % 3 = 0;
SELECT target_rows FROM customer_analytics.refresh_campaign('kwc');
SELECT public.kw_mode(), public.campaign_differences('kwc');
SET enable_seqscan = off; SET enable_bitmapscan = off;
CREATE TEMP TABLE kw_by_orders AS
SELECT s.orders, s.customer_code FROM customer_analytics_state.campaign_state_kwc s WHERE s.orders >= 0;
RESET enable_seqscan; RESET enable_bitmapscan;
SELECT (SELECT count(*) FROM kw_by_orders) = (SELECT count(*) FROM customer_analytics_state.campaign_state_kwc) AS all_indexed,
       NOT EXISTS (SELECT s.orders, s.customer_code FROM customer_analytics_state.campaign_state_kwc s
                   EXCEPT SELECT * FROM kw_by_orders) AS same_rows;
DROP TABLE kw_by_orders;
DROP INDEX customer_analytics_state.kw_state_orders;

-- an ERROR part way: a CHECK constraint that one changed customer's new
-- row breaks (its orders doubled), then one on the months written after
-- the state: the refresh fails and leaves everything as it was
CREATE TEMP TABLE kw_before AS SELECT public.kw_digest() AS d;
ALTER TABLE customer_analytics_state.campaign_state_kwc
    ADD CONSTRAINT kw_few_orders CHECK (customer_code <> '00014' OR orders < 12) NOT VALID;
SELECT orders < 12 AS below FROM customer_analytics_state.campaign_state_kwc WHERE customer_code = '00014';
INSERT INTO kw.sales_orders
SELECT 'SO', (950000 + k)::text, '00014', 'K1', '2025111' || k, 'Y' FROM generate_series(1, 9) k;
INSERT INTO kw.sales_order_lines
SELECT 'SO', (950000 + k)::text, 1, 'P1', 1, 99.25 FROM generate_series(1, 9) k;
SELECT public.kw_change(7, 0, 1);
SELECT split_part(public.err($$SELECT customer_analytics.refresh_campaign('kwc')$$), ' | DETAIL', 1);
SELECT d = public.kw_digest() AS unchanged FROM kw_before;
ALTER TABLE customer_analytics_state.campaign_state_kwc DROP CONSTRAINT kw_few_orders;
ALTER TABLE customer_analytics_state.campaign_months_kwc
    ADD CONSTRAINT kw_no_revenue CHECK (revenue IS NULL OR revenue < 0) NOT VALID;
SELECT split_part(public.err($$SELECT customer_analytics.refresh_campaign('kwc')$$), ' | DETAIL', 1);
SELECT d = public.kw_digest() AS unchanged FROM kw_before;
ALTER TABLE customer_analytics_state.campaign_months_kwc DROP CONSTRAINT kw_no_revenue;
DROP TABLE kw_before;
SELECT target_rows FROM customer_analytics.refresh_campaign('kwc');
SELECT public.kw_mode(), public.campaign_differences('kwc');
SELECT * FROM public.kw_index_rows();

-- a trigger on the state: written by the statements, the trigger fired
CREATE TRIGGER kw_note BEFORE INSERT OR UPDATE ON customer_analytics_state.campaign_state_kwc
    FOR EACH ROW EXECUTE FUNCTION public.kw_note();
SELECT public.kw_change(6, 5, 2);
SELECT target_rows FROM customer_analytics.refresh_campaign('kwc');
SELECT public.kw_mode(), public.campaign_differences('kwc');
DROP TRIGGER kw_note ON customer_analytics_state.campaign_state_kwc;
RESET ROLE;
SELECT is_called AS fired FROM public.kw_fired;
DROP SEQUENCE public.kw_fired;
DROP FUNCTION public.kw_note();

-- the state after all these deltas against one built from scratch
SET ROLE ca_kw_analyst;
SELECT name FROM customer_analytics.create_campaign('kwf', 'kw_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'kw');
SELECT target_rows FROM customer_analytics.refresh_campaign('kwf');
SELECT public.kw_state_vs_fresh() AS state_rows_differing;
SELECT customer_analytics.drop_campaign('kwf');
SELECT customer_analytics.drop_campaign('kwc');
RESET ROLE;
SELECT customer_analytics.drop_rollup('kw');
DROP FUNCTION public.kw_mode(), public.kw_digest(), public.kw_index_rows(), public.kw_state_vs_fresh(),
    public.kw_change(int, int, numeric);
DROP SCHEMA kw_bi CASCADE;
DROP SCHEMA kw CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_kw_analyst;
DROP ROLE ca_kw_analyst;
