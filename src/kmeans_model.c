/*
 * kmeans_model.c
 *		The SQL face of k-means: the kmeans_fit aggregate, whose result is a
 *		model value (jsonb), and kmeans_predict / kmeans_standardize, which
 *		apply a model to a feature vector.
 *
 * The model is jsonb rather than a type of our own: BI tools, psql and any
 * client can read it, store it in a table and pass it back, and its fields
 * (standardization, centroids in both scales, inertia, iterations, sizes)
 * are self-describing.  Floats are written with 17 significant digits, so a
 * model read back predicts exactly as the one that was fitted.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "kmeans.h"
#include "point_buffer.h"

PG_FUNCTION_INFO_V1(kmeans_fit_sfunc);
PG_FUNCTION_INFO_V1(kmeans_fit_final);
PG_FUNCTION_INFO_V1(kmeans_predict);
PG_FUNCTION_INFO_V1(kmeans_standardize);
PG_FUNCTION_INFO_V1(kmeans_model_check);

/* ---- options ---------------------------------------------------------- */

/* The value under key in a jsonb object, or NULL. */
static const JsonbValue *
option(Jsonb *options, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(&options->root, key, strlen(key), buf);
}

/* A numeric option, or dflt when absent. */
static double
option_number(Jsonb *options, const char *key, double dflt)
{
	JsonbValue	buf;
	const JsonbValue *v = option(options, key, &buf);

	if (v == NULL)
		return dflt;
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_fit option \"%s\" must be a number", key),
				 errhint("For example '{\"n_init\": 10, \"seed\": 42}'.")));
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

/* "a JSON string", "an array", ... for a DETAIL */
static const char *
json_kind(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "not a JSON value";	/* jbvArray/jbvObject do not come out of a container */
	}
}

/*
 * A JSON number for a message: as written without trailing zeros (4.0 is
 * "4"), or in scientific notation when that would be long (1e+400, not 401
 * digits).
 */
static char *
number_text(Numeric num)
{
	char	   *sci = numeric_out_sci(num, 15);	/* finite: always has an exponent */
	char	   *e = strchr(sci, 'e');
	int			exponent = atoi(e + 1);
	char	   *m = e;

	if (exponent >= -20 && exponent <= 20)
	{
		pfree(sci);
		return numeric_normalize(num);
	}
	/* "1.500000000000000e+400" -> "1.5e+400" */
	while (m[-1] == '0')
		m--;
	if (m[-1] == '.')
		m--;
	memmove(m, e, strlen(e) + 1);
	return sci;
}

/* Is a JSON number zero (as written, before rounding to float8)? */
static bool
numeric_is_zero(Numeric num)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(num),
											 NumericGetDatum(int64_to_numeric(0)))) == 0;
}

/* "path->i" for a DETAIL */
static char *
path_i(const char *path, int i)
{
	return psprintf("%s->%d", path, i);
}

/*
 * A JSON number as float8: +-Infinity when it is too large (float8in would
 * raise 22003 without naming the field), 0 or a subnormal when too small.
 */
static double
json_number_float8(const JsonbValue *v)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
														   NumericGetDatum(v->val.numeric)));
	double		d = strtod(text, NULL);	/* ERANGE: HUGE_VAL or a tiny value */

	pfree(text);
	return d;
}

/*
 * The option "seed", a 64-bit integer (0 when absent).  Parsed from the
 * number as written, not through float8: 9007199254740993 stays itself, and
 * the whole int64 range is accepted.  A whole number written 42.0 or 4.2e1
 * is 42; 1.5 is refused.
 */
static int64
option_seed(Jsonb *options)
{
	JsonbValue	buf;
	const JsonbValue *v = option(options, "seed", &buf);
	Numeric		num;
	char	   *text;

	if (v == NULL)
		return 0;
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_fit option \"seed\" must be a 64-bit integer"),
				 errdetail("The seed given is %s.", json_kind(v)),
				 errhint("Pass a seed such as 42.")));
	num = v->val.numeric;
	/* the range first: the text of 1e100000 would have 100,001 digits */
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(num),
										  NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))) < 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(num),
										  NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_fit option \"seed\" must be a 64-bit integer"),
				 errdetail("The seed given is %s.", number_text(num)),
				 errhint("Pass a seed such as 42.")));
	text = numeric_normalize(num);	/* 42.0 -> "42" */
	if (strchr(text, '.') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_fit option \"seed\" must be a 64-bit integer"),
				 errdetail("The seed given is %s.", text),
				 errhint("Pass a seed such as 42.")));
	return pg_strtoint64(text);
}

