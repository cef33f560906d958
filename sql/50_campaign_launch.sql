-- Did the promo work? (issue 23): launch a campaign with a holdout, its
-- contact list and response views, campaign_response().  Needs 00_setup
-- (public.err).
--
-- Fixture lx: customers L01..L12 on route K1, L13..L24 on K2 (L25 on T1 is
-- no target), each with one low ticket in October 2025 (so all 24 are
-- targets, reason 低客單), orders in November (the baseline of a launch on
-- 2025-12-01 ended on 2026-01-01) and in December (the measurement).  The
-- analyst ca_lx_analyst (no superuser) owns the campaign; ca_lx_reader reads
-- its views; ca_lx_other is another analyst.
\set VERBOSITY terse
SET client_min_messages = notice;
CREATE ROLE ca_lx_analyst;
GRANT USAGE, CREATE ON SCHEMA customer_analytics_state TO ca_lx_analyst;  -- the state of its definitions
CREATE ROLE ca_lx_reader;
CREATE ROLE ca_lx_other;
CREATE SCHEMA lx;
CREATE TABLE lx.customers (customer_code varchar(12), trade_name text,
    delivery_route varchar(4), shipping_address text, closure_date varchar(8), csm varchar(8));
CREATE TABLE lx.sales_orders (order_type varchar(4), order_number varchar(12),
    customer_code varchar(12), delivery_route varchar(4), order_date varchar(8), confirmed_code char(1));
CREATE TABLE lx.sales_order_lines (order_type varchar(4), order_number varchar(12), line_no int,
    product_code varchar(16), quantity numeric(12,2), pretax_subtotal numeric(14,2));
INSERT INTO lx.customers
SELECT 'L' || lpad(i::text, 2, '0'), 'Shop ' || i, CASE WHEN i <= 12 THEN 'K1' WHEN i <= 24 THEN 'K2' ELSE 'T1' END,
       'addr ' || i, NULL, CASE WHEN i % 3 = 0 THEN NULL ELSE 'c' || (i % 3) END
  FROM generate_series(1, 25) i;
-- (customer, number, date, amount): the October low ticket; November (2 orders
-- for every 4th); December (none for every 7th, one of 3000 or more for every 4th)
CREATE TEMP TABLE lx_orders AS
SELECT i, 'O' || i AS n, '20251015' AS d, 100.00 * i AS amount FROM generate_series(1, 25) i
UNION ALL SELECT i, 'N' || i, '20251110', 200 + 37 * i FROM generate_series(1, 24) i
UNION ALL SELECT i, 'M' || i, '20251120', 150.50 FROM generate_series(4, 24, 4) i
UNION ALL SELECT i, 'D' || i, '20251210', 250 + 41 * i + (i % 5) * 90 + CASE WHEN i % 4 = 0 THEN 3000 ELSE 0 END
  FROM generate_series(1, 24) i WHERE i % 7 <> 0
UNION ALL SELECT i, 'J' || i, '20260105', 999 + 3 * i FROM generate_series(1, 24) i;
GRANT SELECT ON lx_orders TO PUBLIC;
INSERT INTO lx.sales_orders SELECT 'SO', n, 'L' || lpad(i::text, 2, '0'), 'K1', d, 'Y' FROM lx_orders;
INSERT INTO lx.sales_order_lines SELECT 'SO', n, 1, 'P1', 1, amount FROM lx_orders;
-- an unconfirmed December order: never counted
INSERT INTO lx.sales_orders VALUES ('SO', 'U1', 'L01', 'K1', '20251211', 'N');
INSERT INTO lx.sales_order_lines VALUES ('SO', 'U1', 1, 'P1', 1, 100000);
GRANT USAGE ON SCHEMA lx TO ca_lx_analyst, ca_lx_other;
GRANT SELECT ON ALL TABLES IN SCHEMA lx TO ca_lx_analyst, ca_lx_other;
CREATE SCHEMA lx_bi AUTHORIZATION ca_lx_analyst;
GRANT USAGE ON SCHEMA lx_bi TO ca_lx_reader, ca_lx_other;

