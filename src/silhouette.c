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

#include "access/parallel.h"
#include "access/xact.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "port/atomics.h"
#include "storage/shm_toc.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

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

/* a sample size given to silhouette(): 2 .. CA_MAX_SILHOUETTE_POINTS */
static void
check_sample_size(int64 sample_size)
{
	if (sample_size < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample_size must be at least 2, not %lld", (long long) sample_size),
				 errhint("A few thousand points estimate the score well; leave it out for the exact score.")));
	ca_check_limit("silhouette sample_size", sample_size, CA_MAX_SILHOUETTE_POINTS,
				   "A sample of a few thousand points estimates the score well, such as sample_size 2000.");
}

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
		check_sample_size(params.sample_size);
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

/*
 * The mean silhouette of pb's labelled points (or of the sample params
 * asks for): false when undefined (NULL).  pb is sorted (and sampled) in
 * place, in its own memory context.  silhouette() and _kmeans_silhouettes()
 * both end here, so their scores are the same bits.
 */
static bool
silhouette_of(PointBuffer *pb, SilhouetteParams params, double *result)
{
	int32	   *cluster;		/* dense cluster numbers 0..k-1 */
	int64	   *members;
	int64	   *start;
	double	   *sums;
	int			k = 0;
	double		total = 0;
	int64		n,
				dim;
	double	   *kept = NULL;	/* d(i, j) for j < i, row by row */

	if (pb->n == 0)
		return false;
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
		return false;			/* undefined, as silhouette_score refuses it */

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
	*result = total / n;
	return true;
}

/* silhouette final: the mean silhouette of the points (or of the sample) */
Datum
silhouette_final(PG_FUNCTION_ARGS)
{
	PointBuffer *pb = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	SilhouetteParams params;
	double		score;

	if (pb == NULL || pb->n == 0)
		PG_RETURN_NULL();
	memcpy(&params, pb->params, sizeof(params));
	if (!silhouette_of(pb, params, &score))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(score);
}


/*
 * _kmeans_silhouettes(features float8[], models jsonb[], sample_size int,
 * seed bigint) -> float8[]: for each model, what
 *
 *   silhouette(kmeans_standardize(model, features), kmeans_predict(model, features)
 *              [, sample_size, seed])
 *
 * returns over the same rows (sample_size 0: the exact form), bit for bit:
 * the same z-scores and nearest centres (kmeans_model.c's arithmetic), the
 * same points handed to the same silhouette_of().  The elbow's silhouettes
 * in one pass over the features instead of two function calls per row and
 * k, the z-scores computed once when the models share their mean and scale
 * (the elbow's do: every k is fitted on the same points).  A NULL model
 * gives a NULL element.
 */
PG_FUNCTION_INFO_V1(kmeans_silhouettes_sfunc);
PG_FUNCTION_INFO_V1(kmeans_silhouettes_final);

typedef struct SilhouettesState
{
	PointBuffer *pb;			/* the raw features, unlabelled; params: SilhouetteParams */
	ArrayType  *models;			/* jsonb[], a copy in the aggregate's context */
	Datum		models_arg;		/* the argument as first passed (a constant: compared by pointer first) */
} SilhouettesState;

Datum
kmeans_silhouettes_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "_kmeans_silhouettes");
	SilhouettesState *st = PG_ARGISNULL(0) ? NULL : (SilhouettesState *) PG_GETARG_POINTER(0);
	SilhouetteParams params;

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("models, sample_size and seed must not be NULL"),
				 errhint("Pass sample_size 0 for the exact scores.")));
	params.sample_size = PG_GETARG_INT32(3);
	params.seed = PG_GETARG_INT64(4);
	if (PG_ARGISNULL(1))
	{
		if (st)
			PG_RETURN_POINTER(st);
		PG_RETURN_NULL();
	}
	if (st == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(aggcontext);

		st = palloc0(sizeof(SilhouettesState));
		st->pb = pb_create(aggcontext, false, &params, sizeof(params));
		st->models = PG_GETARG_ARRAYTYPE_P_COPY(2);
		st->models_arg = PG_GETARG_DATUM(2);
		MemoryContextSwitchTo(old);
	}
	else
	{
		pb_check_params(st->pb, &params, sizeof(params));
		if (PG_GETARG_DATUM(2) != st->models_arg)
		{
			ArrayType  *models = PG_GETARG_ARRAYTYPE_P(2);

			if (VARSIZE(models) != VARSIZE(st->models) ||
				memcmp(models, st->models, VARSIZE(models)) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the aggregate's parameters must be the same for every row"),
						 errhint("Pass the models as one array for all rows, such as a scalar subquery.")));
		}
	}
	pb_add(st->pb, PG_GETARG_ARRAYTYPE_P(1), 0);
	PG_RETURN_POINTER(st);
}

