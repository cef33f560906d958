/*
 * kmeans_lloyd.c
 *		k-means on standardized points, following scikit-learn 1.2's KMeans
 *		(algorithm "lloyd") step for step, so that from the same initial
 *		centres both give the same labels and inertia:
 *
 *		- standardization with the population std, scale 1 for a constant
 *		  feature (StandardScaler);
 *		- greedy k-means++: first centre uniform, then 2 + floor(ln k)
 *		  candidates drawn with probability proportional to D^2, keeping the
 *		  one that lowers the potential most;
 *		- Lloyd iterations: assign to the nearest centre (ties to the lowest
 *		  index), centres = means; stop when labels did not change, or when
 *		  the summed squared centre shift is <= tol * mean feature variance;
 *		  after a tolerance stop, one more assignment against the final
 *		  centres (centres not recomputed);
 *		- an empty cluster takes the point farthest from its centre;
 *		- of n_init runs the one with the lowest inertia is kept.
 *
 * Our random numbers come from pg_prng with the caller's seed, not numpy's
 * stream: the same seed gives the same model, but not scikit-learn's
 * k-means++ draws.  Parity tests therefore pass explicit initial centres.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "port/atomics.h"
#include "storage/shm_toc.h"
#include "utils/snapmgr.h"
#include "utils/float.h"

#include "kmeans.h"

/* StandardScaler: per feature the mean and the population std (see kmeans.h) */
void
kmeans_scaler(const double *x, int64 n, int dim, double *mean, double *scale)
{
	for (int j = 0; j < dim; j++)
	{
		double		sum = 0,
					var = 0;

		CHECK_FOR_INTERRUPTS();

		for (int64 i = 0; i < n; i++)
			sum += x[i * dim + j];
		mean[j] = sum / n;
		for (int64 i = 0; i < n; i++)
		{
			double		d = x[i * dim + j] - mean[j];

			var += d * d;
		}
		var /= n;

		/* scikit-learn's _is_constant_feature test, then scale 1 */
		if (var <= n * DBL_EPSILON * var + pow(n * mean[j] * DBL_EPSILON, 2))
			scale[j] = 1.0;
		else
			scale[j] = sqrt(var);
	}
}

/* customer_analytics.kmeans_bounds (see Hamerly's bounds below) */
bool		ca_kmeans_bounds = true;

#define KMEANS_BOUND_SLACK 1e-10

/* squared Euclidean distance (the kernel of every path: kmeans.h) */
static inline double
dist2(const double *a, const double *b, int dim)
{
	return kmeans_dist2(a, b, dim);
}

/*
 * dst[j] += src[j], j < len: each element its own addition, as the scalar
 * loop does them (SSE2 does two at once, the same operations: the same
 * bits).  Written out because the compiler does not vectorize the loop it
 * is in (a cluster's sums, which it cannot prove apart from the points).
 */
static inline void
add_to(double *restrict dst, const double *restrict src, int len)
{
	int			j = 0;

#ifdef __SSE2__
	for (; j + 2 <= len; j += 2)
		_mm_storeu_pd(dst + j, _mm_add_pd(_mm_loadu_pd(dst + j), _mm_loadu_pd(src + j)));
#endif
	for (; j < len; j++)
		dst[j] += src[j];
}

/*
 * The nearest centre of point (ties to the lowest index), and its squared
 * distance; inlined where dim is a constant (see KMEANS_DIM_DISPATCH).
 */
static pg_attribute_always_inline int
nearest_of(const double *point, const double *centers, int k, int dim, double *best_d2)
{
	int			best = 0;
	double		bestd = dist2(point, centers, dim);

	for (int c = 1; c < k; c++)
	{
		double		d = dist2(point, centers + c * dim, dim);

		if (d < bestd)
		{
			bestd = d;
			best = c;
		}
	}
	if (best_d2)
		*best_d2 = bestd;
	return best;
}

/* the nearest centre of point (ties to the lowest index), and its squared distance */
int
kmeans_nearest(const double *point, const double *centers, int k, int dim, double *best_d2)
{
	return nearest_of(point, centers, k, dim, best_d2);
}

