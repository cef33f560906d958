-- response_stats.sql
--	Did the promo work? The comparison of a campaign's treatment and holdout arms (Welch, CUPED, balance; arm_comparison.c, student_t.c), the minimum detectable effect, and each member's orders by window (member_orders.c).

CREATE TYPE customer_analytics.arm_comparison_result AS (
	n_treatment bigint,
	n_holdout bigint,
	mean_treatment double precision,
	mean_holdout double precision,
	sd_treatment double precision,
	sd_holdout double precision,
	lift double precision,
	lift_pct double precision,
	se double precision,
	df double precision,
	ci_low double precision,
	ci_high double precision,
	p_value double precision,
	cuped_theta double precision,
	cuped_lift double precision,
	cuped_se double precision,
	cuped_ci_low double precision,
	cuped_ci_high double precision,
	cuped_p_value double precision,
	balance_p_value double precision
);

COMMENT ON TYPE customer_analytics.arm_comparison_result IS 'what the arm_comparison aggregate returns: per arm n, mean and sample sd; the lift with Welch''s standard error, degrees of freedom, 95 % confidence interval and two-sided p-value; the same after CUPED; the baseline''s balance p-value (NULL where undefined)';

-- The state of arm_comparison: per arm (treatment at 0, holdout at 6) the
-- Youngs-Cramer sums of float8_regr_accum: N, Sx, Sxx, Sy, Syy, Sxy.
CREATE FUNCTION customer_analytics._arm_comparison_accum(state double precision[], y double precision, x double precision, in_treatment boolean) RETURNS double precision[]
    LANGUAGE c IMMUTABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'arm_comparison_accum';

COMMENT ON FUNCTION customer_analytics._arm_comparison_accum(state double precision[], y double precision, x double precision, in_treatment boolean) IS 'internal: transition function of arm_comparison (per arm N, Sx, Sxx, Sy, Syy, Sxy as float8_regr_accum)';

CREATE FUNCTION customer_analytics._arm_comparison_combine(state1 double precision[], state2 double precision[]) RETURNS double precision[]
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'arm_comparison_combine';

COMMENT ON FUNCTION customer_analytics._arm_comparison_combine(state1 double precision[], state2 double precision[]) IS 'internal: combine function of arm_comparison (two states of the same rows'' halves, as float8_regr_combine)';

CREATE FUNCTION customer_analytics._arm_comparison_final(state double precision[]) RETURNS customer_analytics.arm_comparison_result
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'arm_comparison_final';

COMMENT ON FUNCTION customer_analytics._arm_comparison_final(state double precision[]) IS 'internal: final function of arm_comparison (Welch, CUPED and balance from the sums)';

-- y: the metric in the measurement window, x: the same metric in the
-- baseline window (0, not NULL, for a member without orders), in_treatment:
-- the member's arm.
CREATE AGGREGATE customer_analytics.arm_comparison(y double precision, x double precision, in_treatment boolean) (
    SFUNC = customer_analytics._arm_comparison_accum,
    STYPE = double precision[],
    INITCOND = '{0,0,0,0,0,0,0,0,0,0,0,0}',
    FINALFUNC = customer_analytics._arm_comparison_final,
    COMBINEFUNC = customer_analytics._arm_comparison_combine,
    PARALLEL = safe
);

COMMENT ON AGGREGATE customer_analytics.arm_comparison(y double precision, x double precision, in_treatment boolean) IS 'treatment against holdout: per arm n, mean, sample sd; lift, Welch''s se, df, 95 % CI and p-value; the same after CUPED with x as covariate; Welch''s p-value of x between the arms (balance)';

-- (z_{1-alpha/2} + z_{power}) * sd * sqrt(1/n_treatment + 1/n_holdout)
CREATE FUNCTION customer_analytics.minimum_detectable_effect(sd double precision, n_treatment bigint, n_holdout bigint, alpha double precision DEFAULT 0.05, power double precision DEFAULT 0.8) RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'minimum_detectable_effect';

COMMENT ON FUNCTION customer_analytics.minimum_detectable_effect(sd double precision, n_treatment bigint, n_holdout bigint, alpha double precision, power double precision) IS 'the smallest difference of means a two-sided test at level alpha detects with the given power, for arms of these sizes and a metric of standard deviation sd (normal approximation)';

-- Each member's confirmed orders by window, read as the funnel reads the
-- source (trust checks, data contract, the rollup when readable, a sharded
-- source's order_totals), under the caller's privileges and row-level
-- security: one row per distinct code and window, zeros included.
CREATE FUNCTION customer_analytics._member_orders(source_schema text, customer_codes text[], windows daterange[], low_ticket_below numeric, OUT customer_code text, OUT window_index integer, OUT revenue numeric, OUT orders bigint, OUT low_tickets bigint) RETURNS SETOF record
    LANGUAGE c STABLE ROWS 1000 PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'member_orders';

COMMENT ON FUNCTION customer_analytics._member_orders(source_schema text, customer_codes text[], windows daterange[], low_ticket_below numeric, OUT customer_code text, OUT window_index integer, OUT revenue numeric, OUT orders bigint, OUT low_tickets bigint) IS 'internal: for each of the codes (distinct) and each window (1-based), the sum of its confirmed orders'' totals, their count and the count below low_ticket_below; zeros for codes without orders';