/* z = (x - mean) / scale for the n points (kmeans_zscores, row by row) */
static void
standardize_all(const PointBuffer *pb, const KMeansModel *m, double *z)
{
	int			dim = pb->dim;

	if (m->dim != dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features has %d values, the model was fitted on %d", dim, m->dim),
				 errhint("Pass the same features, in the same order, as to kmeans_fit().")));
	for (int64 i = 0; i < pb->n; i++)
	{
		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		kmeans_zscores(m, pb->x + i * dim, z + i * dim, 1);
	}
}

/* the nearest centre of each z-score, as kmeans_predict() finds it */
static void
predict_all(const double *z, int64 n, const KMeansModel *m, int32 *label)
{
	for (int64 i = 0; i < n; i++)
	{
		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		label[i] = kmeans_nearest_centroid(m, z + i * m->dim);
	}
}

/*
 * One model's silhouette over the z-scores z (n points): the points
 * silhouette() would have been given, in input order, labelled as
 * kmeans_predict() labels them, handed to silhouette_of() in a scratch
 * context of their own (reset here).  Pure computation on its arguments:
 * parallel workers run it too.
 */
static bool
model_silhouette(const double *z, int64 n, int dim, const KMeansModel *m, SilhouetteParams params,
				 MemoryContext scratch, double *score)
{
	PointBuffer *pb;
	bool		defined;
	MemoryContext old;

	MemoryContextReset(scratch);
	old = MemoryContextSwitchTo(scratch);
	pb = pb_create(scratch, true, &params, sizeof(params));
	pb->dim = dim;
	pb->n = pb->cap = n;
	pb->x = palloc_extended(sizeof(double) * n * dim, MCXT_ALLOC_HUGE);
	memcpy(pb->x, z, sizeof(double) * n * dim);
	pb->label = palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE);
	predict_all(z, n, m, pb->label);
	defined = silhouette_of(pb, params, score);
	MemoryContextSwitchTo(old);
	return defined;
}

/*
 * The models' silhouettes on parallel workers (the fits' settings:
 * customer_analytics.kmeans_parallel_workers and _min_points): one task
 * per model, taken in turn by the workers and the leader, each computed by
 * model_silhouette() exactly as the serial loop does, its score into its
 * own slot: the same scores, bit for bit, whichever process computed them.
 * Only when every model has the same mean and scale (one array of z-scores
 * in the DSM), as the elbow's do.
 */
typedef struct SilhouetteTasks
{
	int64		n;
	int32		dim;
	int32		ntasks;
	SilhouetteParams params;
	pg_atomic_uint32 next;		/* the next task to run */
} SilhouetteTasks;

/* one task: a model's k and where its centres are in the DSM's centres */
typedef struct SilhouetteTask
{
	int32		k;
	Size		centers;		/* offset in doubles */
} SilhouetteTask;

typedef struct SilhouetteResult
{
	double		score;
	bool		defined;
} SilhouetteResult;

#define SIL_KEY_TASKS		UINT64CONST(0xCA0000000000011)
#define SIL_KEY_TASK		UINT64CONST(0xCA0000000000012)
#define SIL_KEY_POINTS		UINT64CONST(0xCA0000000000013)
#define SIL_KEY_CENTERS		UINT64CONST(0xCA0000000000014)
#define SIL_KEY_RESULTS		UINT64CONST(0xCA0000000000015)

/* tasks until none is left (the leader and the workers) */
static void
run_silhouette_tasks(SilhouetteTasks *tasks, const SilhouetteTask *task, const double *z,
					 const double *centers, SilhouetteResult *results)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "_kmeans_silhouettes task",
												  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		uint32		t = pg_atomic_fetch_add_u32(&tasks->next, 1);
		KMeansModel m;

		if (t >= (uint32) tasks->ntasks)
			break;
		memset(&m, 0, sizeof(m));
		m.k = task[t].k;
		m.dim = tasks->dim;
		m.centers = (double *) centers + task[t].centers;
		results[t].defined = model_silhouette(z, tasks->n, tasks->dim, &m, tasks->params, scratch,
											  &results[t].score);
	}
	MemoryContextDelete(scratch);
}

PGDLLEXPORT void kmeans_silhouettes_parallel_main(dsm_segment *seg, shm_toc *toc);