/* first index whose cumulative sum reaches r (numpy.searchsorted, side left) */
static int64
search_cumsum(const double *cumsum, int64 n, double r)
{
	int64		lo = 0,
				hi = n;

	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (cumsum[mid] < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return Min(lo, n - 1);
}

/*
 * greedy k-means++ (scikit-learn's _kmeans_plusplus): k centres from z.
 *
 * A candidate y lowers a point's distance to the chosen centres only when
 * it is nearer than the point's nearest centre c; by the triangle
 * inequality it is not when d(c, y) > 2 d(x, c).  Such points keep their
 * distance without computing d(x, y) (with customer_analytics.kmeans_bounds
 * on, and by a margin, as for Lloyd's bounds below): the same values, summed
 * in the same order, so the same draws and centres.
 */
static pg_attribute_always_inline void
kmeans_plusplus_dim(const double *z, int64 n, int dim, int k, bool use_bounds, pg_prng_state *rng,
					double *centers)
{
	int			trials = 2 + (int) floor(log((double) k));
	double	   *closest = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	double	   *cumsum = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	double	   *candidate = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	double	   *best_closest = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	bool		bounds = use_bounds && k > 1;
	int32	   *nearest = bounds ? palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE) : NULL;
	double	   *root = bounds ? palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE) : NULL;
	double	   *to_candidate = palloc(sizeof(double) * k);
	int64		first = (int64) pg_prng_uint64_range(rng, 0, n - 1);
	double		potential = 0;

	memcpy(centers, z + first * dim, sizeof(double) * dim);
	for (int64 i = 0; i < n; i++)
	{
		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		closest[i] = dist2(z + i * dim, centers, dim);
		potential += closest[i];
		if (bounds)
		{
			nearest[i] = 0;
			root[i] = sqrt(closest[i]);
		}
	}

	for (int c = 1; c < k; c++)
	{
		double		best_potential = -1;
		int64		best_id = 0;
		double		running = 0;

		for (int64 i = 0; i < n; i++)
		{
			running += closest[i];
			cumsum[i] = running;
		}
		for (int t = 0; t < trials; t++)
		{
			int64		id = search_cumsum(cumsum, n, pg_prng_double(rng) * potential);
			const double *y = z + id * dim;
			double		pot = 0;

			if (bounds)
				for (int o = 0; o < c; o++)
					to_candidate[o] = sqrt(dist2(centers + o * dim, y, dim));
			for (int64 i = 0; i < n; i++)
			{
				/* a pass over the points is up to n * CA_MAX_FEATURES operations */
				if ((i & 0xFFF) == 0)
					CHECK_FOR_INTERRUPTS();
				if (bounds && to_candidate[nearest[i]] * (1 - KMEANS_BOUND_SLACK) > 2 * root[i])
					candidate[i] = closest[i];	/* y is farther than x's nearest centre */
				else
					candidate[i] = Min(closest[i], dist2(z + i * dim, y, dim));
				pot += candidate[i];
			}
			if (best_potential < 0 || pot < best_potential)
			{
				double	   *swap = best_closest;

				best_potential = pot;
				best_id = id;
				best_closest = candidate;
				candidate = swap;
			}
		}
		potential = best_potential;
		if (bounds)
			for (int64 i = 0; i < n; i++)
				if (best_closest[i] < closest[i])
				{
					nearest[i] = c;
					root[i] = sqrt(best_closest[i]);
				}
		memcpy(closest, best_closest, sizeof(double) * n);
		memcpy(centers + c * dim, z + best_id * dim, sizeof(double) * dim);
	}
	pfree(closest);
	pfree(cumsum);
	pfree(candidate);
	pfree(best_closest);
	pfree(to_candidate);
	if (bounds)
	{
		pfree(nearest);
		pfree(root);
	}
}

/* comparator for relocation: farthest first, ties to the lower index */
typedef struct FarPoint
{
	double		d2;
	int64		i;
} FarPoint;

static int
compare_far(const void *a, const void *b)
{
	static uint32 calls = 0;
	const FarPoint *x = a,
			   *y = b;

	/* sorting millions of points takes seconds: let a cancel in */
	if ((++calls & 0x3FFF) == 0)
		CHECK_FOR_INTERRUPTS();

	if (x->d2 != y->d2)
		return x->d2 > y->d2 ? -1 : 1;
	return x->i < y->i ? -1 : (x->i > y->i);
}

/*
 * sums/counts hold the new clusters' sums before division; move the points
 * farthest from their old centres into the empty clusters.
 */
static void
relocate_empty(const double *z, int64 n, int dim, int k, const double *old_centers,
			   const int32 *labels, double *sums, int64 *counts)
{
	int			nempty = 0;
	FarPoint   *far;

	for (int c = 0; c < k; c++)
		if (counts[c] == 0)
			nempty++;
	if (nempty == 0)
		return;

	far = palloc_extended(sizeof(FarPoint) * n, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < n; i++)
	{
		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		far[i].d2 = dist2(z + i * dim, old_centers + labels[i] * dim, dim);
		far[i].i = i;
	}
	qsort(far, n, sizeof(FarPoint), compare_far);
	for (int c = 0, taken = 0; c < k && taken < n; c++)
	{
		int64		i;
		int			from;

		if (counts[c] != 0)
			continue;
		i = far[taken++].i;
		from = labels[i];
		for (int j = 0; j < dim; j++)
		{
			sums[from * dim + j] -= z[i * dim + j];
			sums[c * dim + j] = z[i * dim + j];
		}
		counts[from]--;
		counts[c] = 1;
	}
	pfree(far);
}

/*
 * Hamerly's bounds (Hamerly 2010, "Making k-means even faster"), exact.
 * Each point keeps an upper bound u on its distance to its assigned centre
 * and a lower bound l on its distance to every other centre; s[c] is half
 * the distance from centre c to its nearest other centre.  When
 * u < max(s[a], l) the assigned centre a is strictly the nearest and the
 * point's k distances are not computed; otherwise they are, with
 * kmeans_nearest()'s loop (same distances, same tie rule).  So every
 * iteration assigns every point exactly as plain Lloyd does, and the sums
 * are taken point by point in the same order: the centres, labels and
 * inertia are bit-identical to plain Lloyd's.
 *
 * The bounds are kept in floating point; a skip needs the bound to win by
 * a margin (slack) far above their accumulated rounding error: slack is
 * 1e-10 times the largest distance any bound was built from (the bounds'
 * additions and subtractions each err by at most 2^-53 of that, a few
 * hundred of them at most), so a skipped point's nearest centre is ahead
 * by more than the distance computation's own rounding: the bounds never
 * decide a case that kmeans_nearest() could decide otherwise.
 *
 * customer_analytics.kmeans_bounds = off computes every distance, as
 * before (the regression suites compare both ways).
 */

