/*
 * arm_comparison.c
 *		The arm_comparison aggregate: did the treatment arm of a campaign
 *		buy more than its holdout?  Per arm n, mean and sample standard
 *		deviation; the lift with Welch's test; the same after CUPED; and the
 *		balance of the baseline between the arms.  And
 *		minimum_detectable_effect().
 *
 * The state is a float8[12]: for the treatment arm (elements 0-5) and the
 * holdout (6-11) the Youngs-Cramer sums of PostgreSQL's float8_regr_accum,
 * N, Sx, Sxx, Sy, Syy, Sxy, where y is the metric in the measurement window
 * and x the same metric in the baseline window.  Two states combine as
 * float8_regr_combine combines them, so the aggregate runs in parallel.
 *
 * Everything the final function returns is a function of these sums:
 *	 mean_a = Sy_a / n_a, sd_a = sqrt(Syy_a / (n_a - 1))
 *	 Welch:	 se = sqrt(s_t^2/n_t + s_h^2/n_h), Welch-Satterthwaite df,
 *			 CI = lift -/+ t_{0.975,df} se, p = P(|T_df| >= |lift / se|)
 *	 CUPED:	 theta = Sxy / Sxx over both arms together (0 when Sxx = 0),
 *			 Y' = Y - theta (X - mean X): per arm
 *			 mean Y'_a = mean Y_a - theta (mean X_a - mean X),
 *			 var Y'_a = (Syy_a + theta^2 Sxx_a - 2 theta Sxy_a) / (n_a - 1),
 *			 then Welch on Y'
 *	 balance: Welch's p-value of X between the arms.
 * A value that is undefined is NULL, never NaN or Infinity: sd of an arm of
 * fewer than 2 rows; se, df, CI and p when an arm has fewer than 2 rows;
 * df, CI and p when se = 0 (no variation in either arm: the t statistic is
 * +-Infinity or 0/0 and Welch's df 0/0; no test is possible, and a p-value
 * of 0 would claim certainty the data cannot give); lift_pct when the
 * holdout's mean is 0.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/float.h"

#include "student_t.h"

PG_FUNCTION_INFO_V1(arm_comparison_accum);
PG_FUNCTION_INFO_V1(arm_comparison_combine);
PG_FUNCTION_INFO_V1(arm_comparison_final);
PG_FUNCTION_INFO_V1(minimum_detectable_effect);

#define STATE_LEN 12
#define ARM_TREATMENT 0
#define ARM_HOLDOUT 6

/* offsets of the sums within an arm */
enum
{
	S_N, S_SX, S_SXX, S_SY, S_SYY, S_SXY
};

/* the fields of arm_comparison_result, in order */
enum
{
	R_N_TREATMENT, R_N_HOLDOUT, R_MEAN_TREATMENT, R_MEAN_HOLDOUT,
	R_SD_TREATMENT, R_SD_HOLDOUT, R_LIFT, R_LIFT_PCT, R_SE, R_DF,
	R_CI_LOW, R_CI_HIGH, R_P_VALUE, R_CUPED_THETA, R_CUPED_LIFT, R_CUPED_SE,
	R_CUPED_CI_LOW, R_CUPED_CI_HIGH, R_CUPED_P_VALUE, R_BALANCE_P_VALUE,
	R_NFIELDS
};

/* The sums of a state array; ereport(ERROR) unless a float8[12]. */
static float8 *
state_values(ArrayType *state, const char *caller)
{
	float8	   *values;

	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] != STATE_LEN ||
		ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the state must be a float8 array of %d elements without NULLs",
						caller, STATE_LEN),
				 errhint("Call the aggregate arm_comparison(y, x, in_treatment); its state starts as '{0,0,0,0,0,0,0,0,0,0,0,0}'.")));
	values = (float8 *) ARR_DATA_PTR(state);
	/* the row counts: whole numbers a bigint and a float8 hold exactly */
	for (int arm = ARM_TREATMENT; arm <= ARM_HOLDOUT; arm += ARM_HOLDOUT)
		if (!(values[arm + S_N] >= 0 && values[arm + S_N] <= 9007199254740992.0 &&
			  values[arm + S_N] == floor(values[arm + S_N])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: the state's row count %s is not a whole number between 0 and 2^53",
							caller, float8out_internal(values[arm + S_N])),
					 errhint("Call the aggregate arm_comparison(y, x, in_treatment); its state starts as '{0,0,0,0,0,0,0,0,0,0,0,0}'.")));
	return values;
}

