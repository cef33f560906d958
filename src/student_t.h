/*
 * student_t.h
 *		Student's t and the standard normal distribution: tail areas and
 *		quantiles, in double precision (student_t.c).  Pure functions of
 *		doubles: no palloc, no ereport.
 */
#ifndef STUDENT_T_H
#define STUDENT_T_H

/*
 * The regularized incomplete beta function I_x(a, b), a, b > 0, given both
 * x and y = 1 - x (so that the caller keeps whichever is small exact) and
 * their logarithms.  NaN when the continued fraction does not converge.
 */
extern double incomplete_beta(double a, double b, double x, double y);

/*
 * P(|T| >= |t|) for Student's t with df > 0 degrees of freedom: the
 * two-sided p-value of t.  Above 1e7 degrees of freedom, the standard
 * normal's with its first-order correction in 1/df (student_t.c).
 */
extern double student_t_two_sided_p(double t, double df);

/* P(T >= t) for t >= 0 */
extern double student_t_upper_tail(double t, double df);

/* the p-quantile of Student's t, 0.5 <= p < 1 (t_{0.975,df} for a 95 % CI) */
extern double student_t_quantile(double p, double df);

/* the p-quantile of the standard normal, 0 < p < 1 */
extern double normal_quantile(double p);

#endif