/*
 * kmeans_nearest(), also returning the second smallest squared distance;
 * the squared distance to centre known (or -1 for none) is known_d2, the
 * value dist2() returns for it, and is not computed again.
 */
static pg_attribute_always_inline int
nearest2(const double *point, const double *centers, int k, int dim, int known, double known_d2,
		 double *best_d2, double *second_d2)
{
	int			best = 0;
	double		bestd = known == 0 ? known_d2 : dist2(point, centers, dim);
	double		second = get_float8_infinity();

	for (int c = 1; c < k; c++)
	{
		double		d = c == known ? known_d2 : dist2(point, centers + c * dim, dim);
		bool		nearer = d < bestd;

		/*
		 * if d < bestd: second = bestd, bestd = d, best = c; else if d <
		 * second: second = d.  Written as selects (no branch to mispredict
		 * on the order of the distances): the same values.
		 */
		second = nearer ? bestd : (d < second ? d : second);
		bestd = nearer ? d : bestd;
		best = nearer ? c : best;
	}
	*best_d2 = bestd;
	*second_d2 = second;
	return best;
}

/* The bounds of one Lloyd run. */
typedef struct HamerlyBounds
{
	double	   *upper;			/* n: >= distance to the assigned centre */
	double	   *lower;			/* n: <= distance to every other centre */
	double	   *half;			/* k: half the distance to the nearest other centre */
	double	   *moved;			/* k: how far each centre moved in the update */
	double		scale;			/* largest distance a bound was built from */
	bool		valid;			/* upper/lower hold bounds for fit->labels */
	int64		skipped;		/* points assigned from their bounds (debugging) */
} HamerlyBounds;

/* half the distance of each centre to its nearest other centre */
static void
hamerly_half(HamerlyBounds *hb, const double *centers, int k, int dim)
{
	for (int c = 0; c < k; c++)
		hb->half[c] = get_float8_infinity();
	for (int c = 0; c < k; c++)
		for (int o = c + 1; o < k; o++)
		{
			double		d = 0.5 * sqrt(dist2(centers + c * dim, centers + o * dim, dim));

			hb->half[c] = Min(hb->half[c], d);
			hb->half[o] = Min(hb->half[o], d);
		}
}

/*
 * The nearest centre of point i (as kmeans_nearest()), from its bounds when
 * they decide it, and its bounds made current.  The bounds' arrays come as
 * restrict pointers and their scale and the counter of decided points by
 * reference: inlined into a pass over the points, they stay in registers
 * (a store of one point's bound does not make the compiler reload them).
 */
static pg_attribute_always_inline int
hamerly_assign(double *restrict upper, double *restrict lower, const double *restrict half,
			   double *scale, int64 *skipped, bool valid, const double *point, int64 i,
			   int current, const double *centers, int k, int dim)
{
	double		d2 = 0,
				second;
	int			c;
	int			known = -1;		/* the centre whose squared distance is d2 */

	if (valid)
	{
		double		slack = KMEANS_BOUND_SLACK * *scale;
		double		m = Max(half[current], lower[i]);
		double		u;

		if (upper[i] + slack < m)
		{
			(*skipped)++;
			return current;
		}
		/* tighten the upper bound: one distance instead of k */
		d2 = dist2(point, centers + current * dim, dim);
		known = current;
		u = sqrt(d2);
		upper[i] = u;
		if (u + slack < m)
		{
			(*skipped)++;
			return current;
		}
	}
	/* the k distances, current's already computed */
	c = nearest2(point, centers, k, dim, known, d2, &d2, &second);
	upper[i] = sqrt(d2);
	lower[i] = sqrt(second);
	if (isfinite(lower[i]))
		*scale = Max(*scale, lower[i]);
	*scale = Max(*scale, upper[i]);
	return c;
}

/*
 * One assignment pass of Lloyd's iteration with Hamerly's bounds: for every
 * point in order, hamerly_assign(), then its label, its cluster's count and
 * sum (point by point in order, as the plain pass).  Returns whether every
 * point kept its label.
 */
static pg_attribute_always_inline bool
hamerly_pass(HamerlyBounds *hb, const double *restrict z, int64 n, int dim, int k,
			 const double *restrict centers, const int32 *restrict old_labels,
			 int32 *restrict labels, double *restrict sums, int64 *restrict counts)
{
	double		scale = hb->scale;
	int64		skipped = hb->skipped;
	bool		same = true;

	for (int64 i = 0; i < n; i++)
	{
		const double *x = z + i * dim;
		int			c;

		/* one point costs up to k * dim = KMEANS_MAX_K * CA_MAX_FEATURES operations */
		CHECK_FOR_INTERRUPTS();
		c = hamerly_assign(hb->upper, hb->lower, hb->half, &scale, &skipped, hb->valid, x, i,
						   old_labels[i], centers, k, dim);
		labels[i] = c;
		counts[c]++;
		/* point by point in order, each feature's sum its own: the same sums */
		add_to(sums + c * dim, x, dim);
		if (c != old_labels[i])
			same = false;
	}
	hb->scale = scale;
	hb->skipped = skipped;
	return same;
}

