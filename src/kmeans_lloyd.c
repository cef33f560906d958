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

#include "common/pg_prng.h"
#include "miscadmin.h"

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

/* squared Euclidean distance */
static inline double
dist2(const double *a, const double *b, int dim)
{
	double		s = 0;

	for (int j = 0; j < dim; j++)
	{
		double		d = a[j] - b[j];

		s += d * d;
	}
	return s;
}

/* the nearest centre of point (ties to the lowest index), and its squared distance */
int
kmeans_nearest(const double *point, const double *centers, int k, int dim, double *best_d2)
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

/* greedy k-means++ (scikit-learn's _kmeans_plusplus): k centres from z */
static void
kmeans_plusplus(const double *z, int64 n, int dim, int k, pg_prng_state *rng, double *centers)
{
	int			trials = 2 + (int) floor(log((double) k));
	double	   *closest = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	double	   *cumsum = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	double	   *candidate = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	double	   *best_closest = palloc_extended(sizeof(double) * n, MCXT_ALLOC_HUGE);
	int64		first = (int64) pg_prng_uint64_range(rng, 0, n - 1);
	double		potential = 0;

	memcpy(centers, z + first * dim, sizeof(double) * dim);
	for (int64 i = 0; i < n; i++)
	{
		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		closest[i] = dist2(z + i * dim, centers, dim);
		potential += closest[i];
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
			double		pot = 0;

			for (int64 i = 0; i < n; i++)
			{
				/* a pass over the points is up to n * CA_MAX_FEATURES operations */
				if ((i & 0xFFF) == 0)
					CHECK_FOR_INTERRUPTS();
				candidate[i] = Min(closest[i], dist2(z + i * dim, z + id * dim, dim));
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
		memcpy(closest, best_closest, sizeof(double) * n);
		memcpy(centers + c * dim, z + best_id * dim, sizeof(double) * dim);
	}
	pfree(closest);
	pfree(cumsum);
	pfree(candidate);
	pfree(best_closest);
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

/* One Lloyd run from centers (k * dim, updated in place). */
static void
lloyd(const double *z, int64 n, int dim, int k, int max_iter, double tol_abs,
	  double *centers, KMeansFit *fit)
{
	double	   *sums = palloc(sizeof(double) * k * dim);
	int64	   *counts = palloc(sizeof(int64) * k);
	int32	   *old_labels = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	bool		strict = false;
	int			iter;

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
		for (int64 i = 0; i < n; i++)
		{
			int			c;

			/* one point costs up to k * dim = KMEANS_MAX_K * CA_MAX_FEATURES operations */
			CHECK_FOR_INTERRUPTS();
			c = kmeans_nearest(z + i * dim, centers, k, dim, NULL);

			fit->labels[i] = c;
			counts[c]++;
			for (int j = 0; j < dim; j++)
				sums[c * dim + j] += z[i * dim + j];
			if (c != old_labels[i])
				same = false;
		}
		relocate_empty(z, n, dim, k, centers, fit->labels, sums, counts);
		for (int c = 0; c < k; c++)
			for (int j = 0; j < dim; j++)
			{
				/* a cluster emptied by relocation keeps its sum, as scikit-learn */
				double		v = counts[c] > 0 ? sums[c * dim + j] / counts[c] : sums[c * dim + j];
				double		d = v - centers[c * dim + j];

				shift += d * d;
				centers[c * dim + j] = v;
			}

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
		for (int64 i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			fit->labels[i] = kmeans_nearest(z + i * dim, centers, k, dim, NULL);
		}

	fit->inertia = 0;
	memset(fit->sizes, 0, sizeof(int64) * k);
	for (int64 i = 0; i < n; i++)
	{
		fit->inertia += dist2(z + i * dim, centers + fit->labels[i] * dim, dim);
		fit->sizes[fit->labels[i]]++;
	}
	memcpy(fit->centers, centers, sizeof(double) * k * dim);
	pfree(sums);
	pfree(counts);
	pfree(old_labels);
}

/* Best of n_init runs (or one from init) over standardized points (see kmeans.h). */
void
kmeans_fit_points(const double *z, int64 n, int dim, const KMeansOptions *opt,
				  const double *init, KMeansFit *best)
{
	int			k = opt->k;
	double		tol_abs = 0;
	pg_prng_state rng;
	double	   *centers = palloc(sizeof(double) * k * dim);
	KMeansFit	run;
	int			runs = init ? 1 : opt->n_init;

	/* tolerance relative to the data: tol times the mean feature variance */
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
	tol_abs = opt->tol * tol_abs / dim;

	run.centers = palloc(sizeof(double) * k * dim);
	run.labels = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	run.sizes = palloc(sizeof(int64) * k);
	best->centers = palloc(sizeof(double) * k * dim);
	best->labels = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	best->sizes = palloc(sizeof(int64) * k);
	best->inertia = -1;

	pg_prng_seed(&rng, (uint64) opt->seed);
	for (int r = 0; r < runs; r++)
	{
		if (init)
			memcpy(centers, init, sizeof(double) * k * dim);
		else
			kmeans_plusplus(z, n, dim, k, &rng, centers);
		lloyd(z, n, dim, k, opt->max_iter, tol_abs, centers, &run);
		if (best->inertia < 0 || run.inertia < best->inertia)
		{
			best->inertia = run.inertia;
			best->iterations = run.iterations;
			best->converged = run.converged;
			memcpy(best->centers, run.centers, sizeof(double) * k * dim);
			memcpy(best->labels, run.labels, sizeof(int32) * n);
			memcpy(best->sizes, run.sizes, sizeof(int64) * k);
		}
	}
}
