-- Delta refresh (1.5): a campaign keeps per-customer state (campaign_state_<name>,
-- campaign_months_<name> in customer_analytics_state) and refresh_campaign() adjusts it from the order
-- changes the rollup's triggers record, then replaces only the changed
-- customers' rows in its views.  After every kind of write, the views must
-- be exactly (as text, scale included) what a full recompute from the
-- source tables gives, and the state what a fresh build gives.
\set VERBOSITY terse

CREATE SCHEMA dr;
CREATE TABLE dr.customers (LIKE fx.customers);
CREATE TABLE dr.sales_orders (LIKE fx.sales_orders);
CREATE TABLE dr.sales_order_lines (LIKE fx.sales_order_lines);
-- the property test's random() runs once per row scanned: autovacuum moving
-- rows or changing plans between runs would change the data it writes
ALTER TABLE dr.customers SET (autovacuum_enabled = off);
ALTER TABLE dr.sales_orders SET (autovacuum_enabled = off);
ALTER TABLE dr.sales_order_lines SET (autovacuum_enabled = off);
-- 60 customers on K1/K2/T9; customer c has 4 + c % 5 orders spread over
-- 2025-06 .. 2026-01, two lines each, amounts varying with c and the order
INSERT INTO dr.customers
SELECT lpad(c::text, 4, '0'), 'Customer ' || c, (ARRAY['K1', 'K2', 'T9'])[1 + c % 3], 'addr', NULL, '00' || c % 4
  FROM generate_series(1, 60) c;
INSERT INTO dr.sales_orders
SELECT 'SO', (c * 100 + k)::text, lpad(c::text, 4, '0'), 'K1',
       to_char(date '2025-06-03' + ((k * 37 + c * 11) % 215), 'YYYYMMDD'), 'Y'
  FROM generate_series(1, 60) c, generate_series(0, 3 + c % 5) k;
INSERT INTO dr.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || l, 1,
       round((150 + (o.order_number::int * 7919 % 1800) + l * 0.25)::numeric, 2)
  FROM dr.sales_orders o, generate_series(1, 2) l;

