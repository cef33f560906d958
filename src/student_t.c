/*
 * student_t.c
 *		Student's t and the standard normal distribution.
 *
 * The t tail areas come from the regularized incomplete beta function:
 * P(|T| >= t) = I_x(df/2, 1/2) with x = df / (df + t^2), evaluated by its
 * continued fraction (modified Lentz), with the prefactor
 * x^a y^b / (a B(a, b)) taken in logarithms that stay exact for huge df:
 * log x = -log1p(t^2/df), and log B(a, b) with Stirling's series where an
 * argument is large, so that lgamma(a) - lgamma(a + b) is not the difference
 * of two huge numbers.  The quantiles are found by Newton's method on the
 * tail area, kept inside a bracket (bisection when a step leaves it); the
 * normal quantile by Halley's method on erfc() from a coarse start.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "student_t.h"

/*
 * Beyond this many degrees of freedom the continued fraction loses digits
 * (its terms cancel near x = 1: about 2e-10 relative at 1e7 degrees of
 * freedom), and t is the standard normal with its first-order correction,
 * P(|T| > t) = erfc(t/sqrt 2) + 2 phi(t) (t^3 + t) / (4 df), whose error is
 * of order t^8 / (32 df^2): below 1e-10 relative for |t| <= 5.
 */
#define NORMAL_DF 1e7

#define LOG_SQRT_2PI 0.91893853320467274178032973640562	/* log(sqrt(2 pi)) */
#define SQRT_2PI 2.5066282746310005024157652848110453

/*
 * lgamma(z) - ((z - 1/2) log z - z + log sqrt(2 pi)): Stirling's series,
 * for z >= 10 (the first omitted term is below 1e-17 there).
 */
static double
stirling_correction(double z)
{
	double		r = 1.0 / z;
	double		r2 = r * r;

	return r * (1.0 / 12 + r2 * (-1.0 / 360 + r2 * (1.0 / 1260 + r2 * (-1.0 / 1680
				+ r2 * (1.0 / 1188 + r2 * (-691.0 / 360360 + r2 * (1.0 / 156)))))));
}

/*
 * log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b), without the
 * cancellation of huge lgamma values when a or b is large.
 */
static double
log_beta(double a, double b)
{
	double		lo = Min(a, b);
	double		hi = Max(a, b);

	if (hi < 10)
		return lgamma(lo) + lgamma(hi) - lgamma(lo + hi);
	if (lo < 10)
	{
		/* lgamma(hi) - lgamma(hi + lo) by Stirling, in terms of log1p */
		return lgamma(lo) - (hi - 0.5) * log1p(lo / hi) - lo * log(hi + lo) + lo
			+ stirling_correction(hi) - stirling_correction(hi + lo);
	}
	/* both large */
	return LOG_SQRT_2PI - (hi - 0.5) * log1p(lo / hi) + (lo - 0.5) * log(lo / (hi + lo))
		- 0.5 * log(hi + lo)
		+ stirling_correction(hi) + stirling_correction(lo) - stirling_correction(hi + lo);
}

/*
 * The continued fraction of I_x(a, b) without its prefactor (Numerical
 * Recipes' betacf, modified Lentz), for x < (a + 1) / (a + b + 2), where it
 * converges quickly: in about sqrt(max(a, b)) steps at worst.
 */
static double
beta_continued_fraction(double a, double b, double x)
{
	const double tiny = 1e-300;
	double		qab = a + b;
	double		qap = a + 1.0;
	double		qam = a - 1.0;
	double		c = 1.0;
	double		d = 1.0 - qab * x / qap;
	double		h;
	long		max_steps = 1000 + (long) (20.0 * sqrt(Max(a, b)));

	if (fabs(d) < tiny)
		d = tiny;
	d = 1.0 / d;
	h = d;
	for (long m = 1; m <= max_steps; m++)
	{
		double		m2 = 2.0 * m;
		double		aa;
		double		del;

		aa = m * (b - m) * x / ((qam + m2) * (a + m2));
		d = 1.0 + aa * d;
		if (fabs(d) < tiny)
			d = tiny;
		c = 1.0 + aa / c;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1.0 / d;
		h *= d * c;
		aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
		d = 1.0 + aa * d;
		if (fabs(d) < tiny)
			d = tiny;
		c = 1.0 + aa / c;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1.0 / d;
		del = d * c;
		h *= del;
		if (fabs(del - 1.0) <= DBL_EPSILON)
			return h;
	}
	return NAN;
}