/* a copy of the state, unless called as an aggregate (then it is ours) */
static ArrayType *
state_for_update(FunctionCallInfo fcinfo, int argno)
{
	if (AggCheckCallContext(fcinfo, NULL))
		return PG_GETARG_ARRAYTYPE_P(argno);
	return PG_GETARG_ARRAYTYPE_P_COPY(argno);
}

/*
 * arm_comparison's transition: add (y, x) to its arm's sums, as
 * float8_regr_accum does.
 */
Datum
arm_comparison_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state;
	float8	   *arm;
	float8		y;
	float8		x;
	float8		n_old;
	float8		N;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the state of arm_comparison must not be NULL"),
				 errhint("Call the aggregate arm_comparison(y, x, in_treatment); its state starts as '{0,0,0,0,0,0,0,0,0,0,0,0}'.")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("in_treatment of arm_comparison must not be NULL"),
				 errhint("Pass true for a member of the treatment arm and false for one of the holdout; leave out rows of no arm with WHERE or FILTER.")));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s of arm_comparison must not be NULL", PG_ARGISNULL(1) ? "y" : "x"),
				 errhint("A member without orders in a window counts as 0 (intention to treat): pass COALESCE(value, 0).")));
	y = PG_GETARG_FLOAT8(1);
	x = PG_GETARG_FLOAT8(2);
	if (!isfinite(y) || !isfinite(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of arm_comparison must be a finite number, not %s",
						isfinite(y) ? "x" : "y", float8out_internal(isfinite(y) ? x : y)),
				 errhint("Leave out or correct the rows whose metric is NaN or Infinity.")));

	state = state_for_update(fcinfo, 0);
	arm = state_values(state, "_arm_comparison_accum") +
		(PG_GETARG_BOOL(3) ? ARM_TREATMENT : ARM_HOLDOUT);

	/* Youngs-Cramer, as float8_regr_accum */
	n_old = arm[S_N];
	N = n_old + 1.0;
	arm[S_N] = N;
	arm[S_SX] += x;
	arm[S_SY] += y;
	if (n_old > 0.0)
	{
		float8		tmpX = x * N - arm[S_SX];
		float8		tmpY = y * N - arm[S_SY];
		float8		scale = 1.0 / (N * n_old);

		arm[S_SXX] += tmpX * tmpX * scale;
		arm[S_SYY] += tmpY * tmpY * scale;
		arm[S_SXY] += tmpX * tmpY * scale;
	}
	for (int i = 0; i < 6; i++)
		if (isinf(arm[i]))
			float_overflow_error();
	PG_RETURN_ARRAYTYPE_P(state);
}

/* into a the sums of a and b (both one arm's or the whole's), as float8_regr_combine */
static void
combine_sums(float8 *a, const float8 *b)
{
	float8		N1 = a[S_N];
	float8		N2 = b[S_N];
	float8		N;
	float8		tmp1;
	float8		tmp2;

	if (N2 == 0.0)
		return;
	if (N1 == 0.0)
	{
		memcpy(a, b, sizeof(float8) * 6);
		return;
	}
	N = N1 + N2;
	tmp1 = a[S_SX] / N1 - b[S_SX] / N2;
	tmp2 = a[S_SY] / N1 - b[S_SY] / N2;
	a[S_N] = N;
	a[S_SX] += b[S_SX];
	a[S_SXX] += b[S_SXX] + N1 * N2 * tmp1 * tmp1 / N;
	a[S_SY] += b[S_SY];
	a[S_SYY] += b[S_SYY] + N1 * N2 * tmp2 * tmp2 / N;
	a[S_SXY] += b[S_SXY] + N1 * N2 * tmp1 * tmp2 / N;
	for (int i = 0; i < 6; i++)
		if (isinf(a[i]))
			float_overflow_error();
}

/* arm_comparison's combine: the sums of two states, arm by arm */
Datum
arm_comparison_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *state1 = state_for_update(fcinfo, 0);
	float8	   *s1 = state_values(state1, "_arm_comparison_combine");
	float8	   *s2 = state_values(PG_GETARG_ARRAYTYPE_P(1), "_arm_comparison_combine");

	combine_sums(s1 + ARM_TREATMENT, s2 + ARM_TREATMENT);
	combine_sums(s1 + ARM_HOLDOUT, s2 + ARM_HOLDOUT);
	PG_RETURN_ARRAYTYPE_P(state1);
}