/* After the centres moved: the points' bounds loosened by the moves. */
static void
hamerly_moved(HamerlyBounds *hb, int64 n, int k, const int32 *labels)
{
	int			far = 0,
				far2 = -1;
	double		total = 0;

	for (int c = 1; c < k; c++)
		if (hb->moved[c] > hb->moved[far])
			far = c;
	for (int c = 0; c < k; c++)
		if (c != far && (far2 < 0 || hb->moved[c] > hb->moved[far2]))
			far2 = c;
	for (int c = 0; c < k; c++)
		total = Max(total, hb->moved[c]);
	/* every bound below stays within scale: what a bound can grow by is added */
	hb->scale += total;
	for (int64 i = 0; i < n; i++)
	{
		int			a = labels[i];

		hb->upper[i] += hb->moved[a];
		/* the other centres moved by at most the largest move but a's own */
		hb->lower[i] -= (a == far) ? (far2 >= 0 ? hb->moved[far2] : 0) : hb->moved[far];
	}
}

/* One Lloyd run from centers (k * dim, updated in place); see KMEANS_DIM_DISPATCH. */
static pg_attribute_always_inline void
lloyd_dim(const double *z, int64 n, int dim, int k, int max_iter, double tol_abs, bool use_bounds,
		  double *centers, KMeansFit *fit)
{
	double	   *sums = palloc(sizeof(double) * k * dim);
	int64	   *counts = palloc(sizeof(int64) * k);
	int32	   *old_labels = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	bool		strict = false;
	bool		bounds = use_bounds && k > 1;
	HamerlyBounds hb;
	int			iter;

	memset(&hb, 0, sizeof(hb));
	if (bounds)
	{
		hb.upper = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
		hb.lower = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
		hb.half = palloc(sizeof(double) * k);
		hb.moved = palloc(sizeof(double) * k);
	}
	for (int64 i = 0; i < n; i++)
		old_labels[i] = -1;
	fit->converged = false;

	for (iter = 0; iter < max_iter; iter++)
	{
		double		shift = 0;
		bool		same = true;

		CHECK_FOR_INTERRUPTS();
		memset(sums, 0, sizeof(double) * k * dim);
		memset(counts, 0, sizeof(int64) * k);
		if (bounds)
			hamerly_half(&hb, centers, k, dim);
		if (bounds)
			same = hamerly_pass(&hb, z, n, dim, k, centers, old_labels, fit->labels, sums, counts);
		else
			for (int64 i = 0; i < n; i++)
			{
				int			c;

				/* one point costs up to k * dim = KMEANS_MAX_K * CA_MAX_FEATURES operations */
				CHECK_FOR_INTERRUPTS();
				c = nearest_of(z + i * dim, centers, k, dim, NULL);
				fit->labels[i] = c;
				counts[c]++;
				/* point by point in order, each feature's sum its own: the same sums */
				add_to(sums + c * dim, z + i * dim, dim);
				if (c != old_labels[i])
					same = false;
			}
		hb.valid = bounds;
		relocate_empty(z, n, dim, k, centers, fit->labels, sums, counts);
		for (int c = 0; c < k; c++)
		{
			double		moved = 0;

			for (int j = 0; j < dim; j++)
			{
				/* a cluster emptied by relocation keeps its sum, as scikit-learn */
				double		v = counts[c] > 0 ? sums[c * dim + j] / counts[c] : sums[c * dim + j];
				double		d = v - centers[c * dim + j];

				shift += d * d;
				moved += d * d;
				centers[c * dim + j] = v;
			}
			if (bounds)
				hb.moved[c] = sqrt(moved);
		}
		if (bounds)
			hamerly_moved(&hb, n, k, fit->labels);

		if (same)
		{
			strict = true;
			fit->converged = true;
			break;
		}
		if (shift <= tol_abs)
		{
			fit->converged = true;
			break;
		}
		memcpy(old_labels, fit->labels, sizeof(int32) * n);
	}
	fit->iterations = Min(iter + 1, max_iter);

	/* labels must match the final centres */
	if (!strict)
	{
		double		scale = hb.scale;

		if (bounds)
			hamerly_half(&hb, centers, k, dim);
		for (int64 i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (bounds)
				fit->labels[i] = hamerly_assign(hb.upper, hb.lower, hb.half, &scale, &hb.skipped,
												hb.valid, z + i * dim, i, fit->labels[i], centers, k, dim);
			else
				fit->labels[i] = nearest_of(z + i * dim, centers, k, dim, NULL);
		}
		hb.scale = scale;
	}

	fit->inertia = 0;
	memset(fit->sizes, 0, sizeof(int64) * k);
	for (int64 i = 0; i < n; i++)
	{
		fit->inertia += dist2(z + i * dim, centers + fit->labels[i] * dim, dim);
		fit->sizes[fit->labels[i]]++;
	}
	memcpy(fit->centers, centers, sizeof(double) * k * dim);
	fit->skipped = hb.skipped;
	pfree(sums);
	pfree(counts);
	pfree(old_labels);
	if (bounds)
	{
		pfree(hb.upper);
		pfree(hb.lower);
		pfree(hb.half);
		pfree(hb.moved);
	}
}