/* every numeric scalar under a container, in document order */
static int
flatten_numbers(JsonbContainer *container, double *out, int max)
{
	JsonbIterator *it = JsonbIteratorInit(container);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		CHECK_FOR_INTERRUPTS();
		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("expected numbers in a k-means array"),
					 errhint("Centres and model fields hold numbers only.")));
		if (n < max)
			out[n] = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
														NumericGetDatum(v.val.numeric)));
		n++;
	}
	return n;
}

/*
 * The aggregate's fixed arguments as a blob: KMeansOptions, then the
 * initial centres (standardized space) when given.
 */
static char *
parse_options(int32 k, Jsonb *options, int dim, Size *len)
{
	static const char *const known[] = {"n_init", "max_iter", "tol", "seed", "init", NULL};
	KMeansOptions opt;
	double	   *init = NULL;
	char	   *blob;

	if (k < 1 || k > KMEANS_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and %d, not %d", KMEANS_MAX_K, k),
				 errhint("k is the number of clusters; the notebook uses 4.")));
	memset(&opt, 0, sizeof(opt));
	opt.k = k;
	opt.n_init = 10;
	opt.max_iter = 300;
	opt.tol = 1e-4;
	opt.seed = 0;

	if (options)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		JsonbValue	buf;
		const JsonbValue *iv;
		double		n_init,
					max_iter;

		if (!JB_ROOT_IS_OBJECT(options))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("kmeans_fit options must be a JSON object"),
					 errhint("For example '{\"n_init\": 10, \"seed\": 42}'.")));
		it = JsonbIteratorInit(&options->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			bool		ok = false;

			if (tok != WJB_KEY)
				continue;
			for (int i = 0; known[i]; i++)
				if (v.val.string.len == (int) strlen(known[i]) &&
					strncmp(v.val.string.val, known[i], v.val.string.len) == 0)
					ok = true;
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown kmeans_fit option \"%.*s\"", v.val.string.len, v.val.string.val),
						 errhint("Options are n_init, max_iter, tol, seed and init.")));
		}
		n_init = option_number(options, "n_init", 10);
		max_iter = option_number(options, "max_iter", 300);
		opt.tol = option_number(options, "tol", 1e-4);
		if (!(n_init >= 1) || !(max_iter >= 1) || !(opt.tol >= 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("kmeans_fit needs n_init >= 1, max_iter >= 1 and tol >= 0"),
					 errhint("The defaults are n_init 10, max_iter 300, tol 1e-4.")));
		/* bounded before the casts: a larger double does not fit an int32 */
		ca_check_limit("kmeans_fit option n_init", (int64) Min(n_init, 1e18), KMEANS_MAX_N_INIT,
					   "Use n_init 10 (the default); more restarts rarely lower the inertia.");
		ca_check_limit("kmeans_fit option max_iter", (int64) Min(max_iter, 1e18), KMEANS_MAX_MAX_ITER,
					   "Use max_iter 300 (the default) and a tolerance (tol) to stop earlier.");
		opt.n_init = (int32) n_init;
		opt.max_iter = (int32) max_iter;
		opt.seed = option_seed(options);

		iv = option(options, "init", &buf);
		if (iv)
		{
			int			n;

			if (iv->type != jbvBinary)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("kmeans_fit option \"init\" must be an array of k centres"),
						 errhint("Give k arrays of standardized (z-score) feature values.")));
			init = palloc(sizeof(double) * k * dim);
			n = flatten_numbers(iv->val.binary.data, init, k * dim);
			if (n != k * dim)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("kmeans_fit option \"init\" has %d numbers, expected k * features = %d", n, k * dim),
						 errhint("Give k arrays of standardized (z-score) feature values.")));
			opt.ninit_values = k * dim;
		}
	}

	*len = sizeof(KMeansOptions) + sizeof(double) * opt.ninit_values;
	blob = palloc(*len);
	memcpy(blob, &opt, sizeof(opt));
	if (init)
		memcpy(blob + sizeof(opt), init, sizeof(double) * opt.ninit_values);
	return blob;
}

/* ---- the aggregate ---------------------------------------------------- */

/* kmeans_fit(features float8[], k int [, options jsonb]): transition */
Datum
kmeans_fit_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "kmeans_fit");
	PointBuffer *pb = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	ArrayType  *features;
	Jsonb	   *options = (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ? PG_GETARG_JSONB_P(3) : NULL;
	char	   *blob;
	Size		len;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k must not be NULL"),
				 errhint("Pass the number of clusters, such as kmeans_fit(features, 4).")));
	if (PG_ARGISNULL(1))
	{
		/* a NULL vector is skipped, like NULL inputs of any aggregate */
		if (pb)
			PG_RETURN_POINTER(pb);
		PG_RETURN_NULL();
	}
	features = PG_GETARG_ARRAYTYPE_P(1);
	/* before parse_options() sizes the initial centres by it */
	pb_check_features(ArrayGetNItems(ARR_NDIM(features), ARR_DIMS(features)));
	blob = parse_options(PG_GETARG_INT32(2), options,
						 ArrayGetNItems(ARR_NDIM(features), ARR_DIMS(features)), &len);
	if (pb == NULL)
		pb = pb_create(aggcontext, false, blob, len);
	else
		pb_check_params(pb, blob, len);
	pb_add(pb, features, 0);
	PG_RETURN_POINTER(pb);
}

