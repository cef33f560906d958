/*
 * point_buffer.c
 *		Collecting feature vectors for the clustering aggregates.
 *
 * k-means and the silhouette need every point more than once, so their
 * aggregates keep the points (dim doubles each, and a label for silhouette)
 * in the aggregate's memory context; memory is per input row, which is per
 * customer for these uses.  Partial states from parallel workers are
 * concatenated; the final functions sort the points into a canonical order
 * first, so a parallel plan gives exactly the serial answer.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/memutils.h"

#include "ca_limits.h"
#include "point_buffer.h"

/* An empty buffer in context, keeping a copy of the aggregate's parameters. */
PointBuffer *
pb_create(MemoryContext context, bool labelled, const void *params, Size params_len)
{
	PointBuffer *pb = MemoryContextAllocZero(context, sizeof(PointBuffer));

	pb->labelled = labelled;
	pb->params_len = params_len;
	pb->params = MemoryContextAlloc(context, Max(params_len, 1));
	if (params_len > 0)
		memcpy(pb->params, params, params_len);
	return pb;
}

/* The fixed arguments (k, options, ...) must be the same on every row. */
void
pb_check_params(const PointBuffer *pb, const void *params, Size params_len)
{
	if (params_len != pb->params_len || memcmp(params, pb->params, params_len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the aggregate's parameters must be the same for every row"),
				 errhint("Pass k, options and sample settings as constants, not per-row values.")));
}

/*
 * Room for more points, in context.  Refused (54000) before anything is
 * allocated when the buffer would hold more than CA_MAX_POINT_VALUES values.
 */
static void
pb_reserve(PointBuffer *pb, MemoryContext context, int64 more)
{
	MemoryContext old;
	int64		want = pb->n + more;

	if (want <= pb->cap)
		return;
	ca_check_limit("the number of feature values kept by the aggregate (rows times features)",
				   want * Max(pb->dim, 1), CA_MAX_POINT_VALUES,
				   "Aggregate fewer rows (a WHERE clause, or TABLESAMPLE for a sample) or fewer features.");
	old = MemoryContextSwitchTo(context);
	/* grow by doubling, but never past the limit checked above */
	pb->cap = Min(Max(want, Max(pb->cap * 2, 1024)),
				  Max(want, CA_MAX_POINT_VALUES / Max(pb->dim, 1)));
	if (pb->x == NULL)
	{
		pb->x = palloc_extended(sizeof(double) * pb->cap * pb->dim, MCXT_ALLOC_HUGE);
		if (pb->labelled)
			pb->label = palloc_extended(sizeof(int32) * pb->cap, MCXT_ALLOC_HUGE);
	}
	else
	{
		pb->x = repalloc_huge(pb->x, sizeof(double) * pb->cap * pb->dim);
		if (pb->labelled)
			pb->label = repalloc_huge(pb->label, sizeof(int32) * pb->cap);
	}
	MemoryContextSwitchTo(old);
}

/* Refuse a feature vector of more than CA_MAX_FEATURES elements. */
void
pb_check_features(int64 nelems)
{
	ca_check_limit("the number of elements of features", nelems, CA_MAX_FEATURES,
				   "Cluster on fewer features: pick the informative ones, or reduce them first.");
}

/* One point (and its label when labelled); checks the vector. */
void
pb_add(PointBuffer *pb, ArrayType *features, int32 label)
{
	int			nelems;
	double	   *values;

	if (ARR_NDIM(features) != 1 || ARR_ELEMTYPE(features) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional float8[] array"),
				 errhint("Pass one vector per row, such as ARRAY[visits, total_spend]::float8[].")));
	if (array_contains_nulls(features))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features must not contain NULL elements"),
				 errhint("Replace missing values (COALESCE) or leave the row out; a NULL array is skipped.")));
	nelems = ArrayGetNItems(ARR_NDIM(features), ARR_DIMS(features));
	pb_check_features(nelems);
	if (nelems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must not be empty"),
				 errhint("Pass one value per feature, in the same order on every row.")));
	if (pb->dim == 0)
		pb->dim = nelems;
	else if (nelems != pb->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features arrays differ in length: %d, expected %d", nelems, pb->dim),
				 errhint("Every row must have the same features in the same order.")));

	values = (double *) ARR_DATA_PTR(features);
	for (int j = 0; j < nelems; j++)
		if (!isfinite(values[j]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("features must be finite numbers, not %g", values[j]),
					 errhint("Replace NaN and Infinity before clustering.")));

	pb_reserve(pb, GetMemoryChunkContext(pb), 1);
	memcpy(pb->x + pb->n * pb->dim, values, sizeof(double) * pb->dim);
	if (pb->labelled)
		pb->label[pb->n] = label;
	pb->n++;
}

