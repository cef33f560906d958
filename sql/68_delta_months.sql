-- A campaign's delta refresh writes its changed customers' months
-- (campaign_months_<name>) in the C pass that reads the change rows for
-- their state (_campaign_delta_state_targets, issue 25): one read of the
-- changes for the state and the months (the SQL month statements read
-- them again), the month rows read once by the changed customers' keys and
-- written by their ctids.  After every refresh the month state equals
-- monthly_revenue() recomputed for the targets, and the long form, the
-- sheet and the targets view equal their own definitions recomputed
-- (EXCEPT ALL both ways): a target's lines changed in the revenue window;
-- an order moved to another month; every order of a target's month removed
-- (the month left at 0); an order of the revenue window after the data
-- window (its month adjusted, the state not); customers moved onto the
-- routes (new targets: their months computed) and off them (their months
-- dropped); a target emptied; random rounds.
\set VERBOSITY terse
SET client_min_messages = warning;
-- 600 customers on K1/T9/K2/T8, customer c with 2 + c % 5 orders over
-- 2025-06-03 .. 2026-01-03, two lines each; the campaign's revenue window
-- (2025-09 .. 2026-01) ends after its data window (the targeting windows'
-- hull, up to 2026-01-07) and starts inside it
SELECT public.erp_source('dmo', 600, '{K1,T9,K2,T8}', '2025-06-03', 215, 2, 5);
SELECT rollup_rows > 0 AS rollup FROM customer_analytics.enable_rollup('dmo');
CREATE SCHEMA dmo_bi;
SELECT name FROM customer_analytics.create_campaign('dmo', 'dmo_bi', routes => '{K1,K2}', source_schema => 'dmo',
                                                  revenue_window => '[2025-09-01,2026-02-01)');
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');

-- each view and the month state against a recompute, the rows differing
CREATE FUNCTION public.dmo_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
    def text;
    n bigint;
    differ bigint := 0;
    months bigint;
    months_differ bigint;
BEGIN
    FOREACH v IN ARRAY ARRAY['dmo_targets', 'dmo_monthly', 'dmo_monthly_long'] LOOP
        def := rtrim(rtrim(pg_get_viewdef(format('dmo_bi.%I', v)::regclass)), ';');
        EXECUTE format('SELECT (SELECT count(*) FROM (SELECT * FROM dmo_bi.%1$I EXCEPT ALL SELECT * FROM (%2$s) q) a)'
                       ' + (SELECT count(*) FROM (SELECT * FROM (%2$s) q EXCEPT ALL SELECT * FROM dmo_bi.%1$I) b)', v, def)
           INTO n;
        differ := differ + n;
    END LOOP;
    SET LOCAL customer_analytics.use_rollup = off;
    CREATE TEMP TABLE dmo_months ON COMMIT DROP AS
    SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT t.customer_code FROM dmo_bi.dmo_targets t),
                                                     '[2025-09-01,2026-02-01)', 'dmo');
    months := (SELECT count(*) FROM customer_analytics_state.campaign_months_dmo);
    months_differ := (SELECT count(*) FROM (
        (SELECT * FROM customer_analytics_state.campaign_months_dmo EXCEPT ALL SELECT * FROM dmo_months)
        UNION ALL (SELECT * FROM dmo_months EXCEPT ALL SELECT * FROM customer_analytics_state.campaign_months_dmo)) d);
    RETURN format('%s: %s targets, %s month rows; views: %s rows differ, months: %s differ',
                  (SELECT split_part(h.mode, ' (', 1) FROM customer_analytics.refresh_history h
                    WHERE h.kind = 'campaign' AND h.name = 'dmo' ORDER BY h.id DESC LIMIT 1),
                  (SELECT count(*) FROM dmo_bi.dmo_targets), months, differ, months_differ);
END $$;
SELECT public.dmo_check();

-- the reads of the rollup's change rows (scans of its dirty table) in one
-- refresh: the guard, the check of the changed orders and the C pass (for
-- the state and the months), none by a month statement
CREATE TABLE public.dmo_before (scans bigint);
CREATE FUNCTION public.dmo_dirty() RETURNS regclass LANGUAGE sql AS $$
    SELECT customer_analytics._rollup_dirty_table(r.id)::regclass FROM customer_analytics.rollups r WHERE r.source_schema = 'dmo'
$$;
CREATE FUNCTION public.dmo_mark() RETURNS void LANGUAGE sql AS $$
    DELETE FROM public.dmo_before;
    INSERT INTO public.dmo_before SELECT s.seq_scan + COALESCE(s.idx_scan, 0) FROM pg_stat_user_tables s WHERE s.relid = public.dmo_dirty();
$$;
CREATE FUNCTION public.dmo_scans() RETURNS bigint LANGUAGE sql AS $$
    SELECT s.seq_scan + COALESCE(s.idx_scan, 0) - b.scans FROM public.dmo_before b, pg_stat_user_tables s WHERE s.relid = public.dmo_dirty();