/* ', "key": [v0, v1, ...]' with 17 significant digits */
static void
append_array(StringInfo buf, const char *key, const double *v, int n)
{
	appendStringInfo(buf, ", \"%s\": [", key);
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s%.17g", i ? ", " : "", v[i]);
	appendStringInfoChar(buf, ']');
}

/* ', "key": [[...], ...]' of rows x cols values, row-major */
static void
append_matrix(StringInfo buf, const char *key, const double *v, int rows, int cols)
{
	appendStringInfo(buf, ", \"%s\": [", key);
	for (int r = 0; r < rows; r++)
	{
		appendStringInfoString(buf, r ? ", [" : "[");
		for (int c = 0; c < cols; c++)
			appendStringInfo(buf, "%s%.17g", c ? ", " : "", v[r * cols + c]);
		appendStringInfoChar(buf, ']');
	}
	appendStringInfoChar(buf, ']');
}

/*
 * A field of a fitted model must be finite, as kmeans_model_parse() will
 * require: features near the float8 limits overflow the means, variances or
 * distances (the model's JSON would hold "Infinity").
 */
static void
check_fit_finite(const char *key, const double *v, int n)
{
	for (int i = 0; i < n; i++)
		if (!isfinite(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("kmeans_fit result \"%s\" is out of range for float8", key),
					 errdetail("The features are too large for k-means in float8: their sums or squares overflow."),
					 errhint("Divide the features by a constant, such as 1e6, before fitting.")));
}

/*
 * The fits of this transaction, by their exact input: the points (in
 * canonical order) and the aggregate's parameters.  A segmentation's
 * refresh fits its model view's k and then the elbow's k = k_from .. k_to
 * over the same features in one transaction: the elbow's fit of the
 * model's k is the model view's, bit for bit, and is taken from here.
 * Exact by construction (the inputs are compared in full, and the result
 * is a pure function of them), and gone at the end of the transaction
 * (its memory is in TopTransactionContext; a new transaction's lxid
 * differs).  Points of more than FIT_CACHE_MAX_VALUES values are not kept.
 */
#define FIT_CACHE_MAX_VALUES (8 * 1024 * 1024)

typedef struct FitCacheEntry
{
	Size		params_len;
	char	   *params;
	bool		bounds;			/* kmeans_bounds: suite 49 compares both ways */
	Jsonb	   *model;
	struct FitCacheEntry *next;
} FitCacheEntry;

static struct
{
	LocalTransactionId lxid;	/* InvalidLocalTransactionId: empty */
	MemoryContext context;
	int64		n;
	int32		dim;
	double	   *x;
	FitCacheEntry *entries;
}			fit_cache;

/* Are the cached points those of pb, in this transaction? */
static bool
fit_cache_has_points(const PointBuffer *pb)
{
	return fit_cache.lxid == MyProc->lxid && fit_cache.lxid != InvalidLocalTransactionId &&
		fit_cache.n == pb->n && fit_cache.dim == pb->dim &&
		memcmp(fit_cache.x, pb->x, sizeof(double) * pb->n * pb->dim) == 0;
}

/* The model already fitted to these points with these parameters (kmeans_fit's blob), or NULL. */
static Jsonb *
fit_cache_lookup(const PointBuffer *pb, const char *params, Size params_len)
{
	if (!fit_cache_has_points(pb))
		return NULL;
	for (FitCacheEntry *e = fit_cache.entries; e; e = e->next)
		if (e->bounds == ca_kmeans_bounds && e->params_len == params_len &&
			memcmp(e->params, params, params_len) == 0)
		{
			Jsonb	   *copy = palloc(VARSIZE(e->model));

			memcpy(copy, e->model, VARSIZE(e->model));
			return copy;
		}
	return NULL;
}