/* a += b's points (a partial state of a parallel worker), in context. */
PointBuffer *
pb_combine(MemoryContext context, PointBuffer *a, PointBuffer *b)
{
	if (b == NULL || b->n == 0)
		return a;
	if (a == NULL)
		return b;
	pb_check_params(a, b->params, b->params_len);
	if (a->n == 0)
		a->dim = b->dim;
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features arrays differ in length: %d, expected %d", b->dim, a->dim),
				 errhint("Every row must have the same features in the same order.")));
	pb_reserve(a, context, b->n);
	memcpy(a->x + a->n * a->dim, b->x, sizeof(double) * b->n * b->dim);
	if (a->labelled)
		memcpy(a->label + a->n, b->label, sizeof(int32) * b->n);
	a->n += b->n;
	return a;
}

/* layout: dim, labelled, n, params_len, params, x[], label[] */
bytea *
pb_serialize(const PointBuffer *pb)
{
	Size		xbytes = sizeof(double) * pb->n * pb->dim;
	Size		lbytes = pb->labelled ? sizeof(int32) * pb->n : 0;
	Size		size = VARHDRSZ + sizeof(int32) * 2 + sizeof(int64) + sizeof(Size) +
		pb->params_len + xbytes + lbytes;
	bytea	   *out = palloc_extended(size, MCXT_ALLOC_HUGE);
	char	   *p = VARDATA(out);
	int32		labelled = pb->labelled;

	SET_VARSIZE(out, size);
	memcpy(p, &pb->dim, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, &labelled, sizeof(int32));
	p += sizeof(int32);
	memcpy(p, &pb->n, sizeof(int64));
	p += sizeof(int64);
	memcpy(p, &pb->params_len, sizeof(Size));
	p += sizeof(Size);
	memcpy(p, pb->params, pb->params_len);
	p += pb->params_len;
	memcpy(p, pb->x, xbytes);
	p += xbytes;
	if (lbytes)
		memcpy(p, pb->label, lbytes);
	return out;
}

/* The buffer pb_serialize() wrote, rebuilt in context. */
PointBuffer *
pb_deserialize(MemoryContext context, bytea *data)
{
	const char *p = VARDATA_ANY(data);
	int32		dim,
				labelled;
	int64		n;
	Size		params_len;
	PointBuffer *pb;

	memcpy(&dim, p, sizeof(int32));
	p += sizeof(int32);
	memcpy(&labelled, p, sizeof(int32));
	p += sizeof(int32);
	memcpy(&n, p, sizeof(int64));
	p += sizeof(int64);
	memcpy(&params_len, p, sizeof(Size));
	p += sizeof(Size);
	pb = pb_create(context, labelled != 0, p, params_len);
	p += params_len;
	pb->dim = dim;
	if (n > 0)
	{
		pb_reserve(pb, context, n);
		memcpy(pb->x, p, sizeof(double) * n * dim);
		p += sizeof(double) * n * dim;
		if (pb->labelled)
			memcpy(pb->label, p, sizeof(int32) * n);
	}
	pb->n = n;
	return pb;
}

/*
 * qsort_arg comparator over row indexes: label, then features.  Sorting
 * millions of points takes seconds, so it checks for interrupts now and
 * then (an error leaves qsort through longjmp, which it allows).
 */
static int
compare_rows(const void *a, const void *b, void *arg)
{
	static uint32 calls = 0;
	const PointBuffer *pb = (const PointBuffer *) arg;
	int64		i = *(const int64 *) a;
	int64		j = *(const int64 *) b;

	if ((++calls & 0x3FFF) == 0)
		CHECK_FOR_INTERRUPTS();

	if (pb->labelled && pb->label[i] != pb->label[j])
		return pb->label[i] < pb->label[j] ? -1 : 1;
	for (int d = 0; d < pb->dim; d++)
	{
		double		u = pb->x[i * pb->dim + d];
		double		v = pb->x[j * pb->dim + d];

		if (u != v)
			return u < v ? -1 : 1;
	}
	return 0;
}

/* features of rows i and j of pb compared lexicographically (labels ignored) */
static int
compare_features(const PointBuffer *pb, int64 i, int64 j)
{
	const double *u = pb->x + i * pb->dim;
	const double *v = pb->x + j * pb->dim;

	for (int d = 0; d < pb->dim; d++)
		if (u[d] != v[d])
			return u[d] < v[d] ? -1 : 1;
	return 0;
}

/*
 * Are pb's rows already in lexicographic order of their features (labels
 * ignored)?  One pass of n - 1 comparisons, which a caller that feeds its
 * rows sorted (the elbow: every fit and silhouette of one ORDER BY) saves a
 * sort with.
 */
static bool
features_sorted(const PointBuffer *pb)
{
	for (int64 i = 1; i < pb->n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (compare_features(pb, i - 1, i) > 0)
			return false;
	}
	return true;
}