$$;

-- a target's lines changed (every order of three targets in the revenue
-- window), counting the scans of the change rows
CREATE TEMP TABLE dmo_some AS
SELECT t.customer_code FROM dmo_bi.dmo_targets t ORDER BY t.customer_code LIMIT 3;
SELECT pg_stat_force_next_flush();
SELECT public.dmo_mark();
UPDATE dmo.sales_order_lines l SET pretax_subtotal = pretax_subtotal + 7.25
  FROM dmo.sales_orders o
 WHERE o.order_type = l.order_type AND o.order_number = l.order_number
   AND o.customer_code IN (SELECT customer_code FROM dmo_some) AND o.order_date >= '20250901';
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');
SELECT pg_stat_force_next_flush();
-- (the prune of the applied change rows scans the table too: two)
SELECT public.dmo_scans() AS scans_of_the_changes;
SELECT public.dmo_check();

-- an order moved to another month; every order of a target's month removed
UPDATE dmo.sales_orders SET order_date = '20251215'
 WHERE order_number = (SELECT min(o.order_number) FROM dmo.sales_orders o
                        WHERE o.customer_code = (SELECT min(customer_code) FROM dmo_some) AND o.order_date BETWEEN '20250901' AND '20251130');
CREATE TEMP TABLE dmo_gone AS
SELECT o.order_type, o.order_number FROM dmo.sales_orders o
 WHERE o.customer_code = (SELECT max(customer_code) FROM dmo_some)
   AND o.order_date LIKE (SELECT left(max(x.order_date), 6) || '%' FROM dmo.sales_orders x
                           WHERE x.customer_code = (SELECT max(customer_code) FROM dmo_some) AND x.order_date >= '20250901');
SELECT count(*) > 0 AS some_removed FROM dmo_gone;
DELETE FROM dmo.sales_order_lines l USING dmo_gone g WHERE l.order_type = g.order_type AND l.order_number = g.order_number;
DELETE FROM dmo.sales_orders o USING dmo_gone g WHERE o.order_type = g.order_type AND o.order_number = g.order_number;
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');
SELECT public.dmo_check();
SELECT count(*) AS months_at_zero FROM customer_analytics_state.campaign_months_dmo m
 WHERE m.customer_code = (SELECT max(customer_code) FROM dmo_some) AND m.orders = 0 AND m.revenue = 0;

-- an order of a target dated after the data window, inside the revenue
-- window: its month adjusted, its state row unchanged
CREATE TEMP TABLE dmo_state_before AS SELECT * FROM customer_analytics_state.campaign_state_dmo;
CREATE TEMP TABLE dmo_j AS SELECT min(t.customer_code) AS customer_code FROM dmo_bi.dmo_targets t;
INSERT INTO dmo.sales_orders VALUES ('SO', 'J1', (SELECT customer_code FROM dmo_j), 'K1', '20260120', 'Y');
INSERT INTO dmo.sales_order_lines VALUES ('SO', 'J1', 1, 'P1', 1, 1234.56);
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');
SELECT public.dmo_check();
SELECT count(*) AS state_rows_changed FROM (SELECT * FROM customer_analytics_state.campaign_state_dmo
                                           EXCEPT ALL SELECT * FROM dmo_state_before) d;
SELECT month, revenue >= 1234.56 AS has_it, orders > 0 AS ordered FROM customer_analytics_state.campaign_months_dmo
 WHERE customer_code = (SELECT customer_code FROM dmo_j) AND month = '2026-01-01';

-- customers moved onto the routes (new targets: months computed) and off
-- them (months dropped); a target emptied (no order left)
CREATE TEMP TABLE dmo_moved AS
SELECT c.customer_code FROM dmo.customers c WHERE c.delivery_route IN ('T9', 'T8') ORDER BY c.customer_code LIMIT 40;
UPDATE dmo.customers SET delivery_route = 'K2' WHERE customer_code IN (SELECT customer_code FROM dmo_moved);
UPDATE dmo.customers SET delivery_route = 'T8'
 WHERE customer_code IN (SELECT t.customer_code FROM dmo_bi.dmo_targets t WHERE t.customer_code NOT IN (SELECT customer_code FROM dmo_some)
                          ORDER BY t.customer_code DESC LIMIT 5);
CREATE TEMP TABLE dmo_emptied AS
SELECT o.order_type, o.order_number FROM dmo.sales_orders o
 WHERE o.customer_code = (SELECT t.customer_code FROM dmo_bi.dmo_targets t WHERE t.customer_code NOT IN (SELECT customer_code FROM dmo_some)
                           ORDER BY t.customer_code LIMIT 1);
