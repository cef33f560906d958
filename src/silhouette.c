/*
 * silhouette.c
 *		The silhouette aggregate: scikit-learn's silhouette_score, exactly.
 *
 * For each point, a = mean Euclidean (not squared) distance to the other
 * members of its cluster, b = the smallest mean distance to the members of
 * another cluster, s = (b - a) / max(a, b), and 0 for a point alone in its
 * cluster; the score is the mean of s.  It is defined for 2 <= clusters <=
 * n - 1; elsewhere the aggregate returns NULL.  (MADlib's simple_silhouette
 * uses distances to centroids instead: a different, cheaper quantity.)
 *
 * The exact score costs n^2 distances.  With a sample size the score is
 * computed on a random sample of the points, distances among the sample
 * only, as silhouette_score(sample_size=...) does; the seed makes the sample
 * repeatable.  Either way at most CA_MAX_SILHOUETTE_POINTS points are
 * scored: more are refused before the pairwise loop starts.
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "utils/array.h"

#include "ca_limits.h"
#include "kmeans.h"
#include "point_buffer.h"

PG_FUNCTION_INFO_V1(silhouette_sfunc);
PG_FUNCTION_INFO_V1(silhouette_final);

typedef struct SilhouetteParams
{
	int64		sample_size;	/* 0: every point */
	int64		seed;
} SilhouetteParams;

/* silhouette(features float8[], cluster int [, sample_size int, seed bigint]): transition */
Datum
silhouette_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "silhouette");
	PointBuffer *pb = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	SilhouetteParams params = {0, 0};

	if (PG_NARGS() > 3)
	{
		if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("sample_size and seed must not be NULL"),
					 errhint("Leave both out for the exact score.")));
		params.sample_size = PG_GETARG_INT32(3);
		params.seed = PG_GETARG_INT64(4);
		if (params.sample_size < 2)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sample_size must be at least 2, not %lld", (long long) params.sample_size),
					 errhint("A few thousand points estimate the score well; leave it out for the exact score.")));
		ca_check_limit("silhouette sample_size", params.sample_size, CA_MAX_SILHOUETTE_POINTS,
					   "A sample of a few thousand points estimates the score well, such as sample_size 2000.");
	}
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		/* rows without features or cluster are skipped */
		if (pb)
			PG_RETURN_POINTER(pb);
		PG_RETURN_NULL();
	}
	if (pb == NULL)
		pb = pb_create(aggcontext, true, &params, sizeof(params));
	else
		pb_check_params(pb, &params, sizeof(params));
	pb_add(pb, PG_GETARG_ARRAYTYPE_P(1), PG_GETARG_INT32(2));
	PG_RETURN_POINTER(pb);
}

/*
 * The most points whose pairwise distances silhouette_final keeps (n (n - 1)
 * / 2 doubles: 36 MB for 3000): beyond, each distance is computed twice.
 */
#define SILHOUETTE_KEPT_POINTS 3000
/* where d(i, j), j < i, is kept: row i's i values start at i (i - 1) / 2 */
#define KEPT_INDEX(i, j) ((i) * ((i) - 1) / 2 + (j))

/* Euclidean distance of two points (k-means' kernel: kmeans.h) */
static inline double
distance(const double *a, const double *b, int dim)
{
	return sqrt(kmeans_dist2(a, b, dim));
}

/* keep a sample of m rows (partial Fisher-Yates over the sorted points) */
static void
sample_points(PointBuffer *pb, int64 m, int64 seed)
{
	pg_prng_state rng;
	int64	   *idx = palloc_extended(sizeof(int64) * pb->n, MCXT_ALLOC_HUGE);
	double	   *x = palloc_extended(sizeof(double) * m * pb->dim, MCXT_ALLOC_HUGE);
	int32	   *label = palloc(sizeof(int32) * m);

	pg_prng_seed(&rng, (uint64) seed);
	for (int64 i = 0; i < pb->n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		idx[i] = i;
	}
	for (int64 i = 0; i < m; i++)
	{
		int64		j = i + (int64) pg_prng_uint64_range(&rng, 0, pb->n - 1 - i);
		int64		t = idx[i];

		idx[i] = idx[j];
		idx[j] = t;
		memcpy(x + i * pb->dim, pb->x + idx[i] * pb->dim, sizeof(double) * pb->dim);
		label[i] = pb->label[idx[i]];
	}
	pb->x = x;
	pb->label = label;
	pb->n = m;
}

