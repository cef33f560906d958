-- A launched campaign's response views follow its delta refresh (issue 23,
-- item 4): after a delta refresh only the changed customers that are
-- members get their <name>_response rows recomputed and replaced in place,
-- and their months in launch_months_<name>; <name>_lift and
-- <name>_response_monthly are recomputed from those.  The views fall back
-- to the full recompute (refresh_history.mode says why) when the windows
-- moved, the response view was refreshed by hand, the rollup is not usable
-- or the refresh cannot follow the order changes.  After every write the
-- views equal a full recompute (ld_diffs: 0 rows differ in each view), and
-- after random writes too (the property check at the end).
--
-- Fixture ld: D01..D36 on route K1, each with a low ticket in October 2025
-- (all targets), D37..D40 on T9 (never members); orders in November (the
-- baseline of a launch on 2025-12-01 ended on 2026-01-01) and December.
-- The analyst ca_ld_analyst (no superuser) owns the campaign and writes the
-- orders.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE ca_ld_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_ld_analyst;  -- the state of its definitions
CREATE SCHEMA ld;
CREATE TABLE ld.customers (LIKE fx.customers);
CREATE TABLE ld.sales_orders (LIKE fx.sales_orders);
CREATE TABLE ld.sales_order_lines (LIKE fx.sales_order_lines);
ALTER TABLE ld.customers ADD PRIMARY KEY (customer_code);
ALTER TABLE ld.sales_orders ADD PRIMARY KEY (order_type, order_number);
ALTER TABLE ld.sales_order_lines ADD PRIMARY KEY (order_type, order_number, line_no);
INSERT INTO ld.customers
SELECT 'D' || lpad(i::text, 2, '0'), 'Shop ' || i, CASE WHEN i <= 36 THEN 'K1' ELSE 'T9' END, 'addr', NULL, 'c' || i % 3
  FROM generate_series(1, 40) i;
INSERT INTO ld.sales_orders
SELECT 'SO', k || i, 'D' || lpad(i::text, 2, '0'), 'K1', d, 'Y'
  FROM generate_series(1, 40) i,
       (VALUES ('O', '20251015'), ('N', '20251112'), ('M', '20251203'), ('E', '20251220')) o(k, d)
 WHERE k IN ('O', 'N') OR i % 5 <> 0;
INSERT INTO ld.sales_order_lines
SELECT o.order_type, o.order_number, l, 'P' || l, 1,
       CASE WHEN o.order_number LIKE 'O%' THEN 300.00 ELSE round(400 + (o.order_number ~ '^[NME]')::int * 13.37 * l + length(o.order_number) * 91, 2) END
  FROM ld.sales_orders o, generate_series(1, 2) l;
GRANT USAGE ON SCHEMA ld TO ca_ld_analyst;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ld TO ca_ld_analyst;
SELECT rollup_rows FROM customer_analytics.enable_rollup('ld', readers => '{ca_ld_analyst}');
CREATE SCHEMA ld_bi AUTHORIZATION ca_ld_analyst;

-- the rows of each launch view that differ from a full recompute: the
-- response of every member, Welch's comparison (campaign_response()) and
-- the months of each arm from monthly_revenue()
CREATE FUNCTION public.ld_diffs(campaign text) RETURNS TABLE(view text, differences bigint)
    LANGUAGE plpgsql AS $f$
DECLARE
    c customer_analytics.campaigns := (SELECT x FROM customer_analytics.campaigns x WHERE x.name = campaign);
    resp text := 'customer_code, arm, stratum, baseline_revenue, revenue, baseline_orders, orders, baseline_low_tickets, low_tickets';
    lift text := 'metric, stratum, n_treatment, n_holdout, mean_treatment, mean_holdout, sd_treatment, sd_holdout, lift, lift_pct,'
                 ' se, df, ci_low, ci_high, p_value, cuped_lift, cuped_ci_low, cuped_ci_high, cuped_p_value, balance_p_value';
    mine text;
    recomputed text;