/* Keep the model fitted to pb's points with params for the rest of the transaction. */
static void
fit_cache_store(const PointBuffer *pb, const char *params, Size params_len, const Jsonb *model)
{
	FitCacheEntry *e;
	MemoryContext old;

	if ((double) pb->n * pb->dim > FIT_CACHE_MAX_VALUES)
		return;
	if (!fit_cache_has_points(pb))
	{
		/* another transaction's context is gone with it; this one's is freed */
		if (fit_cache.lxid == MyProc->lxid && fit_cache.context)
			MemoryContextDelete(fit_cache.context);
		fit_cache.lxid = InvalidLocalTransactionId;
		fit_cache.context = AllocSetContextCreate(TopTransactionContext, "kmeans_fit results",
												  ALLOCSET_DEFAULT_SIZES);
		fit_cache.x = MemoryContextAllocHuge(fit_cache.context, sizeof(double) * pb->n * pb->dim);
		memcpy(fit_cache.x, pb->x, sizeof(double) * pb->n * pb->dim);
		fit_cache.n = pb->n;
		fit_cache.dim = pb->dim;
		fit_cache.entries = NULL;
		fit_cache.lxid = MyProc->lxid;
	}
	old = MemoryContextSwitchTo(fit_cache.context);
	e = palloc(sizeof(FitCacheEntry));
	e->params_len = params_len;
	e->params = palloc(params_len);
	memcpy(e->params, params, params_len);
	e->bounds = ca_kmeans_bounds;
	e->model = palloc(VARSIZE(model));
	memcpy(e->model, model, VARSIZE(model));
	e->next = fit_cache.entries;
	fit_cache.entries = e;
	MemoryContextSwitchTo(old);
}

/* The points of pb standardized: their mean and scale, and z (n * dim) */
static double *
standardize_points(const PointBuffer *pb, double **mean_out, double **scale_out)
{
	int			dim = pb->dim;
	double	   *mean = palloc(sizeof(double) * dim);
	double	   *scale = palloc(sizeof(double) * dim);
	double	   *z;

	kmeans_scaler(pb->x, pb->n, dim, mean, scale);
	check_fit_finite("mean", mean, dim);
	check_fit_finite("scale", scale, dim);
	z = palloc_extended(sizeof(double) * pb->n * dim, MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < pb->n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < dim; j++)
			z[i * dim + j] = (pb->x[i * dim + j] - mean[j]) / scale[j];
	}
	*mean_out = mean;
	*scale_out = scale;
	return z;
}

/* The model value of a fit of n points */
static Jsonb *
fit_model(int64 n, int dim, const KMeansOptions *opt, const double *init, const double *mean,
		  const double *scale, const KMeansFit *fit)
{
	int			k = opt->k;
	double	   *original = palloc(sizeof(double) * k * dim);
	StringInfoData buf;

	for (int c = 0; c < k; c++)
		for (int j = 0; j < dim; j++)
			original[c * dim + j] = fit->centers[c * dim + j] * scale[j] + mean[j];
	check_fit_finite("inertia", &fit->inertia, 1);
	check_fit_finite("centroids", fit->centers, k * dim);
	check_fit_finite("centroids_original", original, k * dim);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"k\": %d, \"n\": %lld, \"features\": %d", k, (long long) n, dim);
	appendStringInfo(&buf, ", \"inertia\": %.17g, \"iterations\": %d, \"converged\": %s",
					 fit->inertia, fit->iterations, fit->converged ? "true" : "false");
	appendStringInfoString(&buf, ", \"sizes\": [");
	for (int c = 0; c < k; c++)
		appendStringInfo(&buf, "%s%lld", c ? ", " : "", (long long) fit->sizes[c]);
	appendStringInfoChar(&buf, ']');
	append_array(&buf, "mean", mean, dim);
	append_array(&buf, "scale", scale, dim);
	append_matrix(&buf, "centroids", fit->centers, k, dim);
	append_matrix(&buf, "centroids_original", original, k, dim);
	appendStringInfo(&buf, ", \"init\": \"%s\", \"n_init\": %d, \"max_iter\": %d, \"tol\": %.17g, \"seed\": %lld}",
					 init ? "given" : "k-means++", init ? 1 : opt->n_init, opt->max_iter, opt->tol,
					 (long long) opt->seed);
	pfree(original);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* Error unless k is at most the number of points */
static void
check_k_points(int k, int64 n)
{
	if (n < k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k = %d is more than the %lld points to cluster", k, (long long) n),
				 errhint("Choose k no larger than the number of rows.")));
}