SELECT rollup_rows FROM customer_analytics.enable_rollup('dr');
CREATE SCHEMA dr_bi;
SELECT name, target_rows FROM customer_analytics.create_campaign('drc', 'dr_bi', routes => '{K1,K2}',
    min_spend => 2000, low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dr');

-- The views against a full recompute from the source tables (row text, so
-- that a sum shown with another scale counts as a difference), and the
-- state against a fresh build from the rollup.
CREATE FUNCTION dr_exact() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    t bigint; m bigint; l bigint; st bigint; ms bigint;
BEGIN
    PERFORM set_config('customer_analytics.use_rollup', 'off', true);
    CREATE TEMP TABLE dr_full ON COMMIT DROP AS
        SELECT * FROM customer_analytics.target_customers(routes => '{K1,K2}', min_spend => 2000,
            low_ticket_below => 1000, min_low_tickets => 2, source_schema => 'dr');
    CREATE TEMP TABLE dr_months ON COMMIT DROP AS
        SELECT * FROM customer_analytics.monthly_revenue(ARRAY(SELECT customer_code FROM dr_full),
                                                         '[2025-09-01,2026-01-07]', 'dr');
    PERFORM set_config('customer_analytics.use_rollup', 'on', true);
    SELECT count(*) INTO t FROM (
        (SELECT x::text FROM dr_bi.drc_targets x EXCEPT ALL SELECT x::text FROM dr_full x)
        UNION ALL (SELECT x::text FROM dr_full x EXCEPT ALL SELECT x::text FROM dr_bi.drc_targets x)) d;
    SELECT count(*) INTO l FROM (
        (SELECT x::text FROM dr_bi.drc_monthly_long x EXCEPT ALL SELECT x::text FROM dr_months x)
        UNION ALL (SELECT x::text FROM dr_months x EXCEPT ALL SELECT x::text FROM dr_bi.drc_monthly_long x)) d;
    SELECT count(*) INTO m FROM (
        (SELECT ROW(s.customer_code, s.trade_name, s.delivery_route, s.csm, s.avg_ticket_size,
                    s.rev_2025_09, s.rev_2025_10, s.rev_2025_11, s.rev_2025_12, s.rev_2026_01)::text
           FROM dr_bi.drc_monthly s
         EXCEPT ALL
         SELECT ROW(f.customer_code, f.trade_name, f.delivery_route, COALESCE(f.csm, ''), f.avg_ticket_size,
                    COALESCE(sum(r.revenue) FILTER (WHERE r.month = '2025-09-01'), 0),
                    COALESCE(sum(r.revenue) FILTER (WHERE r.month = '2025-10-01'), 0),
                    COALESCE(sum(r.revenue) FILTER (WHERE r.month = '2025-11-01'), 0),
                    COALESCE(sum(r.revenue) FILTER (WHERE r.month = '2025-12-01'), 0),
                    COALESCE(sum(r.revenue) FILTER (WHERE r.month = '2026-01-01'), 0))::text
           FROM dr_full f LEFT JOIN dr_months r USING (customer_code)
          GROUP BY f.customer_code, f.trade_name, f.delivery_route, f.csm, f.avg_ticket_size)) d;
    m := m + (SELECT count(*) FROM dr_bi.drc_monthly) - (SELECT count(*) FROM dr_full);
    -- the state: every customer with orders in the data window, exactly
    SELECT count(*) INTO st FROM (
        (SELECT ROW(x.customer_code, x.orders, x.total, x.last_order, x.spend_orders, x.spend, x.low_tickets, x.base_orders, x.base, x.recent_orders, x.recent)::text FROM customer_analytics_state.campaign_state_drc x
         EXCEPT ALL
         SELECT ROW(o.customer_code, count(*), sum(o.amount), max(o.d),
                    count(*) FILTER (WHERE o.d <@ '[2025-01-01,2025-12-31]'::daterange),
                    sum(o.amount) FILTER (WHERE o.d <@ '[2025-01-01,2025-12-31]'::daterange),
                    count(*) FILTER (WHERE o.d <@ '[2025-09-15,2026-01-07]'::daterange AND o.amount < 1000),
                    count(*) FILTER (WHERE o.d <@ '[2025-08-31,2025-10-30]'::daterange),
                    sum(o.amount) FILTER (WHERE o.d <@ '[2025-08-31,2025-10-30]'::daterange),
                    count(*) FILTER (WHERE o.d <@ '[2025-10-31,2025-12-31]'::daterange),
                    sum(o.amount) FILTER (WHERE o.d <@ '[2025-10-31,2025-12-31]'::daterange))::text
           FROM (SELECT h.customer_code::text, to_date(h.order_date, 'YYYYMMDD') AS d,
                        COALESCE((SELECT sum(l.pretax_subtotal) FROM dr.sales_order_lines l
                                   WHERE l.order_type = h.order_type AND l.order_number = h.order_number), 0) AS amount
                   FROM dr.sales_orders h WHERE h.confirmed_code = 'Y' AND h.customer_code IS NOT NULL) o
          WHERE o.d <@ '[2025-01-01,2026-01-07]'::daterange
          GROUP BY o.customer_code)) d;
    st := st + (SELECT count(*) FROM customer_analytics_state.campaign_state_drc) - (
        SELECT count(DISTINCT h.customer_code) FROM dr.sales_orders h
         WHERE h.confirmed_code = 'Y' AND h.customer_code IS NOT NULL
           AND to_date(h.order_date, 'YYYYMMDD') <@ '[2025-01-01,2026-01-07]'::daterange);
    -- the months kept: the targets', as monthly_revenue() gives them
    SELECT count(*) INTO ms FROM (
        (SELECT x::text FROM customer_analytics_state.campaign_months_drc x EXCEPT ALL SELECT x::text FROM dr_months x)
        UNION ALL (SELECT x::text FROM dr_months x EXCEPT ALL SELECT x::text FROM customer_analytics_state.campaign_months_drc x)) d;
    DROP TABLE dr_full, dr_months;
    IF (SELECT s.state_snapshot IS NULL FROM customer_analytics.campaign_refresh_state s WHERE s.campaign = 'drc') THEN
        RETURN format('%s targets; rows differing: targets %s, sheet %s, long %s; no state kept',
                      (SELECT count(*) FROM dr_bi.drc_targets), t, m, l);
    END IF;
    RETURN format('%s targets; rows differing: targets %s, sheet %s, long %s; state %s, months %s',
                  (SELECT count(*) FROM dr_bi.drc_targets), t, m, l, st, ms);
END $$;

-- the refresh's mode, as the refresh status records it
CREATE FUNCTION dr_refresh() RETURNS text
LANGUAGE sql AS $$
    SELECT customer_analytics.refresh_campaign('drc') IS NOT NULL;
    SELECT mode FROM customer_analytics.refresh_history WHERE name = 'drc' ORDER BY id DESC LIMIT 1;
$$;

SET client_min_messages = warning;
-- the first refresh builds the state; the next has nothing to apply
SELECT dr_refresh();
SELECT dr_exact();
SELECT dr_refresh();
SELECT state_snapshot IS NOT NULL AS has_state, state_table = 'customer_analytics_state.campaign_state_drc'::regclass AS state_table,
       month_state_table = 'customer_analytics_state.campaign_months_drc'::regclass AS month_state_table
  FROM customer_analytics.campaign_refresh_state WHERE campaign = 'drc';

-- amounts change on several orders
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 333.33 WHERE order_number::int % 7 = 0;
SELECT dr_refresh();
SELECT dr_exact();
-- a new order (header and lines in one transaction), in every window
BEGIN;
INSERT INTO dr.sales_orders VALUES ('SO', '9001', '0004', 'K1', '20251105', 'Y');
INSERT INTO dr.sales_order_lines VALUES ('SO', '9001', 1, 'P1', 1, 120.50), ('SO', '9001', 2, 'P2', 1, 80.05);
COMMIT;
SELECT dr_refresh();
SELECT dr_exact();
-- a customer's latest order deleted: its last order date is looked up again
SELECT customer_code, last_order_date FROM dr_bi.drc_targets WHERE customer_code = '0010';
SELECT order_number AS dr_latest FROM dr.sales_orders WHERE customer_code = '0010'
 ORDER BY order_date DESC LIMIT 1 \gset
DELETE FROM dr.sales_order_lines WHERE order_number = :'dr_latest';
DELETE FROM dr.sales_orders WHERE order_number = :'dr_latest';
SELECT dr_refresh();
SELECT dr_exact();
SELECT customer_code, last_order_date FROM dr_bi.drc_targets WHERE customer_code = '0010';
-- dates moved: out of every window, and from June into the recent window
UPDATE dr.sales_orders SET order_date = '20240101' WHERE order_number IN ('1301', '1402');
UPDATE dr.sales_orders SET order_date = '20251201' WHERE order_date < '20250701' AND customer_code IN ('0007', '0008');
SELECT dr_refresh();
SELECT dr_exact();
-- confirmation withdrawn, and given again
UPDATE dr.sales_orders SET confirmed_code = 'N' WHERE customer_code = '0014';
SELECT dr_refresh();
SELECT dr_exact();
UPDATE dr.sales_orders SET confirmed_code = 'Y' WHERE customer_code = '0014' AND order_number::int % 2 = 0;
SELECT dr_refresh();
SELECT dr_exact();
-- orders moved to another customer (and one to a customer not in the ERP)
UPDATE dr.sales_orders SET customer_code = '0017' WHERE customer_code = '0016' AND order_number::int % 2 = 1;
UPDATE dr.sales_orders SET customer_code = '9999' WHERE order_number = '1900';
SELECT dr_refresh();
SELECT dr_exact();
-- customers change: a route (0010 leaves the campaign, 0003 joins it), a name
UPDATE dr.customers SET delivery_route = 'T9' WHERE customer_code = '0010';
UPDATE dr.customers SET delivery_route = 'K2' WHERE customer_code = '0003';
UPDATE dr.customers SET trade_name = 'Renamed 3' WHERE customer_code = '0003';
SELECT dr_refresh();
SELECT dr_exact();
SELECT customer_code, trade_name FROM dr_bi.drc_targets WHERE customer_code IN ('0003', '0010') ORDER BY 1;
-- a new customer with orders; a line amount set to NULL
INSERT INTO dr.customers VALUES ('0061', 'Customer 61', 'K1', 'addr', NULL, '001');
INSERT INTO dr.sales_orders VALUES ('SO', '6100', '0061', 'K1', '20251002', 'Y'), ('SO', '6101', '0061', 'K1', '20251102', 'Y'),
    ('SO', '6102', '0061', 'K1', '20251202', 'Y');
INSERT INTO dr.sales_order_lines VALUES ('SO', '6100', 1, 'P1', 1, 900), ('SO', '6101', 1, 'P1', 1, 900.10),
    ('SO', '6102', 1, 'P1', 1, 800);
UPDATE dr.sales_order_lines SET pretax_subtotal = NULL WHERE order_number = '2101' AND line_no = 1;
SELECT dr_refresh();
SELECT dr_exact();
-- an order inserted and deleted in one transaction: nothing to apply
BEGIN;
INSERT INTO dr.sales_orders VALUES ('SO', '9002', '0005', 'K1', '20251105', 'Y');
INSERT INTO dr.sales_order_lines VALUES ('SO', '9002', 1, 'P1', 1, 50);
DELETE FROM dr.sales_order_lines WHERE order_number = '9002';
DELETE FROM dr.sales_orders WHERE order_number = '9002';
COMMIT;
SELECT dr_refresh();
SELECT dr_exact();
-- every order of a customer gone: its state row goes too
DELETE FROM dr.sales_orders WHERE customer_code = '0025';
SELECT dr_refresh();
SELECT dr_exact();
SELECT count(*) AS state_rows_of_0025 FROM customer_analytics_state.campaign_state_drc WHERE customer_code = '0025';

-- a plain REFRESH in between (a BI admin's) changes nothing for the state
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number::int % 11 = 0;
REFRESH MATERIALIZED VIEW CONCURRENTLY dr_bi.drc_targets;
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number::int % 13 = 0;
SELECT dr_refresh();
SELECT dr_exact();

-- a write and a refresh in one transaction: this refresh recomputes the
-- customers' histories and builds no state (its own rows cannot be told
-- apart later); the next refresh builds the state again
BEGIN;
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number::int % 17 = 0;
SELECT dr_refresh();
COMMIT;
SELECT dr_exact();
SELECT state_snapshot IS NULL AS no_state FROM customer_analytics.campaign_refresh_state WHERE campaign = 'drc';
SELECT dr_refresh();
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number::int % 19 = 0;
SELECT dr_refresh();
SELECT dr_exact();

-- what the deltas cannot follow falls back, and the status says why
TRUNCATE dr.sales_order_lines;
SELECT dr_refresh();
SELECT dr_exact();
INSERT INTO dr.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || l, 1, round((150 + (o.order_number::int * 7919 % 1800) + l * 0.25)::numeric, 2)
  FROM dr.sales_orders o, generate_series(1, 2) l;
SELECT dr_refresh();
SELECT dr_refresh();
SELECT dr_exact();
SELECT state FROM customer_analytics.rebuild_rollup('dr');
SELECT dr_refresh();
SELECT name FROM customer_analytics.alter_campaign('drc', min_low_tickets => 3);
SELECT dr_refresh();
SELECT name FROM customer_analytics.alter_campaign('drc', min_low_tickets => 2);
SELECT dr_refresh();
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal - 7 WHERE order_number::int % 5 = 0;
SELECT dr_refresh();
SELECT dr_exact();

-- the recorded changes forgotten (reset_rollup_changes, for rollups whose
-- changes no campaign here prunes): writes since the last refresh are in
-- them, so the next refresh is full, exact, and the one after a delta again
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 3 WHERE order_number::int % 7 = 0;
SELECT customer_analytics.reset_rollup_changes('dr') > 0 AS forgot_some;
SELECT customer_analytics._rollup_dirty_table(id) AS dr_dirty_now FROM customer_analytics.rollups WHERE source_schema = 'dr' \gset
SELECT count(*) AS recorded_left FROM :dr_dirty_now;
SELECT dr_refresh();
SELECT dr_exact();
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal - 3 WHERE order_number::int % 7 = 0;
SELECT dr_refresh();
SELECT dr_exact();

-- routes from the orders: histories recomputed, as before 1.5
SELECT name FROM customer_analytics.create_campaign('dro', 'dr_bi', routes => '{K1}', route_source => 'order',
                                                    source_schema => 'dr');
SELECT (customer_analytics.refresh_campaign('dro')).target_rows;
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number = '1001';
SELECT (customer_analytics.refresh_campaign('dro')).target_rows;
SELECT mode FROM customer_analytics.refresh_history WHERE name = 'dro' ORDER BY id DESC LIMIT 1;
SELECT to_regclass('customer_analytics_state.campaign_state_dro') IS NULL AS no_state_table;
SELECT customer_analytics.drop_campaign('dro');

-- a relation already named like the state: no state, a warning, the
-- refreshes still right
CREATE TABLE customer_analytics_state.campaign_state_drx (note text);
SELECT name FROM customer_analytics.create_campaign('drx', 'dr_bi', routes => '{K1,K2}', source_schema => 'dr');
SET client_min_messages = notice;
SELECT (customer_analytics.refresh_campaign('drx')).target_rows;
SET client_min_messages = warning;
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 1 WHERE order_number = '1001';
SELECT (customer_analytics.refresh_campaign('drx')).target_rows;
SELECT mode FROM customer_analytics.refresh_history WHERE name = 'drx' ORDER BY id DESC LIMIT 1;
SELECT customer_analytics.drop_campaign('drx');
SELECT count(*) AS note_table_kept FROM customer_analytics_state.campaign_state_drx;
DROP TABLE customer_analytics_state.campaign_state_drx;

-- the in-place updates are the owner's alone
CREATE ROLE ca_dr_other;
GRANT USAGE ON SCHEMA dr_bi, customer_analytics_state TO ca_dr_other;
GRANT SELECT ON dr_bi.drc_targets, customer_analytics_state.campaign_state_drc TO ca_dr_other;
SET ROLE ca_dr_other;
SELECT err($$SELECT customer_analytics._matview_apply('dr_bi.drc_targets', '{0001}', 'SELECT * FROM dr_bi.drc_targets WHERE false')$$);
SELECT err($$SELECT customer_analytics._matview_lock('dr_bi.drc_targets')$$);
SELECT err($$SELECT customer_analytics.reset_rollup_changes('dr')$$);
SELECT err($$SELECT count(*) FROM customer_analytics._target_customers_from_state('{K1}', '[2025-01-01,2025-12-31]', 0,
    '[2025-09-15,2026-01-07]', 3000, 3, '[2025-08-31,2025-10-30]', '[2025-10-31,2025-12-31]', 30, false,
    'customer', 'dr', NULL, 'customer_analytics_state.campaign_state_drc')$$);
RESET ROLE;
SELECT err($$SELECT customer_analytics._matview_apply('customer_analytics_state.campaign_state_drc', '{0001}', 'SELECT 1')$$);
SELECT err($$SELECT customer_analytics._matview_apply('dr_bi.drc_targets', '{0001}', 'SELECT 1')$$);
SELECT err($$SELECT customer_analytics._matview_apply('dr_bi.drc_targets', NULL, 'SELECT 1')$$);
SELECT err($$SELECT customer_analytics._at_one_snapshot(NULL, NULL)$$);
SELECT err($$SELECT customer_analytics._at_one_snapshot('SELECT 1', '{}')$$);
SELECT customer_analytics._at_one_snapshot('SELECT true', '{}') IS NULL AS guard_stops;
REVOKE ALL ON dr_bi.drc_targets, customer_analytics_state.campaign_state_drc FROM ca_dr_other;
REVOKE ALL ON SCHEMA dr_bi, customer_analytics_state FROM ca_dr_other;
DROP ROLE ca_dr_other;

-- Random write batches, each committed, then a refresh, checked against a
-- full recompute every time (a fixed seed: the same batches each run).
-- A pseudo-random number in [0, 1) for a row, from its key and one draw per
-- statement (salt): the rows get the same values whatever order a scan
-- visits them in (vacuum and pruning move rows between runs).
CREATE FUNCTION pg_temp.row_rand(key text, salt float8) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$ SELECT (abs(hashtext(key || ':' || salt::text)) % 1000003)::float8 / 1000003 $$;
CREATE PROCEDURE dr_property(rounds int)
LANGUAGE plpgsql AS $$
DECLARE
    result text;
    wrong int := 0;
    deltas int := 0;
    kind int;
BEGIN
    PERFORM setseed(0.32);
    FOR i IN 1 .. rounds LOOP
        FOR j IN 1 .. 1 + floor(random() * 4)::int LOOP
            kind := floor(random() * 7)::int;
            IF kind = 0 THEN
                UPDATE dr.sales_order_lines SET pretax_subtotal = round((pg_temp.row_rand(order_number || ':' || line_no, (SELECT random())) * 2000)::numeric, 2)
                 WHERE order_number::int % 23 = (SELECT floor(random() * 23)::int);
            ELSIF kind = 1 THEN
                INSERT INTO dr.sales_orders VALUES ('SO', (20000 + i * 10 + j)::text,
                    lpad((1 + floor(random() * 62))::int::text, 4, '0'), 'K1',
                    to_char(date '2025-06-01' + floor(random() * 230)::int, 'YYYYMMDD'), 'Y');
                INSERT INTO dr.sales_order_lines VALUES ('SO', (20000 + i * 10 + j)::text, 1, 'P1', 1,
                    round((random() * 1500)::numeric, 2));
            ELSIF kind = 2 THEN
                DELETE FROM dr.sales_orders WHERE order_number = (
                    SELECT order_number FROM dr.sales_orders ORDER BY order_number OFFSET floor(random() * 50)::int LIMIT 1);
            ELSIF kind = 3 THEN
                UPDATE dr.sales_orders SET order_date = to_char(date '2025-06-01' + floor(pg_temp.row_rand(order_number, (SELECT random())) * 230)::int, 'YYYYMMDD')
                 WHERE order_number::int % 31 = (SELECT floor(random() * 31)::int);
            ELSIF kind = 4 THEN
                UPDATE dr.sales_orders SET confirmed_code = CASE confirmed_code WHEN 'Y' THEN 'N' ELSE 'Y' END
                 WHERE order_number::int % 29 = (SELECT floor(random() * 29)::int);
            ELSIF kind = 5 THEN
                UPDATE dr.sales_orders SET customer_code = lpad((1 + floor(pg_temp.row_rand(order_number, (SELECT random())) * 62))::int::text, 4, '0')
                 WHERE order_number::int % 37 = (SELECT floor(random() * 37)::int);
            ELSE
                UPDATE dr.customers SET delivery_route = (ARRAY['K1', 'K2', 'T9'])[1 + floor(pg_temp.row_rand(customer_code, (SELECT random())) * 3)::int]
                 WHERE customer_code::int % 13 = (SELECT floor(random() * 13)::int);
            END IF;
        END LOOP;
        COMMIT;
        IF dr_refresh() LIKE 'delta%' THEN
            deltas := deltas + 1;
        END IF;
        COMMIT;
        result := dr_exact();
        IF result !~ 'targets 0, sheet 0, long 0; state 0, months 0$' THEN
            wrong := wrong + 1;
            RAISE WARNING 'round %: %', i, result;
        END IF;
        COMMIT;
    END LOOP;
    RAISE WARNING '% rounds: % refreshed from their deltas, % not exact', rounds, deltas, wrong;
END $$;
CALL dr_property(25);

-- A non-superuser's campaign (an analyst with SELECT on the ERP tables and,
-- as enable_rollup(readers => ...) grants, on the rollup): refreshed from
-- the order changes as its owner, its state tables its own, exact against
-- target_customers() as it sees the tables.
SELECT customer_analytics._rollup_table(id) AS dr_rollup, customer_analytics._rollup_dirty_table(id) AS dr_dirty
  FROM customer_analytics.rollups WHERE source_schema = 'dr' \gset