/* Welch's test of two means, each with its variance (of one row) and n */
typedef struct Welch
{
	bool		have_se;		/* both arms have 2 rows or more */
	float8		se;
	bool		have_test;		/* and se > 0: df, CI and p */
	float8		df;
	float8		ci_low;
	float8		ci_high;
	float8		p_value;
} Welch;

static Welch
welch(float8 mean_t, float8 var_t, float8 n_t, float8 mean_h, float8 var_h, float8 n_h)
{
	Welch		w = {0};
	float8		lift = mean_t - mean_h;
	float8		v_t;
	float8		v_h;
	float8		v;

	if (n_t < 2 || n_h < 2)
		return w;
	/* a variance from sums may come out a rounding below 0 */
	v_t = Max(var_t, 0.0) / n_t;
	v_h = Max(var_h, 0.0) / n_h;
	v = v_t + v_h;
	w.have_se = true;
	w.se = sqrt(v);
	if (!(v > 0) || !isfinite(v))
		return w;
	/*
	 * Welch-Satterthwaite, with the variances scaled by their sum so that
	 * huge values do not overflow the squares
	 */
	{
		float8		r_t = v_t / v;
		float8		r_h = v_h / v;
		float8		q;

		w.df = 1.0 / (r_t * r_t / (n_t - 1) + r_h * r_h / (n_h - 1));
		q = student_t_quantile(0.975, w.df);
		w.ci_low = lift - q * w.se;
		w.ci_high = lift + q * w.se;
		w.p_value = student_t_two_sided_p(lift / w.se, w.df);
		w.have_test = isfinite(w.df) && isfinite(w.p_value) && isfinite(q);
	}
	return w;
}

/* one field of the result: NULL unless defined and finite */
static void
put(Datum *values, bool *nulls, int field, bool defined, float8 value)
{
	if (defined && isfinite(value))
	{
		values[field] = Float8GetDatum(value);
		nulls[field] = false;
	}
	else
		nulls[field] = true;
}

static void
put_welch(Datum *values, bool *nulls, const Welch *w, int se, int ci_low, int ci_high, int p)
{
	if (se >= 0)
		put(values, nulls, se, w->have_se, w->se);
	put(values, nulls, ci_low, w->have_test, w->ci_low);
	put(values, nulls, ci_high, w->have_test, w->ci_high);
	put(values, nulls, p, w->have_test, w->p_value);
}