void
kmeans_silhouettes_parallel_main(dsm_segment *seg, shm_toc *toc)
{
	(void) seg;					/* everything is in the toc */
	run_silhouette_tasks(shm_toc_lookup(toc, SIL_KEY_TASKS, false),
						 shm_toc_lookup(toc, SIL_KEY_TASK, false),
						 shm_toc_lookup(toc, SIL_KEY_POINTS, false),
						 shm_toc_lookup(toc, SIL_KEY_CENTERS, false),
						 shm_toc_lookup(toc, SIL_KEY_RESULTS, false));
}

/*
 * The silhouettes of the models m[0 .. nm - 1] (all of z's mean and scale)
 * on nworkers parallel workers and the leader, into results.  False when
 * no DSM could be made (nothing ran).
 */
static bool
silhouettes_parallel(const double *z, int64 n, int dim, KMeansModel **m, int nm, SilhouetteParams params,
					 int nworkers, SilhouetteResult *results)
{
	ParallelContext *pcxt;
	Size		points_size = sizeof(double) * n * dim;
	Size		ncenters = 0;
	SilhouetteTasks *tasks;
	SilhouetteTask *task;
	double	   *shared_z,
			   *centers;
	SilhouetteResult *shared_results;

	for (int t = 0; t < nm; t++)
		ncenters += (Size) m[t]->k * dim;
	EnterParallelMode();
	pcxt = CreateParallelContext("$libdir/customer_analytics", "kmeans_silhouettes_parallel_main", nworkers);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(SilhouetteTasks));
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(SilhouetteTask) * nm);
	shm_toc_estimate_chunk(&pcxt->estimator, points_size);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(double) * ncenters);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(SilhouetteResult) * nm);
	shm_toc_estimate_keys(&pcxt->estimator, 5);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		DestroyParallelContext(pcxt);
		ExitParallelMode();
		return false;
	}
	tasks = shm_toc_allocate(pcxt->toc, sizeof(SilhouetteTasks));
	tasks->n = n;
	tasks->dim = dim;
	tasks->ntasks = nm;
	tasks->params = params;
	pg_atomic_init_u32(&tasks->next, 0);
	task = shm_toc_allocate(pcxt->toc, sizeof(SilhouetteTask) * nm);
	centers = shm_toc_allocate(pcxt->toc, sizeof(double) * ncenters);
	ncenters = 0;
	for (int t = 0; t < nm; t++)
	{
		task[t].k = m[t]->k;
		task[t].centers = ncenters;
		memcpy(centers + ncenters, m[t]->centers, sizeof(double) * m[t]->k * dim);
		ncenters += (Size) m[t]->k * dim;
	}
	shared_z = shm_toc_allocate(pcxt->toc, points_size);
	memcpy(shared_z, z, points_size);
	shared_results = shm_toc_allocate(pcxt->toc, sizeof(SilhouetteResult) * nm);
	memset(shared_results, 0, sizeof(SilhouetteResult) * nm);
	shm_toc_insert(pcxt->toc, SIL_KEY_TASKS, tasks);
	shm_toc_insert(pcxt->toc, SIL_KEY_TASK, task);
	shm_toc_insert(pcxt->toc, SIL_KEY_POINTS, shared_z);
	shm_toc_insert(pcxt->toc, SIL_KEY_CENTERS, centers);
	shm_toc_insert(pcxt->toc, SIL_KEY_RESULTS, shared_results);

	LaunchParallelWorkers(pcxt);
	/* the leader takes tasks too; all of them when no worker started */
	if (pcxt->nworkers_launched == 0 || parallel_leader_participation)
		run_silhouette_tasks(tasks, task, shared_z, centers, shared_results);
	WaitForParallelWorkersToFinish(pcxt);
	memcpy(results, shared_results, sizeof(SilhouetteResult) * nm);
	elog(DEBUG1, "_kmeans_silhouettes: %d models in %d parallel workers%s", nm, pcxt->nworkers_launched,
		 parallel_leader_participation || pcxt->nworkers_launched == 0 ? " and the leader" : "");
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	return true;
}