SET ROLE ca_lx_analyst;
SELECT name, target_rows FROM customer_analytics.create_campaign('lx_promo', 'lx_bi', routes => '{K1,K2}',
    spend_window => '[2025-01-01,2026-02-01)', min_spend => 0, low_ticket_window => '[2025-10-01,2025-11-01)',
    low_ticket_below => 3000, min_low_tickets => 1, revenue_window => '[2025-10-01,2026-01-01)',
    readers => '{ca_lx_reader}', source_schema => 'lx');

-- the errors of a launch, before anything is stored
SELECT err($$SELECT customer_analytics.launch_campaign('nope')$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', holdout_share => 0)$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', holdout_share => 1)$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', holdout_share => -0.1)$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', holdout_share => NULL)$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', launched_on => NULL)$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', seed => NULL)$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', stratify_by => '{csm,NULL}')$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', stratify_by => '{csm,csm}')$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', stratify_by => '{colour}')$$);
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', stratify_by => '{customer_code}')$$);
-- every stratum of one customer: round(0.1 x 1) = 0, no holdout at all
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo', stratify_by => '{trade_name}')$$);
SELECT err($$SELECT customer_analytics.end_campaign('lx_promo', '2026-01-01')$$);
SELECT err($$SELECT * FROM customer_analytics.campaign_response('lx_promo')$$);
SELECT count(*) AS launches_left FROM customer_analytics.campaign_launches;
SELECT count(*) AS members_left FROM customer_analytics.campaign_members;
RESET ROLE;

-- another analyst may not launch, end or measure it
SET ROLE ca_lx_other;
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo')$$);
RESET ROLE;

-- the launch: two strata of 12 (低客單/K1, 低客單/K2); round(0.125 x 12) =
-- round(1.5) = 2 each (halves up)
SET ROLE ca_lx_analyst;
SELECT campaign, holdout_share, launched_on, ended_on, seed, stratify_by, launched_by, treatment_members,
       holdout_members, mde_baseline_window,
       abs(revenue_mde - (1.959963984540054 + 0.8416212335729143) * baseline_revenue_sd * sqrt(1.0 / 20 + 1.0 / 4))
         < 1e-6 * revenue_mde AS mde_is_the_formula
  FROM customer_analytics.launch_campaign('lx_promo', holdout_share => 0.125, launched_on => '2025-12-01', seed => 's1');
-- the sd of the MDE: the members' revenue over the 92 days before launch
-- (as long as the revenue window), by hand from the orders
SELECT abs(baseline_revenue_sd - (SELECT stddev_samp(COALESCE(r, 0)) FROM generate_series(1, 24) i
           LEFT JOIN (SELECT i, sum(amount) r FROM lx_orders WHERE d >= '20250831' AND d < '20251201' GROUP BY i) o USING (i)))
       < 1e-9 * baseline_revenue_sd AS sd_by_hand
  FROM customer_analytics.campaign_launches;

-- the holdout, worked out outside the database (Python's hashlib.md5 of
-- 's1:' || code, sorted by digest then code, the first 2 of each route):
-- K1 L05, L06; K2 L22, L20
SELECT customer_code, arm, strata FROM customer_analytics.campaign_members WHERE arm = 'holdout' ORDER BY customer_code;
-- and by the rule written out here in SQL, for every member
SELECT count(*) AS members,
       count(*) FILTER (WHERE m.arm = x.arm) AS same_arm
  FROM customer_analytics.campaign_members m
  JOIN (SELECT t.customer_code,
               CASE WHEN row_number() OVER w <= round(0.125 * count(*) OVER (PARTITION BY t.target_reason, t.delivery_route))
                    THEN 'holdout' ELSE 'treatment' END AS arm
          FROM lx_bi.lx_promo_targets t
        WINDOW w AS (PARTITION BY t.target_reason, t.delivery_route
                     ORDER BY md5('s1:' || t.customer_code), t.customer_code COLLATE "C")) x USING (customer_code);