/* arm_comparison's final function: the arm_comparison_result of the sums */
Datum
arm_comparison_final(PG_FUNCTION_ARGS)
{
	float8	   *s = state_values(PG_GETARG_ARRAYTYPE_P(0), "_arm_comparison_final");
	const float8 *t = s + ARM_TREATMENT;
	const float8 *h = s + ARM_HOLDOUT;
	float8		all[6];
	float8		n_t = t[S_N];
	float8		n_h = h[S_N];
	bool		both = n_t >= 1 && n_h >= 1;
	float8		mean_t = n_t >= 1 ? t[S_SY] / n_t : 0;
	float8		mean_h = n_h >= 1 ? h[S_SY] / n_h : 0;
	float8		var_t = n_t >= 2 ? t[S_SYY] / (n_t - 1) : 0;
	float8		var_h = n_h >= 2 ? h[S_SYY] / (n_h - 1) : 0;
	float8		lift = mean_t - mean_h;
	float8		theta = 0;
	Welch		w;
	TupleDesc	tupdesc;
	Datum		values[R_NFIELDS];
	bool		nulls[R_NFIELDS];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("_arm_comparison_final() must be called where a record is accepted")));
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != R_NFIELDS)
		elog(ERROR, "arm_comparison_result has %d fields, expected %d", tupdesc->natts, R_NFIELDS);
	memset(values, 0, sizeof(values));

	values[R_N_TREATMENT] = Int64GetDatum((int64) n_t);
	nulls[R_N_TREATMENT] = false;
	values[R_N_HOLDOUT] = Int64GetDatum((int64) n_h);
	nulls[R_N_HOLDOUT] = false;
	put(values, nulls, R_MEAN_TREATMENT, n_t >= 1, mean_t);
	put(values, nulls, R_MEAN_HOLDOUT, n_h >= 1, mean_h);
	put(values, nulls, R_SD_TREATMENT, n_t >= 2, sqrt(Max(var_t, 0.0)));
	put(values, nulls, R_SD_HOLDOUT, n_h >= 2, sqrt(Max(var_h, 0.0)));
	put(values, nulls, R_LIFT, both, lift);
	put(values, nulls, R_LIFT_PCT, both && mean_h != 0, 100.0 * lift / mean_h);

	w = welch(mean_t, var_t, n_t, mean_h, var_h, n_h);
	put(values, nulls, R_DF, w.have_test, w.df);
	put_welch(values, nulls, &w, R_SE, R_CI_LOW, R_CI_HIGH, R_P_VALUE);

	/* CUPED: theta over both arms together */
	memcpy(all, t, sizeof(all));
	combine_sums(all, h);
	if (all[S_N] >= 1)
	{
		float8		mean_x = all[S_SX] / all[S_N];
		float8		cmean_t = 0;
		float8		cmean_h = 0;
		float8		cvar_t = 0;
		float8		cvar_h = 0;

		if (all[S_SXX] > 0)
			theta = all[S_SXY] / all[S_SXX];
		if (n_t >= 1)
			cmean_t = mean_t - theta * (t[S_SX] / n_t - mean_x);
		if (n_h >= 1)
			cmean_h = mean_h - theta * (h[S_SX] / n_h - mean_x);
		if (n_t >= 2)
			cvar_t = (t[S_SYY] + theta * theta * t[S_SXX] - 2 * theta * t[S_SXY]) / (n_t - 1);
		if (n_h >= 2)
			cvar_h = (h[S_SYY] + theta * theta * h[S_SXX] - 2 * theta * h[S_SXY]) / (n_h - 1);
		put(values, nulls, R_CUPED_THETA, true, theta);
		put(values, nulls, R_CUPED_LIFT, both, cmean_t - cmean_h);
		w = welch(cmean_t, cvar_t, n_t, cmean_h, cvar_h, n_h);
		put_welch(values, nulls, &w, R_CUPED_SE, R_CUPED_CI_LOW, R_CUPED_CI_HIGH, R_CUPED_P_VALUE);

		/* balance: Welch's p-value of the baseline between the arms */
		w = welch(n_t >= 1 ? t[S_SX] / n_t : 0, n_t >= 2 ? t[S_SXX] / (n_t - 1) : 0, n_t,
				  n_h >= 1 ? h[S_SX] / n_h : 0, n_h >= 2 ? h[S_SXX] / (n_h - 1) : 0, n_h);
		put(values, nulls, R_BALANCE_P_VALUE, w.have_test, w.p_value);
	}
	else
	{
		for (int f = R_CUPED_THETA; f <= R_BALANCE_P_VALUE; f++)
			nulls[f] = true;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * minimum_detectable_effect(sd, n_treatment, n_holdout, alpha, power):
 * (z_{1-alpha/2} + z_{power}) sd sqrt(1/n_treatment + 1/n_holdout), the
 * smallest difference of means a two-sided test at level alpha detects with
 * probability power (normal approximation).
 */
Datum
minimum_detectable_effect(PG_FUNCTION_ARGS)
{
	float8		sd = PG_GETARG_FLOAT8(0);
	int64		n_t = PG_GETARG_INT64(1);
	int64		n_h = PG_GETARG_INT64(2);
	float8		alpha = PG_GETARG_FLOAT8(3);
	float8		power = PG_GETARG_FLOAT8(4);
	float8		mde;

	if (!(alpha > 0 && alpha < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be between 0 and 1 (exclusive), not %s", float8out_internal(alpha)),
				 errhint("Pass the two-sided significance level, such as 0.05.")));
	if (!(power > 0 && power < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("power must be between 0 and 1 (exclusive), not %s", float8out_internal(power)),
				 errhint("Pass the probability of detecting the effect, such as 0.8.")));
	if (n_t < 1 || n_h < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n_treatment and n_holdout must be at least 1, not %lld and %lld",
						(long long) n_t, (long long) n_h),
				 errhint("Pass the number of members of each arm.")));
	if (!(sd >= 0) || isinf(sd))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sd must be a finite number of at least 0, not %s", float8out_internal(sd)),
				 errhint("Pass the standard deviation of the metric, such as the members' baseline revenue's stddev_samp().")));
	/* z_{1-alpha/2} = -z_{alpha/2}, alpha/2 exact */
	mde = (normal_quantile(power) - normal_quantile(alpha / 2)) * sd *
		sqrt(1.0 / (float8) n_t + 1.0 / (float8) n_h);
	PG_RETURN_FLOAT8(mde);
}
