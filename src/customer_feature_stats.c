/*
 * customer_feature_stats.c
 *		The customer_feature_stats aggregate: one customer's confirmed orders
 *		(date, total, quantity, product codes) folded into what
 *		customer_features() derives its columns from.
 *
 *	  customer_feature_stats(order_date, order_total, quantity, product_codes)
 *
 * It is PARALLEL SAFE with combine, serial and deserial functions: each
 * parallel worker folds the orders it scans into partial states per
 * customer, SKU sets included, and the leader combines them (the sets by
 * union), so the per-customer work of customer_features() runs in the
 * workers too.  Rows with a NULL order_date are skipped, as in
 * targeting_stats.  The state is created by the first row that counts, so
 * a group without one gives NULL, as sum() over no values.
 *
 * The product codes are interned (see feature_stats.h): each state's set
 * holds pointers into an interner that keeps one copy of each code, instead
 * of a copy per customer.  The transition and deserialize functions each
 * keep their interner in their FmgrInfo's fn_extra, allocated in fn_mcxt:
 * nodeAgg.c sets up those FmgrInfos in the executor's per-query context, and
 * the aggregate contexts holding the states are its children, so an
 * interner outlives every state pointing into it.  The combine function uses
 * the interners the states carry.
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "feature_stats.h"
#include "numeric_acc.h"
#include "point_buffer.h"

PG_FUNCTION_INFO_V1(customer_feature_stats_sfunc);
PG_FUNCTION_INFO_V1(customer_feature_stats_combine);
PG_FUNCTION_INFO_V1(customer_feature_stats_serialize);
PG_FUNCTION_INFO_V1(customer_feature_stats_deserialize);
PG_FUNCTION_INFO_V1(customer_feature_stats_final);

#define ARG_ORDER_DATE	1
#define ARG_ORDER_TOTAL 2
#define ARG_QUANTITY	3
#define ARG_PRODUCT_CODES 4

/* The interner of this function's call site, created on its first call. */
static CodeInterner *
call_site_interner(FunctionCallInfo fcinfo)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;

	if (flinfo->fn_extra == NULL)
		flinfo->fn_extra = code_interner_create(flinfo->fn_mcxt);
	return (CodeInterner *) flinfo->fn_extra;
}

Datum
customer_feature_stats_sfunc(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "customer_feature_stats_sfunc");
	FeatureStats *state = PG_ARGISNULL(0) ? NULL : (FeatureStats *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(ARG_ORDER_DATE))
	{
		if (state == NULL)
			PG_RETURN_NULL();	/* nothing counted yet: still no state */
		PG_RETURN_POINTER(state);
	}
	if (state == NULL)
		state = MemoryContextAllocZero(aggcontext, sizeof(FeatureStats));
	/* the detoasted arguments are in the per-row context, which the executor resets */
	feature_stats_add(aggcontext, call_site_interner(fcinfo), state,
					  PG_GETARG_DATEADT(ARG_ORDER_DATE),
					  PG_ARGISNULL(ARG_ORDER_TOTAL) ? NULL : PG_GETARG_NUMERIC(ARG_ORDER_TOTAL),
					  PG_ARGISNULL(ARG_QUANTITY) ? NULL : PG_GETARG_NUMERIC(ARG_QUANTITY),
					  PG_ARGISNULL(ARG_PRODUCT_CODES) ? NULL : PG_GETARG_ARRAYTYPE_P(ARG_PRODUCT_CODES));
	PG_RETURN_POINTER(state);
}

/* Partial states are NULL for workers that counted no row of the group. */
Datum
customer_feature_stats_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext = pb_aggcontext(fcinfo, "customer_feature_stats_combine");
	FeatureStats *a = PG_ARGISNULL(0) ? NULL : (FeatureStats *) PG_GETARG_POINTER(0);
	FeatureStats *b = PG_ARGISNULL(1) ? NULL : (FeatureStats *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	/*
	 * the result must live in the aggregate context: never return b itself
	 * (a new state adopts b's interner, which outlives it: see above)
	 */
	if (a == NULL)
		a = MemoryContextAllocZero(aggcontext, sizeof(FeatureStats));
	feature_stats_combine(aggcontext, a, b);
	PG_RETURN_POINTER(a);
}

Datum
customer_feature_stats_serialize(PG_FUNCTION_ARGS)
{
	FeatureStats *state = (FeatureStats *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	(void) pb_aggcontext(fcinfo, "customer_feature_stats_serialize");
	pq_begintypsend(&buf);
	feature_stats_serialize(&buf, state);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * The state lives in the caller's (per-row) context: the combine function
 * copies what it keeps into the aggregate context and never returns it.  Its
 * codes are interned in this function's interner, which lives as long as the
 * query (so the combined states may keep pointing into it).
 */
Datum
customer_feature_stats_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *image = PG_GETARG_BYTEA_PP(0);
	FeatureStats *state = palloc0(sizeof(FeatureStats));
	StringInfoData buf;

	(void) pb_aggcontext(fcinfo, "customer_feature_stats_deserialize");
	agg_image_reader(image, &buf);
	feature_stats_deserialize(&buf, CurrentMemoryContext, call_site_interner(fcinfo), state);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

/* (visits, spend, quantity, skus, first_order, last_order) */
Datum
customer_feature_stats_final(PG_FUNCTION_ARGS)
{
	FeatureStats *state;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {0};

	(void) pb_aggcontext(fcinfo, "customer_feature_stats_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* no row counted, as sum() */
	state = (FeatureStats *) PG_GETARG_POINTER(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "customer_feature_stats_final must return a composite type");

	values[0] = Int64GetDatum(state->visits);
	values[1] = NumericGetDatum(numeric_or_zero(state->spend));
	values[2] = NumericGetDatum(numeric_or_zero(state->quantity));
	values[3] = Int64GetDatum(feature_stats_skus(state));
	values[4] = DateADTGetDatum(state->first_order);
	values[5] = DateADTGetDatum(state->last_order);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