/* kmeans_fit final: fit the collected points, return the model (jsonb) */
Datum
kmeans_fit_final(PG_FUNCTION_ARGS)
{
	PointBuffer *pb = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	KMeansOptions opt;
	const double *init = NULL;
	double	   *mean,
			   *scale,
			   *z;
	KMeansFit	fit;
	Jsonb	   *cached,
			   *result;

	if (pb == NULL || pb->n == 0)
		PG_RETURN_NULL();		/* no rows: no model, like avg() of nothing */

	memcpy(&opt, pb->params, sizeof(opt));
	if (opt.ninit_values > 0)
		init = (const double *) (pb->params + sizeof(opt));
	check_k_points(opt.k, pb->n);

	pb_sort(pb);
	/* the same points and parameters fitted before in this transaction */
	cached = fit_cache_lookup(pb, pb->params, pb->params_len);
	if (cached)
		PG_RETURN_JSONB_P(cached);
	z = standardize_points(pb, &mean, &scale);
	kmeans_fit_points(z, pb->n, pb->dim, &opt, init, &fit);
	result = fit_model(pb->n, pb->dim, &opt, init, mean, scale, &fit);
	fit_cache_store(pb, pb->params, pb->params_len, result);
	PG_RETURN_JSONB_P(result);
}

/*
 * _kmeans_fits(features float8[], k_from int, k_to int, options jsonb):
 * the models of kmeans_fit(features, k, options) for k = k_from .. k_to,
 * as a jsonb array (the elbow's fits).  The points are collected, sorted
 * and standardized once, and the restarts of all the fits not already in
 * this transaction's cache run as one pool of tasks (one parallel context
 * for all of them): each model is kmeans_fit()'s for its k, bit for bit,
 * and goes to the cache as kmeans_fit() would put it there.
 */
typedef struct KMeansFitsParams
{
	int32		k_from;
	int32		k_to;
	/* followed by the options jsonb (its varlena), or nothing for NULL */
} KMeansFitsParams;

PG_FUNCTION_INFO_V1(kmeans_fits_sfunc);
PG_FUNCTION_INFO_V1(kmeans_fits_final);

Datum
kmeans_fits_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "_kmeans_fits");
	PointBuffer *pb = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	Jsonb	   *options = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	ArrayType  *features;
	KMeansFitsParams params;
	Size		len;
	char	   *blob;

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k_from and k_to must not be NULL"),
				 errhint("Pass the range of k to fit, such as 1 and 10.")));
	if (PG_ARGISNULL(1))
	{
		/* a NULL vector is skipped, as kmeans_fit skips it */
		if (pb)
			PG_RETURN_POINTER(pb);
		PG_RETURN_NULL();
	}
	features = PG_GETARG_ARRAYTYPE_P(1);
	params.k_from = PG_GETARG_INT32(2);
	params.k_to = PG_GETARG_INT32(3);
	len = sizeof(params) + (options ? VARSIZE(options) : 0);
	blob = palloc(len);
	memcpy(blob, &params, sizeof(params));
	if (options)
		memcpy(blob + sizeof(params), options, VARSIZE(options));
	if (pb == NULL)
	{
		int			dim = ArrayGetNItems(ARR_NDIM(features), ARR_DIMS(features));

		/* kmeans_fit's checks of every k, on the first row as kmeans_fit does them */
		pb_check_features(dim);
		for (int k = params.k_from; k <= params.k_to; k++)
		{
			Size		one_len;

			pfree(parse_options(k, options, dim, &one_len));
		}
		pb = pb_create(aggcontext, false, blob, len);
	}
	else
		pb_check_params(pb, blob, len);
	pfree(blob);
	pb_add(pb, features, 0);
	PG_RETURN_POINTER(pb);
}

