/*
 * sql_args.c
 *		Checks of SQL-level arguments shared by the extension's functions.
 *		Every error names the argument, so an analyst calling
 *		f(spend_window => ...) sees which one to fix.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "ca_limits.h"
#include "numeric_acc.h"
#include "sql_args.h"

/* Refuse a NULL argument argno, naming it. */
void
arg_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument %s must not be NULL", name),
				 errhint("Leave the argument out to use its default.")));
}

/*
 * A daterange argument as [lo, hi): not NULL, not empty, both bounds given
 * and finite; each refusal names the argument.
 */
DateWindow
arg_date_window(FunctionCallInfo fcinfo, int argno, const char *name)
{
	RangeType  *range;
	TypeCacheEntry *typcache;
	RangeBound	lower,
				upper;
	bool		empty;
	DateWindow	w;

	arg_not_null(fcinfo, argno, name);
	range = PG_GETARG_RANGE_P(argno);
	typcache = lookup_type_cache(RangeTypeGetOid(range), TYPECACHE_RANGE_INFO);
	range_deserialize(typcache, range, &lower, &upper, &empty);

	if (empty)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 errhint("Give a window of at least one day, such as daterange('2025-01-01', '2025-12-31', '[]').")));

	if (lower.infinite || upper.infinite ||
		DATE_NOT_FINITE(DatumGetDateADT(lower.val)) ||
		DATE_NOT_FINITE(DatumGetDateADT(upper.val)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must have a finite lower and upper bound", name),
				 errhint("Give both ends, such as daterange('2025-01-01', '2025-12-31', '[]').")));

	/* daterange is canonical: [lo, hi) */
	w.lo = DatumGetDateADT(lower.val);
	w.hi = DatumGetDateADT(upper.val);
	return w;
}

/* The window as a daterange Datum, [lo, hi). */
Datum
date_window_datum(DateWindow w)
{
	RangeBound	lower = {0},
				upper = {0};

	lower.val = DateADTGetDatum(w.lo);
	lower.inclusive = true;
	lower.lower = true;
	upper.val = DateADTGetDatum(w.hi);
	upper.lower = false;
	return RangeTypePGetDatum(make_range(lookup_type_cache(DATERANGEOID, TYPECACHE_RANGE_INFO),
										 &lower, &upper, false));
}

/* A non-negative, finite amount or percentage. */
Numeric
arg_amount(FunctionCallInfo fcinfo, int argno, const char *name)
{
	Numeric		n;

	arg_not_null(fcinfo, argno, name);
	n = PG_GETARG_NUMERIC(argno);
	if (numeric_is_nan(n) || numeric_is_inf(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", name),
				 errhint("Give a plain amount such as 1000.")));
	if (numeric_compare(n, int64_to_numeric(0)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name),
				 errhint("Give an amount of zero or more.")));
	return n;
}

/*
 * A text[] without NULL elements, of at most max_elems elements (refused
 * with limit_hint before anything else is read); empty only when
 * allow_empty.
 */
ArrayType *
arg_text_array(FunctionCallInfo fcinfo, int argno, const char *name, bool allow_empty,
			   int64 max_elems, const char *limit_hint)
{
	ArrayType  *array;

	arg_not_null(fcinfo, argno, name);
	ca_check_array_length(fcinfo, argno, name, max_elems, limit_hint);
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (!allow_empty && ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 errhint("Give at least one element, such as %s => '{K1,K2,PS}'.", name)));
	if (array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL", name),
				 errhint("Remove the NULL element from the array.")));
	return array;
}