/*
 * Dimension-specialized copies.  kmeans_plusplus_dim() and lloyd_dim() (with
 * the distance kernel, the nearest-centre scans, Hamerly's pass and the sums
 * inlined) are compiled once more for each small dim below, with dim a
 * constant: the compiler unrolls the distance kernel's loops (no loop
 * counter, no remainder test per distance; add_to()'s loop over pairs of
 * features stays a loop of a known count at -O2).  The operations and their order are the
 * ones of the generic loop (the same SSE2 lanes, the same additions in the
 * same order, no reassociation without -ffast-math), so every value is the
 * same to the bit; suite 83 compares the specialized and generic paths
 * (customer_analytics.kmeans_specialize).
 */
bool		ca_kmeans_specialize = true;

#define KMEANS_DIM_DISPATCH(call_dim, dim, specialize) \
	do { \
		if (!(specialize)) \
			call_dim(dim); \
		else switch (dim) \
		{ \
			case 2: call_dim(2); break; \
			case 3: call_dim(3); break; \
			case 4: call_dim(4); break; \
			case 5: call_dim(5); break; \
			case 6: call_dim(6); break; \
			case 7: call_dim(7); break; \
			case 8: call_dim(8); break; \
			case 9: call_dim(9); break; \
			case 10: call_dim(10); break; \
			case 11: call_dim(11); break; \
			case 12: call_dim(12); break; \
			default: call_dim(dim); break; \
		} \
	} while (0)

/* greedy k-means++ (kmeans_plusplus_dim()), dim-specialized for small dims */
static void
kmeans_plusplus(const double *z, int64 n, int dim, int k, bool use_bounds, bool specialize,
				pg_prng_state *rng, double *centers)
{
#define KPP_CALL(d) kmeans_plusplus_dim(z, n, (d), k, use_bounds, rng, centers)
	KMEANS_DIM_DISPATCH(KPP_CALL, dim, specialize);
#undef KPP_CALL
}

/* one Lloyd run (lloyd_dim()), dim-specialized for small dims */
static void
lloyd(const double *z, int64 n, int dim, int k, int max_iter, double tol_abs, bool use_bounds,
	  bool specialize, double *centers, KMeansFit *fit)
{
#define LLOYD_CALL(d) lloyd_dim(z, n, (d), k, max_iter, tol_abs, use_bounds, centers, fit)
	KMEANS_DIM_DISPATCH(LLOYD_CALL, dim, specialize);
#undef LLOYD_CALL
}

/*
 * The restarts of a fit.
 *
 * Each of the n_init restarts is a k-means++ draw followed by Lloyd's
 * iterations, and depends on nothing but the points, the parameters and the
 * random generator's state at its start.  The generator is seeded once per
 * fit (with the seed option) and each restart's k-means++ draws from it
 * after the previous restart's: restart r starts from the state left by
 * restarts 0 .. r - 1.  Those draws do not depend on the data (only on n, k
 * and the number of local trials), so restart_states() replays them to find
 * every restart's starting state without fitting anything: a restart's
 * random numbers are fixed by its index, whichever process runs it and in
 * whatever order.  Of the runs the one with the lowest inertia wins, ties to
 * the lowest index, as in the serial loop.  So a fit is the same bit for bit
 * whether its restarts run in one process or in several.
 *
 * Several fits over the same points (the elbow's k = k_from .. k_to) share
 * one pool of tasks, one per restart of each fit: one parallel context and
 * its workers for all of them, not one per fit, and no worker idle at the
 * end of one k while another k's restarts wait.  Each restart is computed
 * exactly as in a fit of its own, so each fit's result is the same.
 */

/* customer_analytics.kmeans_parallel_workers / kmeans_parallel_min_points */
int			ca_kmeans_parallel_workers = -1;
int			ca_kmeans_parallel_min_points = 10000;

/* the state of the generator at the start of each of runs restarts */
static void
restart_states(uint64 seed, int64 n, int k, int runs, pg_prng_state *states)
{
	int			trials = 2 + (int) floor(log((double) k));
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < runs; r++)
	{
		states[r] = rng;
		/* kmeans_plusplus()'s draws: the first centre, then trials per centre */
		(void) pg_prng_uint64_range(&rng, 0, n - 1);
		for (int c = 1; c < k; c++)
			for (int t = 0; t < trials; t++)
				(void) pg_prng_double(&rng);
	}
}

/* What one restart leaves for the choice of the best (centres and sizes follow). */
typedef struct KMeansRunResult
{
	double		inertia;
	int32		iterations;
	bool		converged;
	int64		skipped;
} KMeansRunResult;

/*
 * The restarts of the fits: their fixed arguments, the next task to take
 * (workers and leader take them in turn), then in the same memory (the
 * DSM's, or the leader's for a serial fit) the fits (KMeansGroup), the
 * points, each task's starting generator state and each task's result.
 */