/* silhouette final: the mean silhouette of the points (or of the sample) */
Datum
silhouette_final(PG_FUNCTION_ARGS)
{
	PointBuffer *pb = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	SilhouetteParams params;
	int32	   *cluster;		/* dense cluster numbers 0..k-1 */
	int64	   *members;
	int64	   *start;
	double	   *sums;
	int			k = 0;
	double		total = 0;
	int64		n,
				dim;
	double	   *kept = NULL;	/* d(i, j) for j < i, row by row */

	if (pb == NULL || pb->n == 0)
		PG_RETURN_NULL();
	memcpy(&params, pb->params, sizeof(params));
	/* the n^2 loop below, refused before any work (a sample is bounded in the sfunc) */
	if (params.sample_size == 0)
		ca_check_limit("the number of points of an exact silhouette", pb->n, CA_MAX_SILHOUETTE_POINTS,
					   "Pass a sample size, such as silhouette(features, cluster, 2000, 0): "
					   "a repeatable sample of 2000 points.");
	/* canonical order first, so the sample does not depend on the plan */
	pb_sort(pb);
	if (params.sample_size > 0 && params.sample_size < pb->n)
	{
		sample_points(pb, params.sample_size, params.seed);
		pb_sort(pb);
	}
	n = pb->n;
	dim = pb->dim;

	/* sorted by label: number the clusters 0..k-1 */
	cluster = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < n; i++)
		cluster[i] = (i > 0 && pb->label[i] == pb->label[i - 1]) ? cluster[i - 1] : k++;
	if (k < 2 || k > n - 1)
		PG_RETURN_NULL();		/* undefined, as silhouette_score refuses it */

	members = palloc0(sizeof(int64) * k);
	for (int64 i = 0; i < n; i++)
		members[cluster[i]]++;
	sums = palloc(sizeof(double) * k);
	/*
	 * d(i, j) = d(j, i) bit for bit (the same squares in the same order):
	 * up to SILHOUETTE_KEPT_POINTS points (a sample of the default 2000),
	 * row i keeps its distances to the later rows for them to read, so each
	 * distance is computed once; the sums still add the same values in the
	 * same order.
	 */
	if (n <= SILHOUETTE_KEPT_POINTS)
		kept = palloc_extended(sizeof(double) * (n * (n - 1) / 2), MCXT_ALLOC_HUGE);

	/* sorted by cluster: cluster c's points are start[c] .. start[c + 1] - 1 */
	start = palloc(sizeof(int64) * (k + 1));
	start[0] = 0;
	for (int c = 0; c < k; c++)
		start[c + 1] = start[c] + members[c];

	for (int64 i = 0; i < n; i++)
	{
		int			own = cluster[i];
		const double *xi = pb->x + i * dim;
		double		a,
					b = -1;

		CHECK_FOR_INTERRUPTS();
		/*
		 * Cluster by cluster, the distances to its points in order (j < i
		 * from kept, computed beyond i), summed in a register: the same
		 * additions in the same order as one sum per cluster in memory,
		 * without waiting on a store for each point of a cluster.
		 */
		for (int c = 0; c < k; c++)
		{
			int64		from = start[c],
						to = start[c + 1];
			int64		below = Min(to, i);
			double		sum = 0;
			int64		j = from;

			if (kept)
				for (; j < below; j++)
					sum += kept[KEPT_INDEX(i, j)];
			for (; j < to; j++)
			{
				double		d;

				/* one row is up to n * CA_MAX_FEATURES operations */
				if ((j & 0xFFF) == 0)
					CHECK_FOR_INTERRUPTS();
				if (j == i)
					continue;
				d = distance(xi, pb->x + j * dim, dim);
				if (kept && j > i)
					kept[KEPT_INDEX(j, i)] = d;
				sum += d;
			}
			sums[c] = sum;
		}
		if (members[own] == 1)
			continue;			/* s = 0 */
		a = sums[own] / (members[own] - 1);
		for (int c = 0; c < k; c++)
			if (c != own && (b < 0 || sums[c] / members[c] < b))
				b = sums[c] / members[c];
		if (Max(a, b) > 0)
			total += (b - a) / Max(a, b);
	}
	PG_RETURN_FLOAT8(total / n);
}
