/*
 * kmeans.h
 *		k-means as scikit-learn 1.2 computes it (see kmeans_lloyd.c), and the
 *		model value the SQL functions exchange.
 */
#ifndef KMEANS_H
#define KMEANS_H

#include "utils/jsonb.h"

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

/* index of the nearest centre (ties to the lowest index) and its squared distance */
extern int	kmeans_nearest(const double *point, const double *centers, int k, int dim,
						   double *dist2);

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

#endif