Datum
kmeans_fits_final(PG_FUNCTION_ARGS)
{
	PointBuffer *pb = PG_ARGISNULL(0) ? NULL : (PointBuffer *) PG_GETARG_POINTER(0);
	KMeansFitsParams params;
	Jsonb	   *options = NULL;
	int			nk,
				nfit = 0;
	char	  **blobs;
	Size	   *lens;
	Datum	   *models;
	KMeansOptions *opts;
	int		   *fit_of;
	bool		any_init = false;

	if (pb == NULL || pb->n == 0)
		PG_RETURN_NULL();		/* no rows: no models, as kmeans_fit */
	memcpy(&params, pb->params, sizeof(params));
	if (pb->params_len > sizeof(params))
		options = (Jsonb *) (pb->params + sizeof(params));
	nk = Max(params.k_to - params.k_from + 1, 0);
	blobs = palloc(sizeof(char *) * Max(nk, 1));
	lens = palloc(sizeof(Size) * Max(nk, 1));
	models = palloc(sizeof(Datum) * Max(nk, 1));
	opts = palloc(sizeof(KMeansOptions) * Max(nk, 1));
	fit_of = palloc(sizeof(int) * Max(nk, 1));

	/* each k's options as kmeans_fit's, in order: the first k with too few points raises */
	for (int i = 0; i < nk; i++)
	{
		blobs[i] = parse_options(params.k_from + i, options, pb->dim, &lens[i]);
		check_k_points(params.k_from + i, pb->n);
	}
	pb_sort(pb);
	for (int i = 0; i < nk; i++)
	{
		Jsonb	   *cached = fit_cache_lookup(pb, blobs[i], lens[i]);

		fit_of[i] = -1;
		if (cached)
			models[i] = JsonbPGetDatum(cached);
		else
		{
			memcpy(&opts[nfit], blobs[i], sizeof(KMeansOptions));
			any_init |= opts[nfit].ninit_values > 0;
			fit_of[i] = nfit++;
		}
	}
	if (nfit > 0)
	{
		double	   *mean,
				   *scale,
				   *z = standardize_points(pb, &mean, &scale);
		KMeansFit  *fits = palloc(sizeof(KMeansFit) * nfit);

		if (any_init)
		{
			/* given centres fit one k (the options' count): one fit at a time */
			for (int i = 0; i < nk; i++)
				if (fit_of[i] >= 0)
					kmeans_fit_points(z, pb->n, pb->dim, &opts[fit_of[i]],
									  opts[fit_of[i]].ninit_values > 0 ? (const double *) (blobs[i] + sizeof(KMeansOptions)) : NULL,
									  &fits[fit_of[i]]);
		}
		else
			kmeans_fit_points_many(z, pb->n, pb->dim, nfit, opts, NULL, fits);
		for (int i = 0; i < nk; i++)
			if (fit_of[i] >= 0)
			{
				const KMeansOptions *opt = &opts[fit_of[i]];
				Jsonb	   *model = fit_model(pb->n, pb->dim, opt,
											  opt->ninit_values > 0 ? (const double *) (blobs[i] + sizeof(KMeansOptions)) : NULL,
											  mean, scale, &fits[fit_of[i]]);

				fit_cache_store(pb, blobs[i], lens[i], model);
				models[i] = JsonbPGetDatum(model);
			}
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(models, nk, JSONBOID, -1, false, TYPALIGN_INT));
}

/* ---- applying a model ------------------------------------------------- */

/*
 * Reading a model.  Every function that takes a model (kmeans_predict,
 * kmeans_standardize, kmeans_profiles() through _kmeans_model_check) reads
 * it with kmeans_model_parse(), the one place its fields are checked.  A
 * model is jsonb, so it may have been edited by hand: each field it uses is
 * checked for shape and value, and an error names the field and, in its
 * DETAIL, the element at fault as a jsonb path (model->'scale'->2), which
 * SQL can read back.  JSON numbers are finite; what can go wrong is a
 * number too large for float8 (1e400), a scale that is 0, negative or
 * subnormal (dividing by it would give infinite z-scores), and nesting.
 */

#define MODEL_HINT "Pass the value returned by customer_analytics.kmeans_fit()."

/* The field key of model, or an error saying the model lacks it. */
static JsonbValue *
model_field(Jsonb *model, const char *key)
{
	JsonbValue *v = palloc(sizeof(JsonbValue));

	if (getKeyJsonValueFromContainer(&model->root, key, strlen(key), v) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" is missing", key),
				 errhint(MODEL_HINT)));
	return v;
}

/* An integer field of a model (k, features) between 1 and max. */
static int
model_int(Jsonb *model, const char *key, int max)
{
	JsonbValue *v = model_field(model, key);
	char	   *text;
	char	   *end;
	long		n;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be an integer from 1 to %d", key, max),
				 errdetail("It is %s.", json_kind(v))));
	text = number_text(v->val.numeric);	/* 4.0 -> "4" */
	errno = 0;
	n = strtol(text, &end, 10);
	if (*end != '\0' || errno == ERANGE || n < 1 || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be an integer from 1 to %d", key, max),
				 errdetail("It is %s.", text)));
	return (int) n;
}

/*
 * n numbers of an array container into out[] (finite; with positive, also
 * positive normal), checked: path names the container in DETAILs, as
 * model->'key' or model->'key'->i.  shape is the errmsg's "must be ..."
 * wording of the whole field.
 */