typedef struct KMeansTasks
{
	int64		n;
	int32		dim;
	int32		max_k;			/* the largest k of the fits */
	int32		ngroups;		/* fits */
	int32		ntasks;			/* restarts of all fits */
	bool		bounds;
	bool		specialize;		/* customer_analytics.kmeans_specialize */
	pg_atomic_uint32 next;		/* the next task to run */
} KMeansTasks;

/*
 * One fit of the pool: its tasks are first_task .. first_task + runs - 1
 * (restart r is task first_task + r), their results at results + offset.
 */
typedef struct KMeansGroup
{
	int32		k;
	int32		max_iter;
	int32		runs;
	int32		first_task;
	double		tol_abs;		/* the fit's tolerance on the summed squared centre shift */
	Size		offset;
} KMeansGroup;

/* the DSM's keys (shm_toc) */
#define KMEANS_KEY_TASKS	UINT64CONST(0xCA0000000000001)
#define KMEANS_KEY_POINTS	UINT64CONST(0xCA0000000000002)
#define KMEANS_KEY_STATES	UINT64CONST(0xCA0000000000003)
#define KMEANS_KEY_RESULTS	UINT64CONST(0xCA0000000000004)
#define KMEANS_KEY_GROUPS	UINT64CONST(0xCA0000000000005)

/* bytes of one restart's result: KMeansRunResult, centres (k * dim), sizes (k) */
static Size
result_stride(int k, int dim)
{
	return MAXALIGN(sizeof(KMeansRunResult)) + MAXALIGN(sizeof(double) * k * dim) +
		MAXALIGN(sizeof(int64) * k);
}

static KMeansRunResult *
run_result(char *results, int r, int k, int dim)
{
	return (KMeansRunResult *) (results + (Size) r * result_stride(k, dim));
}

static double *
run_centers(char *results, int r, int k, int dim)
{
	return (double *) ((char *) run_result(results, r, k, dim) + MAXALIGN(sizeof(KMeansRunResult)));
}

static int64 *
run_sizes(char *results, int r, int k, int dim)
{
	return (int64 *) ((char *) run_centers(results, r, k, dim) + MAXALIGN(sizeof(double) * k * dim));
}

/*
 * Run tasks until none is left: task t is restart r of the fit whose tasks
 * hold t, from states[t] (or from the given init, for a single fit of one
 * run), its result into that fit's results.  Pure computation on the
 * arguments: the workers run this too.
 */
static void
run_restarts(KMeansTasks *tasks, const KMeansGroup *groups, const double *z,
			 const pg_prng_state *states, const double *init, char *results)
{
	int			dim = tasks->dim;
	double	   *centers = palloc(sizeof(double) * tasks->max_k * dim);
	KMeansFit	run;

	run.labels = palloc_extended(sizeof(int32) * tasks->n, MCXT_ALLOC_HUGE);
	for (;;)
	{
		uint32		t = pg_atomic_fetch_add_u32(&tasks->next, 1);
		const KMeansGroup *g = groups;
		char	   *fit_results;
		KMeansRunResult *res;
		int			r,
					k;

		if (t >= (uint32) tasks->ntasks)
			break;
		while (!((uint32) g->first_task <= t && t < (uint32) (g->first_task + g->runs)))
			g++;
		r = t - g->first_task;
		k = g->k;
		fit_results = results + g->offset;
		if (init)
			memcpy(centers, init, sizeof(double) * k * dim);
		else
		{
			pg_prng_state rng = states[t];

			kmeans_plusplus(z, tasks->n, dim, k, tasks->bounds, tasks->specialize, &rng, centers);
		}
		run.centers = run_centers(fit_results, r, k, dim);
		run.sizes = run_sizes(fit_results, r, k, dim);
		run.skipped = 0;
		lloyd(z, tasks->n, dim, k, g->max_iter, g->tol_abs, tasks->bounds, tasks->specialize, centers, &run);
		res = run_result(fit_results, r, k, dim);
		res->inertia = run.inertia;
		res->iterations = run.iterations;
		res->converged = run.converged;
		res->skipped = run.skipped;
	}
	pfree(centers);
	pfree(run.labels);
}

/* A parallel worker of a fit: tasks from the DSM until none is left. */
PGDLLEXPORT void kmeans_parallel_main(dsm_segment *seg, shm_toc *toc);

void
kmeans_parallel_main(dsm_segment *seg, shm_toc *toc)
{
	KMeansTasks *tasks = shm_toc_lookup(toc, KMEANS_KEY_TASKS, false);
	const KMeansGroup *groups = shm_toc_lookup(toc, KMEANS_KEY_GROUPS, false);
	const double *z = shm_toc_lookup(toc, KMEANS_KEY_POINTS, false);
	const pg_prng_state *states = shm_toc_lookup(toc, KMEANS_KEY_STATES, false);
	char	   *results = shm_toc_lookup(toc, KMEANS_KEY_RESULTS, false);

	(void) seg;					/* everything is in the toc */
	run_restarts(tasks, groups, z, states, NULL, results);
}

/*
 * How many parallel workers to ask for the tasks of fits: none for a
 * single task, when every fit has k = 1 (one pass over the points per run),
 * fewer than customer_analytics.kmeans_parallel_min_points points, or where
 * a parallel context cannot be created (already in parallel mode: inside a
 * parallel query or a parallel worker; a standalone backend; no active
 * snapshot to hand the workers).
 */
