/*
 * kmeans.h
 *		k-means as scikit-learn 1.2 computes it (see kmeans_lloyd.c), and the
 *		model value the SQL functions exchange.
 */
#ifndef KMEANS_H
#define KMEANS_H

#include "utils/jsonb.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "ca_limits.h"			/* KMEANS_MAX_K, KMEANS_MAX_N_INIT, KMEANS_MAX_MAX_ITER */

/* The fit's fixed arguments; also the aggregate's parameter blob. */
typedef struct KMeansOptions
{
	int32		k;
	int32		n_init;
	int32		max_iter;
	double		tol;
	int64		seed;
	int32		ninit_values;	/* k * dim given initial centres, or 0 */
	/* followed in the blob by ninit_values doubles (standardized space) */
} KMeansOptions;

typedef struct KMeansFit
{
	double	   *centers;		/* k * dim, standardized space */
	int32	   *labels;			/* n: one run's labels (kmeans_fit_points() returns none) */
	int64	   *sizes;			/* k */
	double		inertia;
	int			iterations;
	bool		converged;
	int64		skipped;		/* assignments decided by Hamerly's bounds */
} KMeansFit;

/* customer_analytics.kmeans_bounds: Hamerly's bounds in Lloyd's iterations */
extern bool ca_kmeans_bounds;
extern bool ca_kmeans_specialize;

/*
 * customer_analytics.kmeans_parallel_workers: parallel workers for a fit's
 * restarts (-1: max_parallel_workers_per_gather; 0: serial), and
 * customer_analytics.kmeans_parallel_min_points: fewer points run serially
 */
extern int	ca_kmeans_parallel_workers;
extern int	ca_kmeans_parallel_min_points;

/* z = (x - mean) / scale, population std; a (near-)constant feature gets scale 1 */
extern void kmeans_scaler(const double *x, int64 n, int dim, double *mean, double *scale);

/*
 * Best of n_init runs (or one run from init) over standardized points z:
 * best's centres, sizes, inertia, iterations (not its labels).  The runs
 * may go to parallel workers: the same result, bit for bit.
 */
extern void kmeans_fit_points(const double *z, int64 n, int dim, const KMeansOptions *opt,
							  const double *init, KMeansFit *best);

/*
 * kmeans_fit_points() for nfits fits over the same points at once (opts[f]
 * each, init only for one fit): all their restarts one pool of tasks, on
 * one parallel context; best[f] bit for bit kmeans_fit_points()'s.
 */
extern void kmeans_fit_points_many(const double *z, int64 n, int dim, int nfits,
								   const KMeansOptions *opts, const double *init, KMeansFit *best);

/*
 * Parallel workers for ntasks tasks over n points, by the fits' settings
 * (kmeans_parallel_workers, kmeans_parallel_min_points) and checks (0: serial)
 */
extern int	kmeans_parallel_workers_for(int64 n, int ntasks);

/* index of the nearest centre (ties to the lowest index) and its squared distance */
extern int	kmeans_nearest(const double *point, const double *centers, int k, int dim,
						   double *dist2);

/*
 * The squared Euclidean distance of two points: THE distance of every path
 * (k-means++, Lloyd's iterations and their bounds, the inertia, kmeans_predict,
 * the silhouettes), so that a model, its labels and its scores computed by
 * any of them agree bit for bit.
 *
 * Four partial sums instead of one chain of additions: features j = 0, 1,
 * 2, 3 (mod 4) of each block of four go to sums 0 .. 3, a last pair to sums
 * 0 and 1, then (s0 + s2) + (s1 + s3), then the last odd feature.  With
 * SSE2 (every x86-64) the sums are two 2-lane registers; elsewhere the same
 * additions in the same order in scalar code, so the value does not depend
 * on the path.  (A single chain waits for each addition before the next:
 * at 11 features the dependent additions, not the arithmetic, set the time.)
 */
static inline double
kmeans_dist2(const double *a, const double *b, int dim)
{
	int			j = 0;
	double		s;

#ifdef __SSE2__
	__m128d		s01 = _mm_setzero_pd(),
				s23 = _mm_setzero_pd();
	double		lanes[2];

	for (; j + 4 <= dim; j += 4)
	{
		__m128d		d01 = _mm_sub_pd(_mm_loadu_pd(a + j), _mm_loadu_pd(b + j));
		__m128d		d23 = _mm_sub_pd(_mm_loadu_pd(a + j + 2), _mm_loadu_pd(b + j + 2));

		s01 = _mm_add_pd(s01, _mm_mul_pd(d01, d01));
		s23 = _mm_add_pd(s23, _mm_mul_pd(d23, d23));
	}
	if (j + 2 <= dim)
	{
		__m128d		d01 = _mm_sub_pd(_mm_loadu_pd(a + j), _mm_loadu_pd(b + j));

		s01 = _mm_add_pd(s01, _mm_mul_pd(d01, d01));
		j += 2;
	}
	/* (s0 + s2, s1 + s3), then their sum */
	_mm_storeu_pd(lanes, _mm_add_pd(s01, s23));
	s = lanes[0] + lanes[1];
#else
	double		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;

	for (; j + 4 <= dim; j += 4)
	{
		double		d0 = a[j] - b[j],
					d1 = a[j + 1] - b[j + 1],
					d2 = a[j + 2] - b[j + 2],
					d3 = a[j + 3] - b[j + 3];

		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	if (j + 2 <= dim)
	{
		double		d0 = a[j] - b[j],
					d1 = a[j + 1] - b[j + 1];

		s0 += d0 * d0;
		s1 += d1 * d1;
		j += 2;
	}
	s = (s0 + s2) + (s1 + s3);
#endif
	for (; j < dim; j++)
	{
		double		d = a[j] - b[j];

		s += d * d;
	}
	return s;
}

/* A model parsed back from its jsonb form. */
typedef struct KMeansModel
{
	int			k;
	int			dim;
	double	   *mean;
	double	   *scale;
	double	   *centers;		/* standardized space */
} KMeansModel;

extern KMeansModel *kmeans_model_parse(Jsonb *model);
extern void kmeans_zscores(const KMeansModel *m, const double *x, double *z, int first);
extern int	kmeans_nearest_centroid(const KMeansModel *m, const double *z);

#endif
