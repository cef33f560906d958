-- Did the promo work? (issue 23) The arm_comparison aggregate, its NULL
-- cases and errors, grouping sets and parallel/combined states,
-- minimum_detectable_effect, and _member_orders() on the shared fixtures.
\set VERBOSITY terse
SET extra_float_digits = 0;

-- near(got, want): equal to 1e-12 relative (the references below are
-- SciPy's, or exact fractions worked out by hand)
CREATE FUNCTION near(got float8, want float8) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT abs(got - want) <= 1e-12 * greatest(abs(want), 1e-300) $$;

CREATE TABLE arm_data (ds text, y float8, x float8, in_treatment boolean, stratum text);
-- d1, worked out by hand: treatment y = {2,4,6} (mean 4, var 4), holdout
-- y = {1,3} (mean 2, var 2); lift 2, lift_pct 100, se = sqrt(4/3 + 2/2) =
-- sqrt(7/3), df = (7/3)^2 / ((4/3)^2/2 + 1^2/1) = 49/17; x = {1,2,3 | 1,2}:
-- over all rows mean x 1.8, Sxx 2.8, Sxy 6.2, theta = 31/14, cuped_lift =
-- 2 - 31/14 * (2 - 1.5) = 25/28
INSERT INTO arm_data VALUES
 ('d1', 2, 1, true, 'A'), ('d1', 4, 2, true, 'A'), ('d1', 6, 3, true, 'B'),
 ('d1', 1, 1, false, 'A'), ('d1', 3, 2, false, 'B');
-- d2: references from numpy/SciPy 1.10 (test/response_parity.py's
-- reference(): ttest_ind(equal_var=False), Y' computed explicitly)
INSERT INTO arm_data VALUES
 ('d2', 10, 8, true, 'A'), ('d2', 12, 9, true, 'A'), ('d2', 15, 14, true, 'B'), ('d2', 9, 7, true, 'B'),
 ('d2', 3, 4, false, 'A'), ('d2', 5, 6, false, 'A'), ('d2', 8, 9, false, 'B'), ('d2', 4, 3, false, 'B'),
 ('d2', 6, 5, false, 'B');

\x on
SELECT ds, (customer_analytics.arm_comparison(y, x, in_treatment)).*
  FROM arm_data GROUP BY ds ORDER BY ds;
\x off

-- d1 by hand, exactly
SELECT near(r.se, sqrt(7.0 / 3)) AS se, near(r.df, 49.0 / 17) AS df,
       near(r.cuped_theta, 31.0 / 14) AS theta, near(r.cuped_lift, 25.0 / 28) AS cuped_lift,
       near(r.lift_pct, 100) AS lift_pct,
       -- CI from t_{0.975, 49/17}: SciPy's t.ppf polished on its t.sf
       near(r.ci_low, -2.9754675964107644) AS ci_low, near(r.ci_high, 6.975467596410764) AS ci_high,
       near(r.p_value, 0.28502284001427436) AS p,
       near(r.cuped_se, 0.16366341767699405) AS cuped_se,
       near(r.cuped_ci_low, 0.3597713289559902) AS cuped_ci_low,
       near(r.cuped_p_value, 0.013418616905796207) AS cuped_p,
       near(r.balance_p_value, 0.5611508812400856) AS balance_p
  FROM (SELECT (customer_analytics.arm_comparison(y, x, in_treatment)).* FROM arm_data WHERE ds = 'd1') r;

-- d2 against SciPy
SELECT near(r.sd_treatment, 2.6457513110645907) AS sd_t, near(r.sd_holdout, 1.9235384061671346) AS sd_h,
       near(r.se, 1.57797338380595) AS se, near(r.df, 5.35537832546355) AS df,
       near(r.ci_low, 2.323329835140588) AS ci_low, near(r.ci_high, 10.27667016485941) AS ci_high,
       near(r.p_value, 0.009050718576615654) AS p,
       near(r.cuped_theta, 1.1078680203045683) AS theta, near(r.cuped_lift, 1.7577411167512702) AS cuped_lift,
       near(r.cuped_se, 0.7729266226780019) AS cuped_se,
       near(r.cuped_ci_low, -0.07342278494403254) AS cuped_ci_low,
       near(r.cuped_ci_high, 3.5889050184465727) AS cuped_ci_high,
       near(r.cuped_p_value, 0.05747376583151537) AS cuped_p,
       near(r.balance_p_value, 0.07496018725507889) AS balance_p
  FROM (SELECT (customer_analytics.arm_comparison(y, x, in_treatment)).* FROM arm_data WHERE ds = 'd2') r;

-- grouping sets: all members and each stratum in one pass
SELECT ds, coalesce(stratum, 'all') AS stratum, (r).n_treatment, (r).n_holdout,
       round((r).lift::numeric, 9) AS lift, round((r).se::numeric, 9) AS se, round((r).cuped_lift::numeric, 9) AS cuped_lift
  FROM (SELECT ds, stratum, customer_analytics.arm_comparison(y, x, in_treatment) AS r
          FROM arm_data GROUP BY GROUPING SETS ((ds), (ds, stratum))) g
 ORDER BY ds, stratum NULLS FIRST;

-- NULL cases: no rows; one arm only; an arm of one row; both arms
-- constant (se 0: df, CI and p NULL, whether the lift is 2 or 0); a
-- holdout mean of 0 (lift_pct NULL); a constant baseline (theta 0)
CREATE TABLE arm_nulls (c text, y float8, x float8, in_treatment boolean);
INSERT INTO arm_nulls VALUES
 ('treatment only', 1, 1, true), ('treatment only', 2, 3, true),
 ('arm of one', 5, 1, true), ('arm of one', 1, 2, false), ('arm of one', 2, 4, false), ('arm of one', 4, 3, false),
 ('se 0, lift 2', 5, 1, true), ('se 0, lift 2', 5, 2, true), ('se 0, lift 2', 3, 3, false), ('se 0, lift 2', 3, 4, false),
 ('se 0, lift 0', 4, 1, true), ('se 0, lift 0', 4, 2, true), ('se 0, lift 0', 4, 3, false), ('se 0, lift 0', 4, 4, false),
 ('holdout mean 0', 1, 1, true), ('holdout mean 0', 3, 2, true), ('holdout mean 0', 0, 3, false), ('holdout mean 0', 0, 1, false),
 ('constant baseline', 1, 7, true), ('constant baseline', 3, 7, true), ('constant baseline', 2, 7, false), ('constant baseline', 6, 7, false);
\x on
SELECT 'no rows' AS c, (customer_analytics.arm_comparison(y, x, in_treatment)).* FROM arm_nulls WHERE false;
SELECT c, (customer_analytics.arm_comparison(y, x, in_treatment)).* FROM arm_nulls GROUP BY c ORDER BY c;
\x off

-- errors: every ereport of the aggregate and its support functions
SELECT err($$SELECT customer_analytics.arm_comparison(y, x, NULL) FROM arm_data$$);
SELECT err($$SELECT customer_analytics.arm_comparison(NULL, x, in_treatment) FROM arm_data$$);
SELECT err($$SELECT customer_analytics.arm_comparison(y, NULL, in_treatment) FROM arm_data$$);
SELECT err($$SELECT customer_analytics.arm_comparison('NaN', x, in_treatment) FROM arm_data$$);
SELECT err($$SELECT customer_analytics.arm_comparison(y, '-Infinity', in_treatment) FROM arm_data$$);
SELECT err($$SELECT customer_analytics.arm_comparison(v, 0, true) FROM (VALUES (1e300::float8), (-1e300), (1e308)) t(v)$$);
SELECT err($$SELECT customer_analytics._arm_comparison_accum(NULL, 1, 1, true)$$);
SELECT err($$SELECT customer_analytics._arm_comparison_accum('{0,0}', 1, 1, true)$$);
SELECT err($$SELECT customer_analytics._arm_comparison_accum('{0,0,0,0,0,0,0,0,0,0,0,NULL}', 1, 1, true)$$);
SELECT err($$SELECT customer_analytics._arm_comparison_combine('{0,0,0,0,0,0,0,0,0,0,0,0}', '{{0,0,0,0,0,0},{0,0,0,0,0,0}}')$$);
SELECT err($$SELECT customer_analytics._arm_comparison_final('{1}')$$);
SELECT err($$SELECT customer_analytics._arm_comparison_final('{-1,0,0,0,0,0,0,0,0,0,0,0}')$$);
SELECT err($$SELECT customer_analytics._arm_comparison_final('{0,0,0,0,0,0,1e300,0,0,0,0,0}')$$);
SELECT err($$SELECT customer_analytics._arm_comparison_final('{2.5,0,0,0,0,0,0,0,0,0,0,0}')$$);
SELECT err($$SELECT customer_analytics._arm_comparison_combine('{1,0,0,0,0,0,1,0,0,0,0,0}', '{1,1e308,0,1e308,0,0,0,0,0,0,0,0}')$$);
-- called outside an aggregate, the functions leave their argument alone
SELECT customer_analytics._arm_comparison_accum('{0,0,0,0,0,0,0,0,0,0,0,0}', 2, 1, false) AS one_holdout_row;

-- the combine function: the states of two halves, combined, give the
-- whole's result (a state-returning aggregate over the support functions)
CREATE AGGREGATE arm_state(float8, float8, boolean) (
    SFUNC = customer_analytics._arm_comparison_accum, STYPE = float8[],
    INITCOND = '{0,0,0,0,0,0,0,0,0,0,0,0}');
WITH halves AS (
    SELECT (SELECT arm_state(y, x, in_treatment) FROM arm_data WHERE ds = 'd2' AND stratum = 'A') AS a,
           (SELECT arm_state(y, x, in_treatment) FROM arm_data WHERE ds = 'd2' AND stratum = 'B') AS b),
combined AS (
    SELECT (customer_analytics._arm_comparison_final(customer_analytics._arm_comparison_combine(a, b))).* FROM halves),
whole AS (
    SELECT (customer_analytics.arm_comparison(y, x, in_treatment)).* FROM arm_data WHERE ds = 'd2')
SELECT c.n_treatment = w.n_treatment AND c.n_holdout = w.n_holdout AS n,
       near(c.sd_treatment, w.sd_treatment) AND near(c.sd_holdout, w.sd_holdout) AS sd,
       near(c.se, w.se) AND near(c.df, w.df) AND near(c.p_value, w.p_value) AS welch,
       near(c.cuped_theta, w.cuped_theta) AND near(c.cuped_se, w.cuped_se)
       AND near(c.cuped_p_value, w.cuped_p_value) AND near(c.balance_p_value, w.balance_p_value) AS cuped
  FROM combined c, whole w;
-- an empty state on either side changes nothing
SELECT customer_analytics._arm_comparison_combine('{0,0,0,0,0,0,0,0,0,0,0,0}', '{2,3,5,1,2,0.5,0,0,0,0,0,0}') AS left_empty,
       customer_analytics._arm_comparison_combine('{2,3,5,1,2,0.5,0,0,0,0,0,0}', '{0,0,0,0,0,0,0,0,0,0,0,0}') AS right_empty;

-- in parallel: partial aggregates in workers, combined in the leader,
-- equal the serial result to 1e-9 (the sums are added in another order:
-- they differ in the last bits, and a p-value near 1e-45 moves by about
-- t^2 times as much, relatively)
CREATE FUNCTION near9(got float8, want float8) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT abs(got - want) <= 1e-9 * greatest(abs(want), 1e-300) $$;
CREATE TABLE arm_big AS
SELECT g % 7 AS stratum, (g % 3 = 0) AS in_treatment,
       ((g * 7919) % 1000)::float8 / 10 + (g % 3 = 0)::int * 2 AS y,
       ((g * 104729) % 1000)::float8 / 10 AS x
  FROM generate_series(1::bigint, 200000) g;
ANALYZE arm_big;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial AS SELECT (customer_analytics.arm_comparison(y, x, in_treatment)).* FROM arm_big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT customer_analytics.arm_comparison(y, x, in_treatment) FROM arm_big;
CREATE TEMP TABLE parallel AS SELECT (customer_analytics.arm_comparison(y, x, in_treatment)).* FROM arm_big;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT p.n_treatment, p.n_holdout, p.n_treatment = s.n_treatment AND p.n_holdout = s.n_holdout AS same_n,
       near9(p.mean_treatment, s.mean_treatment) AND near9(p.sd_treatment, s.sd_treatment)
       AND near9(p.sd_holdout, s.sd_holdout) AND near9(p.lift, s.lift) AS moments,
       near9(p.se, s.se) AND near9(p.df, s.df) AND near9(p.ci_low, s.ci_low) AND near9(p.p_value, s.p_value) AS welch,
       near9(p.cuped_theta, s.cuped_theta) AND near9(p.cuped_lift, s.cuped_lift) AND near9(p.cuped_se, s.cuped_se)
       AND near9(p.cuped_p_value, s.cuped_p_value) AND near9(p.balance_p_value, s.balance_p_value) AS cuped
  FROM parallel p, serial s;
SELECT p.p_value < 1e-40 AS p_tiny, p.cuped_p_value < 1e-40 AS cuped_p_tiny FROM parallel p;
DROP TABLE arm_big, serial, parallel;

-- minimum_detectable_effect: (z_0.975 + z_0.8) * 100 * sqrt(1/900 + 1/100)
-- = 29.531301160988654 (scipy.stats.norm.ppf); z_0.995 + z_0.9 at 1.5,
-- 10/10: 2.587609751520086 (idem); sd 0 gives 0
SELECT near(customer_analytics.minimum_detectable_effect(100, 900, 100), 29.531301160988654) AS default_levels,
       near(customer_analytics.minimum_detectable_effect(1.5, 10, 10, 0.01, 0.9), 2.587609751520086) AS strict,
       customer_analytics.minimum_detectable_effect(0, 10, 10) AS sd_0,
       customer_analytics.minimum_detectable_effect(NULL, 10, 10) AS sd_null;
SELECT err($$SELECT customer_analytics.minimum_detectable_effect(1, 10, 10, 0)$$);
SELECT err($$SELECT customer_analytics.minimum_detectable_effect(1, 10, 10, 'NaN')$$);
SELECT err($$SELECT customer_analytics.minimum_detectable_effect(1, 10, 10, 0.05, 1)$$);
SELECT err($$SELECT customer_analytics.minimum_detectable_effect(1, 0, 10)$$);
SELECT err($$SELECT customer_analytics.minimum_detectable_effect(-1, 10, 10)$$);
SELECT err($$SELECT customer_analytics.minimum_detectable_effect('Infinity', 10, 10)$$);

-- _member_orders on the fixtures of 00_setup, windows September 2025,
-- October-November 2025, January 2024 (no orders) and 1 November 2025;
-- low tickets below 1000.  By hand:
--   0001001: 1001 (0920, 300) | 1002 (1005, 300), 1003 (1110, 400) | - | -
--   0001007: its only confirmed order is of March 2025: zeros
--   0001008: 1071 5000, 1072 no lines (0), 1073 NULL amounts (0), 1074 100:
--            all in October: 5100, 4 orders, 3 below 1000
--   0012:    1121-1123 of 1000 each (not low: 1000 is not below 1000),
--            not 1124 of customer '12'; 1121 alone on 1 November
--   0001015 (no orders) and 0009999 (no such customer): zeros
-- 0001001 listed twice: one row per window
SELECT * FROM customer_analytics._member_orders('fx',
    '{0001001,0001007,0001008,0012,0001015,0009999,0001001}',
    '{"[2025-09-01,2025-10-01)","[2025-10-01,2025-12-01)","[2024-01-01,2024-02-01)","[2025-11-01,2025-11-01]"}',
    1000)
 ORDER BY customer_code, window_index;
-- read from the order rollup when there is one: the same rows (the
-- rollup's order rows, one per confirmed order, instead of the headers and
-- lines)
CREATE TEMP TABLE mo_tables AS
SELECT * FROM customer_analytics._member_orders('fx',
    '{0001001,0001007,0001008,0012,0001015,0009999}',
    '{"[2025-09-01,2025-10-01)","[2025-10-01,2025-12-01)","[2024-01-01,2024-02-01)","[2025-11-01,2025-11-01]"}', 1000);
SELECT rollup_rows FROM customer_analytics.enable_rollup('fx');
CREATE TEMP TABLE mo_rollup AS
SELECT * FROM customer_analytics._member_orders('fx',
    '{0001001,0001007,0001008,0012,0001015,0009999}',
    '{"[2025-09-01,2025-10-01)","[2025-10-01,2025-12-01)","[2024-01-01,2024-02-01)","[2025-11-01,2025-11-01]"}', 1000);
SELECT (SELECT count(*) FROM mo_rollup) AS rows,
       (SELECT count(*) FROM (TABLE mo_tables EXCEPT TABLE mo_rollup) d) AS only_tables,
       (SELECT count(*) FROM (TABLE mo_rollup EXCEPT TABLE mo_tables) d) AS only_rollup;
SELECT customer_analytics.drop_rollup('fx');
DROP TABLE mo_tables, mo_rollup;

-- no codes: no rows
SELECT count(*) FROM customer_analytics._member_orders('fx', '{}', '{"[2025-01-01,2026-01-01)"}', 1000);

SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', NULL, '{"[2025-01-01,2026-01-01)"}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001,NULL}', '{"[2025-01-01,2026-01-01)"}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', NULL, 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{{"[2025-01-01,2026-01-01)"}}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-01-01,2026-01-01)",NULL}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{empty}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-01-01,)"}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-01-01,infinity)"}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-01-01,2026-01-01)"}', NULL)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-01-01,2026-01-01)"}', -1)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-01-01,2026-01-01)"}', 'NaN')$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('nosuchschema', '{0001001}', '{"[2025-01-01,2026-01-01)"}', 1000)$$);
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{1,2,3}', array_fill('[2025-01-01,2025-02-01)'::daterange, ARRAY[1700000]), 1000)$$);