static int
parallel_workers_wanted(int64 n, int max_k, int ntasks)
{
	int			workers = ca_kmeans_parallel_workers >= 0 ? ca_kmeans_parallel_workers :
		max_parallel_workers_per_gather;

	if (ntasks < 2 || max_k < 2 || workers <= 0 || n < ca_kmeans_parallel_min_points)
		return 0;
	if (!IsUnderPostmaster || IsInParallelMode() || IsParallelWorker() || !ActiveSnapshotSet())
		return 0;
	/* the leader takes tasks too (unless parallel_leader_participation is off) */
	return Min(workers, parallel_leader_participation ? ntasks - 1 : ntasks);
}

/*
 * How many parallel workers to ask for ntasks other tasks over n points
 * (the elbow's silhouettes, one per model): the fits' settings and checks.
 */
int
kmeans_parallel_workers_for(int64 n, int ntasks)
{
	return parallel_workers_wanted(n, 2, ntasks);
}

/*
 * The tasks on a parallel context of nworkers: the fits, the points, the
 * starting states and the results in its DSM.  Returns the number of
 * workers launched, or -1 when no DSM could be made (then nothing ran).
 * The results (results_size bytes) are copied to results.
 */
static int
run_restarts_parallel(KMeansTasks *fixed, const KMeansGroup *groups, const double *z,
					  const pg_prng_state *states, int nworkers, char *results, Size results_size)
{
	ParallelContext *pcxt;
	Size		points_size = sizeof(double) * fixed->n * fixed->dim;
	Size		states_size = sizeof(pg_prng_state) * fixed->ntasks;
	Size		groups_size = sizeof(KMeansGroup) * fixed->ngroups;
	KMeansTasks *tasks;
	KMeansGroup *shared_groups;
	double	   *shared_z;
	pg_prng_state *shared_states;
	char	   *shared_results;
	int			launched;

	EnterParallelMode();
	pcxt = CreateParallelContext("$libdir/customer_analytics", "kmeans_parallel_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(KMeansTasks));
	shm_toc_estimate_chunk(&pcxt->estimator, groups_size);
	shm_toc_estimate_chunk(&pcxt->estimator, points_size);
	shm_toc_estimate_chunk(&pcxt->estimator, states_size);
	shm_toc_estimate_chunk(&pcxt->estimator, results_size);
	shm_toc_estimate_keys(&pcxt->estimator, 5);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		/* no DSM (out of segments): the caller runs the restarts itself */
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return -1;
	}

	tasks = shm_toc_allocate(pcxt->toc, sizeof(KMeansTasks));
	memcpy(tasks, fixed, sizeof(KMeansTasks));
	pg_atomic_init_u32(&tasks->next, 0);
	shared_groups = shm_toc_allocate(pcxt->toc, groups_size);
	memcpy(shared_groups, groups, groups_size);
	shared_z = shm_toc_allocate(pcxt->toc, points_size);
	memcpy(shared_z, z, points_size);
	shared_states = shm_toc_allocate(pcxt->toc, states_size);
	memcpy(shared_states, states, states_size);
	shared_results = shm_toc_allocate(pcxt->toc, results_size);
	shm_toc_insert(pcxt->toc, KMEANS_KEY_TASKS, tasks);
	shm_toc_insert(pcxt->toc, KMEANS_KEY_GROUPS, shared_groups);
	shm_toc_insert(pcxt->toc, KMEANS_KEY_POINTS, shared_z);
	shm_toc_insert(pcxt->toc, KMEANS_KEY_STATES, shared_states);
	shm_toc_insert(pcxt->toc, KMEANS_KEY_RESULTS, shared_results);

	LaunchParallelWorkers(pcxt);
	launched = pcxt->nworkers_launched;
	/* the leader takes tasks too; all of them when no worker started */
	if (launched == 0 || parallel_leader_participation)
		run_restarts(tasks, shared_groups, shared_z, shared_states, NULL, shared_results);
	WaitForParallelWorkersToFinish(pcxt);
	memcpy(results, shared_results, results_size);

	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return launched;
}

/* the tolerance of a fit over z: tol times the mean feature variance */
static double
tolerance(const double *z, int64 n, int dim, double tol)
{
	double		tol_abs = 0;

	for (int j = 0; j < dim; j++)
	{
		double		sum = 0,
					var = 0;

		CHECK_FOR_INTERRUPTS();
		for (int64 i = 0; i < n; i++)
			sum += z[i * dim + j];
		for (int64 i = 0; i < n; i++)
			var += pow(z[i * dim + j] - sum / n, 2);
		tol_abs += var / n;
	}
	return tol * tol_abs / dim;
}

/*
 * Best of n_init runs (or one from init) of each of nfits fits over the
 * same standardized points z, with the options opts[f] (their tol and seed
 * may differ; init only for a single fit): best[f]'s centres, sizes,
 * inertia, iterations (not its labels).  All their restarts are one pool
 * of tasks, which may go to parallel workers: the same result, bit for bit,
 * as each fit alone and serial.
 */