-- launching twice
SELECT err($$SELECT customer_analytics.launch_campaign('lx_promo')$$);
-- alter_campaign is refused on a launched campaign
SELECT err($$SELECT customer_analytics.alter_campaign('lx_promo', min_spend => 5)$$);

-- the views, their comments, the contact list (treatment only)
SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'lx_bi'::regnamespace AND c.relkind IN ('m', 'v')
 ORDER BY 1;
SELECT obj_description('lx_bi.lx_promo_contact_list'::regclass, 'pg_class');
SELECT obj_description('lx_bi.lx_promo_lift'::regclass, 'pg_class');
SELECT * FROM lx_bi.lx_promo_contact_list ORDER BY customer_code LIMIT 5;
SELECT count(*) AS contacts, count(*) FILTER (WHERE customer_code IN ('L05', 'L06', 'L20', 'L22')) AS holdout_listed
  FROM lx_bi.lx_promo_contact_list;
SELECT * FROM lx_bi.lx_promo_contact_list_v ORDER BY customer_code LIMIT 2;
SELECT name, launched_on, ended_on, treatment_members, holdout_members, lift_view
  FROM customer_analytics.list_campaigns() WHERE name = 'lx_promo';

-- end_campaign: errors, then [2025-12-01, 2026-01-01) (baseline: November)
SELECT err($$SELECT customer_analytics.end_campaign('lx_promo', '2025-12-01')$$);
SELECT err($$SELECT customer_analytics.end_campaign('lx_promo', NULL)$$);
SELECT launched_on, ended_on FROM customer_analytics.end_campaign('lx_promo', '2026-01-01');
SELECT err($$SELECT customer_analytics.end_campaign('lx_promo', '2026-02-01')$$);

-- the response of each member, against the orders by hand
SELECT * FROM lx_bi.lx_promo_response ORDER BY customer_code LIMIT 8;
SELECT count(*) AS members,
       count(*) FILTER (WHERE r.baseline_revenue = COALESCE(b.rev, 0) AND r.revenue = COALESCE(m.rev, 0)
                          AND r.baseline_orders = COALESCE(b.n, 0) AND r.orders = COALESCE(m.n, 0)
                          AND r.baseline_low_tickets = COALESCE(b.low, 0) AND r.low_tickets = COALESCE(m.low, 0)) AS equal
  FROM lx_bi.lx_promo_response r
  LEFT JOIN (SELECT 'L' || lpad(i::text, 2, '0') code, sum(amount) rev, count(*) n, count(*) FILTER (WHERE amount < 3000) low
               FROM lx_orders WHERE d >= '20251031' AND d < '20251201' GROUP BY i) b ON b.code = r.customer_code
  LEFT JOIN (SELECT 'L' || lpad(i::text, 2, '0') code, sum(amount) rev, count(*) n, count(*) FILTER (WHERE amount < 3000) low
               FROM lx_orders WHERE d >= '20251201' AND d < '20260101' GROUP BY i) m ON m.code = r.customer_code;

-- the lift table: one row per metric x stratum
SELECT metric, stratum, overall, n_treatment, n_holdout, round(lift::numeric, 6) AS lift,
       round(lift_pct::numeric, 6) AS lift_pct FROM lx_bi.lx_promo_lift
 ORDER BY metric, overall DESC, stratum;
SELECT metric, round(se::numeric, 6) AS se, round(df::numeric, 6) AS df, round(p_value::numeric, 9) AS p_value,
       round(ci_low::numeric, 4) AS ci_low, round(ci_high::numeric, 4) AS ci_high, round(cuped_theta::numeric, 9) AS theta,
       round(cuped_lift::numeric, 6) AS cuped_lift, round(cuped_p_value::numeric, 9) AS cuped_p,
       round(balance_p_value::numeric, 9) AS balance_p
  FROM lx_bi.lx_promo_lift WHERE overall ORDER BY metric;