/* I_x(a, b) from log x and log y, y = 1 - x, both given exactly */
static double
incomplete_beta_log(double a, double b, double x, double y, double log_x, double log_y)
{
	if (x <= 0)
		return 0.0;
	if (y <= 0)
		return 1.0;
	if (x < (a + 1.0) / (a + b + 2.0))
		return exp(a * log_x + b * log_y - log_beta(a, b)) / a
			* beta_continued_fraction(a, b, x);
	/* I_x(a, b) = 1 - I_y(b, a), the fraction converging fast for I_y */
	return 1.0 - exp(a * log_x + b * log_y - log_beta(a, b)) / b
		* beta_continued_fraction(b, a, y);
}

double
incomplete_beta(double a, double b, double x, double y)
{
	return incomplete_beta_log(a, b, x, y, log(x), log(y));
}

double
student_t_two_sided_p(double t, double df)
{
	double		t2;

	if (isnan(t) || isnan(df) || df <= 0)
		return NAN;
	t = fabs(t);
	if (t == 0)
		return 1.0;
	if (isinf(t))
		return 0.0;
	if (df > NORMAL_DF)
		return erfc(t / M_SQRT2)
			+ 2.0 * exp(-0.5 * t * t - LOG_SQRT_2PI) * (t * t * t + t) / (4.0 * df);
	t2 = t * t;
	/* x = df / (df + t^2), y = t^2 / (df + t^2), and their logarithms */
	return incomplete_beta_log(df / 2, 0.5, df / (df + t2), t2 / (df + t2),
							   -log1p(t2 / df), -log1p(df / t2));
}

double
student_t_upper_tail(double t, double df)
{
	return 0.5 * student_t_two_sided_p(t, df);
}

/* the density of Student's t at t */
static double
student_t_density(double t, double df)
{
	if (df > NORMAL_DF)
		return exp(-0.5 * t * t) / SQRT_2PI;
	return exp(-(df + 1) / 2 * log1p(t * t / df) - log_beta(df / 2, 0.5)) / sqrt(df);
}

double
student_t_quantile(double p, double df)
{
	double		q = 1.0 - p;	/* the upper tail area sought */
	double		lo;
	double		hi;
	double		x;

	if (isnan(p) || isnan(df) || df <= 0 || p < 0.5 || p >= 1)
		return NAN;
	if (p == 0.5)
		return 0.0;
	/* t's quantile is above the normal's: the lower end of the bracket */
	lo = normal_quantile(p);
	hi = 2.0 * lo;
	while (student_t_upper_tail(hi, df) > q)
	{
		lo = hi;
		hi *= 2.0;
		if (isinf(hi))
			return NAN;
	}
	/*
	 * Newton from the lower end: the tail area is convex and decreasing for
	 * t > 0, so the steps approach the root from below; a step out of the
	 * bracket (rounding) falls back to bisection.
	 */
	x = lo;
	for (int i = 0; i < 200; i++)
	{
		double		f = student_t_upper_tail(x, df) - q;
		double		step;
		double		next;

		if (f > 0)
			lo = x;
		else if (f < 0)
			hi = x;
		else
			return x;
		step = f / student_t_density(x, df);
		next = x + step;
		if (!(next > lo && next < hi))
			next = 0.5 * (lo + hi);
		if (fabs(next - x) <= 4 * DBL_EPSILON * x || hi - lo <= 4 * DBL_EPSILON * lo)
			return next;
		x = next;
	}
	return x;
}

/*
 * The lower p-quantile, 0 < p <= 0.5: a start good to 5e-4 (Abramowitz and
 * Stegun 26.2.23), then Halley's method on Phi(x) = erfc(-x/sqrt 2)/2,
 * which triples the correct digits at each step.
 */
static double
normal_quantile_lower(double p)
{
	double		t = sqrt(-2.0 * log(p));
	double		x = -(t - (2.515517 + t * (0.802853 + t * 0.010328))
					  / (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))));

	for (int i = 0; i < 8; i++)
	{
		double		phi_x = 0.5 * erfc(-x / M_SQRT2);
		/* (Phi(x) - p) / phi(x), with p / phi(x) in logarithms (no overflow) */
		double		u = (phi_x / p - 1.0) * exp(log(p) + 0.5 * x * x + LOG_SQRT_2PI);
		double		step = u / (1.0 + 0.5 * x * u);

		x -= step;
		if (fabs(step) <= DBL_EPSILON * fabs(x))
			break;
	}
	return x;
}

double
normal_quantile(double p)
{
	if (isnan(p) || p <= 0 || p >= 1)
		return NAN;
	if (p == 0.5)
		return 0.0;
	if (p < 0.5)
		return normal_quantile_lower(p);
	/* 1 - p is exact for p in [0.5, 1) */
	return -normal_quantile_lower(1.0 - p);
}