Datum
kmeans_silhouettes_final(PG_FUNCTION_ARGS)
{
	SilhouettesState *st = PG_ARGISNULL(0) ? NULL : (SilhouettesState *) PG_GETARG_POINTER(0);
	PointBuffer *raw;
	SilhouetteParams params;
	Datum	   *models;
	bool	   *model_nulls;
	int			nmodels;
	Datum	   *scores;
	bool	   *score_nulls;
	int			dims[1];
	int			lbs[1] = {1};
	double	   *z = NULL;		/* the z-scores of the last model's mean and scale */
	const KMeansModel *z_of = NULL;
	KMeansModel **parsed;
	bool		checked = false;
	int			nm = 0,
				nworkers;
	MemoryContext scratch;

	if (st == NULL || st->pb->n == 0)
		PG_RETURN_NULL();
	raw = st->pb;
	memcpy(&params, raw->params, sizeof(params));
	deconstruct_array(st->models, JSONBOID, -1, false, TYPALIGN_INT, &models, &model_nulls, &nmodels);
	scores = palloc0(sizeof(Datum) * Max(nmodels, 1));
	score_nulls = palloc(sizeof(bool) * Max(nmodels, 1));
	parsed = palloc0(sizeof(KMeansModel *) * Max(nmodels, 1));
	scratch = AllocSetContextCreate(CurrentMemoryContext, "_kmeans_silhouettes",
									ALLOCSET_DEFAULT_SIZES);

	/*
	 * On parallel workers when there are enough points and every model has
	 * the same scaling (one array of z-scores): the models parsed and the
	 * checks made first, in model order; an exact silhouette's limit
	 * refused here, as the serial loop's first model would.  Otherwise the
	 * serial loop below, as before.
	 */
	for (int f = 0; f < nmodels; f++)
	{
		score_nulls[f] = true;
		if (!model_nulls[f])
			nm++;
	}
	nworkers = nm > 1 ? kmeans_parallel_workers_for(raw->n, nm) : 0;
	for (int f = 0; nworkers > 0 && f < nmodels; f++)
	{
		if (model_nulls[f])
			continue;
		/* silhouette()'s transition checks its sample size on its first row */
		if (!checked && params.sample_size != 0)
			check_sample_size(params.sample_size);
		checked = true;
		parsed[f] = kmeans_model_parse(DatumGetJsonbP(models[f]));
		if (z_of == NULL)
			z_of = parsed[f];
		if (z_of->dim != raw->dim || parsed[f]->dim != raw->dim ||
			memcmp(z_of->mean, parsed[f]->mean, sizeof(double) * raw->dim) != 0 ||
			memcmp(z_of->scale, parsed[f]->scale, sizeof(double) * raw->dim) != 0)
			nworkers = 0;
	}
	if (nworkers > 0 && params.sample_size == 0)
		ca_check_limit("the number of points of an exact silhouette", raw->n, CA_MAX_SILHOUETTE_POINTS,
					   "Pass a sample size, such as silhouette(features, cluster, 2000, 0): "
					   "a repeatable sample of 2000 points.");
	if (nworkers > 0)
	{
		KMeansModel **m = palloc(sizeof(KMeansModel *) * nm);
		SilhouetteResult *results = palloc0(sizeof(SilhouetteResult) * nm);
		int			t = 0;

		z = palloc_extended(sizeof(double) * raw->n * raw->dim, MCXT_ALLOC_HUGE);
		standardize_all(raw, z_of, z);
		for (int f = 0; f < nmodels; f++)
			if (parsed[f])
				m[t++] = parsed[f];
		if (silhouettes_parallel(z, raw->n, raw->dim, m, nm, params, nworkers, results))
		{
			t = 0;
			for (int f = 0; f < nmodels; f++)
			{
				if (!parsed[f])
					continue;
				if (results[t].defined)
				{
					scores[f] = Float8GetDatum(results[t].score);
					score_nulls[f] = false;
				}
				t++;
			}
		}
		else
			nworkers = 0;		/* no DSM: the serial loop below */
		pfree(z);
		z = NULL;
		z_of = NULL;
	}

	for (int f = 0; nworkers == 0 && f < nmodels; f++)
	{
		KMeansModel *m;
		double		score;

		if (model_nulls[f])
			continue;
		/* silhouette()'s transition checks its sample size on its first row */
		if (!checked && params.sample_size != 0)
			check_sample_size(params.sample_size);
		checked = true;
		m = parsed[f] ? parsed[f] : kmeans_model_parse(DatumGetJsonbP(models[f]));
		if (z == NULL || z_of->dim != m->dim ||
			memcmp(z_of->mean, m->mean, sizeof(double) * m->dim) != 0 ||
			memcmp(z_of->scale, m->scale, sizeof(double) * m->dim) != 0)
		{
			if (z)
				pfree(z);
			z = palloc_extended(sizeof(double) * raw->n * raw->dim, MCXT_ALLOC_HUGE);
			standardize_all(raw, m, z);
			z_of = m;
		}
		if (model_silhouette(z, raw->n, raw->dim, m, params, scratch, &score))
		{
			scores[f] = Float8GetDatum(score);
			score_nulls[f] = false;
		}
	}
	MemoryContextDelete(scratch);
	dims[0] = nmodels;
	if (nmodels == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(FLOAT8OID));
	PG_RETURN_ARRAYTYPE_P(construct_md_array(scores, score_nulls, 1, dims, lbs, FLOAT8OID,
											 sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