BEGIN
    mine := format('SELECT %s FROM %I.%I', resp, c.view_schema, campaign || '_response');
    recomputed := format('SELECT %s FROM customer_analytics._campaign_member_response(%L, NULL, NULL)', resp, campaign);
    view := 'response';
    EXECUTE format('SELECT count(*) FROM ((%1$s EXCEPT ALL %2$s) UNION ALL (%2$s EXCEPT ALL %1$s)) d', mine, recomputed) INTO differences;
    RETURN NEXT;
    mine := format('SELECT %s FROM %I.%I', lift, c.view_schema, campaign || '_lift');
    recomputed := format('SELECT %s FROM customer_analytics.campaign_response(%L)', lift, campaign);
    view := 'lift';
    EXECUTE format('SELECT count(*) FROM ((%1$s EXCEPT ALL %2$s) UNION ALL (%2$s EXCEPT ALL %1$s)) d', mine, recomputed) INTO differences;
    RETURN NEXT;
    mine := format('SELECT * FROM %I.%I', c.view_schema, campaign || '_response_monthly');
    recomputed := format('SELECT r.month, m.arm, count(*), sum(r.revenue), sum(r.revenue) / count(*),'
                   ' r.month >= date_trunc(''month'', l.launched_on)::date'
                   ' FROM customer_analytics.campaign_launches l CROSS JOIN LATERAL customer_analytics._launch_windows(l, NULL, NULL) w'
                   ' JOIN customer_analytics.campaign_members m ON m.campaign = l.campaign'
                   ' JOIN customer_analytics.monthly_revenue(ARRAY(SELECT x.customer_code FROM customer_analytics.campaign_members x'
                   '      WHERE x.campaign = %1$L), daterange(lower(w.baseline), upper(w.measure)), %2$L) r ON r.customer_code = m.customer_code'
                   ' WHERE l.campaign = %1$L GROUP BY r.month, m.arm, l.launched_on', campaign, c.source_schema);
    view := 'response_monthly';
    EXECUTE format('SELECT count(*) FROM ((%1$s EXCEPT ALL %2$s) UNION ALL (%2$s EXCEPT ALL %1$s)) d', mine, recomputed) INTO differences;
    RETURN NEXT;
END $f$;
-- the last refresh's mode, and the views' differences in one line
CREATE FUNCTION public.ld_refresh(campaign text) RETURNS TABLE(mode text, differences text)
    LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM customer_analytics.refresh_campaign(campaign);
    SELECT h.mode INTO mode FROM customer_analytics.refresh_history h
     WHERE h.kind = 'campaign' AND h.name = campaign ORDER BY h.id DESC LIMIT 1;
    SELECT string_agg(d.view || ' ' || d.differences, ', ' ORDER BY d.view) INTO differences FROM public.ld_diffs(campaign) d;
    RETURN NEXT;
END $f$;

SET ROLE ca_ld_analyst;
SELECT name FROM customer_analytics.create_campaign('ldc', 'ld_bi', routes => '{K1}',
    spend_window => '[2025-01-01,2026-03-01)', min_spend => 0, low_ticket_window => '[2025-10-01,2025-11-01)',
    low_ticket_below => 1000, min_low_tickets => 1, revenue_window => '[2025-10-01,2026-02-01)', source_schema => 'ld');
-- (the first refresh builds the state)
SELECT target_rows FROM customer_analytics.refresh_campaign('ldc');
SELECT treatment_members, holdout_members
  FROM customer_analytics.launch_campaign('ldc', holdout_share => 0.25, launched_on => '2025-12-01', seed => 'ld');
-- a running campaign: measured up to today; its response view is recorded
-- with the campaign's state snapshot
SELECT measure_window = daterange('2025-12-01', current_date) AS measured_to_today,
       state_snapshot IS NOT NULL AS at_the_state, applied_members
  FROM customer_analytics.campaign_launch_state;