-- by hand (plain SQL over the response): means, sds, lift, Welch's se and
-- df, CUPED theta, lift and se, to 1e-9 relative
WITH r AS (SELECT x.arm = 'treatment' AS t, v.metric, v.y::float8 AS y, v.x::float8 AS x
             FROM lx_bi.lx_promo_response x CROSS JOIN LATERAL (VALUES ('revenue', x.revenue, x.baseline_revenue),
                  ('orders', x.orders, x.baseline_orders), ('low_tickets', x.low_tickets, x.baseline_low_tickets)) v(metric, y, x)),
th AS (SELECT metric, avg(x) mx, CASE WHEN var_samp(x) > 0 THEN covar_samp(x, y) / var_samp(x) ELSE 0 END theta
         FROM r GROUP BY metric),
a AS (SELECT r.metric, th.theta,
             avg(y) FILTER (WHERE t) mt, avg(y) FILTER (WHERE NOT t) mh,
             var_samp(y) FILTER (WHERE t) / count(*) FILTER (WHERE t) vt,
             var_samp(y) FILTER (WHERE NOT t) / count(*) FILTER (WHERE NOT t) vh,
             count(*) FILTER (WHERE t) nt, count(*) FILTER (WHERE NOT t) nh,
             avg(y - th.theta * (x - th.mx)) FILTER (WHERE t) - avg(y - th.theta * (x - th.mx)) FILTER (WHERE NOT t) cl,
             sqrt(var_samp(y - th.theta * (x - th.mx)) FILTER (WHERE t) / count(*) FILTER (WHERE t)
                  + var_samp(y - th.theta * (x - th.mx)) FILTER (WHERE NOT t) / count(*) FILTER (WHERE NOT t)) cse
        FROM r JOIN th USING (metric) GROUP BY r.metric, th.theta)
SELECT l.metric,
       abs(l.lift - (a.mt - a.mh)) <= 1e-9 * abs(a.mt - a.mh) AS lift_ok,
       abs(l.se - sqrt(a.vt + a.vh)) <= 1e-9 * sqrt(a.vt + a.vh) AS se_ok,
       abs(l.df - (a.vt + a.vh) ^ 2 / (a.vt ^ 2 / (a.nt - 1) + a.vh ^ 2 / (a.nh - 1)))
           <= 1e-9 * (a.vt + a.vh) ^ 2 / (a.vt ^ 2 / (a.nt - 1) + a.vh ^ 2 / (a.nh - 1)) AS df_ok,
       abs(l.cuped_theta - a.theta) <= 1e-9 * abs(a.theta) AS theta_ok,
       abs(l.cuped_lift - a.cl) <= 1e-9 * abs(a.cl) AS cuped_lift_ok,
       abs(l.cuped_se - a.cse) <= 1e-9 * a.cse AS cuped_se_ok
  FROM lx_bi.lx_promo_lift l JOIN a USING (metric) WHERE l.overall ORDER BY l.metric;

-- the lift table = arm_comparison over the response = campaign_response(): same numbers
SELECT count(*) AS rows, count(*) FILTER (WHERE l IS NOT DISTINCT FROM f) AS equal_to_function
  FROM (SELECT metric, stratum, n_treatment, n_holdout, mean_treatment, mean_holdout, sd_treatment, sd_holdout, lift,
               lift_pct, se, df, ci_low, ci_high, p_value, cuped_lift, cuped_ci_low, cuped_ci_high, cuped_p_value,
               balance_p_value FROM lx_bi.lx_promo_lift) l
  FULL JOIN (SELECT metric, stratum, n_treatment, n_holdout, mean_treatment, mean_holdout, sd_treatment, sd_holdout, lift,
                    lift_pct, se, df, ci_low, ci_high, p_value, cuped_lift, cuped_ci_low, cuped_ci_high, cuped_p_value,
                    balance_p_value FROM customer_analytics.campaign_response('lx_promo')) f USING (metric, stratum);