/*
 * Canonical order (by label, then lexicographically by features): the input
 * order of an aggregate depends on the plan, the result must not.
 *
 * Rows already sorted by features need no comparison sort: unlabelled, they
 * are in canonical order; labelled, a stable counting sort by label (when
 * the labels span fewer values than there are rows, as cluster numbers do)
 * puts them in it.  Rows equal under the comparison are equal in every
 * value, so the result is the same array whichever way it is reached.
 */
void
pb_sort(PointBuffer *pb)
{
	MemoryContext context = GetMemoryChunkContext(pb);
	int64	   *order = NULL;
	double	   *x;
	int32	   *label = NULL;
	bool		sorted = false;

	if (pb->n < 2)
		return;
	if (features_sorted(pb))
	{
		int32		lo,
					hi;

		if (!pb->labelled)
			return;
		lo = hi = pb->label[0];
		for (int64 i = 1; i < pb->n; i++)
		{
			lo = Min(lo, pb->label[i]);
			hi = Max(hi, pb->label[i]);
		}
		if ((int64) hi - lo < pb->n)
		{
			int64		span = (int64) hi - lo + 1;
			int64	   *start = palloc0(sizeof(int64) * (span + 1));

			for (int64 i = 0; i < pb->n; i++)
				start[pb->label[i] - (int64) lo + 1]++;
			for (int64 c = 1; c <= span; c++)
				start[c] += start[c - 1];
			order = palloc_extended(sizeof(int64) * pb->n, MCXT_ALLOC_HUGE);
			for (int64 i = 0; i < pb->n; i++)
				order[start[pb->label[i] - (int64) lo]++] = i;
			pfree(start);
			sorted = true;
		}
	}
	if (!sorted)
	{
		order = palloc_extended(sizeof(int64) * pb->n, MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < pb->n; i++)
			order[i] = i;
		qsort_arg(order, pb->n, sizeof(int64), compare_rows, pb);
	}

	x = MemoryContextAllocExtended(context, sizeof(double) * pb->n * pb->dim, MCXT_ALLOC_HUGE);
	if (pb->labelled)
		label = MemoryContextAllocExtended(context, sizeof(int32) * pb->n, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < pb->n; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		memcpy(x + i * pb->dim, pb->x + order[i] * pb->dim, sizeof(double) * pb->dim);
		if (label)
			label[i] = pb->label[order[i]];
	}
	pfree(pb->x);
	if (pb->label)
		pfree(pb->label);
	pb->x = x;
	pb->label = label;
	pb->cap = pb->n;
	pfree(order);
}

/*
 * The aggregate memory context of a transition, combine, serial, deserial
 * or final function.  SQL cannot call them outside their aggregate (it has
 * no value of type internal to pass), so anything else is an internal error.
 */
MemoryContext
pb_aggcontext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return aggcontext;
}

/* buf reads a serialized aggregate state in place (for pq_getmsg*) */
void
agg_image_reader(bytea *image, StringInfo buf)
{
	buf->data = VARDATA_ANY(image);
	buf->len = buf->maxlen = VARSIZE_ANY_EXHDR(image);
	buf->cursor = 0;
}

/* ---- SQL-callable support functions shared by the clustering aggregates ---- */

PG_FUNCTION_INFO_V1(point_buffer_combine);
PG_FUNCTION_INFO_V1(point_buffer_serialize);
PG_FUNCTION_INFO_V1(point_buffer_deserialize);

/* combine function of kmeans_fit and silhouette */
Datum
point_buffer_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "point_buffer_combine");
	PointBuffer *a = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	PointBuffer *b = PG_ARGISNULL(1) ? NULL : (PointBuffer *) PG_GETARG_POINTER(1);
	PointBuffer *result;

	/* the result must live in the aggregate context: copy b if it is returned */
	if (a == NULL && b == NULL)
		PG_RETURN_NULL();
	if (a == NULL)
		a = pb_create(aggcontext, b->labelled, b->params, b->params_len);
	result = pb_combine(aggcontext, a, b);
	if (result == b)
		result = pb_combine(aggcontext, pb_create(aggcontext, b->labelled, b->params, b->params_len), b);
	PG_RETURN_POINTER(result);
}

/* serial function of kmeans_fit and silhouette */
Datum
point_buffer_serialize(PG_FUNCTION_ARGS)
{
	(void) pb_aggcontext(fcinfo, "point_buffer_serialize");
	PG_RETURN_BYTEA_P(pb_serialize((PointBuffer *) PG_GETARG_POINTER(0)));
}

/* deserial function of kmeans_fit and silhouette */
Datum
point_buffer_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "point_buffer_deserialize");

	PG_RETURN_POINTER(pb_deserialize(aggcontext, PG_GETARG_BYTEA_PP(0)));
}