-- as a non-superuser, under the source's row-level security: the order
-- 1003 the role cannot see is not counted (0001001 in October-November:
-- 300 and one order, not 700 and two); without SELECT on the lines the
-- call is refused, not answered with the owner's rights
CREATE ROLE ca_mo_rep;
GRANT USAGE ON SCHEMA customer_analytics, fx TO ca_mo_rep;
GRANT SELECT ON fx.customers, fx.sales_orders TO ca_mo_rep;
ALTER TABLE fx.sales_orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY mo_not_1003 ON fx.sales_orders TO ca_mo_rep USING (order_number <> '1003');
SET ROLE ca_mo_rep;
SELECT err($$SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-10-01,2025-12-01)"}', 1000)$$);
RESET ROLE;
GRANT SELECT ON fx.sales_order_lines TO ca_mo_rep;
SET ROLE ca_mo_rep;
SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-10-01,2025-12-01)"}', 1000);
RESET ROLE;
-- the owner still sees both orders
SELECT * FROM customer_analytics._member_orders('fx', '{0001001}', '{"[2025-10-01,2025-12-01)"}', 1000);
ALTER TABLE fx.sales_orders DISABLE ROW LEVEL SECURITY;
DROP POLICY mo_not_1003 ON fx.sales_orders;
REVOKE ALL ON SCHEMA customer_analytics, fx FROM ca_mo_rep;
REVOKE ALL ON ALL TABLES IN SCHEMA fx FROM ca_mo_rep;
DROP ROLE ca_mo_rep;

DROP AGGREGATE arm_state(float8, float8, boolean);
DROP TABLE arm_data, arm_nulls;
DROP FUNCTION near(float8, float8), near9(float8, float8);