SELECT count(*) AS rows, count(*) FILTER (WHERE (l.n_treatment, l.n_holdout, l.lift, l.se, l.df, l.p_value, l.cuped_lift, l.cuped_se,
                                                 l.cuped_p_value, l.balance_p_value)
                                                IS NOT DISTINCT FROM ((a).n_treatment, (a).n_holdout, (a).lift, (a).se, (a).df,
                                                 (a).p_value, (a).cuped_lift, (a).cuped_se, (a).cuped_p_value, (a).balance_p_value))
                                     AS equal_to_aggregate
  FROM lx_bi.lx_promo_lift l
  JOIN (SELECT 'revenue' AS metric, stratum,
               customer_analytics.arm_comparison(revenue::float8, baseline_revenue::float8, arm = 'treatment'
                                                 ORDER BY customer_code COLLATE "C") a
          FROM lx_bi.lx_promo_response GROUP BY stratum
        UNION ALL
        SELECT 'revenue', 'all', customer_analytics.arm_comparison(revenue::float8, baseline_revenue::float8, arm = 'treatment'
                                                                   ORDER BY customer_code COLLATE "C")
          FROM lx_bi.lx_promo_response) x USING (metric, stratum);
-- other windows: January against December
SELECT metric, stratum, n_treatment, n_holdout, round(mean_treatment::numeric, 6) AS mean_treatment,
       round(mean_holdout::numeric, 6) AS mean_holdout
  FROM customer_analytics.campaign_response('lx_promo', measure_window => '[2026-01-01,2026-02-01)',
                                            baseline_window => '[2025-12-01,2026-01-01)')
 WHERE overall;
SELECT err($$SELECT * FROM customer_analytics.campaign_response('lx_promo', measure_window => 'empty')$$);
SELECT err($$SELECT * FROM customer_analytics.campaign_response('lx_promo', baseline_window => '[2025-01-01,)')$$);

-- month by month: October (baseline starts 2025-10-31) to December
SELECT * FROM lx_bi.lx_promo_response_monthly ORDER BY month, arm;

-- a refresh never changes the members: more orders, a new target, a
-- changed trade name
RESET ROLE;
INSERT INTO lx.sales_orders VALUES ('SO', 'X25', 'L25', 'K1', '20251016', 'Y'), ('SO', 'X01', 'L01', 'K1', '20251212', 'Y');
INSERT INTO lx.sales_order_lines VALUES ('SO', 'X25', 1, 'P1', 1, 10), ('SO', 'X01', 1, 'P1', 1, 500);
UPDATE lx.customers SET delivery_route = 'K2' WHERE customer_code = 'L25';
UPDATE lx.customers SET trade_name = 'Renamed' WHERE customer_code = 'L02';
SET ROLE ca_lx_analyst;
CREATE TEMP TABLE members_before AS SELECT * FROM customer_analytics.campaign_members;
SELECT target_rows FROM customer_analytics.refresh_campaign('lx_promo');
SELECT count(*) AS targets_now, (SELECT count(*) FROM customer_analytics.campaign_members) AS members
  FROM lx_bi.lx_promo_targets;
SELECT count(*) AS changed_members FROM (
  (SELECT * FROM customer_analytics.campaign_members EXCEPT SELECT * FROM members_before)
  UNION ALL (SELECT * FROM members_before EXCEPT SELECT * FROM customer_analytics.campaign_members)) d;
SELECT customer_code, trade_name FROM lx_bi.lx_promo_contact_list WHERE customer_code = 'L02';
-- the response views were refreshed: L01's new December order
SELECT customer_code, revenue, orders FROM lx_bi.lx_promo_response WHERE customer_code = 'L01';
SELECT n_treatment, n_holdout FROM lx_bi.lx_promo_lift WHERE metric = 'revenue' AND overall;
DROP TABLE members_before;
RESET ROLE;