static void
read_number_array(JsonbContainer *array, const char *key, const char *path,
				  const char *shape, int n, bool positive, double *out)
{
	int			count = JsonContainerSize(array);

	if (!JsonContainerIsArray(array) || JsonContainerIsScalar(array))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be %s", key, shape),
				 errdetail("%s is an object.", path)));
	if (count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be %s", key, shape),
				 errdetail_plural("%s has %d element.", "%s has %d elements.", count, path, count)));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v;
		double		d;

		CHECK_FOR_INTERRUPTS();
		v = getIthJsonbValueFromContainer(array, i);
		if (v->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means model field \"%s\" must be %s", key, shape),
					 errdetail("%s is %s.", path_i(path, i), json_kind(v))));
		d = json_number_float8(v);
		if (!isfinite(d))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means model field \"%s\" must hold finite float8 numbers", key),
					 errdetail("%s is %s, too large for float8.", path_i(path, i), number_text(v->val.numeric))));
		if (positive && !(d > 0 && isnormal(d)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means model field \"%s\" must hold positive normal float8 numbers", key),
					 errdetail("%s is %s%s.", path_i(path, i), number_text(v->val.numeric),
							   d > 0 ? ", below the smallest normal float8 (2.2250738585072014e-308)" :
							   d == 0 && !numeric_is_zero(v->val.numeric) ? ", which rounds to 0 in float8" : "")));
		out[i] = d;
		pfree(v);
	}
}

/* The field key: a one-dimensional array of n numbers (positive normal with positive). */
static double *
model_vector(Jsonb *model, const char *key, int n, bool positive)
{
	JsonbValue *v = model_field(model, key);
	char	   *path = psprintf("model->'%s'", key);
	char	   *shape = psprintf("an array of %d numbers", n);
	double	   *out = palloc(sizeof(double) * n);

	if (v->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be %s", key, shape),
				 errdetail("%s is %s.", path, json_kind(v))));
	read_number_array(v->val.binary.data, key, path, shape, n, positive, out);
	return out;
}

/* The field key: an array of rows arrays of cols finite numbers, row-major. */
static double *
model_matrix(Jsonb *model, const char *key, int rows, int cols)
{
	JsonbValue *v = model_field(model, key);
	char	   *path = psprintf("model->'%s'", key);
	char	   *shape = psprintf("an array of k = %d arrays of %d numbers", rows, cols);
	double	   *out = palloc(sizeof(double) * rows * cols);
	JsonbContainer *array;

	if (v->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be %s", key, shape),
				 errdetail("%s is %s.", path, json_kind(v))));
	array = v->val.binary.data;
	if (!JsonContainerIsArray(array) || JsonContainerIsScalar(array))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be %s", key, shape),
				 errdetail("%s is an object.", path)));
	if ((int) JsonContainerSize(array) != rows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model field \"%s\" must be %s", key, shape),
				 errdetail_plural("%s has %d element.", "%s has %d elements.", JsonContainerSize(array),
								  path, (int) JsonContainerSize(array))));
	for (int r = 0; r < rows; r++)
	{
		JsonbValue *row = getIthJsonbValueFromContainer(array, r);
		char	   *row_path = psprintf("%s->%d", path, r);

		if (row->type != jbvBinary)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("k-means model field \"%s\" must be %s", key, shape),
					 errdetail("%s is %s.", row_path, json_kind(row))));
		read_number_array(row->val.binary.data, key, row_path, shape, cols, false, out + r * cols);
		pfree(row_path);
		pfree(row);
	}
	return out;
}

/*
 * A model value parsed and checked: the one validation of a model, shared
 * by every function that reads one.
 */
KMeansModel *
kmeans_model_parse(Jsonb *model)
{
	KMeansModel *m = palloc(sizeof(KMeansModel));

	if (!JB_ROOT_IS_OBJECT(model))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k-means model must be a JSON object"),
				 errdetail("It is %s.", JB_ROOT_IS_SCALAR(model) ? "a scalar" : "an array"),
				 errhint(MODEL_HINT)));
	m->k = model_int(model, "k", KMEANS_MAX_K);
	m->dim = model_int(model, "features", CA_MAX_FEATURES);
	m->mean = model_vector(model, "mean", m->dim, false);
	m->scale = model_vector(model, "scale", m->dim, true);
	m->centers = model_matrix(model, "centroids", m->k, m->dim);
	return m;
}

/*
 * The parsed model, cached across calls of the same query while the model
 * value stays the same (the usual case: one model for every row).
 */
typedef struct ModelCache
{
	Size		len;
	char	   *bytes;
	KMeansModel *model;
} ModelCache;

/*
 * The parsed model of this call (argument 0), reusing the last one when the
 * value is the same.  The value is compared as it was passed: a model read
 * from a stored view comes compressed in line, and is decompressed only
 * when it differs from the last one (the same compressed bytes are the
 * same model); one stored out of line is fetched and compared as before.
 */