CREATE ROLE ca_dr_owner;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_dr_owner;  -- the state of its definitions
GRANT USAGE ON SCHEMA dr TO ca_dr_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA dr TO ca_dr_owner;
GRANT SELECT ON :dr_rollup, :dr_dirty TO ca_dr_owner;
CREATE SCHEMA dr_own AUTHORIZATION ca_dr_owner;
CREATE FUNCTION dr_own_exact() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    RETURN format('%s targets, %s rows differing from a recompute, last refresh: %s',
        (SELECT count(*) FROM dr_own.drown_targets),
        (SELECT count(*) FROM (
            (SELECT x::text FROM dr_own.drown_targets x
             EXCEPT ALL SELECT x::text FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'dr') x)
            UNION ALL
            (SELECT x::text FROM customer_analytics.target_customers(routes => '{K1,K2}', source_schema => 'dr') x
             EXCEPT ALL SELECT x::text FROM dr_own.drown_targets x)) d),
        (SELECT mode FROM customer_analytics.refresh_history WHERE name = 'drown' ORDER BY id DESC LIMIT 1));
END $$;
SET ROLE ca_dr_owner;
SELECT name FROM customer_analytics.create_campaign('drown', 'dr_own', routes => '{K1,K2}', source_schema => 'dr');
SELECT (customer_analytics.refresh_campaign('drown')).target_rows;
RESET ROLE;
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 3 WHERE order_number::int % 7 = 1;
SET ROLE ca_dr_owner;
SELECT (customer_analytics.refresh_campaign('drown')).target_rows;
SELECT dr_own_exact();
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner, has_table_privilege('public', c.oid, 'SELECT') AS public_reads
  FROM pg_class c WHERE c.relnamespace = 'customer_analytics_state'::regnamespace AND c.relname LIKE 'campaign%drown' ORDER BY 1;