DELETE FROM dmo.sales_order_lines l USING dmo_emptied g WHERE l.order_type = g.order_type AND l.order_number = g.order_number;
DELETE FROM dmo.sales_orders o USING dmo_emptied g WHERE o.order_type = g.order_type AND o.order_number = g.order_number;
SELECT count(*) AS moved_targets_before FROM dmo_bi.dmo_targets WHERE customer_code IN (SELECT customer_code FROM dmo_moved);
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');
SELECT count(*) > 0 AS moved_targets_after FROM dmo_bi.dmo_targets WHERE customer_code IN (SELECT customer_code FROM dmo_moved);
SELECT public.dmo_check();

-- pseudo-random rounds: totals up and down, orders removed, moved in time
-- and added, customers moved between routes.  Every choice and amount is a
-- hash of the row's key and the round (dmo_rand), not random(): which rows
-- an ORDER BY random() picks, and which line gets which random amount,
-- would follow the heap's physical order, which autovacuum can change.
-- Each round's refresh is a delta over the customers the round reached.
CREATE FUNCTION public.dmo_rand(t text) RETURNS float8 LANGUAGE sql IMMUTABLE
    RETURN ('x' || substr(md5(t), 1, 7))::bit(28)::int / 268435456.0;
CREATE FUNCTION public.dmo_change(r int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dmo.sales_order_lines l
       SET pretax_subtotal = greatest(0, pretax_subtotal
                                         + round((public.dmo_rand(concat_ws(':', 'amount', r, l.order_number, l.line_no)) * 1600 - 800)::numeric, 2))
     WHERE (l.order_type, l.order_number) IN (SELECT o.order_type, o.order_number FROM dmo.sales_orders o
                                               ORDER BY public.dmo_rand(concat_ws(':', 'up', r, o.order_type, o.order_number)) LIMIT 25);
    CREATE TEMP TABLE dmo_out ON COMMIT DROP AS
    SELECT o.order_type, o.order_number FROM dmo.sales_orders o
     ORDER BY public.dmo_rand(concat_ws(':', 'out', r, o.order_type, o.order_number)) LIMIT 5;
    DELETE FROM dmo.sales_order_lines l USING dmo_out g WHERE l.order_type = g.order_type AND l.order_number = g.order_number;
    DELETE FROM dmo.sales_orders o USING dmo_out g WHERE o.order_type = g.order_type AND o.order_number = g.order_number;
    UPDATE dmo.sales_orders o
       SET order_date = to_char(date '2025-08-01' + floor(public.dmo_rand(concat_ws(':', 'date', r, o.order_number)) * 160)::int, 'YYYYMMDD')
     WHERE (order_type, order_number) IN (SELECT o2.order_type, o2.order_number FROM dmo.sales_orders o2
                                           ORDER BY public.dmo_rand(concat_ws(':', 'move', r, o2.order_type, o2.order_number)) LIMIT 8);
    INSERT INTO dmo.sales_orders
    SELECT 'SO', 'R' || r || '-' || i, lpad((1 + floor(public.dmo_rand(concat_ws(':', 'customer', r, i)) * 600))::int::text, 5, '0'), 'K1',
           to_char(date '2025-09-01' + floor(public.dmo_rand(concat_ws(':', 'new date', r, i)) * 128)::int, 'YYYYMMDD'), 'Y'
      FROM generate_series(1, 6) i;
    INSERT INTO dmo.sales_order_lines
    SELECT 'SO', 'R' || r || '-' || i, 1, 'P1', 1, round((100 + public.dmo_rand(concat_ws(':', 'new amount', r, i)) * 3000)::numeric, 2)
      FROM generate_series(1, 6) i;
    UPDATE dmo.customers c SET delivery_route = CASE WHEN delivery_route LIKE 'K%' THEN 'T8' ELSE 'K2' END
     WHERE customer_code IN (SELECT c2.customer_code FROM dmo.customers c2
                              ORDER BY public.dmo_rand(concat_ws(':', 'route', r, c2.customer_code)) LIMIT 6);
END $$;
SELECT public.dmo_change(1);
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');
SELECT h.mode FROM customer_analytics.refresh_history h WHERE h.kind = 'campaign' AND h.name = 'dmo' ORDER BY h.id DESC LIMIT 1;
SELECT public.dmo_check();
SELECT public.dmo_change(2);
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');
SELECT h.mode FROM customer_analytics.refresh_history h WHERE h.kind = 'campaign' AND h.name = 'dmo' ORDER BY h.id DESC LIMIT 1;
SELECT public.dmo_check();
SELECT public.dmo_change(3);
SELECT 1 FROM customer_analytics.refresh_campaign('dmo');
SELECT h.mode FROM customer_analytics.refresh_history h WHERE h.kind = 'campaign' AND h.name = 'dmo' ORDER BY h.id DESC LIMIT 1;
SELECT public.dmo_check();

SELECT customer_analytics.drop_campaign('dmo');
SELECT customer_analytics.drop_rollup('dmo');
DROP SCHEMA dmo, dmo_bi CASCADE;
DROP FUNCTION public.dmo_check(), public.dmo_mark(), public.dmo_scans(), public.dmo_dirty(), public.dmo_change(int), public.dmo_rand(text);
DROP TABLE public.dmo_before;