static KMeansModel *
cached_model(FunctionCallInfo fcinfo)
{
	ModelCache *cache = (ModelCache *) fcinfo->flinfo->fn_extra;
	struct varlena *raw = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(0));
	struct varlena *key = VARATT_IS_EXTERNAL(raw) ? pg_detoast_datum_packed(raw) : raw;
	Size		len = VARSIZE_ANY(key);
	MemoryContext old;
	Jsonb	   *model;

	if (cache && cache->len == len && memcmp(cache->bytes, key, len) == 0)
		return cache->model;

	/* decompressed in the call's context, parsed into the cache's */
	model = DatumGetJsonbP(PointerGetDatum(key));
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (cache == NULL)
		cache = palloc0(sizeof(ModelCache));
	else
		pfree(cache->bytes);
	cache->model = kmeans_model_parse(model);
	cache->bytes = palloc(len);
	memcpy(cache->bytes, key, len);
	cache->len = len;
	fcinfo->flinfo->fn_extra = cache;
	MemoryContextSwitchTo(old);
	return cache->model;
}

/* The features argument as z-scores of the model (argument 0). */
static double *
standardized(FunctionCallInfo fcinfo, KMeansModel **model_out)
{
	KMeansModel *m = cached_model(fcinfo);
	ArrayType  *features = PG_GETARG_ARRAYTYPE_P(1);
	double	   *x;
	double	   *z;
	int			n;

	if (ARR_NDIM(features) != 1 || array_contains_nulls(features))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a one-dimensional float8[] array without NULLs"),
				 errhint("Pass the same features as to kmeans_fit().")));
	n = ArrayGetNItems(ARR_NDIM(features), ARR_DIMS(features));
	if (n != m->dim)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features has %d values, the model was fitted on %d", n, m->dim),
				 errhint("Pass the same features, in the same order, as to kmeans_fit().")));
	x = (double *) ARR_DATA_PTR(features);
	z = palloc(sizeof(double) * n);
	kmeans_zscores(m, x, z, ARR_LBOUND(features)[0]);
	*model_out = m;
	return z;
}

/*
 * z = the z-scores of one point's features x under model m (features
 * numbered from first in the errors), refusing a feature that is not a
 * finite number and a z-score that overflows float8.  kmeans_predict's,
 * kmeans_standardize's and the elbow's silhouettes' standardization.
 */
void
kmeans_zscores(const KMeansModel *m, const double *x, double *z, int first)
{
	for (int j = 0; j < m->dim; j++)
	{
		if (!isfinite(x[j]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("features must be finite numbers, not %g", x[j]),
					 errhint("Replace NaN and Infinity before predicting.")));
		z[j] = (x[j] - m->mean[j]) / m->scale[j];
		/* finite operands, checked scale: only an overflow is left */
		if (!isfinite(z[j]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("z-score of features[%d] is out of range", first + j),
					 errdetail("(%g - mean %g) / scale %g is too large for float8.",
							   x[j], m->mean[j], m->scale[j])));
	}
}

/*
 * The nearest centroid of z-scores z (ties to the lowest number, as
 * kmeans_lloyd.c's assignment), refusing a distance that overflowed (every
 * point would get centroid 0 else).  kmeans_predict's and the elbow's
 * silhouettes' labels.
 */
int
kmeans_nearest_centroid(const KMeansModel *m, const double *z)
{
	int			best = 0;
	double		bestd = 0;

	for (int c = 0; c < m->k; c++)
	{
		double		d = kmeans_dist2(z, m->centers + c * m->dim, m->dim);

		if (!isfinite(d))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("squared distance from the features to centroid %d is out of range", c),
					 errdetail("model->'centroids'->%d is too far from the features' z-scores for float8.", c)));
		if (c == 0 || d < bestd)
		{
			bestd = d;
			best = c;
		}
	}
	return best;
}

/* kmeans_predict(model jsonb, features float8[]) -> int (0-based cluster) */
Datum
kmeans_predict(PG_FUNCTION_ARGS)
{
	KMeansModel *m;
	double	   *z = standardized(fcinfo, &m);

	PG_RETURN_INT32(kmeans_nearest_centroid(m, z));
}

/* kmeans_standardize(model jsonb, features float8[]) -> float8[] (z-scores) */
Datum
kmeans_standardize(PG_FUNCTION_ARGS)
{
	KMeansModel *m;
	double	   *z = standardized(fcinfo, &m);
	Datum	   *d = palloc(sizeof(Datum) * m->dim);

	for (int j = 0; j < m->dim; j++)
		d[j] = Float8GetDatum(z[j]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, m->dim, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}


/*
 * _kmeans_model_check(model jsonb) -> void: the model checked as
 * kmeans_predict() reads it (kmeans_profiles() checks its model even when
 * there are no features to predict).
 */
Datum
kmeans_model_check(PG_FUNCTION_ARGS)
{
	(void) kmeans_model_parse(PG_GETARG_JSONB_P(0));
	PG_RETURN_VOID();
}