void
kmeans_fit_points_many(const double *z, int64 n, int dim, int nfits, const KMeansOptions *opts,
					   const double *init, KMeansFit *best)
{
	KMeansTasks tasks;
	KMeansGroup *groups = palloc(sizeof(KMeansGroup) * nfits);
	pg_prng_state *states;
	char	   *results;
	Size		results_size = 0;
	int			ntasks = 0,
				max_k = 1,
				nworkers,
				launched = -1;

	Assert(init == NULL || nfits == 1);
	memset(&tasks, 0, sizeof(tasks));
	/*
	 * The tasks of the largest k first: the longest restarts start first
	 * and the short ones fill in at the end.  Results by fit, in fit order.
	 */
	for (int f = 0; f < nfits; f++)
	{
		groups[f].k = opts[f].k;
		groups[f].max_iter = opts[f].max_iter;
		groups[f].runs = init ? 1 : opts[f].n_init;
		groups[f].offset = results_size;
		results_size += result_stride(opts[f].k, dim) * groups[f].runs;
		max_k = Max(max_k, opts[f].k);
		/* the tolerance of each fit, as a fit of its own computes it (once per distinct tol) */
		groups[f].tol_abs = (f > 0 && opts[f].tol == opts[f - 1].tol) ? groups[f - 1].tol_abs :
			tolerance(z, n, dim, opts[f].tol);
	}
	/* task numbers: fits by descending k (ties in fit order) */
	{
		bool	   *numbered = palloc0(sizeof(bool) * nfits);

		for (int done = 0; done < nfits; done++)
		{
			int			next = -1;

			for (int f = 0; f < nfits; f++)
				if (!numbered[f] && (next < 0 || groups[f].k > groups[next].k))
					next = f;
			numbered[next] = true;
			groups[next].first_task = ntasks;
			ntasks += groups[next].runs;
		}
		pfree(numbered);
	}

	tasks.n = n;
	tasks.dim = dim;
	tasks.max_k = max_k;
	tasks.ngroups = nfits;
	tasks.ntasks = ntasks;
	tasks.bounds = ca_kmeans_bounds;
	tasks.specialize = ca_kmeans_specialize;
	pg_atomic_init_u32(&tasks.next, 0);
	states = palloc(sizeof(pg_prng_state) * ntasks);
	for (int f = 0; f < nfits; f++)
		restart_states((uint64) opts[f].seed, n, opts[f].k, groups[f].runs, states + groups[f].first_task);
	results = palloc_extended(results_size, MCXT_ALLOC_HUGE);

	nworkers = init ? 0 : parallel_workers_wanted(n, max_k, ntasks);
	if (nworkers > 0)
		launched = run_restarts_parallel(&tasks, groups, z, states, nworkers, results, results_size);
	if (launched < 0)
		run_restarts(&tasks, groups, z, states, init, results);

	for (int f = 0; f < nfits; f++)
	{
		int			k = groups[f].k;
		char	   *fit_results = results + groups[f].offset;
		int			best_run = -1;
		int64		skipped = 0,
					iterations = 0;

		/* the lowest inertia, ties to the lowest index: as the serial loop kept it */
		for (int r = 0; r < groups[f].runs; r++)
		{
			KMeansRunResult *res = run_result(fit_results, r, k, dim);

			if (best_run < 0 || res->inertia < run_result(fit_results, best_run, k, dim)->inertia)
				best_run = r;
			skipped += res->skipped;
			iterations += res->iterations;
		}
		best[f].inertia = run_result(fit_results, best_run, k, dim)->inertia;
		best[f].iterations = run_result(fit_results, best_run, k, dim)->iterations;
		best[f].converged = run_result(fit_results, best_run, k, dim)->converged;
		best[f].centers = palloc(sizeof(double) * k * dim);
		memcpy(best[f].centers, run_centers(fit_results, best_run, k, dim), sizeof(double) * k * dim);
		best[f].sizes = palloc(sizeof(int64) * k);
		memcpy(best[f].sizes, run_sizes(fit_results, best_run, k, dim), sizeof(int64) * k);
		best[f].labels = NULL;
		best[f].skipped = skipped;
		elog(DEBUG1, "kmeans k = %d: %d runs, %lld iterations over %lld points, %lld assignments decided by bounds",
			 k, groups[f].runs, (long long) iterations, (long long) n, (long long) skipped);
	}
	if (nworkers > 0)
	{
		if (nfits == 1)
			elog(DEBUG1, "kmeans k = %d: the %d runs in %d parallel workers%s", groups[0].k, ntasks,
				 Max(launched, 0), parallel_leader_participation || launched <= 0 ? " and the leader" : "");
		else
			elog(DEBUG1, "kmeans: the %d runs of %d fits in %d parallel workers%s", ntasks, nfits,
				 Max(launched, 0), parallel_leader_participation || launched <= 0 ? " and the leader" : "");
	}
	pfree(states);
	pfree(results);
	pfree(groups);
}

/* Best of n_init runs (or one from init) over standardized points (see kmeans.h). */
void
kmeans_fit_points(const double *z, int64 n, int dim, const KMeansOptions *opt,
				  const double *init, KMeansFit *best)
{
	kmeans_fit_points_many(z, n, dim, 1, opt, init, best);
}