RESET ROLE;
-- under row-level security on the customers (the owner sees route K1 only)
-- the rollup, a copy, is not read for it: the refresh recomputes from the
-- source tables, forgets the state, and the views hold only what the
-- policy lets the owner see
ALTER TABLE dr.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY dr_k1_only ON dr.customers FOR SELECT TO ca_dr_owner USING (delivery_route = 'K1');
UPDATE dr.sales_order_lines SET pretax_subtotal = pretax_subtotal + 3 WHERE order_number::int % 7 = 2;
SET ROLE ca_dr_owner;
SELECT (customer_analytics.refresh_campaign('drown')).target_rows;
SELECT dr_own_exact();
SELECT count(*) AS targets_off_k1 FROM dr_own.drown_targets WHERE delivery_route <> 'K1';
-- no incremental state is kept for it, and the state tables hold no stale rows
SELECT count(*) AS refresh_state_rows FROM customer_analytics.campaign_refresh_state WHERE campaign = 'drown';
SELECT (SELECT count(*) FROM customer_analytics_state.campaign_state_drown) AS state_rows, (SELECT count(*) FROM customer_analytics_state.campaign_months_drown) AS month_rows;
SELECT customer_analytics.drop_campaign('drown');
RESET ROLE;
DROP POLICY dr_k1_only ON dr.customers;
ALTER TABLE dr.customers DISABLE ROW LEVEL SECURITY;
DROP FUNCTION dr_own_exact();
DROP SCHEMA dr_own;
REVOKE ALL ON :dr_rollup, :dr_dirty FROM ca_dr_owner;
REVOKE ALL ON ALL TABLES IN SCHEMA dr FROM ca_dr_owner;
REVOKE ALL ON SCHEMA dr FROM ca_dr_owner;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_dr_owner;
DROP ROLE ca_dr_owner;

-- dropping the campaign drops its state
SELECT customer_analytics.drop_campaign('drc');
SELECT to_regclass('customer_analytics_state.campaign_state_drc') IS NULL AS state_dropped, to_regclass('customer_analytics_state.campaign_months_drc') IS NULL AS months_dropped;
RESET client_min_messages;
SELECT customer_analytics.drop_rollup('dr');
DROP SCHEMA dr_bi CASCADE;
DROP SCHEMA dr CASCADE;