-- the reader reads the views only: not the members, not the holdout
SET ROLE ca_lx_reader;
SELECT count(*) AS contacts FROM lx_bi.lx_promo_contact_list;
SELECT count(*) AS lift_rows FROM lx_bi.lx_promo_lift_v;
SELECT count(*) AS response_rows FROM lx_bi.lx_promo_response;
SELECT count(*) AS monthly_rows FROM lx_bi.lx_promo_response_monthly_v;
SELECT count(*) AS members_visible FROM customer_analytics.campaign_members;
SELECT err($$INSERT INTO customer_analytics.campaign_members VALUES ('lx_promo', 'L99', 'holdout', '{}')$$);
SELECT err($$SELECT * FROM customer_analytics.campaign_response('lx_promo')$$);
SELECT err($$SELECT customer_analytics.refresh_campaign('lx_promo')$$);
SELECT err($$SELECT * FROM customer_analytics._campaign_member_response('lx_promo', NULL, NULL)$$);
SELECT err($$SELECT * FROM customer_analytics._campaign_contacts('lx_promo')$$);
RESET ROLE;

-- the other analyst: refused everywhere, and cannot write the catalogs
SET ROLE ca_lx_other;
SELECT err($$SELECT customer_analytics.end_campaign('lx_promo')$$);
SELECT err($$SELECT * FROM customer_analytics.campaign_response('lx_promo')$$);
SELECT err($$SELECT customer_analytics.drop_campaign('lx_promo')$$);
SELECT err($$SELECT * FROM customer_analytics._launch_campaign_as_owner('lx_promo', 0.5, '2025-12-01', '', '{}')$$);
UPDATE customer_analytics.campaign_launches SET ended_on = NULL;
DELETE FROM customer_analytics.campaign_members;
SELECT count(*) AS members_visible FROM customer_analytics.campaign_members;
RESET ROLE;
SELECT count(*) AS members, (SELECT ended_on FROM customer_analytics.campaign_launches) AS ended_on
  FROM customer_analytics.campaign_members;

-- without strata, and a superuser launching the analyst's campaign (as its owner)
SET ROLE ca_lx_analyst;
SELECT name FROM customer_analytics.create_campaign('lx_flat', 'lx_bi', routes => '{K1,K2}',
    spend_window => '[2025-01-01,2026-02-01)', min_spend => 0, low_ticket_window => '[2025-10-01,2025-11-01)',
    low_ticket_below => 3000, min_low_tickets => 1, revenue_window => '[2025-10-01,2026-01-01)', source_schema => 'lx');
RESET ROLE;
-- round(0.3 x 25) = round(7.5) = 8 of the 25 targets (L25 is one now):
-- Python's hashlib gives L01, L05, L06, L08, L18, L20, L21, L22
SELECT launched_by, treatment_members, holdout_members
  FROM customer_analytics.launch_campaign('lx_flat', holdout_share => 0.3, launched_on => '2025-12-01', seed => 's1',
                                          stratify_by => '{}');
SELECT string_agg(customer_code, ', ' ORDER BY customer_code) AS holdout
  FROM customer_analytics.campaign_members WHERE campaign = 'lx_flat' AND arm = 'holdout';
SELECT metric, stratum, n_treatment, n_holdout FROM customer_analytics.campaign_response('lx_flat', '[2025-12-01,2026-01-01)');
SELECT attname FROM pg_attribute WHERE attrelid = 'lx_bi.lx_flat_response'::regclass AND attnum > 0 ORDER BY attnum;

-- drop_campaign drops the launch, its members and its views
SET ROLE ca_lx_analyst;
SELECT customer_analytics.drop_campaign('lx_flat');
SELECT customer_analytics.drop_campaign('lx_promo');
RESET ROLE;
SELECT count(*) AS launches, (SELECT count(*) FROM customer_analytics.campaign_members) AS members
  FROM customer_analytics.campaign_launches;
SELECT count(*) AS views_left FROM pg_class WHERE relnamespace = 'lx_bi'::regnamespace;

DROP SCHEMA lx_bi;
DROP SCHEMA lx CASCADE;
REVOKE ALL ON SCHEMA customer_analytics_state FROM ca_lx_analyst;
DROP ROLE ca_lx_analyst;
DROP ROLE ca_lx_reader;
DROP ROLE ca_lx_other;