SELECT * FROM ld_refresh('ldc');
-- a member's new December order: its row alone
INSERT INTO ld.sales_orders VALUES ('SO', 'A1', 'D03', 'K1', '20251210', 'Y');
INSERT INTO ld.sales_order_lines VALUES ('SO', 'A1', 1, 'P1', 1, 812.40);
-- (before the refresh, the check sees the views behind the orders)
SELECT * FROM ld_diffs('ldc');
SELECT * FROM ld_refresh('ldc');
-- the date moved since the views were computed (as when a running
-- campaign's refresh runs on a later day): in full, once
UPDATE customer_analytics.campaign_launch_state SET measure_window = '[2025-12-01,2025-12-02)', baseline_window = '[2025-11-30,2025-12-01)';
SELECT * FROM ld_refresh('ldc');
SELECT * FROM ld_refresh('ldc');

-- end_campaign: the window moves to [2025-12-01, 2026-01-01), the views are
-- recomputed in full and recorded; the refreshes after it follow the
-- changes again
SELECT ended_on FROM customer_analytics.end_campaign('ldc', '2026-01-01');
SELECT measure_window, baseline_window, state_snapshot IS NOT NULL AS at_the_state, applied_members
  FROM customer_analytics.campaign_launch_state;
SELECT * FROM ld_refresh('ldc');

-- writes of members and non-members: each refresh replaces the changed
-- members' rows only
-- a non-member's order (T9): no member changed
INSERT INTO ld.sales_orders VALUES ('SO', 'A2', 'D38', 'T9', '20251211', 'Y');
INSERT INTO ld.sales_order_lines VALUES ('SO', 'A2', 1, 'P1', 1, 5000);
SELECT * FROM ld_refresh('ldc');
-- a baseline line changed, a low ticket becoming a large one, and a large one low
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 0.01 WHERE order_number = 'N7' AND line_no = 1;
UPDATE ld.sales_order_lines SET pretax_subtotal = 2000 WHERE order_number = 'M8' AND line_no = 2;
UPDATE ld.sales_order_lines SET pretax_subtotal = 10 WHERE order_number = 'E9';
SELECT * FROM ld_refresh('ldc');
-- an order deleted (header and lines), one of its lines only of another
DELETE FROM ld.sales_order_lines WHERE order_number = 'M11';
DELETE FROM ld.sales_orders WHERE order_number = 'M11';
DELETE FROM ld.sales_order_lines WHERE order_number = 'E12' AND line_no = 2;
SELECT * FROM ld_refresh('ldc');
-- orders moving out of the windows and into them, across them
UPDATE ld.sales_orders SET order_date = '20260115' WHERE order_number = 'E13';
UPDATE ld.sales_orders SET order_date = '20251125' WHERE order_number = 'O14';
UPDATE ld.sales_orders SET order_date = '20251205' WHERE order_number = 'N16';
SELECT * FROM ld_refresh('ldc');
-- unconfirmed and confirmed again; an order moving to a non-member and one
-- from a non-member to a member
UPDATE ld.sales_orders SET confirmed_code = 'N' WHERE order_number IN ('M17', 'N18');
UPDATE ld.sales_orders SET customer_code = 'D39' WHERE order_number = 'E19';
UPDATE ld.sales_orders SET customer_code = 'D21' WHERE order_number = 'M37';
SELECT * FROM ld_refresh('ldc');
UPDATE ld.sales_orders SET confirmed_code = 'Y' WHERE order_number = 'N18';
SELECT * FROM ld_refresh('ldc');
-- a rolled back write, then nothing: no member changed
BEGIN;
UPDATE ld.sales_order_lines SET pretax_subtotal = 1 WHERE order_number LIKE 'E%';
ROLLBACK;
SELECT * FROM ld_refresh('ldc');

-- more than a quarter of the members changed: recomputed in full (cheaper),
-- then from the changed members again
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 0.01 WHERE order_number LIKE 'E%' AND line_no = 1;
SELECT * FROM ld_refresh('ldc');
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 0.01 WHERE order_number IN ('E1', 'E2') AND line_no = 1;
SELECT * FROM ld_refresh('ldc');

-- refreshed by hand (a new file): the next refresh recomputes in full,
-- then follows the changes again
RESET ROLE;
REFRESH MATERIALIZED VIEW ld_bi.ldc_response;
SET ROLE ca_ld_analyst;
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number = 'E22';
SELECT * FROM ld_refresh('ldc');
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number = 'E23';
SELECT * FROM ld_refresh('ldc');
-- REFRESH ... CONCURRENTLY by hand recomputes the same rows in place: nothing to redo
REFRESH MATERIALIZED VIEW CONCURRENTLY ld_bi.ldc_response;
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number = 'E24';
SELECT * FROM ld_refresh('ldc');

-- a refresh in the transaction that wrote the orders: the campaign cannot
-- follow the changes, nor can its response views
BEGIN;
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number = 'E26';
SELECT * FROM ld_refresh('ldc');
COMMIT;
SELECT * FROM ld_refresh('ldc');
-- the rollup disabled: in full; enabled again, the first refresh rebuilds
-- the state, the next one follows the changes
RESET ROLE;
SELECT customer_analytics.disable_rollup('ld') IS NOT NULL AS disabled;
SET ROLE ca_ld_analyst;
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number = 'E27';
SELECT * FROM ld_refresh('ldc');
RESET ROLE;
SELECT state FROM customer_analytics.rebuild_rollup('ld');
SET ROLE ca_ld_analyst;
SELECT * FROM ld_refresh('ldc');
UPDATE ld.sales_order_lines SET pretax_subtotal = pretax_subtotal + 5 WHERE order_number = 'E28';
SELECT * FROM ld_refresh('ldc');

-- the property: rounds of random writes (inserts, updates, deletes of orders
-- and lines of members and non-members, dates moved in and out of the
-- windows, unconfirming, an order changing customer), each committed, then
-- a refresh: every one takes the delta path and leaves no difference
CREATE TEMP TABLE ld_rounds (round int, mode text, differences text);
DO $$
DECLARE
    code text;
    ord text;
    op int;
BEGIN
    PERFORM setseed(0.54);
    FOR r IN 1..25 LOOP
        FOR k IN 1..(1 + floor(random() * 4))::int LOOP
            code := 'D' || lpad((1 + floor(random() * 40))::int::text, 2, '0');
            SELECT o.order_number INTO ord FROM ld.sales_orders o ORDER BY o.order_number OFFSET floor(random() * 100) LIMIT 1;
            op := floor(random() * 8)::int;
            IF op = 0 THEN
                INSERT INTO ld.sales_orders VALUES ('SO', 'R' || r || '_' || k, code, 'K1',
                    to_char(date '2025-10-20' + floor(random() * 90)::int, 'YYYYMMDD'), 'Y');
                INSERT INTO ld.sales_order_lines VALUES ('SO', 'R' || r || '_' || k, 1, 'P1', 1, round((random() * 2000)::numeric, 2));
            ELSIF op = 1 THEN
                UPDATE ld.sales_order_lines SET pretax_subtotal = round((random() * 2000)::numeric, 2)
                 WHERE order_number = ord AND line_no = 1;
            ELSIF op = 2 THEN
                DELETE FROM ld.sales_order_lines WHERE order_number = ord;
                DELETE FROM ld.sales_orders WHERE order_number = ord;
            ELSIF op = 3 THEN
                UPDATE ld.sales_orders SET order_date = to_char(date '2025-10-20' + floor(random() * 100)::int, 'YYYYMMDD')
                 WHERE order_number = ord;
            ELSIF op = 4 THEN
                UPDATE ld.sales_orders SET confirmed_code = CASE WHEN confirmed_code = 'Y' THEN 'N' ELSE 'Y' END
                 WHERE order_number = ord;
            ELSIF op = 5 THEN
                UPDATE ld.sales_orders SET customer_code = code WHERE order_number = ord;
            ELSIF op = 6 THEN
                INSERT INTO ld.sales_order_lines
                SELECT o.order_type, o.order_number, 9 + r * 10 + k, 'P9', 1, round((random() * 500)::numeric, 2)
                  FROM ld.sales_orders o WHERE o.order_number = ord;
            ELSE
                DELETE FROM ld.sales_order_lines WHERE order_number = ord AND line_no = 2;
            END IF;
        END LOOP;
        COMMIT;
        INSERT INTO ld_rounds SELECT r, f.mode, f.differences FROM ld_refresh('ldc') f;
        COMMIT;
    END LOOP;
END $$;
SELECT count(*) AS rounds,
       count(*) FILTER (WHERE mode ~ '^delta \(.*\); response views from [0-9]+ changed members$') AS from_changed_members,
       count(*) FILTER (WHERE differences = 'lift 0, response 0, response_monthly 0') AS exact,
       sum(substring(mode FROM 'from ([0-9]+) changed members')::int) > 0 AS members_changed
  FROM ld_rounds;
-- (any round that is not: shown)
SELECT * FROM ld_rounds
 WHERE mode !~ '^delta \(.*\); response views from [0-9]+ changed members$'
    OR differences <> 'lift 0, response 0, response_monthly 0';

-- drop_campaign drops the members' months with the views
SELECT to_regclass('customer_analytics_state.launch_months_ldc') IS NOT NULL AS months_kept;
SELECT customer_analytics.drop_campaign('ldc') IS NOT NULL AS dropped;
SELECT to_regclass('customer_analytics_state.launch_months_ldc') IS NULL AS months_dropped,
       (SELECT count(*) FROM customer_analytics.campaign_launch_state) AS launch_state_rows;
RESET ROLE;
SELECT customer_analytics.drop_rollup('ld') IS NOT NULL AS rollup_dropped;
DROP FUNCTION public.ld_refresh(text);
DROP FUNCTION public.ld_diffs(text);
DROP SCHEMA ld_bi CASCADE;
DROP SCHEMA ld CASCADE;
DROP OWNED BY ca_ld_analyst;
DROP ROLE ca_ld_analyst;
